// The optimizer as a graph pass (after autodiff and the BatchNorm running
// statistics): each parameter's gradient becomes the update of the parameter
// and of its optimizer state, as write-back outputs. The math is in
// passes/Optimizer.cpp's header comment.
#pragma once

#include "ir/Module.h"
#include "passes/Pass.h"

namespace mlpc {

struct OptimizerPassOptions {
  // Keep the gradient outputs beside the updates (the statistics step reads
  // them); otherwise they are dropped, so a gradient feeds only its update
  // and codegen can fuse the two.
  bool keepGradients = false;
};

// Rewrites a training graph (outputs: the loss, a gradient per parameter, the
// running-statistics write-backs) into a step that also updates the
// parameters. Adds the State leaves the update reads: the learning rate and
// the step count (StateRole::LearningRate / StepCount, set by the runtime
// before each step) and the optimizer state of each parameter
// (`<param>.momentum_buffer`, `<param>.exp_avg`, `<param>.exp_avg_sq`;
// StateRole::Optimizer). Returns true (it always changes the graph).
bool applyOptimizer(Graph &g, const TrainConfig &config, const OptimizerPassOptions &options,
                    PassContext &ctx);

} // namespace mlpc
