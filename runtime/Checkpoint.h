// Checkpoints and batches as safetensors files, checked against a graph's
// leaves: tensor names are parameter / state / input names, and every
// mismatch (missing, extra, wrong dtype or shape) is an error naming the
// tensor and both shapes.
#pragma once

#include "ir/Graph.h"
#include "runtime/ParamInit.h"
#include "runtime/Safetensors.h"

#include <llvm/Support/Error.h>

namespace mlpc {

using IndexMap = std::map<std::string, std::vector<int32_t>>;

// Reads the f32 tensors of every leaf of kind `kind` (Param or State) in `g`.
// Tensors for leaves of the other f32 kind are ignored (a checkpoint holds
// both); any other tensor is an error unless `allowExtra`.
llvm::Expected<TensorMap> extractLeaves(const TensorFile &file, const std::string &path,
                                        const Graph &g, Op kind, bool allowExtra = false);
// Reads the i32 tensors of every Input leaf (inputs and targets).
llvm::Expected<IndexMap> extractInputs(const TensorFile &file, const std::string &path,
                                       const Graph &g);

// Parameters and BatchNorm running statistics: the leaves of `g` of kind
// Param or State. `metadata` is stored in the header (e.g. step, seed).
llvm::Error saveCheckpoint(const std::string &path, const Graph &g, const TensorMap &tensors,
                           const std::map<std::string, std::string> &metadata = {});
// Loads Param leaves (required) and State leaves (required when the graph has
// any), validated against `g`.
llvm::Expected<TensorMap> loadCheckpoint(const std::string &path, const Graph &g,
                                         std::map<std::string, std::string> *metadata = nullptr);

TensorData makeF32Tensor(const Shape &shape, const std::vector<float> &values);

} // namespace mlpc
