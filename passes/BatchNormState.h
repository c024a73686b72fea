// BatchNorm running statistics: how they are named, updated during training,
// and used for inference.
#pragma once

#include "passes/Pass.h"

#include <optional>
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
// "<name>.running_mean" and "<name>.running_var" ([H]) and WriteBack outputs
// into them (labelled "state.<name>.running_mean/var") holding their updated
// values (batch mean, Bessel-corrected batch variance). Returns true if there was any batchnorm.
bool addRunningStats(Graph &g, PassContext &ctx);

// The logits of a fused graph: the first operand of the cross_entropy that
// produces the loss, or nullopt when the loss is something else (an mse, a
// hand-written likelihood, ...).
std::optional<ValueId> findLogits(const Graph &g);
// What a user must write for findLogits to succeed (for error messages of
// the commands that need logits: sample, compile, fold-check).
extern const char *kLogitsHelp;

// inference-graph: turns a fused forward graph into the inference graph:
// every batchnorm uses the running statistics (batchnorm_infer); the only
// output is the Logits (findLogits) and unused leaves (the target) are
// dropped; or, for a loss without logits, the only output is the Loss
// (evaluated in inference mode: `mlpc eval` and the val loss still work).
// Errors only if the graph has no loss.
bool makeInferenceGraph(Graph &g, PassContext &ctx);

} // namespace mlpc
