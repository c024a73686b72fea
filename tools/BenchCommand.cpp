// mlpc bench: timing of the compiled functions, for bench/ (never asserted in
// tests). Prints one JSON line.
#include "runtime/ModelRuntime.h"
#include "runtime/Trainer.h"
#include "tools/BenchSteps.h"
#include "tools/BenchThreads.h"
#include "tools/Driver.h"
#include "tools/StepLineCensus.h"
#include "tools/StepProfile.h"

#include <llvm/Support/JSON.h>
#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

namespace mlpc {

namespace {
using Clock = std::chrono::steady_clock;
double microsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t).count();
}
// Training steps (runTrainSteps): a warm-up, then `reps` repetitions of `steps`; microseconds per
// step.
llvm::Expected<std::vector<double>> timeTrainSteps(ModelRuntime &model, const BatchSampler &sampler,
                                                   int64_t steps, int64_t reps) {
  Rng rng(1);
  if (llvm::Error e = runTrainSteps(model, sampler, rng, std::max<int64_t>(steps / 4, 10)))
    return e;
  std::vector<double> perStep;
  for (int64_t r = 0; r < reps; ++r) {
    auto start = Clock::now();
    if (llvm::Error e = runTrainSteps(model, sampler, rng, steps))
      return e;
    perStep.push_back(microsSince(start) / steps);
  }
  return perStep;
}

// Inference: the loss of the whole split (kEvalRows blocks), `reps` times
// after a warm-up; milliseconds each.
llvm::Expected<std::vector<double>> timeEval(ModelRuntime &model, const Split &split,
                                             int64_t reps) {
  if (auto warm = model.loss(split); !warm)
    return warm.takeError();
  std::vector<double> evalMs;
  for (int64_t r = 0; r < reps; ++r) {
    auto start = Clock::now();
    if (auto l = model.loss(split); !l)
      return l.takeError();
    evalMs.push_back(microsSince(start) / 1000.0);
  }
  return evalMs;
}

void printSpeedup(const llvm::json::Object &comparison) {
  llvm::errs() << fmt::format(
      "threads 1 -> {}: {:.2f}x (median of {} alternated rounds of {} "
      "steps; {:.2f}x of the minimums)\n",
      *comparison.getInteger("threads"), *comparison.getNumber("speedup_median"),
      *comparison.getInteger("rounds"), *comparison.getInteger("steps_per_round"),
      *comparison.getNumber("speedup_of_minimums"));
}

// LLVM's CPU name, the vector width and the threads (with auto's choices and
// --shares) of the run, into `result`.
llvm::Error addTargetFacts(ModelRuntime &model, const ExecutionOptions &execution,
                           llvm::json::Object &result) {
  CompileOptions targetOptions;
  targetOptions.vectorBits = execution.vectorBits;
  auto target = describeTarget(targetOptions);
  if (!target)
    return target.takeError();
  result["llvm_cpu"] = target->cpu;
  result["vector_bits"] = target->vectorBits;
  result["threads"] = model.threads();
  if (int64_t own = model.trainThreadOwnBytes())
    result["thread1_own_bytes"] = own; // codegen/ThreadPages.h
  if (ThreadTeam *team = model.threadTeam(); team && !execution.shares.empty())
    result["shares"] = llvm::json::Array(team->shares());
  if (const ThreadChoice *choice = model.trainThreadChoice())
    result["threads_auto"] =
        llvm::json::Object{{"steps_on_team", static_cast<int64_t>(choice->callsOnTeam())},
                           {"steps_alone", static_cast<int64_t>(choice->callsAlone())},
                           {"team_chosen_last", choice->teamChosen()}};
  return llvm::Error::success();
}

// What --compare-threads, --profile and --line-census add, each with a
// runtime of its own, after the timing (an instrumented step must not
// disturb it).
struct ExtraMeasurements {
  std::optional<int64_t> compareThreads;
  bool profile = false, lineCensus = false;
};

llvm::Error addExtraMeasurements(const ExtraMeasurements &extra, ModelFile &file,
                                 const Vocabulary &vocab, const Split &train, int64_t steps,
                                 int64_t reps, const ExecutionOptions &execution,
                                 llvm::json::Object &result) {
  auto merge = [&](llvm::json::Object &&part) {
    for (auto &[key, value] : part)
      result[key] = std::move(value);
  };
  if (extra.compareThreads) {
    auto c = compareThreads(file.ast(), vocab, file.diags(), train, steps, reps,
                            static_cast<unsigned>(*extra.compareThreads), execution);
    if (!c)
      return c.takeError();
    printSpeedup(*c);
    result["compare_threads"] = std::move(*c);
  }
  if (extra.profile) {
    auto profile = profileTrainStep(file.ast(), vocab, file.diags(), train, steps, execution);
    if (!profile)
      return profile.takeError();
    merge(std::move(*profile));
  }
  if (extra.lineCensus) {
    // A few steps: a traced step runs tens of times slower, and what crosses
    // is the same every step (the batch's gather and scatter rows aside).
    auto census = lineCensus(file.ast(), vocab, file.diags(), train, /*warmup=*/3,
                             /*steps=*/8, execution);
    if (!census)
      return census.takeError();
    merge(std::move(*census));
  }
  return llvm::Error::success();
}

