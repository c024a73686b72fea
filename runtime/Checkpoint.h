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
// What a checkpoint is loaded for, which decides the optimizer state's fate:
enum class CheckpointUse {
  Weights, // eval, sample, compile: optimizer state loaded when present, else zero
  Resume,  // --resume: the optimizer state is required (the run continues bit for bit)
  Init,    // --init: parameters and running statistics only; fresh optimizer state
};

// Loads Param leaves (required), StateRole::Model leaves (required when the
// graph has any) and StateRole::Optimizer leaves as `use` says, validated
// against `g`. The learning-rate and step-count leaves are never stored.
// Tensors the file lists as optimizer state (metadata "optimizer_state") that
// `g` lacks are ignored: a model evaluated under another optimizer.
llvm::Expected<TensorMap> loadCheckpoint(const std::string &path, const Graph &g,
                                         std::map<std::string, std::string> *metadata = nullptr,
                                         CheckpointUse use = CheckpointUse::Weights);

TensorData makeF32Tensor(const Shape &shape, const std::vector<float> &values);

} // namespace mlpc
