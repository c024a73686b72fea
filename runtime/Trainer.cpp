#include "runtime/Trainer.h"

#include <chrono>
#include <cmath>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>

namespace mlpc {
namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string formatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  int s = static_cast<int>(seconds + 0.5);
  return s >= 60 ? fmt::format("{}m{:02d}s", s / 60, s % 60) : fmt::format("{}s", s);
}

class CsvLog {
public:
  llvm::Error open(const std::string &path) {
    if (path.empty()) return llvm::Error::success();
    file_ = std::fopen(path.c_str(), "w");
    if (!file_)
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     fmt::format("cannot write log '{}': {}", path, std::strerror(errno)));
    std::fputs("step,loss,lr\n", file_);
    return llvm::Error::success();
  }
  void add(int64_t step, float loss, double lr) {
    if (file_) std::fprintf(file_, "%lld,%.6f,%g\n", static_cast<long long>(step), loss, lr);
  }
  ~CsvLog() {
    if (file_) std::fclose(file_);
  }

private:
  std::FILE *file_ = nullptr;
};

} // namespace

llvm::Expected<TrainSummary> trainModel(ModelRuntime &model, const Split &train,
                                        const TrainOptions &options, llvm::raw_ostream &progress) {
  const int64_t steps = options.steps > 0 ? options.steps : model.module().train.steps;
  const int64_t batch = model.batch(), context = model.context();
  if (train.rows() == 0)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "the training split is empty");
  CsvLog log;
  if (llvm::Error e = log.open(options.logCsvPath))
    return e;

  std::vector<int32_t> X(batch * context), Y(batch);
  Rng rng(options.seed);
  TrainSummary summary;
  double windowSum = 0;
  int64_t windowCount = 0;
  auto start = Clock::now();
  auto lastDraw = start;
  for (int64_t step = 0; step < steps; ++step) {
    for (int64_t r = 0; r < batch; ++r) {
      int64_t row = static_cast<int64_t>(rng.below(train.rows()));
      std::copy_n(train.X.data() + row * context, context, X.data() + r * context);
      Y[r] = train.Y[row];
    }
    double lr = options.lr ? *options.lr : model.module().train.learningRate(step);
    auto loss = options.stats && options.stats->due(step)
                    ? options.stats->step(model, X.data(), Y.data(), static_cast<float>(lr), step)
                    : model.trainStep(X.data(), Y.data(), static_cast<float>(lr));
    if (!loss)
      return loss.takeError();
    if (options.stats)
      options.stats->addLoss(step, *loss);
    // Step 0 includes JIT compilation: time the loop after it (with --stats,
    // step 0 compiles stats_step and step 1 train_step).
    if (step == 0 || (step == 1 && options.stats))
      start = lastDraw = Clock::now();
    summary.lastLoss = *loss;
    windowSum += *loss;
    ++windowCount;
    log.add(step, *loss, lr);

    bool last = step + 1 == steps;
    if (options.terminal && ((step & 255) == 0 || last) &&
        (std::chrono::duration<double>(Clock::now() - lastDraw).count() > 0.1 || last)) {
      lastDraw = Clock::now();
      double elapsed = secondsSince(start), rate = step / std::max(elapsed, 1e-9);
      int filled = static_cast<int>(30.0 * (step + 1) / steps);
      progress << fmt::format("\r  step {:>7}/{} [{}{}] loss {:.4f}  {:>7.0f} steps/s  ETA {:<6}",
                              step + 1, steps, std::string(filled, '#'), std::string(30 - filled, '.'),
                              windowSum / windowCount, rate, formatDuration((steps - step - 1) / rate));
      progress.flush();
    }
    if (step % options.reportEvery == 0 || last) {
      summary.lastWindowMeanLoss = windowSum / windowCount;
      if (!options.terminal) {
        double elapsed = secondsSince(start);
        progress << fmt::format("  step {:>7}/{}: loss {:.4f} (mean of last {} {:.4f})  lr {:g}  {:.0f} steps/s\n",
                                step, steps, *loss, windowCount, windowSum / windowCount, lr,
                                step / std::max(elapsed, 1e-9));
        progress.flush();
      }
      windowSum = 0;
      windowCount = 0;
    }
  }
  if (options.terminal)
    progress << "\n";
  summary.steps = steps;
  summary.seconds = secondsSince(start);
  summary.usPerStep = steps > 1 ? summary.seconds * 1e6 / (steps - 1) : 0;
  return summary;
}

} // namespace mlpc
