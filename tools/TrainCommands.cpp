// mlpc train / eval / sample: the JIT-compiled model on names.txt.
#include "runtime/Checkpoint.h"
#include "runtime/OutputFiles.h"
#include "runtime/Trainer.h"
#include "tools/Driver.h"
#include "tools/Gnuplot.h"
#include "tools/OutputFlags.h"

#include <llvm/Support/JSON.h>
#include <llvm/Support/Process.h>
#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <csignal>

namespace mlpc {
namespace {

// The split losses; the test split only when `withTest` (a sweep looks at
// test once, for its best run: `train --no-test`).
llvm::Expected<SplitLosses> splitLosses(ModelRuntime &model, const Dataset &data, bool withTest) {
  if (withTest)
    return model.losses(data);
  SplitLosses l;
  auto train = model.loss(data.train);
  if (!train)
    return train.takeError();
  auto val = model.loss(data.val);
  if (!val)
    return val.takeError();
  l.train = *train;
  l.val = *val;
  l.test = NAN;
  return l;
}

void printLosses(const SplitLosses &l) {
  llvm::outs() << fmt::format("train {:.4f}\nval   {:.4f}\n", l.train, l.val);
  if (!std::isnan(l.test))
    llvm::outs() << fmt::format("test  {:.4f}\n", l.test);
}

int64_t parameterCount(const ModelRuntime &model) {
  int64_t count = 0;
  for (ValueId p : model.trainingGraph().leaves(Op::Param))
    count += model.trainingGraph()[p].type.numel();
  return count;
}

llvm::Error writeMetrics(const std::string &path, const ModelRuntime &model,
                         const SplitLosses &losses, const TrainSummary &summary, uint64_t seed) {
  llvm::json::Object metrics{{"model", model.module().name},
                             {"params", parameterCount(model)},
                             {"train_loss", losses.train},
                             {"val_loss", losses.val},
                             {"test_loss", std::isnan(losses.test)
                                               ? llvm::json::Value(nullptr)
                                               : llvm::json::Value(losses.test)},
                             {"steps", summary.steps},
                             {"train_seconds", summary.seconds},
                             {"us_per_step", summary.usPerStep},
                             {"compile_ms", model.trainCompileMillis()},
                             {"last_minibatch_loss", summary.lastLoss},
                             {"seed", static_cast<int64_t>(seed)}};
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(metrics))) << "\n";
  return writeFileAtomically(path, os.str());
}

// After training: the final losses and samples, then every result, each
// written even if an earlier one fails (any failure makes the exit status 1).
int finishTraining(const ParsedArgs &args, ModelRuntime &model, const Dataset &data,
                   const TrainSummary &summary, uint64_t seed, int64_t samples,
                   const StatsRecorder *stats, const std::vector<std::string> &fallbacks) {
  int status = kExitOk;
  if (!summary.logError.empty())
    status = reportError(summary.logError);
  if (stats) {
    std::string json = llvm::formatv("{0}\n", stats->toJSON()).str();
    if (llvm::Error e = writeWithFallback(
            *args.get("--stats"), "stats",
            [&](const std::string &path) { return writeFileAtomically(path, json); }, fallbacks))
      status = reportError(std::move(e));
    else
      llvm::errs() << fmt::format("mlpc: wrote {} stats records to {} (see 'mlpc plot')\n",
                                  stats->records().size(), *args.get("--stats"));
  }
  // The seed's "calibrate the batch norm": exact statistics over the training split.
  if (llvm::Error e = model.calibrate(data.train))
    return reportError(std::move(e));
  auto losses = splitLosses(model, data, !args.has("--no-test"));
  if (!losses)
    return reportError(losses.takeError());
  printLosses(*losses);
  if (model.hasLogits()) {
    auto names = model.sample(static_cast<int>(samples), seed + 10);
    if (!names)
      return reportError(names.takeError());
    for (const std::string &name : *names)
      llvm::outs() << name << "\n";
  } else if (samples > 0) {
    llvm::outs() << "(no samples: the loss is not a cross-entropy of logits)\n";
  }

  if (auto out = args.get("--out")) {
    // The final checkpoint holds the calibrated statistics (for eval, sample,
    // compile); resuming from it continues the running averages from them.
    std::map<std::string, std::string> meta =
        encodeRunPosition({summary.nextStep, seed, summary.rng});
    meta["calibrated"] = "1";
    if (llvm::Error e = writeWithFallback(
            *out, "checkpoint",
            [&](const std::string &path) { return model.saveParams(path, meta); }, fallbacks))
      status = reportError(std::move(e));
    else
      llvm::errs() << "mlpc: wrote checkpoint " << *out << "\n";
  }
  if (auto path = args.get("--metrics"))
    if (llvm::Error e = writeWithFallback(
            *path, "metrics",
            [&](const std::string &p) { return writeMetrics(p, model, *losses, summary, seed); },
            fallbacks))
      status = reportError(std::move(e));
  return status;
}

