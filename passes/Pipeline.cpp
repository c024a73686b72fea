#include "passes/Pipeline.h"

#include "ir/ShapeRules.h"
#include "passes/Autodiff.h"
#include "passes/BatchNormState.h"
#include "passes/FoldBatchNorm.h"
#include "passes/Optimizer.h"

namespace mlpc {
namespace {

using PassFn = bool (*)(Graph &, PassContext &);

struct PassEntry {
  const char *name;
  PassFn run;
  Stage firstStage; // the pass runs for this stage and every later one (see below)
  bool isFusion;    // skipped under --no-fuse
};

// The pipeline, in order. Forward < Fused < Grad; Infer runs the forward and
// fusion entries, then its own. Why each pass is where it is:
const PassEntry kPipeline[] = {
    // Fold `1/N`-style constants first: the fusion patterns match numbers.
    // (Batch reductions stay even at N = 1, so the patterns keep their shape.)
    {"simplify", simplifyBeforeFusion, Stage::Forward, false},
    // Fusion must precede autodiff: it is what turns ~25 atomic VJPs into two
    // closed-form gradients.
    {"fuse-cross-entropy", fuseCrossEntropy, Stage::Fused, true},
    {"fuse-batchnorm", fuseBatchNorm, Stage::Fused, true},
    {"simplify", simplify, Stage::Fused, false},
};

bool wants(Stage entry, Stage target) {
  if (target == Stage::Infer || target == Stage::Folded)
    return entry != Stage::Grad;
  return static_cast<int>(entry) <= static_cast<int>(target);
}

} // namespace

std::optional<Graph> runPipeline(const Graph &forward, Stage stage, const PipelineOptions &options,
                                 DiagnosticEngine &diags) {
  PassContext ctx{&diags, options.verbose};
  Graph g = forward;
  const bool fuse = options.fuse || stage == Stage::Infer || stage == Stage::Folded;
  for (const PassEntry &pass : kPipeline)
    if (wants(pass.firstStage, stage) && (fuse || !pass.isFusion))
      pass.run(g, ctx);

  if (stage == Stage::Grad) {
    // Reverse mode over the fused graph, then the BatchNorm running-statistics
    // updates (training only), then clean up what the VJP rules left behind
    // (x*1, duplicated transposes, unused forward values).
    std::optional<Graph> training = buildTrainingGraph(g, ctx);
    if (!training)
      return std::nullopt;
    g = std::move(*training);
    addRunningStats(g, ctx);
    simplify(g, ctx);
    // The optimizer last: its updates read the gradients autodiff produced.
    if (options.optimizer) {
      applyOptimizer(g, *options.optimizer, {options.keepGradients}, ctx);
      simplify(g, ctx);
    }
  } else if (stage == Stage::Infer || stage == Stage::Folded) {
    // Inference mode: batchnorm uses its running statistics; then (Folded)
    // fold each batchnorm into the Linear before it, so only x @ W' + b' remains.
    if (!makeInferenceGraph(g, ctx))
      return std::nullopt;
    if (stage == Stage::Folded)
      foldBatchNorm(g, ctx);
    simplify(g, ctx);
  }

  for (const std::string &problem : verifyGraph(g))
    diags.error({}, "internal error after the pass pipeline: " + problem);
  if (diags.hasErrors())
    return std::nullopt;
  return g;
}

} // namespace mlpc
