#include "runtime/Trainer.h"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>
#include <optional>

namespace mlpc {
namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string formatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0)
    return "?";
  int s = static_cast<int>(seconds + 0.5);
  return s >= 60 ? fmt::format("{}m{:02d}s", s / 60, s % 60) : fmt::format("{}s", s);
}

// The loss log, streamed during training. A write that fails (disk full)
// does not stop training: the first failure is kept and reported in
// TrainSummary::logError, so the run's other results are still saved.
class CsvLog {
public:
  // A resumed run (`resuming`) appends to the log of the run it continues
  // rather than starting it over; a new file gets the header either way.
  llvm::Error open(const std::string &path, bool resuming) {
    if (path.empty())
      return llvm::Error::success();
    path_ = path;
    file_ = std::fopen(path.c_str(), resuming ? "a" : "w");
    if (!file_)
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(),
          fmt::format("cannot write log '{}': {}", path, std::strerror(errno)));
    const bool empty = std::ftell(file_) <= 0; // "a" positions at the end
    if (empty && std::fputs("step,loss,lr\n", file_) < 0)
      fail();
    return llvm::Error::success();
  }
  void add(int64_t step, float loss, double lr) {
    if (file_ && error_.empty() &&
        std::fprintf(file_, "%lld,%.6f,%g\n", static_cast<long long>(step), loss, lr) < 0)
      fail();
  }
  // Flushes and closes the file; "" or why the log is incomplete.
  std::string close() {
    if (file_) {
      if (std::fflush(file_) != 0 || std::ferror(file_))
        fail();
      if (std::fclose(file_) != 0)
        fail();
      file_ = nullptr;
    }
    return error_;
  }
  ~CsvLog() { close(); }

private:
  void fail() {
    if (error_.empty())
      error_ = fmt::format("cannot write log '{}': {}; the log is incomplete", path_,
                           std::strerror(errno));
  }
  std::string path_, error_;
  std::FILE *file_ = nullptr;
};

// The parameters and sampling stream at some step, kept in memory so a
// divergence can be replayed from there.
struct Snapshot {
  int64_t step = 0;
  Rng::Snapshot rng;
  TensorMap params;
  // Copied into the existing buffers (map assignment would rebuild every
  // vector): the training loop allocates nothing per step (test_no_alloc.cpp).
  void refresh(int64_t at, const Rng &from, const TensorMap &current) {
    step = at;
    rng = from.snapshot();
    for (const auto &[name, values] : current)
      std::copy(values.begin(), values.end(), params[name].begin());
  }
};

bool allFinite(const float *data, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(data[i]))
      return false;
  return true;
}

std::optional<std::string> firstNonFiniteParam(ModelRuntime &model) {
  for (ValueId p : model.trainingGraph().leaves(Op::Param)) {
    const std::string &name = model.trainingGraph()[p].name;
    const std::vector<float> &v = model.params()[name];
    if (!allFinite(v.data(), v.size()))
      return name;
  }
  return std::nullopt;
}

} // namespace

namespace {

// Step `step`'s minibatch: replayed from --batches, else sampled.
void nextBatch(const TrainOptions &options, Rng &rng, const BatchSampler &sampler, int64_t step,
               int32_t *X, int32_t *Y, int64_t batch, int64_t context) {
  if (options.batches) {
    std::copy_n(options.batches->x(step), batch * context, X);
    std::copy_n(options.batches->y(step), batch, Y);
    return;
  }
  sampler.sample(rng, batch, X, Y);
}

// Replays the steps [from.step, failedStep] with the stats step, which
// exposes every activation and gradient, and names the first non-finite one:
// activations in forward order, then activation gradients from the loss
// backwards, then parameter gradients, then the updated parameters.
std::string diagnoseDivergence(ModelRuntime &model, const BatchSampler &sampler,
                               const TrainOptions &options, const Snapshot &from,
                               int64_t failedStep) {
  for (auto &[name, values] : from.params) // copy in place: compiled functions hold these buffers
    std::copy(values.begin(), values.end(), model.params()[name].begin());
  model.setStepCount(from.step);
  Rng rng(0);
  rng.restore(from.rng);
  const int64_t batch = model.batch(), context = model.context();
  std::vector<int32_t> X(batch * context), Y(batch);
  for (int64_t step = from.step; step <= failedStep; ++step) {
    nextBatch(options, rng, sampler, step, X.data(), Y.data(), batch, context);
    double lr = options.lr ? *options.lr : model.module().train.learningRate(step);
    auto loss = model.statsStep(X.data(), Y.data(), static_cast<float>(lr));
    if (!loss)
      return "(the replay failed: " + llvm::toString(loss.takeError()) + ")";
    std::vector<const StepTensor *> ordered;
    const auto &tensors = model.statsTensors();
    for (const StepTensor &t : tensors)
      if (t.kind == StepTensor::Kind::Activation)
        ordered.push_back(&t);
    for (auto it = tensors.rbegin(); it != tensors.rend(); ++it)
      if (it->kind == StepTensor::Kind::ActivationGrad)
        ordered.push_back(&*it);
    for (const StepTensor &t : tensors)
      if (t.kind == StepTensor::Kind::ParamGrad)
        ordered.push_back(&t);
    const char *kinds[] = {"activation", "gradient of activation", "gradient of parameter"};
    for (const StepTensor *t : ordered)
      if (!allFinite(t->data, t->type.numel()))
        return fmt::format("at step {} the first non-finite tensor is the {} '{}' {}", step,
                           kinds[static_cast<int>(t->kind)], t->name, toString(t->type));
    if (!std::isfinite(*loss))
      return fmt::format("at step {} the loss is non-finite", step);
    if (auto param = firstNonFiniteParam(model))
      return fmt::format("at step {} the SGD update made parameter '{}' non-finite", step, *param);
  }
  return fmt::format("at step {} (the replay could not reproduce it)", failedStep);
}

// The checks a run's settings must pass before its first step.
llvm::Error checkRun(int64_t steps, const Split &train, const TrainOptions &options) {
  if (options.batches && steps > options.batches->steps)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        fmt::format("the run has {} steps but --batches holds {} batches", steps,
                    options.batches->steps));
  if (train.rows() == 0)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "the training split is empty");
  if (options.startStep > steps)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        fmt::format("the checkpoint is at step {}, past the {} steps to train", options.startStep,
                    steps));
  return llvm::Error::success();
}

