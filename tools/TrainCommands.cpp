// mlpc train / eval / sample: the JIT-compiled model on names.txt.
#include "runtime/Checkpoint.h"
#include "runtime/Trainer.h"
#include "tools/Driver.h"

#include <llvm/Support/JSON.h>
#include <llvm/Support/Process.h>
#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

#include <chrono>
#include <csignal>

namespace mlpc {
namespace {

struct Loaded {
  std::unique_ptr<ModelFile> file;
  std::unique_ptr<ModelRuntime> runtime;
  std::optional<Dataset> data;
};

// Parses the model, reads the names (if `needData`), binds V to the
// vocabulary and prepares the runtime. Returns nullopt after reporting.
std::optional<Loaded> load(const ParsedArgs &args, bool needData,
                           const Vocabulary *vocab = nullptr) {
  Loaded l;
  auto file = ModelFile::open(args.positional[0]);
  if (!file) {
    reportError(file.takeError());
    return std::nullopt;
  }
  l.file = std::move(*file);
  if (!l.file->parsedCleanly()) {
    l.file->flushDiagnostics();
    return std::nullopt;
  }
  std::vector<std::string> words;
  Vocabulary v;
  if (needData) {
    auto path = namesFilePath(args);
    if (!path) {
      reportError(path.takeError());
      return std::nullopt;
    }
    auto read = readWords(*path);
    if (!read) {
      reportError(read.takeError());
      return std::nullopt;
    }
    words = std::move(*read);
    v = buildVocabulary(words);
  } else {
    v = *vocab;
  }
  PipelineOptions pipeline;
  pipeline.fuse = !args.has("--no-fuse");
  pipeline.verbose = args.has("--verbose");
  auto runtime = ModelRuntime::create(l.file->ast(), v, l.file->diags(), pipeline);
  l.file->flushDiagnostics();
  if (!runtime) {
    reportError(runtime.takeError());
    return std::nullopt;
  }
  l.runtime = std::move(*runtime);
  if (needData) {
    auto data = buildDataset(std::move(words), static_cast<int>(l.runtime->context()));
    if (!data) {
      reportError(data.takeError());
      return std::nullopt;
    }
    l.data = std::move(*data);
  }
  return l;
}

// SIGINT / SIGTERM only set this flag; the training loop polls it between
// steps and saves a checkpoint. (A signal handler can do nothing else safely,
// which is why this one piece of mutable global state exists.)
volatile std::sig_atomic_t stopSignal = 0;
extern "C" void requestStop(int signal) {
  stopSignal = signal;
}

void installStopHandlers() {
  struct sigaction action = {};
  action.sa_handler = requestStop;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

void printLosses(const SplitLosses &l) {
  llvm::outs() << fmt::format("train {:.4f}\nval   {:.4f}\ntest  {:.4f}\n", l.train, l.val, l.test);
}

} // namespace

int runTrain(const ParsedArgs &args) {
  std::string error;
  auto steps = args.getInt("--steps", 0, error);
  auto seed = steps ? args.getInt("--seed", 42, error) : std::nullopt;
  auto every = seed ? args.getInt("--log-every", 10000, error) : std::nullopt;
  auto samples = every ? args.getInt("--samples", 20, error) : std::nullopt;
  if (!samples)
    return reportError(error);
  auto statsEvery = args.getInt("--stats-every", 1000, error);
  if (!statsEvery)
    return reportError(error);
  if (*steps < 0 || *every < 1 || *samples < 0 || *statsEvery < 1)
    return reportError(
        "--steps, --samples must be non-negative and --log-every, --stats-every positive");
  if (args.has("--stats-every") && !args.has("--stats"))
    return reportError("--stats-every needs --stats FILE");
  TrainOptions options;
  options.steps = *steps;
  options.seed = static_cast<uint64_t>(*seed);
  options.reportEvery = *every;
  options.logCsvPath = args.getOr("--log", "");
  options.terminal = llvm::sys::Process::StandardErrIsDisplayed();
  if (args.has("--lr")) {
    auto lr = args.getDouble("--lr", 0.1, error);
    if (!lr || *lr <= 0)
      return reportError(error.empty() ? "--lr must be positive" : error);
    options.lr = *lr;
  }

  std::optional<Loaded> l = load(args, /*needData=*/true);
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
  if (auto resume = args.get("--resume")) {
    std::map<std::string, std::string> metadata;
    if (llvm::Error e = model.loadParams(*resume, &metadata))
      return reportError(std::move(e));
    auto position = decodeRunPosition(metadata, *resume);
    if (!position)
      return reportError(position.takeError());
    if (args.has("--seed") && position->seed != options.seed)
      return reportError(fmt::format("--seed {} differs from the seed {} of the run in {}",
                                     options.seed, position->seed, *resume));
    options.seed = position->seed;
    options.startStep = position->nextStep;
    options.rngState = position->rng;
    llvm::errs() << fmt::format("mlpc: resuming from {} at step {}\n", *resume, position->nextStep);
  } else {
    model.initParams(options.seed);
  }
  options.checkpointEvery = *checkpointEvery;
  options.checkpoint = [&](int64_t nextStep, const Rng::Snapshot &rng) -> llvm::Error {
    std::map<std::string, std::string> meta = encodeRunPosition({nextStep, options.seed, rng});
    // Unfused (--no-fuse), training does not track the running statistics:
    // calibrate them so the checkpoint evaluates and samples correctly (the
    // training step never reads them, so the run itself is unchanged).
    if (!model.tracksRunningStats()) {
      if (llvm::Error e = model.calibrate(data.train))
        return e;
      meta["calibrated"] = "1";
    }
    return model.saveParams(checkpointPath, meta);
  };
  installStopHandlers();
  options.stopRequested = &stopSignal;
  std::optional<StatsRecorder> stats;
  if (auto path = args.get("--stats")) {
    stats.emplace(model.module().name, options.steps ? options.steps : model.module().train.steps,
                  *statsEvery, &data.val);
    options.stats = &*stats;
    // Written now as well (no records yet), so that a bad path fails before training, not after.
    if (llvm::Error e = stats->write(*path))
      return reportError(std::move(e));
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
      "mlpc: {} steps in {:.2f} s ({:.2f} us/step, train_step compiled in {:.0f} ms)\n",
      summary->steps, summary->seconds, summary->usPerStep, model.trainCompileMillis());
  if (stats) {
    if (llvm::Error e = stats->write(*args.get("--stats")))
      return reportError(std::move(e));
    llvm::errs() << fmt::format("mlpc: wrote {} stats records to {} (see 'mlpc plot')\n",
                                stats->records().size(), *args.get("--stats"));
  }
  // The seed's "calibrate the batch norm": exact statistics over the training split.
  if (llvm::Error e = model.calibrate(data.train))
    return reportError(std::move(e));
  auto losses = model.losses(data);
  if (!losses)
    return reportError(losses.takeError());
  printLosses(*losses);
  auto names = model.sample(static_cast<int>(*samples), options.seed + 10);
  if (!names)
    return reportError(names.takeError());
  for (const std::string &name : *names)
    llvm::outs() << name << "\n";

  if (auto out = args.get("--out")) {
    // The final checkpoint holds the calibrated statistics (for eval, sample,
    // compile); resuming from it continues the running averages from them.
    std::map<std::string, std::string> meta =
        encodeRunPosition({summary->nextStep, options.seed, summary->rng});
    meta["calibrated"] = "1";
    if (llvm::Error e = model.saveParams(*out, meta))
      return reportError(std::move(e));
    llvm::errs() << "mlpc: wrote checkpoint " << *out << "\n";
  }
  if (auto path = args.get("--metrics")) {
    llvm::json::Object metrics{{"model", model.module().name},
                               {"train_loss", losses->train},
                               {"val_loss", losses->val},
                               {"test_loss", losses->test},
                               {"steps", summary->steps},
                               {"train_seconds", summary->seconds},
                               {"us_per_step", summary->usPerStep},
                               {"compile_ms", model.trainCompileMillis()},
                               {"last_minibatch_loss", summary->lastLoss},
                               {"seed", static_cast<int64_t>(options.seed)}};
    std::error_code ec;
    llvm::raw_fd_ostream os(*path, ec);
    if (ec)
      return reportError(fmt::format("cannot write '{}': {}", *path, ec.message()));
    os << llvm::formatv("{0:2}", llvm::json::Value(std::move(metrics))) << "\n";
  }
  return kExitOk;
}

int runEval(const ParsedArgs &args) {
  auto weights = args.get("--weights");
  if (!weights)
    return reportError("mlpc eval needs --weights CKPT");
  std::optional<Loaded> l = load(args, /*needData=*/true);
  if (!l)
    return kExitUserError;
  if (llvm::Error e = l->runtime->loadParams(*weights))
    return reportError(std::move(e));
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
  std::optional<Loaded> l = load(args, needData, &vocab);
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
