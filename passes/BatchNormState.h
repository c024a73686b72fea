// BatchNorm running statistics: how they are named, updated during training,
// and used for inference.
#pragma once

#include "passes/Pass.h"

#include <string>

namespace mlpc {

// Momentum of the running-statistics update, as in the seed notebooks:
// running = (1 - m) * running + m * batch_statistic.
constexpr double kBatchNormMomentum = 0.001;

// Checkpoint / State-leaf name prefix of a batchnorm node: the gain
// parameter's name (e.g. "bngain" -> "bngain.running_mean"), or the node's
// own name when the gain is not a parameter.
std::string batchNormStateName(const Graph &g, ValueId batchnorm);

// add-running-stats (training graphs): for every batchnorm op adds State leaves
// "<name>.running_mean" and "<name>.running_var" ([H]) and outputs
// "state.<name>.running_mean/var" holding their updated values (batch mean,
// Bessel-corrected batch variance). Returns true if there was any batchnorm.
bool addRunningStats(Graph &g, PassContext &ctx);

// inference-graph: turns a fused forward graph into the inference graph:
// every batchnorm uses the running statistics (batchnorm_infer), the output is
// "logits" (the first operand of the cross_entropy that produces the loss),
// and unused leaves (the target) are dropped. Errors if the loss is not a
// cross_entropy.
bool makeInferenceGraph(Graph &g, PassContext &ctx);

} // namespace mlpc
