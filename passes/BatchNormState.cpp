#include "passes/BatchNormState.h"

#include <fmt/format.h>

namespace mlpc {

std::string batchNormStateName(const Graph &g, ValueId batchnorm) {
  ValueId gain = g[batchnorm].operands[1];
  if (g[gain].op == Op::Param)
    return g[gain].name;
  return g[batchnorm].name.empty() ? fmt::format("bn{}", batchnorm) : g[batchnorm].name;
}

namespace {

ValueId addState(Graph &g, const std::string &name, int64_t h) {
  if (auto existing = g.findLeaf(Op::State, name))
    return *existing;
  Node s(Op::State);
  s.name = name;
  s.type = {DType::F32, {h}};
  return g.add(std::move(s));
}

ValueId vectorOf(Graph &g, ValueId v, int64_t h) {
  Node r(Op::Reshape, {v});
  r.shapeAttr = {h};
  return g.build(std::move(r));
}

} // namespace

bool addRunningStats(Graph &g, PassContext &) {
  bool changed = false;
  size_t original = g.size();
  for (ValueId bn = 0; bn < original; ++bn) {
    if (g[bn].op != Op::BatchNorm)
      continue;
    ValueId x = g[bn].operands[0];
    int64_t n = g[x].type.shape[0], h = g[x].type.shape[1];
    std::string name = batchNormStateName(g, bn);
    ValueId runningMean = addState(g, name + ".running_mean", h);
    ValueId runningVar = addState(g, name + ".running_var", h);

    Node meanNode(Op::Mean, {x});
    meanNode.axis = 0;
    ValueId mean = g.build(std::move(meanNode));
    ValueId diff = g.make(Op::Sub, {x, mean});
    Node sumNode(Op::Sum, {g.make(Op::Mul, {diff, diff})});
    sumNode.axis = 0;
    ValueId var = g.make(Op::Mul, {g.build(std::move(sumNode)), g.makeConst(1.0 / (n - 1))});

    auto update = [&](ValueId running, ValueId batch) {
      return g.make(Op::Add,
                    {g.make(Op::Mul, {g.makeConst(1 - kBatchNormMomentum), running}),
                     g.make(Op::Mul, {g.makeConst(kBatchNormMomentum), vectorOf(g, batch, h)})});
    };
    g.setOutput({"state." + name + ".running_mean", update(runningMean, mean),
                 OutputRole::WriteBack, runningMean, std::nullopt});
    g.setOutput({"state." + name + ".running_var", update(runningVar, var), OutputRole::WriteBack,
                 runningVar, std::nullopt});
    changed = true;
  }
  if (changed)
    g.compact();
  return changed;
}

std::optional<ValueId> findLogits(const Graph &g) {
  std::optional<ValueId> loss = g.output(OutputRole::Loss);
  if (!loss || g[*loss].op != Op::CrossEntropy)
    return std::nullopt;
  return g[*loss].operands[0];
}

const char *kLogitsHelp =
    "the loss must be a cross-entropy of logits: cross_entropy(logits, Y), "
    "nll(log_softmax(logits, 1), Y), the atomic softmax chain or the log-sum-exp form "
    "mean(reshape(logsumexp(logits, 1), [N]) - pick(logits, Y))";

bool makeInferenceGraph(Graph &g, PassContext &ctx) {
  std::optional<ValueId> loss = g.output(OutputRole::Loss);
  if (!loss) {
    if (ctx.diags)
      ctx.diags->error({}, "the graph has no loss output");
    return false;
  }
  // The outputs first: replaceAllUses below keeps them up to date (the
  // logits may be a batchnorm themselves).
  std::optional<ValueId> logits = findLogits(g);
  if (logits)
    g.outputs = {{"logits", *logits, OutputRole::Logits, std::nullopt, std::nullopt}};
  else
    g.outputs = {{g.outputs.front().name, *g.output(OutputRole::Loss), OutputRole::Loss,
                  std::nullopt, std::nullopt}};
  size_t original = g.size();
  for (ValueId bn = 0; bn < original; ++bn) {
    if (g[bn].op != Op::BatchNorm)
      continue;
    int64_t h = g[bn].type.shape[1];
    std::string name = batchNormStateName(g, bn);
    ValueId mean = addState(g, name + ".running_mean", h);
    ValueId var = addState(g, name + ".running_var", h);
    Node infer(Op::BatchNormInfer,
               {g[bn].operands[0], g[bn].operands[1], g[bn].operands[2], mean, var});
    infer.scalar = g[bn].scalar;
    infer.name = g[bn].name;
    infer.loc = g[bn].loc;
    ValueId replacement = g.build(std::move(infer));
    g.replaceAllUses(bn, replacement);
  }
  g.compact(/*keepUnusedLeaves=*/false);
  return true;
}

} // namespace mlpc