// Progress on `out`: on a terminal a bar redrawn at most every 0.1 s, else a
// line every options.reportEvery steps; both with the mean loss of the steps
// since the last report and the rate since the clock started (after the
// first step, which includes the JIT compile).
class Progress {
public:
  Progress(llvm::raw_ostream &out, const TrainOptions &options, int64_t first, int64_t steps)
      : out_(out), options_(options), first_(first), steps_(steps) {}
  void restartClock() { start_ = lastDraw_ = Clock::now(); }
  double secondsTimed() const { return secondsSince(start_); }
  // Counts step's loss; returns the window's mean loss when a report ends a window.
  std::optional<double> add(int64_t step, double loss, double lr) {
    windowSum_ += loss;
    ++windowCount_;
    const bool last = step + 1 == steps_;
    if (options_.terminal && ((step & 255) == 0 || last) && (secondsSince(lastDraw_) > 0.1 || last))
      drawBar(step);
    if (step % options_.reportEvery != 0 && !last)
      return std::nullopt;
    const double mean = windowSum_ / windowCount_;
    if (!options_.terminal) {
      out_ << fmt::format(
          "  step {:>7}/{}: loss {:.4f} (mean of last {} {:.4f})  lr {:g}  {:.0f} steps/s\n", step,
          steps_, loss, windowCount_, mean, lr, rate(step));
      out_.flush();
    }
    windowSum_ = 0;
    windowCount_ = 0;
    return mean;
  }
  void finish() {
    if (options_.terminal)
      out_ << "\n";
  }

private:
  double rate(int64_t step) const { return (step - first_) / std::max(secondsSince(start_), 1e-9); }
  void drawBar(int64_t step) {
    lastDraw_ = Clock::now();
    const double perSecond = rate(step);
    const int filled = static_cast<int>(30.0 * (step + 1) / steps_);
    out_ << fmt::format("\r  step {:>7}/{} [{}{}] loss {:.4f}  {:>7.0f} steps/s  ETA {:<6}",
                        step + 1, steps_, std::string(filled, '#'), std::string(30 - filled, '.'),
                        windowSum_ / windowCount_, perSecond,
                        formatDuration((steps_ - step - 1) / perSecond));
    out_.flush();
  }
  llvm::raw_ostream &out_;
  const TrainOptions &options_;
  const int64_t first_, steps_;
  Clock::time_point start_ = Clock::now(), lastDraw_ = start_;
  double windowSum_ = 0;
  int64_t windowCount_ = 0;
};

} // namespace

