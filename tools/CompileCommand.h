// mlpc compile: a checkpoint -> an inference object file + C header (and,
// with --weights-external, a weights file). Also used by `mlpc emit
// --emit=llvm|asm --weights CKPT` to print the same module.
#pragma once

#include "codegen/InferenceObject.h"
#include "runtime/ModelRuntime.h"
#include "tools/Driver.h"

#include <memory>
#include <optional>

namespace mlpc {

// Rows per call of the block kernel. 32 rows keep the hidden activations of
// makemore (32 x 200 floats) in L1 while amortising each weight load over 32
// rows; the row kernel takes the remainder.
constexpr int64_t kInferenceBlockRows = 32;
// The block shrinks (halving) until the kernels' stack workspace fits this,
// so wide models stay safe on small thread stacks.
constexpr int64_t kMaxInferenceStackBytes = 256 << 10;

// The folded graphs and weights of a checkpoint, ready for emitInferenceModule.
struct PreparedInference {
  std::unique_ptr<ModelFile> file; // owns the AST the graphs came from
  std::string vocab;               // index -> character
  std::string modelName;
  Graph block, row;
  int64_t blockRows = 0;
  TensorMap weights; // every Param leaf of block and row
  bool externalWeights = false;

  InferenceModel model() const {
    return InferenceModel{modelName, &block, &row, blockRows, &weights, externalWeights};
  }
};

// Reads MODEL (args.positional[0]), --weights, --data; reports errors (to
// stderr) and returns nullopt on any.
std::optional<PreparedInference> prepareInference(const ParsedArgs &args, bool externalWeights);

// `mlpc emit --emit=llvm|asm --weights CKPT`: the optimised module of `mlpc
// compile` (host target, embedded weights) as LLVM IR or assembly text.
std::optional<std::string> inferenceModuleText(const ParsedArgs &args, InferenceEmit kind);

} // namespace mlpc
