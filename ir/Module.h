// A lowered model: the forward graph plus everything the trainer needs.
#pragma once

#include "frontend/Diagnostics.h"
#include "ir/Graph.h"

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mlpc {

struct ModelAST; // frontend/AST.h: only lowerModel reads it

// From `sgd lr 0.1, 0.01 after 100000`: lr from step fromStep on.
struct LearningRatePhase {
  int64_t fromStep = 0;
  double lr = 0.1;
};

struct TrainConfig {
  int64_t steps = 10000;
  int64_t batch = 0;                       // leading dimension of the inputs
  std::vector<LearningRatePhase> schedule; // sorted by fromStep, first starts at 0

  double learningRate(int64_t step) const {
    double lr = schedule.empty() ? 0.1 : schedule.front().lr;
    for (const LearningRatePhase &p : schedule)
      if (step >= p.fromStep)
        lr = p.lr;
    return lr;
  }
};

struct Module {
  std::string name;
  // Forward graph: leaves (inputs, targets, params) and the output "loss".
  Graph graph;
  TrainConfig train;
  std::vector<std::pair<std::string, int64_t>> dims; // in declaration order
  std::string batchDim;                              // name of the inputs' leading dim
  int64_t contextLength = 0;                         // second dim of the first input (0 if none)

  std::optional<int64_t> dim(const std::string &dimName) const {
    for (auto &[n, v] : dims)
      if (n == dimName)
        return v;
    return std::nullopt;
  }
};

struct LoweringOptions {
  int64_t vocab = 27; // value bound to `dim V = vocab` (the dataset's, or 27 by default)
  // Overrides a dim's value (e.g. the batch dim, to compile the forward pass
  // for one row or for a large evaluation block).
  std::map<std::string, int64_t> dimOverrides;
  // The graph will only run in inference mode (batchnorm with running
  // statistics), so a batch of one row is fine.
  bool inferenceOnly = false;
};

// Whole-model size limits, checked by lowering before anything is allocated
// (kMaxTensorElements in ir/Type.h bounds each tensor on its own):
// - all parameters together (f32), i.e. one copy of the weights; training
//   needs a few more (gradients, checkpoints), so this is already generous;
constexpr int64_t kMaxParamBytes = int64_t(4) << 30;
// - every value of the forward pass (inputs, parameters and each operation's
//   result, before simplification), a bound on the activations a step needs.
constexpr int64_t kMaxForwardBytes = int64_t(16) << 30;

// The composite functions a model file can call (softmax, layernorm, ...;
// ir/Composites.cpp), in table order: the tests iterate them.
std::vector<std::string> compositeFunctions();

// Lowers a parsed model to a verified forward graph. Reports every error it
// finds to `diags` (continuing past bad statements) and returns nullopt if any.
std::optional<Module> lowerModel(const ModelAST &ast, const LoweringOptions &options,
                                 DiagnosticEngine &diags);

} // namespace mlpc
