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
    return std::move(e);
  std::vector<double> perStep;
  for (int64_t r = 0; r < reps; ++r) {
    auto start = Clock::now();
    if (llvm::Error e = runTrainSteps(model, sampler, rng, steps))
      return std::move(e);
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

} // namespace

int runBench(const ParsedArgs &args) {
  std::string error;
  auto steps = args.getInt("--steps", 5000, error);
  auto reps = steps ? args.getInt("--reps", 5, error) : std::nullopt;
  if (!reps)
    return reportError(error);
  if (*steps < 1 || *reps < 1)
    return reportError("--steps and --reps must be positive");
  std::optional<int64_t> compare;
  if (args.has("--compare-threads")) {
    compare = args.getInt("--compare-threads", 0, error);
    if (!compare || *compare < 2 || *compare > 256)
      return reportError("--compare-threads must be a number from 2 to 256 (got '" +
                         args.getOr("--compare-threads", "") + "')");
  }
  auto file = openModel(args);
  if (!file)
    return reportError(file.takeError());
  auto dataFile = namesFilePath(args);
  if (!dataFile)
    return reportError(dataFile.takeError());
  auto words = readWords(*dataFile);
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
  const BatchSampler sampler(train, context);

  auto perStep = timeTrainSteps(model, sampler, *steps, *reps);
  if (!perStep)
    return reportError(perStep.takeError());
  auto evalMs = timeEval(model, train, *reps);
  if (!evalMs)
    return reportError(evalMs.takeError());

  llvm::json::Array all;
  for (double us : *perStep)
    all.push_back(us);
  llvm::json::Object result{{"impl", "mlpc"},
                            {"model", model.module().name},
                            {"batch", batch},
                            {"compile_ms", compileMs},
                            {"train_step_compile_ms", model.trainCompileMillis()},
                            {"data_ms", dataMs},
                            {"first_step_ms", firstStepMs},
                            {"jit_cache_hits", model.jitCacheHits()},
                            {"jit_cache_misses", model.jitCacheMisses()},
                            {"us_per_step_median", median(*perStep)},
                            {"us_per_step_all", std::move(all)},
                            {"steps_per_rep", *steps},
                            {"reps", *reps},
                            {"eval_train_split_ms_median", median(*evalMs)},
                            {"eval_rows", train.rows()}};
  for (auto &[name, value] : model.module().dims)
    result["dim_" + name] = value;
  CompileOptions targetOptions;
  targetOptions.vectorBits = execution->vectorBits;
  if (auto target = describeTarget(targetOptions)) {
    result["llvm_cpu"] = target->cpu;
    result["vector_bits"] = target->vectorBits;
    result["threads"] = model.threads();
    if (ThreadTeam *team = model.threadTeam(); team && !execution->shares.empty())
      result["shares"] = llvm::json::Array(team->shares());
    if (const ThreadChoice *choice = model.trainThreadChoice())
      result["threads_auto"] =
          llvm::json::Object{{"steps_on_team", static_cast<int64_t>(choice->callsOnTeam())},
                             {"steps_alone", static_cast<int64_t>(choice->callsAlone())},
                             {"team_chosen_last", choice->teamChosen()}};
  } else {
    return reportError(target.takeError());
  }
  if (compare) {
    auto c = compareThreads((*file)->ast(), vocab, (*file)->diags(), train, *steps, *reps,
                            static_cast<unsigned>(*compare), *execution);
    if (!c)
      return reportError(c.takeError());
    printSpeedup(*c);
    result["compare_threads"] = std::move(*c);
  }
  // Last, so the instrumented step cannot disturb the measurements above.
  if (args.has("--profile")) {
    auto profile =
        profileTrainStep((*file)->ast(), vocab, (*file)->diags(), train, *steps, *execution);
    if (!profile)
      return reportError(profile.takeError());
    for (auto &[key, value] : *profile)
      result[key] = std::move(value);
  }
  if (args.has("--line-census")) {
    // A few steps: a traced step runs tens of times slower, and what crosses
    // is the same every step (the batch's gather and scatter rows aside).
    auto census = lineCensus((*file)->ast(), vocab, (*file)->diags(), train, /*warmup=*/3,
                             /*steps=*/8, *execution);
    if (!census)
      return reportError(census.takeError());
    for (auto &[key, value] : *census)
      result[key] = std::move(value);
  }
  llvm::outs() << llvm::json::Value(std::move(result)) << "\n";
  return kExitOk;
}

} // namespace mlpc
