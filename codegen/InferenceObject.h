// Ahead-of-time inference: one self-contained LLVM module (object file) with
// a C entry point, plus the C header that declares it (`mlpc compile`).
//
// The module holds two kernels lowered from the same folded inference graph,
// one at `blockRows` rows and one at 1 row (internal linkage, the JIT's
// kernels and body ABI), the weights, and one exported function:
//
//   int M_forward(const int32_t *X, int64_t n, float *logits);
//       weights embedded as constant global arrays (the default), or
//   int M_forward_with(const float *weights, const int32_t *X, int64_t n, float *logits);
//       weights passed in (--weights-external), laid out as InferenceInterface::layout says.
//
// It checks n >= 1, the pointers and every index of X (returns -1 before
// writing anything), runs floor(n / blockRows) blocks through the block
// kernel, then the r remaining rows: one at a time through the 1-row kernel
// when r < blockRows / 2, else as one zero-padded block (see padMinRows() in
// InferenceObject.cpp for the measurement behind that), and returns 0.
// The kernels' workspace and the padded block are `alloca`s (64-byte
// aligned) in the entry function, so calls are reentrant and thread-safe:
// the object has no mutable globals and calls no library function.
#pragma once

#include "codegen/Compiler.h"
#include "ir/Graph.h"

#include <llvm/Support/Error.h>

#include <map>
#include <string>
#include <vector>

namespace mlpc {

// One parameter in the weights blob of --weights-external (and the order of
// the embedded arrays): every Param leaf of the inference graph, in graph
// order, each starting at a multiple of kWeightAlignFloats floats so a
// 64-byte-aligned blob keeps every tensor cache-line aligned. Gaps are zero.
struct WeightEntry {
  std::string name; // parameter name, e.g. "C" or "W1.folded" (materialized)
  Shape shape;
  int64_t offset = 0; // in floats from the start of the blob
  int64_t count = 0;  // floats
};

constexpr int64_t kWeightAlignFloats = 16;

struct WeightLayout {
  std::vector<WeightEntry> entries;
  int64_t totalFloats = 0; // including the padding after the last tensor
};

// The model being compiled. `block` and `row` are Stage::Folded graphs with
// their constant subgraphs materialized (materializeConstantSubgraphs), at
// `blockRows` rows and at 1 row; `weights` holds every Param leaf of both.
struct InferenceModel {
  std::string name; // C prefix of every exported name: M_forward, M_CONTEXT, ...
  const Graph *block = nullptr;
  const Graph *row = nullptr;
  int64_t blockRows = 0;
  const std::map<std::string, std::vector<float>> *weights = nullptr;
  bool externalWeights = false;
};

// What the header documents, derived from and checked against the graphs.
struct InferenceInterface {
  int64_t context = 0;   // T: indices per row of X
  int64_t vocabSize = 0; // V: logits per row, and the exclusive bound of every index
  WeightLayout layout;
  int64_t workspaceBytes = 0; // the kernels' planned temporaries (the larger of the two)
  int64_t stackBytes = 0;     // all of the entry function's buffers: workspace + padded tail
  int64_t blockRows = 0;      // rows per block-kernel call
  std::string entryName;      // M_forward or M_forward_with
};

// Checks that the graphs have the one interface the C API supports: one i32
// input [rows, T], the output "logits" f32 [rows, V], gathers of X from
// tables of V rows, only Param leaves with weights (no BatchNorm left, no
// running statistics), and the same parameters at both row counts.
llvm::Expected<InferenceInterface> checkInferenceModel(const InferenceModel &model);

enum class InferenceEmit { Object, Assembly, LLVMText };

// Builds and optimises (options.optLevel, for options.triple / options.cpu)
// the module described above; returns the object file bytes, the assembly or
// the LLVM IR text.
llvm::Expected<std::string> emitInferenceModule(const InferenceModel &model,
                                                const CompileOptions &options, InferenceEmit kind);

// The --weights-external blob: model.weights laid out as `layout` says,
// little-endian f32.
std::string weightsBlob(const InferenceModel &model, const WeightLayout &layout);

// Provenance and vocabulary for the generated header.
struct HeaderInfo {
  std::string vocab; // index -> character, vocab.size() == V
  // For the comments: where the model and checkpoint came from, and the
  // file names of the header, object and (--weights-external) weights.
  std::string modelPath, weightsPath, headerFile, objectFile, weightsFile;
  std::string target; // triple and CPU, for the comments
};

// The C header for the object: include guard, <stdint.h>, extern "C", the
// constants, the vocabulary, the prototype with its shapes, and the generic
// MLPC_MODEL_* aliases that examples/sample_names.c uses.
std::string inferenceHeader(const InferenceModel &model, const InferenceInterface &iface,
                            const HeaderInfo &info);

} // namespace mlpc
