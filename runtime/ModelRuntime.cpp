#include "runtime/ModelRuntime.h"

#include "frontend/Overrides.h"

#include "ir/ShapeRules.h"
#include "passes/BatchNormState.h"
#include "runtime/Checkpoint.h"
#include "runtime/Stats.h"

#include <cmath>
#include <cstring>
#include <fmt/format.h>

namespace mlpc {
namespace {

llvm::Error fail(std::string message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

} // namespace

namespace {
// 2*M*N*K per matmul: what decides whether a step is worth splitting.
double matmulFlops(const Graph &g) {
  double flops = 0;
  for (ValueId v = 0; v < g.size(); ++v)
    if (g[v].op == Op::MatMul) {
      const Node &n = g[v];
      const Shape &a = g[n.operands[0]].type.shape;
      flops += 2.0 * double(n.type.numel()) * double(n.transA ? a[0] : a[1]);
    }
  return flops;
}
} // namespace

llvm::Expected<std::unique_ptr<ModelRuntime>>
ModelRuntime::create(const ModelAST &ast, const Vocabulary &vocab, DiagnosticEngine &diags,
                     const PipelineOptions &pipeline, const ExecutionOptions &execution) {
  auto rt = std::unique_ptr<ModelRuntime>(new ModelRuntime());
  rt->execution_ = execution;
  rt->ast_ = &ast;
  rt->vocab_ = vocab;
  rt->diags_ = &diags;
  rt->pipeline_ = pipeline;
  LoweringOptions options;
  options.vocab = static_cast<int64_t>(vocab.size());
  std::optional<Module> module = lowerModel(ast, options, diags);
  if (!module)
    return fail("the model has errors");
  rt->module_ = std::move(*module);
  const Graph &g = rt->module_.graph;
  std::vector<ValueId> inputs = g.leaves(Op::Input);
  const Node *x = nullptr, *y = nullptr;
  for (ValueId v : inputs)
    (g[v].isTarget ? y : x) = &g[v];
  if (inputs.size() != 2 || !x || !y || x->type.rank() != 2 || y->type.rank() != 1 ||
      x->type.shape[0] != y->type.shape[0])
    return fail("training on names needs exactly one input [N, T] of contexts and one target [N]");
  if (rt->module_.batchDim.empty())
    return fail("the inputs' leading dimension must be a named dim (e.g. 'dim N = batch')");

  // The training graph updates the parameters itself (passes/Optimizer.h).
  rt->pipeline_.optimizer = &rt->module_.train;
  auto training = runPipeline(rt->module_.graph, Stage::Grad, rt->pipeline_, diags);
  if (!training)
    return fail("the model has errors");
  rt->training_ = std::move(*training);
  // Unfused (--no-fuse), an atomic batchnorm chain has no running statistics
  // in the training graph, but inference (which always fuses) reads them. The
  // training graph carries them as unused state so they are allocated, saved
  // and loaded with the parameters; calibration after training sets them.
  for (ValueId v : rt->training_.leaves(Op::State))
    if (rt->training_[v].stateRole == StateRole::LearningRate ||
        rt->training_[v].stateRole == StateRole::StepCount)
      rt->stepScalars_.push_back(v);
  auto inference = runPipeline(rt->module_.graph, Stage::Infer, rt->pipeline_, diags);
  if (!inference)
    return fail("the model has errors");
  rt->hasLogits_ = inference->output(OutputRole::Logits).has_value();
  for (ValueId s : inference->leaves(Op::State))
    if (!rt->training_.findLeaf(Op::State, (*inference)[s].name)) {
      rt->training_.add(Node((*inference)[s]));
      ++rt->untrackedStates_;
    }
  auto jit = JitEngine::create(CompileOptions{}, execution.cache);
  if (!jit)
    return jit.takeError();
  rt->jit_ = std::move(*jit);
  unsigned threads =
      execution.threads != 0 ? execution.threads : autoThreads(matmulFlops(rt->training_));
  if (threads > 1) {
    rt->team_ = std::make_unique<ThreadTeam>(threads);
    if (execution.shares.size() == threads) // --shares is for --threads N's team only
      rt->team_->fixShares(execution.shares);
  }
  // auto: the team is what the step may use; each call's thread count is
  // then measured (runtime/ThreadChoice.h).
  rt->chooseThreads_ = execution.threads == 0 && rt->team_;
  // Parameters and state start at their declared initial values (seed 0)
  // until initParams / loadParams.
  Rng rng(0);
  rt->params_ = initParameters(rt->training_, rng);
  return rt;
}

void ModelRuntime::setStepScalars(float lr) {
  ++stepCount_;
  for (const ValueId v : stepScalars_) { // no allocation: every step runs this
    auto it = params_.find(training_[v].name);
    if (it != params_.end() && !it->second.empty())
      it->second[0] =
          training_[v].stateRole == StateRole::LearningRate ? lr : static_cast<float>(stepCount_);
  }
}

void ModelRuntime::initParams(uint64_t seed) {
  Rng rng(seed);
  stepCount_ = 0;
  params_ = initParameters(training_, rng);
  train_.reset();
  eval_.reset();
  forward_.reset();
  tailEval_.clear();
  stats_.reset(); // bindings point at the old buffers
}

llvm::Error ModelRuntime::loadParams(const std::string &path,
                                     std::map<std::string, std::string> *metadata,
                                     CheckpointUse use) {
  std::map<std::string, std::string> ownMetadata;
  if (!metadata)
    metadata = &ownMetadata;
  auto loaded = loadCheckpoint(path, training_, metadata, use);
  if (!loaded)
    return explainDimMismatch(path, loaded.takeError());
  // Row v of the embedding belongs to the checkpoint's character v: another
  // vocabulary (a different --data) would run without error and mean nothing.
  if (auto stored = metadata->find("vocab");
      stored != metadata->end() && !stored->second.empty() && stored->second != vocab_.itos)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        fmt::format("{} was trained on the vocabulary \"{}\", but this dataset's is \"{}\": "
                    "use the names file it was trained on",
                    path, stored->second, vocab_.itos));
  // Leaves the file does not provide (fresh optimizer state, the step
  // scalars) start as initParameters leaves them: zero.
  Rng rng(0);
  TensorMap fresh = initParameters(training_, rng);
  for (auto &[name, values] : *loaded)
    fresh[name] = std::move(values);
  params_ = std::move(fresh);
  stepCount_ = 0;
  train_.reset();
  eval_.reset();
  forward_.reset();
  tailEval_.clear();
  stats_.reset();
  return llvm::Error::success();
}

llvm::Error ModelRuntime::saveParams(const std::string &path,
                                     const std::map<std::string, std::string> &metadata) {
  std::map<std::string, std::string> meta = metadata;
  meta["model"] = module_.name;
  meta["vocab"] = vocab_.itos;
  meta["context"] = std::to_string(context());
  meta["dims"] = shapeDims();
  if (!ast_->overrides.empty())
    meta["overrides"] = encodeOverrides(ast_->overrides);
  return saveCheckpoint(path, training_, params_, meta);
}

namespace {
bool isVocabDim(const ModelAST &ast, const std::string &name) {
  for (const DimDecl &d : ast.dims)
    if (d.name == name)
      return d.binding == "vocab";
  return false;
}
} // namespace

std::string ModelRuntime::shapeDims() const {
  std::string out;
  for (const auto &[name, value] : module_.dims)
    if (name != module_.batchDim && !isVocabDim(*ast_, name))
      out += (out.empty() ? "" : " ") + name + "=" + std::to_string(value);
  return out;
}

llvm::Error ModelRuntime::explainDimMismatch(const std::string &path, llvm::Error error) const {
  auto file = readSafetensors(path);
  if (!file) {
    llvm::consumeError(file.takeError());
    return error;
  }
  auto it = file->metadata.find("dims");
  if (it == file->metadata.end() || it->second == shapeDims())
    return error;
  // The checkpoint's dims that differ from the model's: the missing --set.
  std::string missing;
  llvm::SmallVector<llvm::StringRef> recorded;
  llvm::StringRef(it->second).split(recorded, ' ', -1, false);
  for (llvm::StringRef entry : recorded) {
    auto [name, value] = entry.split('=');
    auto ours = module_.dim(name.str());
    if (ours && std::to_string(*ours) != value)
      missing += fmt::format(" --set {}={}", name.str(), value.str());
  }
  if (missing.empty())
    return error;
  return fail(fmt::format("{}\n{} was trained with dims {}, the model gives {}: pass{}",
                          llvm::toString(std::move(error)), path, it->second, shapeDims(),
                          missing));
}

llvm::Error ModelRuntime::bindLeaves(BoundFunction &fn) {
  for (const BindingInfo &b : fn.function().bindings()) {
    if (b.kind != BindingInfo::Kind::Param && b.kind != BindingInfo::Kind::State)
      continue;
    auto it = params_.find(b.name);
    if (it == params_.end() || static_cast<int64_t>(it->second.size()) != b.type.numel())
      return fail(fmt::format("internal error: no buffer for '{}'", b.name));
    if (llvm::Error e = fn.bind(b.name, it->second.data()))
      return e;
  }
  return llvm::Error::success();
}

uint64_t *ModelRuntime::trainProfileCounters() {
  if (!train_ || !train_->function().profileOffset())
    return nullptr;
  return reinterpret_cast<uint64_t *>(static_cast<char *>(train_->workspace()) +
                                      *train_->function().profileOffset());
}

llvm::Expected<float> ModelRuntime::trainStep(const int32_t *X, const int32_t *Y, float lr) {
  if (!train_) {
    auto compiledFn = trainFunction();
    if (!compiledFn)
      return compiledFn.takeError();
    if (llvm::Error e = bind(train_, std::move(*compiledFn)))
      return e;
    BoundFunction *fn = train_.get();
    trainCompileMs_ = fn->function().compileMillis();
    if (uint64_t *counters = trainProfileCounters())
      std::fill(counters, counters + training_.size() * CompileOptions::kProfileCounters,
                0); // the workspace starts as garbage
    trainX_.assign(batch() * context(), 0);
    trainY_.assign(batch(), 0);
    const Graph &g = training_;
    for (ValueId v : g.leaves(Op::Input))
      if (llvm::Error e = fn->bind(g[v].name, g[v].isTarget ? trainY_.data() : trainX_.data()))
        return e;
    if (llvm::Error e = fn->ready())
      return e;
  }
  std::memcpy(trainX_.data(), X, trainX_.size() * sizeof(int32_t));
  std::memcpy(trainY_.data(), Y, trainY_.size() * sizeof(int32_t));
  setStepScalars(lr);
  train_->run(lr);
  return train_->output(OutputRole::Loss)[0];
}

std::string ModelRuntime::threadsDescription() const {
  const ThreadChoice *choice = trainThreadChoice();
  const uint64_t total = choice ? choice->callsOnTeam() + choice->callsAlone() : 0;
  if (total == 0)
    return fmt::format("{} thread{}", threads(), threads() == 1 ? "" : "s");
  return fmt::format("auto: {} threads for {:.0f}% of the steps, 1 for the rest", threads(),
                     100.0 * double(choice->callsOnTeam()) / double(total));
}

llvm::Error ModelRuntime::prepareStats() {
  std::optional<Graph> graph = buildStatsGraph(module_.graph, pipeline_, *diags_);
  if (!graph)
    return fail("cannot build the stats_step graph");
  CompileOptions options;
  options.sgdUpdate = false; // the optimizer's updates are graph code, as in train_step
  options.vectorBits = execution_.vectorBits;
  options.parallel = team_ != nullptr;
  settleTrainCompile(); // the engine compiles one function at a time
  auto fn = jit_->compile(*graph, fmt::format("stats_step_{}", statsCompiles_++), options);
  if (!fn)
    return fn.takeError();
  auto bound = std::make_unique<BoundFunction>(std::move(*fn));
  bound->setTeam(team_.get(), chooseThreads_);
  statsX_.assign(batch() * context(), 0);
  statsY_.assign(batch(), 0);
  statsBuffers_.clear();
  statsTensors_.clear();
  auto opOf = [&](const std::optional<ValueId> &v) { return v ? (*graph)[*v].op : Op::Const; };
  for (const BindingInfo &b : bound->function().bindings()) {
    if (b.kind != BindingInfo::Kind::Input)
      continue;
    std::optional<ValueId> leaf = graph->findLeaf(Op::Input, b.name);
    bool target = leaf && (*graph)[*leaf].isTarget;
    if (llvm::Error e = bound->bind(b.name, target ? statsY_.data() : statsX_.data()))
      return e;
  }
  for (const GraphOutput &out : graph->outputs) {
    const TensorType &type = (*graph)[out.value].type;
    if (out.role == OutputRole::Gradient) {
      // An SGD output has no buffer unless given one; then it gets the gradient too.
      std::vector<float> &grad = statsBuffers_[out.name];
      grad.assign(type.numel(), 0.0f);
      if (llvm::Error e = bound->bind(out.name, grad.data()))
        return e;
      statsTensors_.push_back(
          {StepTensor::Kind::ParamGrad, (*graph)[*out.subject].name, Op::Param, type, grad.data()});
    } else if (out.role == OutputRole::Value) {
      statsTensors_.push_back({StepTensor::Kind::Activation, (*graph)[out.value].name,
                               opOf(out.value), type, bound->output(out.name)});
    } else if (out.role == OutputRole::Adjoint) {
      statsTensors_.push_back({StepTensor::Kind::ActivationGrad, (*graph)[*out.subject].name,
                               opOf(out.subject), type, bound->output(out.name)});
    }
  }
  if (llvm::Error e = bindLeaves(*bound))
    return e;
  if (llvm::Error e = bound->ready())
    return e;
  stats_ = std::move(bound);
  return llvm::Error::success();
}

llvm::Expected<float> ModelRuntime::statsStep(const int32_t *X, const int32_t *Y, float lr) {
  if (!stats_)
    if (llvm::Error e = prepareStats())
      return e;
  std::memcpy(statsX_.data(), X, statsX_.size() * sizeof(int32_t));
  std::memcpy(statsY_.data(), Y, statsY_.size() * sizeof(int32_t));
  setStepScalars(lr);
  stats_->run(lr);
  return stats_->output(OutputRole::Loss)[0];
}

} // namespace mlpc