llvm::Expected<TrainSummary> trainModel(ModelRuntime &model, const Split &train,
                                        const TrainOptions &options, llvm::raw_ostream &progress) {
  const int64_t steps = options.steps > 0 ? options.steps : model.module().train.steps;
  if (llvm::Error e = checkRun(steps, train, options))
    return e;
  const int64_t batch = model.batch(), context = model.context();
  CsvLog log;
  if (llvm::Error e = log.open(options.logCsvPath, options.startStep > 0))
    return e;

  std::vector<int32_t> X(batch * context), Y(batch);
  const BatchSampler sampler(train, context);
  Rng rng(options.seed);
  if (options.rngState)
    rng.restore(*options.rngState);
  TrainSummary summary;
  // Divergence replays start from here; refreshed every kSnapshotEvery steps
  // (a 50 KB copy for makemore: nothing next to 1000 steps).
  constexpr int64_t kSnapshotEvery = 1000;
  Snapshot good{options.startStep, rng.snapshot(), model.params()};
  bool checkpointWritten = false; // by this run: only then is one worth mentioning
  auto diverged = [&](int64_t step) -> llvm::Error {
    std::string where = diagnoseDivergence(model, sampler, options, good, step);
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        fmt::format("training diverged: {}; the learning rate may be too large{}", where,
                    checkpointWritten ? " (the last checkpoint written is intact)" : ""));
  };
  auto saveCheckpoint = [&](int64_t nextStep) -> llvm::Error {
    if (!options.checkpoint)
      return llvm::Error::success();
    if (firstNonFiniteParam(model))
      return diverged(nextStep - 1);
    if (llvm::Error e = options.checkpoint(nextStep, rng.snapshot()))
      return e;
    checkpointWritten = true;
    return llvm::Error::success();
  };

  const int64_t first = options.startStep;
  model.setStepCount(first); // the optimizer's t continues from the run's position
  Progress report{progress, options, first, steps};
  int64_t step = first;
  for (; step < steps; ++step) {
    if (options.stopRequested && *options.stopRequested) {
      if (llvm::Error e = saveCheckpoint(step))
        return e;
      summary.interrupted = true;
      break;
    }
    if ((step - first) % kSnapshotEvery == 0 && step != first)
      good.refresh(step, rng, model.params());
    nextBatch(options, rng, sampler, step, X.data(), Y.data(), batch, context);
    double lr = options.lr ? *options.lr : model.module().train.learningRate(step);
    auto loss = options.stats && options.stats->due(step)
                    ? options.stats->step(model, X.data(), Y.data(), static_cast<float>(lr), step)
                    : model.trainStep(X.data(), Y.data(), static_cast<float>(lr));
    if (!loss)
      return loss.takeError();
    if (!std::isfinite(*loss))
      return diverged(step);
    if (options.stats)
      options.stats->addLoss(step, *loss);
    // The first step includes JIT compilation: time the loop after it (with
    // --stats, the first step compiles stats_step and the second train_step).
    if (step == first || (step == first + 1 && options.stats))
      report.restartClock();
    summary.lastLoss = *loss;
    log.add(step, *loss, lr);
    if (options.onStep)
      options.onStep(step, *loss);
    if (options.checkpointEvery > 0 && (step + 1) % options.checkpointEvery == 0 &&
        step + 1 < steps)
      if (llvm::Error e = saveCheckpoint(step + 1))
        return e;

    if (std::optional<double> mean = report.add(step, *loss, lr))
      summary.lastWindowMeanLoss = *mean;
  }
  report.finish();
  if (firstNonFiniteParam(model))
    return diverged(step - 1);
  summary.logError = log.close();
  summary.nextStep = step;
  summary.rng = rng.snapshot();
  summary.steps = step - first;
  summary.seconds = report.secondsTimed();
  summary.usPerStep = summary.steps > 1 ? summary.seconds * 1e6 / (summary.steps - 1) : 0;
  return summary;
}

std::map<std::string, std::string> encodeRunPosition(const RunPosition &p) {
  uint64_t spareBits = 0;
  static_assert(sizeof(spareBits) == sizeof(p.rng.spare));
  std::memcpy(&spareBits, &p.rng.spare, sizeof(spareBits));
  return {{"step", std::to_string(p.nextStep)},
          {"seed", std::to_string(p.seed)},
          {"rng", fmt::format("{} {} {} {} {} {}", p.rng.s[0], p.rng.s[1], p.rng.s[2], p.rng.s[3],
                              p.rng.hasSpare ? 1 : 0, spareBits)}};
}

llvm::Expected<RunPosition> decodeRunPosition(const std::map<std::string, std::string> &metadata,
                                              const std::string &path) {
  auto fail = [&](const std::string &what) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   fmt::format("{}: cannot resume: {}", path, what));
  };
  auto step = metadata.find("step"), seed = metadata.find("seed"), rng = metadata.find("rng");
  if (step == metadata.end() || seed == metadata.end() || rng == metadata.end())
    return fail("the checkpoint has no run position (step, seed, rng metadata); it was not written "
                "by mlpc train");
  RunPosition p;
  unsigned long long words[6] = {};
  char tail = 0;
  if (std::sscanf(rng->second.c_str(), "%llu %llu %llu %llu %llu %llu %c", &words[0], &words[1],
                  &words[2], &words[3], &words[4], &words[5], &tail) != 6)
    return fail("malformed 'rng' metadata");
  char *end = nullptr;
  p.nextStep = std::strtoll(step->second.c_str(), &end, 10);
  if (*end || p.nextStep < 0)
    return fail("malformed 'step' metadata");
  p.seed = std::strtoull(seed->second.c_str(), &end, 10);
  if (*end)
    return fail("malformed 'seed' metadata");
  for (int i = 0; i < 4; ++i)
    p.rng.s[i] = words[i];
  p.rng.hasSpare = words[4] != 0;
  uint64_t spareBits = words[5];
  std::memcpy(&p.rng.spare, &spareBits, sizeof(spareBits));
  return p;
}

} // namespace mlpc