// --batches FILE: the minibatches to train on, in order (runtime/BatchSequence.h);
// the file decides the number of steps unless --steps does.
llvm::Error readBatchesFlag(const ParsedArgs &args, const ModelRuntime &model, const Dataset &data,
                            std::optional<BatchSequence> &batches, TrainOptions &options) {
  auto path = args.get("--batches");
  if (!path)
    return llvm::Error::success();
  auto read =
      readBatchSequence(*path, model.module().graph, static_cast<int64_t>(data.vocab.size()));
  if (!read)
    return read.takeError();
  batches = std::move(*read);
  options.batches = &*batches;
  if (options.steps == 0 && model.module().train.steps > batches->steps)
    options.steps = batches->steps;
  return llvm::Error::success();
}

// Where the run's parameters start: --init (parameters and BatchNorm running
// statistics from a file; the optimizer state and the step count start
// fresh), --resume (all of a run's state, its seed, step and sampling
// stream), or initialised from the seed.
llvm::Error startParameters(const ParsedArgs &args, ModelRuntime &model, TrainOptions &options) {
  if (auto init = args.get("--init"))
    return model.loadParams(*init, nullptr, CheckpointUse::Init);
  auto resume = args.get("--resume");
  if (!resume) {
    model.initParams(options.seed);
    return llvm::Error::success();
  }
  std::map<std::string, std::string> metadata;
  if (llvm::Error e = model.loadParams(*resume, &metadata, CheckpointUse::Resume))
    return e;
  auto position = decodeRunPosition(metadata, *resume);
  if (!position)
    return position.takeError();
  if (args.has("--seed") && position->seed != options.seed)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        fmt::format("--seed {} differs from the seed {} of the run in {}", options.seed,
                    position->seed, *resume));
  options.seed = position->seed;
  options.startStep = position->nextStep;
  model.setStepCount(position->nextStep); // the optimizer's bias correction continues
  options.rngState = position->rng;
  llvm::errs() << fmt::format("mlpc: resuming from {} at step {}\n", *resume, position->nextStep);
  return llvm::Error::success();
}

// A checkpoint during training (TrainOptions::checkpoint): the parameters and
// where the run stands. Unfused (--no-fuse), training does not track the
// running statistics: they are calibrated so the checkpoint evaluates and
// samples correctly (the training step never reads them, so the run itself
// is unchanged).
llvm::Error writeRunCheckpoint(ModelRuntime &model, const Dataset &data,
                               const RunPosition &position, const std::string &path,
                               const std::vector<std::string> &fallbacks) {
  std::map<std::string, std::string> meta = encodeRunPosition(position);
  if (!model.tracksRunningStats()) {
    if (llvm::Error e = model.calibrate(data.train))
      return e;
    meta["calibrated"] = "1";
  }
  return writeWithFallback(
      path, "checkpoint", [&](const std::string &p) { return model.saveParams(p, meta); },
      fallbacks);
}

// train's numeric flags (--steps, --seed, --log-every, --samples,
// --stats-every), checked.
struct TrainNumbers {
  int64_t steps, seed, every, samples, statsEvery;
};

