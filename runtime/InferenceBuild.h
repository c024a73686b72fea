// The inference object of `mlpc compile`, from a model and its trained
// parameters: the folded graphs (every BatchNorm folded into the Linear
// layer before it, W' and b' evaluated into weights), then the object file,
// its C header and (external weights) the weights blob, written atomically.
// The driver (tools/CompileCommand.cpp) and the Python module use it.
#pragma once

#include "codegen/InferenceObject.h"
#include "runtime/ModelFile.h"
#include "runtime/ModelRuntime.h"

#include <llvm/Support/Error.h>

namespace mlpc {

// Rows per call of the block kernel. 32 rows keep the hidden activations of
// makemore (32 x 200 floats) in L1 while amortising each weight load over 32
// rows; the row kernel takes the remainder.
constexpr int64_t kInferenceBlockRows = 32;
// The block shrinks (halving) until the kernels' stack workspace fits this,
// so wide models stay safe on small thread stacks.
constexpr int64_t kMaxInferenceStackBytes = 256 << 10;

// The folded graphs and weights, ready for emitInferenceModule.
struct FoldedInference {
  std::string vocab; // index -> character
  std::string modelName;
  Graph block, row;
  int64_t blockRows = 0;
  TensorMap weights; // every Param leaf of block and row
  bool externalWeights = false;

  InferenceModel model() const {
    return InferenceModel{modelName, &block, &row, blockRows, &weights, externalWeights};
  }
};

// `runtime` was created from `file` and holds the parameters. Model errors
// (a BatchNorm that cannot be folded) go to file.diags(); the error then
// says "the model has errors".
llvm::Expected<FoldedInference> foldInference(ModelFile &file, ModelRuntime &runtime,
                                              bool externalWeights);

// Writes the object `out`, its header (`out` with extension .h) and, with
// external weights, the weights (.bin), each to a temporary next to it,
// renamed into place only when all were written: a failure leaves no
// partial output. `info` gives the comments' model and checkpoint paths;
// the vocabulary, file names and target are filled in here.
llvm::Error writeInferenceFiles(const FoldedInference &folded, const std::string &out,
                                const CompileOptions &options, HeaderInfo info);

// The same atomic write for any set of files (`mlpc compile --train`): every
// (path, bytes) to a temporary next to it, then all renamed into place.
llvm::Error writeFilesAtomically(std::vector<std::pair<std::string, std::string>> files);
// `path` with its extension replaced by `ext` (no dot): OUT.o -> OUT.h.
std::string replaceExtension(const std::string &path, const char *ext);

} // namespace mlpc
