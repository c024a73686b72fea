// The functions a ModelRuntime compiles and binds: one graph per stage and
// row count, and the training step, which prepareTraining can start on a
// background thread (runtime/ModelRuntime.h).
#include "runtime/ModelRuntime.h"

#include "passes/BatchNormState.h"

#include <fmt/format.h>

#include <future>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace mlpc {
namespace {
llvm::Error fail(std::string message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

// A compile allocates a few MB (LLVM's IR, machine functions, the object
// buffer), most of it on the compiling thread's own malloc arena, and frees
// it all when done; glibc keeps the freed pages, so without this a run that
// compiles stays ~3.5 MB larger than one that loads its machine code from the
// cache (makemore: peak RSS 41.4 -> 38.2 MB, for 0.6-0.9 ms per compile).
void returnFreedMemory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}
} // namespace

llvm::Expected<CompiledFunction> ModelRuntime::compileFunction(Stage stage, int64_t rows, bool sgd,
                                                               const char *name,
                                                               Instrumentation instrument) {
  Graph graph;
  if (stage == Stage::Grad && rows == batch()) {
    graph = training_;
  } else {
    LoweringOptions options;
    options.vocab = static_cast<int64_t>(vocab_.size());
    options.dimOverrides[module_.batchDim] = rows;
    options.inferenceOnly = stage == Stage::Infer;
    std::optional<Module> module = lowerModel(*ast_, options, *diags_);
    std::optional<Graph> g =
        module ? runPipeline(module->graph, stage, pipeline_, *diags_) : std::nullopt;
    if (!g)
      return fail(fmt::format("cannot build the {} graph for {} rows", name, rows));
    graph = std::move(*g);
  }
  if (stage == Stage::Infer) {
    // Expose each batchnorm's input for calibration (a few extra stores).
    for (ValueId v = 0; v < graph.size(); ++v)
      if (graph[v].op == Op::BatchNormInfer)
        graph.setOutput({"bn_input." + batchNormStateName(graph, v), graph[v].operands[0],
                         OutputRole::BatchNormInput, graph[v].operands[3], graph[v].operands[4]});
  }
  CompileOptions options;
  options.sgdUpdate = sgd;
  options.vectorBits = execution_.vectorBits;
  options.parallel = team_ != nullptr;
  options.profileNodes = instrument.profile;
  options.traceLines = instrument.traceLines;
  auto fn = jit_->compile(graph, name, options);
  returnFreedMemory();
  return fn;
}

llvm::Error ModelRuntime::bind(std::unique_ptr<BoundFunction> &slot, CompiledFunction fn) {
  auto bound = std::make_unique<BoundFunction>(std::move(fn));
  // A profiled step always runs on the whole team: its per-thread columns
  // would mix calls of either kind otherwise.
  if (team_)
    bound->setTeam(team_.get(), chooseThreads_ && !profile_ && !traceLines_);
  if (llvm::Error e = bindLeaves(*bound))
    return e;
  slot = std::move(bound);
  return llvm::Error::success();
}

llvm::Expected<BoundFunction *> ModelRuntime::compiled(std::unique_ptr<BoundFunction> &slot,
                                                       Stage stage, int64_t rows, bool sgd,
                                                       const char *name) {
  if (slot)
    return slot.get();
  // Compiled once per name: initParams / loadParams drop only the bindings
  // (a second compile would redefine the JIT symbol).
  auto known = compiledFunctions_.find(name);
  if (known == compiledFunctions_.end()) {
    settleTrainCompile(); // the engine compiles one function at a time
    auto fn = compileFunction(stage, rows, sgd, name, Instrumentation{});
    if (!fn)
      return fn.takeError();
    known = compiledFunctions_.emplace(name, std::move(*fn)).first;
  }
  if (llvm::Error e = bind(slot, known->second))
    return e;
  return slot.get();
}

void ModelRuntime::prepareTraining() {
  if (trainCompiled_ || trainPending_.valid() || !trainCompileError_.empty())
    return;
  // Only the JIT engine, the training graph and the options are read there;
  // none of them changes after create(). A profiled parallel step counts
  // thread 0's time per node.
  trainPending_ = std::async(std::launch::async, [this, instrument = trainInstrumentation()] {
    return compileFunction(Stage::Grad, batch(), /*sgd=*/false, "train_step", instrument);
  });
}

void ModelRuntime::settleTrainCompile() {
  if (!trainPending_.valid())
    return;
  auto fn = trainPending_.get();
  if (fn)
    trainCompiled_ = std::move(*fn);
  else
    trainCompileError_ = llvm::toString(fn.takeError());
}

ModelRuntime::~ModelRuntime() {
  settleTrainCompile();
}

llvm::Expected<CompiledFunction> ModelRuntime::trainFunction() {
  settleTrainCompile();
  if (!trainCompileError_.empty())
    return fail(trainCompileError_);
  if (!trainCompiled_) {
    auto fn =
        compileFunction(Stage::Grad, batch(), /*sgd=*/false, "train_step", trainInstrumentation());
    if (!fn)
      return fn.takeError();
    trainCompiled_ = std::move(*fn);
  }
  return *trainCompiled_;
}

} // namespace mlpc