llvm::Expected<TrainNumbers> parseTrainNumbers(const ParsedArgs &args) {
  std::string error;
  auto steps = args.getInt("--steps", 0, error);
  auto seed = steps ? args.getInt("--seed", 42, error) : std::nullopt;
  auto every = seed ? args.getInt("--log-every", 10000, error) : std::nullopt;
  auto samples = every ? args.getInt("--samples", 20, error) : std::nullopt;
  auto statsEvery = samples ? args.getInt("--stats-every", 1000, error) : std::nullopt;
  if (!statsEvery)
    return usageError(error);
  if (*steps < 0 || *every < 1 || *samples < 0 || *statsEvery < 1)
    return usageError(
        "--steps, --samples must be non-negative and --log-every, --stats-every positive");
  if (args.has("--stats-every") && !args.has("--stats"))
    return usageError("--stats-every needs --stats FILE");
  return TrainNumbers{*steps, *seed, *every, *samples, *statsEvery};
}

} // namespace

int runTrain(const ParsedArgs &args) {
  auto numbers = parseTrainNumbers(args);
  if (!numbers)
    return reportError(numbers.takeError());
  std::string error;
  // Before any work: a mistyped directory must not cost a whole run.
  if (llvm::Error e = checkOutputFlags(args, {"--out", "--metrics", "--log", "--stats"}))
    return reportError(std::move(e));
  // Results that cannot be written where asked go to $TMPDIR or next to the model.
  const std::vector<std::string> fallbacks = fallbackDirectories(args.positional[0]);
  TrainOptions options;
  options.steps = numbers->steps;
  options.seed = static_cast<uint64_t>(numbers->seed);
  options.reportEvery = numbers->every;
  options.logCsvPath = args.getOr("--log", "");
  options.terminal = llvm::sys::Process::StandardErrIsDisplayed();
  if (args.has("--lr")) {
    auto lr = args.getDouble("--lr", 0.1, error);
    if (!lr || *lr <= 0)
      return reportError(error.empty() ? "--lr must be positive" : error);
    options.lr = *lr;
  }

  std::optional<Loaded> l = loadModel(args, /*needData=*/true, args.getOr("--resume", ""),
                                      /*vocab=*/nullptr, /*willTrain=*/true);
  if (!l)
    return kExitUserError;
  ModelRuntime &model = *l->runtime;
  const Dataset &data = *l->data;
  auto checkpointEvery = args.getInt("--checkpoint-every", 0, error);
  if (!checkpointEvery || *checkpointEvery < 0)
    return reportError(error.empty() ? "--checkpoint-every must be non-negative" : error);
  // Interrupted runs always leave a checkpoint: --out, or a default next to the model's name.
  std::string checkpointPath =
      args.getOr("--out", model.module().name + ".interrupted.safetensors");
  if (*checkpointEvery > 0 && !args.has("--out"))
    return reportError("--checkpoint-every needs --out CKPT");
  if (args.has("--init") && args.has("--resume"))
    return reportError("--init and --resume exclude each other (--resume continues a run, --init "
                       "starts a new one from given parameters)");
  std::optional<BatchSequence> batches;
  if (llvm::Error e = readBatchesFlag(args, model, data, batches, options))
    return reportError(std::move(e));
  if (llvm::Error e = startParameters(args, model, options))
    return reportError(std::move(e));
  options.checkpointEvery = *checkpointEvery;
  options.checkpoint = [&](int64_t nextStep, const Rng::Snapshot &rng) -> llvm::Error {
    return writeRunCheckpoint(model, data, {nextStep, options.seed, rng}, checkpointPath,
                              fallbacks);
  };
  const volatile std::sig_atomic_t &stopSignal = installStopHandlers();
  options.stopRequested = &stopSignal;
  std::optional<StatsRecorder> stats;
  if (auto path = args.get("--stats")) {
    stats.emplace(model.module().name, options.steps ? options.steps : model.module().train.steps,
                  numbers->statsEvery, &data.val);
    options.stats = &*stats;
  }
  llvm::errs() << fmt::format("mlpc: training {} on {} names ({} / {} / {} rows, vocabulary {}), "
                              "batch {}, {} steps\n",
                              model.module().name, data.numWords, data.train.rows(),
                              data.val.rows(), data.test.rows(), data.vocab.size(), model.batch(),
                              options.steps ? options.steps : model.module().train.steps);
  auto summary = trainModel(model, data.train, options, llvm::errs());
  if (!summary)
    return reportError(summary.takeError());
  if (summary->interrupted) {
    llvm::errs() << fmt::format(
        "mlpc: interrupted by signal {} at step {}; saved {} (continue with "
        "--resume {})\n",
        static_cast<int>(stopSignal), summary->nextStep, checkpointPath, checkpointPath);
    return 128 + static_cast<int>(stopSignal);
  }
  llvm::errs() << fmt::format(
      "mlpc: {} steps in {:.2f} s ({:.2f} us/step on {}, train_step compiled in {:.0f} ms)\n",
      summary->steps, summary->seconds, summary->usPerStep, model.threadsDescription(),
      model.trainCompileMillis());
  return finishTraining(args, model, data, *summary, options.seed, numbers->samples,
                        stats ? &*stats : nullptr, fallbacks);
}