// The training steps (timeTrainSteps) and the evaluation of the train split
// (timeEval): the run's timing figures.
llvm::Expected<llvm::json::Object> timeSteps(ModelRuntime &model, const Split &train,
                                             int64_t context, int64_t steps, int64_t reps) {
  const BatchSampler sampler(train, context);
  auto perStep = timeTrainSteps(model, sampler, steps, reps);
  if (!perStep)
    return perStep.takeError();
  auto evalMs = timeEval(model, train, reps);
  if (!evalMs)
    return evalMs.takeError();
  llvm::json::Array all;
  for (double us : *perStep)
    all.push_back(us);
  return llvm::json::Object{{"impl", "mlpc"},
                            {"model", model.module().name},
                            {"batch", model.batch()},
                            {"train_step_compile_ms", model.trainCompileMillis()},
                            {"jit_cache_hits", model.jitCacheHits()},
                            {"jit_cache_misses", model.jitCacheMisses()},
                            {"us_per_step_median", median(*perStep)},
                            {"us_per_step_all", std::move(all)},
                            {"steps_per_rep", steps},
                            {"reps", reps},
                            {"eval_train_split_ms_median", median(*evalMs)},
                            {"eval_rows", train.rows()}};
}

struct BenchOptions {
  int64_t steps = 0, reps = 0;
  ExtraMeasurements extra;
};

llvm::Expected<BenchOptions> parseBenchOptions(const ParsedArgs &args) {
  std::string error;
  auto steps = args.getInt("--steps", 5000, error);
  auto reps = steps ? args.getInt("--reps", 5, error) : std::nullopt;
  if (!reps)
    return usageError(error);
  if (*steps < 1 || *reps < 1)
    return usageError("--steps and --reps must be positive");
  BenchOptions options{
      *steps, *reps, {std::nullopt, args.has("--profile"), args.has("--line-census")}};
  if (args.has("--compare-threads")) {
    auto &compare = options.extra.compareThreads;
    compare = args.getInt("--compare-threads", 0, error);
    if (!compare || *compare < 2 || *compare > 256)
      return usageError("--compare-threads must be a number from 2 to 256 (got '" +
                        args.getOr("--compare-threads", "") + "')");
  }
  return options;
}

} // namespace

int runBench(const ParsedArgs &args) {
  auto options = parseBenchOptions(args);
  if (!options)
    return reportError(options.takeError());
  const int64_t steps = options->steps, reps = options->reps;
  auto file = openModel(args);
  if (!file)
    return reportError(file.takeError());
  auto words = readNamesFile(args);
  if (!words)
    return reportError(words.takeError());
  Vocabulary vocab = buildVocabulary(*words);

  // compile_ms: the wall time the JIT adds before the first step, i.e.
  // ModelRuntime::create (graph passes, JIT and target setup) plus the first
  // trainStep (lowering, IR passes, machine code on every core, linking, and
  // the step itself, ~0.03 ms). Not included: parsing the model file,
  // initialising the parameters, and reading and windowing the names
  // (data_ms), which every implementation pays. The step compiles on
  // background threads from create() on (ModelRuntime::prepareTraining),
  // as in `mlpc train`: what overlaps the parameters and the data is not
  // counted, so first_step_ms (create() to the end of the first step, data
  // included) is the figure to compare across versions. Cold unless --cache:
  // jit_cache_hits / jit_cache_misses count the modules loaded / compiled
  // (both 0 without the cache).
  std::optional<ExecutionOptions> execution = executionOptions(args);
  if (!execution)
    return kExitUserError;
  if (!args.has("--cache"))
    execution->cache = {}; // compile_ms is the cold compile unless asked otherwise
  auto compileStart = Clock::now();
  auto runtime = ModelRuntime::create((*file)->ast(), vocab, (*file)->diags(), {}, *execution);
  if (runtime)
    (*runtime)->prepareTraining();
  double createMs = microsSince(compileStart) / 1000.0;
  (*file)->flushDiagnostics();
  if (!runtime)
    return reportError(runtime.takeError());
  ModelRuntime &model = **runtime;
  model.initParams(42);
  auto dataStart = Clock::now();
  auto data = buildDataset(std::move(*words), static_cast<int>(model.context()));
  if (!data)
    return reportError(data.takeError());
  double dataMs = microsSince(dataStart) / 1000.0;
  const Split &train = data->train;
  const int64_t batch = model.batch(), context = model.context();
  std::vector<int32_t> X(batch * context), Y(batch);
  auto firstStepStart = Clock::now();
  if (auto loss = model.trainStep(X.data(), Y.data(), 0.0f); !loss)
    return reportError(loss.takeError());
  double compileMs = createMs + microsSince(firstStepStart) / 1000.0;
  double firstStepMs = microsSince(compileStart) / 1000.0;

  auto result = timeSteps(model, train, context, steps, reps);
  if (!result)
    return reportError(result.takeError());
  (*result)["compile_ms"] = compileMs;
  (*result)["data_ms"] = dataMs;
  (*result)["first_step_ms"] = firstStepMs;
  for (auto &[name, value] : model.module().dims)
    (*result)["dim_" + name] = value;
  if (llvm::Error e = addTargetFacts(model, *execution, *result))
    return reportError(std::move(e));
  if (llvm::Error e = addExtraMeasurements(options->extra, **file, vocab, train, steps, reps,
                                           *execution, *result))
    return reportError(std::move(e));
  llvm::outs() << llvm::json::Value(std::move(*result)) << "\n";
  return kExitOk;
}

} // namespace mlpc
