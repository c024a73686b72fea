// A model ready to run natively: its parameters, and the JIT-compiled
// functions the user-facing commands need:
//   train_step  forward + backward + SGD update + running-stat update, at the
//               model's batch size (training graph, compiled with sgdUpdate);
//   eval        inference-mode forward at kEvalRows rows, outputs the logits
//               and every batchnorm's input (for losses and calibration);
//   forward     inference-mode forward for one row (sampling);
//   stats_step  train_step plus activations and gradients as outputs, for
//               `mlpc train --stats` (see runtime/Stats.h).
// Each is compiled on first use.
#pragma once

#include "codegen/Compiler.h"
#include "frontend/Lowering.h"
#include "passes/Pipeline.h"
#include "runtime/BoundFunction.h"
#include "runtime/Checkpoint.h"
#include "runtime/Dataset.h"
#include "runtime/EvalLoss.h"
#include "runtime/ParamInit.h"
#include "runtime/Rng.h"
#include "runtime/ThreadTeam.h"

#include <llvm/Support/Error.h>

#include <future>
#include <map>
#include <memory>
#include <optional>

namespace mlpc {

struct SplitLosses {
  double train = 0, val = 0, test = 0;
};

// A tensor the stats step exposes. `data` stays valid until the next
// initParams / loadParams.
struct StepTensor {
  enum class Kind { Activation, ActivationGrad, ParamGrad } kind;
  std::string name;  // the forward value's or the parameter's name
  Op op = Op::Const; // Activation / ActivationGrad: the op that computes the value
  TensorType type;
  const float *data = nullptr;
};

// How the compiled functions run (`--vector-bits`; see codegen/VectorShape.h).
struct ExecutionOptions {
  unsigned vectorBits = 0; // CompileOptions::vectorBits: 0 = the target's widest
  // Threads of the training step, the stats step and evaluation (`--threads`):
  // 0 = auto: a team of autoThreads (runtime/ThreadTeam.h) of the training
  // step's FLOPs, each call of a compiled function on the team or on one
  // thread by measurement (runtime/ThreadChoice.h).
  // Results are bit-identical for any count.
  unsigned threads = 0;
  // Fixed parts of the team's shared loops, one per thread (`mlpc bench
  // --shares`, a diagnostic: `--shares 1,0` runs every shared loop on thread 0
  // with the other thread passing the barriers); empty: equal parts, then
  // balanced (runtime/ThreadTeam.h). The results are the same for any parts.
  std::vector<double> shares;
  // The JIT's on-disk machine-code cache (codegen/ObjectCache.h); the
  // default, an empty directory, is none. The driver enables it unless
  // --no-cache or MLPC_NO_CACHE.
  JitCacheOptions cache;
};

class ModelRuntime {
public:
  ~ModelRuntime(); // waits for prepareTraining's compile
  // Rows per call of the eval function (the split's tail is padded).
  static constexpr int64_t kEvalRows = 512;

  // Lowers `ast` with V bound to the vocabulary size, checks that the model
  // reads [N, T] contexts and [N] targets, and sets up the JIT. Model errors
  // go to `diags`.
  static llvm::Expected<std::unique_ptr<ModelRuntime>>
  create(const ModelAST &ast, const Vocabulary &vocab, DiagnosticEngine &diags,
         const PipelineOptions &pipeline = {}, const ExecutionOptions &execution = {});

  const Module &module() const { return module_; }
  const Vocabulary &vocab() const { return vocab_; }
  int64_t context() const { return module_.contextLength; }
  int64_t batch() const { return module_.train.batch; }
  TensorMap &params() { return params_; }
  const Graph &trainingGraph() const { return training_; }

  // False when the training step does not update the batchnorm running
  // statistics (an atomic chain trained under --no-fuse): they only hold
  // meaningful values after calibrate().
  bool tracksRunningStats() const { return untrackedStates_ == 0; }

  void initParams(uint64_t seed);
  llvm::Error loadParams(const std::string &checkpointPath,
                         std::map<std::string, std::string> *metadata = nullptr,
                         CheckpointUse use = CheckpointUse::Weights);
  // Steps taken since initParams / loadParams (the optimizer's t is this + 1
  // at the next step); a resumed run sets it from the checkpoint's position.
  int64_t stepCount() const { return stepCount_; }
  void setStepCount(int64_t steps) { stepCount_ = steps; }
  llvm::Error saveParams(const std::string &path,
                         const std::map<std::string, std::string> &metadata);

