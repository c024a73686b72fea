// The compilation pipeline: which passes run, in which order, for each stage.
#pragma once

#include "ir/Module.h"
#include "passes/Pass.h"

#include <optional>

namespace mlpc {

enum class Stage {
  Forward, // lowered forward graph, simplified
  Fused,   // + softmax-CE / BatchNorm fusion
  Grad,    // + autodiff, running-statistics updates and (with an optimizer) the
           //   parameter updates: the training graph
  Infer,   // fused forward graph in inference mode, output the logits (or the
           // loss, when it is not a cross-entropy of logits)
  Folded,  // + fold-batchnorm: BatchNorm folded into the preceding Linear
};

struct PipelineOptions {
  // --no-fuse: the training graph differentiates the atomic ops. Inference
  // stages fuse regardless: they need the recognised cross_entropy (to find
  // the logits) and batchnorm (to switch to running statistics).
  bool fuse = true;
  bool verbose = false;
  // Grad stage: when set, the optimizer pass turns the gradients into the
  // parameter and optimizer-state updates of this configuration
  // (passes/Optimizer.h); keepGradients keeps the gradient outputs too.
  const TrainConfig *optimizer = nullptr;
  bool keepGradients = false;
};

// Runs the passes of `stage` on a copy of the lowered forward graph. Errors
// (e.g. an op without a gradient rule) go to diags; returns nullopt on error.
std::optional<Graph> runPipeline(const Graph &forward, Stage stage, const PipelineOptions &options,
                                 DiagnosticEngine &diags);

} // namespace mlpc