int runEval(const ParsedArgs &args) {
  auto weights = args.get("--weights");
  if (!weights)
    return reportError("mlpc eval needs --weights CKPT");
  std::optional<Loaded> l = loadModel(args, /*needData=*/true, *weights);
  if (!l)
    return kExitUserError;
  if (llvm::Error e = l->runtime->loadParams(*weights))
    return reportError(std::move(e));
  if (auto split = args.get("--split")) {
    const Split *chosen = *split == "train"  ? &l->data->train
                          : *split == "val"  ? &l->data->val
                          : *split == "test" ? &l->data->test
                                             : nullptr;
    if (!chosen)
      return reportError(fmt::format("--split must be train, val or test, got '{}'", *split));
    auto loss = l->runtime->loss(*chosen);
    if (!loss)
      return reportError(loss.takeError());
    llvm::outs() << fmt::format("{:<5} {:.4f}\n", *split, *loss);
    return kExitOk;
  }
  auto losses = l->runtime->losses(*l->data);
  if (!losses)
    return reportError(losses.takeError());
  printLosses(*losses);
  return kExitOk;
}

int runSample(const ParsedArgs &args) {
  auto weights = args.get("--weights");
  if (!weights)
    return reportError("mlpc sample needs --weights CKPT");
  std::string error;
  auto count = args.getInt("-n", 20, error);
  auto seed = count ? args.getInt("--seed", 52, error) : std::nullopt;
  if (!seed)
    return reportError(error);
  if (*count < 0 || *count > 1000000)
    return reportError("-n must be between 0 and 1000000");
  // The vocabulary comes from the checkpoint (written by mlpc train) unless
  // --data gives the names file.
  Vocabulary vocab;
  bool needData = args.has("--data");
  if (!needData) {
    auto file = readSafetensors(*weights);
    if (!file)
      return reportError(file.takeError());
    auto it = file->metadata.find("vocab");
    if (it == file->metadata.end() || it->second.empty() || it->second[0] != '.')
      return reportError(fmt::format("{} has no vocabulary metadata; pass --data FILE", *weights));
    vocab.itos = it->second;
  }
  std::optional<Loaded> l = loadModel(args, needData, *weights, &vocab);
  if (!l)
    return kExitUserError;
  if (llvm::Error e = l->runtime->loadParams(*weights))
    return reportError(std::move(e));
  auto names = l->runtime->sample(static_cast<int>(*count), static_cast<uint64_t>(*seed));
  if (!names)
    return reportError(names.takeError());
  for (const std::string &name : *names)
    llvm::outs() << name << "\n";
  return kExitOk;
}

} // namespace mlpc