  // Starts compiling train_step on a background thread, so that the compile
  // overlaps what the caller does before its first trainStep (initParams /
  // loadParams, reading the data: 7-10 ms on makemore); trainStep waits for
  // it and reports its errors. For callers that will train; after
  // enableProfiling. Does nothing when it was started or done already. The
  // other functions' compiles wait for it (one JIT engine compiles one
  // function at a time). The compiled step survives initParams / loadParams
  // (only its bindings change).
  void prepareTraining();
  // One SGD step on the batch (X: batch*context, Y: batch). Returns the loss.
  llvm::Expected<float> trainStep(const int32_t *X, const int32_t *Y, float lr);
  double trainCompileMillis() const { return trainCompileMs_; }
  // Modules of the functions compiled so far loaded from / compiled past
  // the JIT's on-disk cache (ExecutionOptions::cache; 0 and 0 without it).
  unsigned jitCacheHits() const { return jit_->cacheHits(); }
  unsigned jitCacheMisses() const { return jit_->cacheMisses(); }
  // The threads the compiled functions run on (ExecutionOptions::threads resolved).
  unsigned threads() const { return team_ ? team_->size() : 1; }
  // The team that runs the compiled functions; null with one thread.
  ThreadTeam *threadTeam() { return team_.get(); }
  // `--threads auto` with a team: the training step's choices so far; null
  // when the thread count is fixed (or before the first step).
  const ThreadChoice *trainThreadChoice() const {
    return train_ ? train_->threadChoice() : nullptr;
  }
  // Workspace bytes of the training step that thread 1 of a team of two
  // keeps to itself (codegen/ThreadPages.h); 0 when none.
  int64_t trainThreadOwnBytes() const { return train_ ? train_->threadOwnBytes() : 0; }
  // "1 thread", "2 threads", or with auto's measured choice "auto: 2
  // threads for 93% of the steps, 1 for the rest".
  std::string threadsDescription() const;
  // `mlpc bench --profile`: compile train_step with per-node cycle counters
  // (CompileOptions::profileNodes). Call before the first trainStep.
  void enableProfiling() { profile_ = true; }
  // `mlpc bench --line-census`: compile train_step with every load and store
  // reported to the team's tracer (CompileOptions::traceLines; set it with
  // threadTeam()->setTracer). Needs a team. Call before the first trainStep.
  void enableLineTrace() { traceLines_ = true; }
  // The bound training step (null before the first trainStep).
  BoundFunction *trainBound() { return train_.get(); }
  // The counters (one per trainingGraph() node: cycles summed over the steps
  // since compilation, or since the caller last zeroed them), or nullptr
  // without profiling / before the first step.
  uint64_t *trainProfileCounters();
  // trainStep, from the stats_step function: the same update, and afterwards
  // statsTensors() hold this step's activations and gradients.
  llvm::Expected<float> statsStep(const int32_t *X, const int32_t *Y, float lr);
  const std::vector<StepTensor> &statsTensors() const { return statsTensors_; }

  // Mean cross-entropy of the split in inference mode (running statistics).
  llvm::Expected<double> loss(const Split &split);
  llvm::Expected<SplitLosses> losses(const Dataset &data);
  // Replaces every batchnorm's running statistics with the exact mean and
  // (Bessel-corrected) variance of its input over `split`, layer by layer.
  llvm::Error calibrate(const Split &split);
  // Logits of kEvalRows rows (rows beyond `rows` are padding with context 0).
  // Errors for a model without logits (see hasLogits).
  llvm::Expected<const float *> logits(const int32_t *X, int64_t rows);
  // False when the loss is not a recognisable cross-entropy of logits (e.g.
  // an mse): training, losses and calibration work, sampling does not.
  bool hasLogits() const { return hasLogits_; }

  llvm::Expected<std::vector<std::string>> sample(int count, uint64_t seed, int maxLength = 64);

