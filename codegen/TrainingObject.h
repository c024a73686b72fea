// Ahead-of-time training: one self-contained LLVM module (object file) that
// holds a model's training step, its inference pass, its initialisers and
// the BatchNorm calibration, behind a C API on one caller-allocated state
// (`mlpc compile --train`; the header is trainingHeader()).
//
// The state (TrainingLayout) is one 64-byte-aligned block:
//
//   [0, 64)            header: u64 step count, f32 learning-rate override
//                      (< 0: the schedule), u32 magic, u32 layout version
//   tensorsOffset      every Param, then every State (running statistics)
//                      leaf of the training graph, in graph order, each
//                      64-byte aligned (gaps zero): what a checkpoint holds
//   optimizerOffset    optimizer state (none for SGD: 0 bytes; AdamW's
//                      moments go here, one slot per Param, same layout)
//   snapshotOffset     a copy of [tensorsOffset, optimizerOffset +
//                      optimizerBytes) taken before each step: the step is
//                      undone from it when anything became non-finite
//   workspaceOffset    the training kernel's planned temporaries
//
// The kernels are the JIT's (GraphLowering): the training graph compiled
// with sgdUpdate exactly as ModelRuntime's train_step, and the Stage::Infer
// graphs as its eval/forward functions, so the object and `mlpc train`
// compute the same values. Nothing calls a library: loops instead of
// memcpy/memset, log() as polynomial code (InitEmitter.cpp), no globals but
// read-only constants.
#pragma once

#include "codegen/Compiler.h"
#include "ir/Graph.h"
#include "ir/Module.h"

#include <llvm/Support/Error.h>

#include <map>
#include <string>
#include <vector>

namespace llvm {
class Module;
class TargetMachine;
} // namespace llvm

namespace mlpc {

struct TrainingModel {
  std::string name; // C prefix of every exported name
  // The training graph at the batch size (Stage::Grad, ModelRuntime::trainingGraph()).
  const Graph *train = nullptr;
  // Stage::Infer graphs: `block` at blockRows rows and `row` at 1 row (M_forward);
  // `calibrate` at blockRows rows with every BatchNormInfer input as an output
  // "bn_input.<layer>" (M_calibrate), the layers in graph order.
  const Graph *block = nullptr, *row = nullptr, *calibrate = nullptr;
  std::vector<std::string> bnLayers;
  int64_t blockRows = 0;
  std::vector<LearningRatePhase> schedule; // TrainConfig::schedule
  int64_t warmup = 0;                      // TrainConfig::warmup
  int64_t steps = 0;                       // the train block's step count (for the header)
  // --weights: the initial values M_init copies (every Param and State
  // leaf); null: M_init evaluates the init expressions as initParameters does.
  const std::map<std::string, std::vector<float>> *weights = nullptr;
};

struct StateTensor {
  std::string name;
  Shape shape;
  bool isState = false; // a running statistic (State leaf), else a Param
  int64_t offset = 0;   // bytes from the start of the state
  int64_t count = 0;    // floats
};

struct TrainingLayout {
  int64_t batch = 0, context = 0, vocab = 0;
  std::vector<StateTensor> tensors; // Params, then States, each in graph order
  int64_t tensorsOffset = 64, tensorsBytes = 0;
  int64_t optimizerOffset = 0, optimizerBytes = 0;
  int64_t snapshotOffset = 0, workspaceOffset = 0, workspaceBytes = 0;
  int64_t stateBytes = 0;
  int64_t inferWorkspaceBytes = 0; // the inference kernels' planned temporaries
  int64_t stackBytes = 0;          // all of M_forward's / M_calibrate's stack buffers
};

constexpr uint32_t kTrainingStateMagic = 0x544c504d; // "MPLT"
constexpr uint32_t kTrainingStateVersion = 1;

// Checks the graphs (one i32 input [rows, T] and target [rows], "loss",
// "grad.<P>" and "state.<S>" outputs; "logits" [rows, V] at inference) and
// lays out the state.
llvm::Expected<TrainingLayout> checkTrainingModel(const TrainingModel &model);

enum class TrainingEmit { Object, Assembly, LLVMText };

llvm::Expected<std::string> emitTrainingModule(const TrainingModel &model,
                                               const CompileOptions &options, TrainingEmit kind);

// InitEmitter.cpp: defines `int <name>_init(void *state, uint64_t seed)` in
// `m`: the header, zeroed tensors, then the initial values: the model's init
// expressions evaluated with mlpc::Rng (xoshiro256** seeded by splitmix64,
// Marsaglia polar normals) in double exactly as runtime/ParamInit.cpp does,
// or model.weights when set.
void emitInitFunction(const TrainingModel &model, const TrainingLayout &layout, llvm::Module &m,
                      llvm::TargetMachine &tm);

struct TrainingHeaderInfo {
  std::string vocab; // index -> character
  std::string modelPath, weightsPath, headerFile, objectFile, target;
  // The checkpoint metadata `mlpc train` records besides vocab and context
  // ("dims", "overrides": the --set values), for programs that save checkpoints.
  std::string dims, overrides;
};

// The C header: constants, vocabulary, the documented API and MLPC_MODEL_* aliases.
std::string trainingHeader(const TrainingModel &model, const TrainingLayout &layout,
                           const TrainingHeaderInfo &info);

} // namespace mlpc