  // "T=3 E=10 H=200": the dims that shape the parameters (all but the batch
  // and vocabulary dims), as checkpoints record them.
  std::string shapeDims() const;

private:
  // Before each step: the learning-rate and step-count leaves of the graph.
  void setStepScalars(float lr);
  // Adds "pass --set H=300" to a checkpoint-loading error when the
  // checkpoint's recorded dims differ from the model's.
  llvm::Error explainDimMismatch(const std::string &path, llvm::Error error) const;
  llvm::Expected<BoundFunction *> compiled(std::unique_ptr<BoundFunction> &slot, Stage stage,
                                           int64_t rows, bool sgd, const char *name);
  // What the training step is compiled with (profile_, traceLines_), taken
  // on the caller's thread: the compile may run on another.
  struct Instrumentation {
    bool profile = false, traceLines = false;
  };
  Instrumentation trainInstrumentation() const { return {profile_, traceLines_}; }
  llvm::Expected<CompiledFunction> compileFunction(Stage stage, int64_t rows, bool sgd,
                                                   const char *name, Instrumentation instrument);
  // The compiled train_step (compiling it now unless prepareTraining did).
  llvm::Expected<CompiledFunction> trainFunction();
  // Waits for prepareTraining's compile; keeps its result for trainFunction.
  void settleTrainCompile();
  llvm::Error bind(std::unique_ptr<BoundFunction> &slot, CompiledFunction fn);
  llvm::Error bindLeaves(BoundFunction &fn);
  // Binds an inference function's inputs: contexts to X, the target (kept
  // by a graph whose output is its loss) to Y, both sized for `rows`.
  llvm::Error bindEval(BoundFunction &fn, std::vector<int32_t> &X, std::vector<int32_t> &Y,
                       int64_t rows);
  // Runs eval on `rows` <= kEvalRows rows (Y may be null: labels 0).
  llvm::Error runEval(const int32_t *X, const int32_t *Y, int64_t rows);
  llvm::Expected<double> graphLoss(const Split &split);
  llvm::Error needLogits(const char *what) const;
  llvm::Error prepareStats();

  Module module_;
  const ModelAST *ast_ = nullptr;
  Vocabulary vocab_;
  DiagnosticEngine *diags_ = nullptr;
  PipelineOptions pipeline_;
  ExecutionOptions execution_;
  Graph training_;
  std::unique_ptr<JitEngine> jit_;
  // prepareTraining's compile (declared after jit_ and training_, which it
  // uses: destroyed, i.e. waited for, before them), and its result.
  std::future<llvm::Expected<CompiledFunction>> trainPending_;
  std::optional<CompiledFunction> trainCompiled_;
  std::string trainCompileError_; // the pending compile's error, for trainStep
  std::map<std::string, CompiledFunction> compiledFunctions_; // compiled(), by JIT symbol
  std::unique_ptr<ThreadTeam> team_;                          // more than one thread only
  bool chooseThreads_ = false; // --threads auto: each call on the team or alone, measured
  TensorMap params_;
  std::unique_ptr<BoundFunction> train_, eval_, forward_, stats_;
  bool hasLogits_ = true;
  // graphLoss: the tail block of each split, by its row count.
  std::map<int64_t, std::unique_ptr<BoundFunction>> tailEval_;
  std::map<int64_t, std::vector<int32_t>> tailX_, tailY_;
  std::unique_ptr<SplitLoss> splitLoss_; // loss(): cross-entropy kernel (no bound buffers)
  std::vector<int32_t> trainX_, trainY_, evalX_, evalY_, forwardX_, statsX_, statsY_;
  double trainCompileMs_ = 0;
  int64_t stepCount_ = 0;
  std::vector<ValueId> stepScalars_; // the learning-rate and step-count leaves of training_
  bool profile_ = false;
  bool traceLines_ = false;
  size_t untrackedStates_ = 0; // state leaves only the inference graph uses
  TensorMap statsBuffers_;     // the stats step's probes (zeros) and gradient outputs
  std::vector<StepTensor> statsTensors_;
  int statsCompiles_ = 0; // each compile needs a fresh symbol name in the JIT
};

// Mean of -log softmax(logits)[y] over `rows` rows of `classes` logits, in double.
double crossEntropy(const float *logits, const int32_t *Y, int64_t rows, int64_t classes);

} // namespace mlpc
