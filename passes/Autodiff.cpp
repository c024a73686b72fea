// autodiff: forward graph -> training graph.
//
// Contract. Input: a forward graph with a scalar output of role Loss. Output:
// the same graph extended with the gradient of the loss with respect to every
// Param leaf, as outputs of role Gradient whose subject is the parameter
// (labelled "grad.<param>"; a zero tensor for a parameter the loss does not
// depend on), after the loss output; and, for every forward value marked
// Node::probe that the loss depends on through a parameter, an output of role
// Adjoint (labelled "actgrad.<value>") holding dloss/d(value).
//
// Method: reverse-mode accumulation. Walk the nodes in reverse topological
// order from the loss, seeded with dloss = 1; for each node that has an
// adjoint and lies on a path from a parameter, apply the op's vector-Jacobian
// rule (its record's, ir/ops/) and add the contributions into its operands'
// adjoints (a value used twice receives the sum of both contributions).
// Broadcasting is undone by the rules themselves (reduceToShape).
//
// Fails, reporting every offending node at once, when a node on a
// parameter-to-loss path has no gradient rule.
#include "passes/Autodiff.h"

#include "ir/Gradients.h"

#include <fmt/format.h>

namespace mlpc {

std::optional<Graph> buildTrainingGraph(const Graph &forward, PassContext &ctx) {
  Graph g = forward;
  std::optional<ValueId> loss = g.output(OutputRole::Loss);
  if (!loss) {
    if (ctx.diags)
      ctx.diags->error({}, "the graph has no loss output to differentiate");
    return std::nullopt;
  }
  const size_t forwardSize = g.size();

  // Only values that depend on a parameter need adjoints.
  std::vector<bool> needsGrad(forwardSize, false);
  for (ValueId v = 0; v < forwardSize; ++v) {
    needsGrad[v] = g[v].op == Op::Param;
    for (ValueId o : g[v].operands)
      needsGrad[v] = needsGrad[v] || needsGrad[o];
  }

  std::vector<std::optional<ValueId>> adjoint(forwardSize);
  adjoint[*loss] = g.makeConst(1.0);
  bool failed = false;
  std::vector<GraphOutput> probes;
  for (ValueId v = static_cast<ValueId>(forwardSize); v-- > 0;) {
    if (!adjoint[v] || !needsGrad[v] || opInfo(g[v].op).kind == OpKind::Leaf)
      continue;
    // Every user of v comes later in topological order: its adjoint is final.
    if (g[v].probe)
      probes.push_back({"actgrad." + g[v].name, *adjoint[v], OutputRole::Adjoint, v, std::nullopt});
    auto grads = gradientRule(g, v, *adjoint[v]);
    if (!grads) {
      failed = true;
      if (ctx.diags) {
        std::string what = g[v].op == Op::Max ? "'max' over all axes (use max(x, axis))"
                                              : fmt::format("'{}'", opInfo(g[v].op).name);
        ctx.diags->error(g[v].loc, fmt::format("no gradient rule for {}", what));
      }
      continue;
    }
    for (size_t i = 0; i < grads->size(); ++i) {
      ValueId operand = g[v].operands[i];
      if (!(*grads)[i] || !needsGrad[operand])
        continue;
      ValueId contribution = *(*grads)[i];
      adjoint[operand] =
          adjoint[operand] ? g.make(Op::Add, {*adjoint[operand], contribution}) : contribution;
    }
  }
  if (failed)
    return std::nullopt;

  for (ValueId p : g.leaves(Op::Param)) {
    ValueId grad = 0;
    if (p < forwardSize && adjoint[p]) {
      grad = *adjoint[p];
    } else {
      Node zero(Op::Broadcast, {g.makeConst(0.0)});
      zero.shapeAttr = g[p].type.shape;
      grad = g.build(std::move(zero));
    }
    if (g[grad].name.empty())
      g[grad].name = "d" + g[p].name;
    g.setOutput({"grad." + g[p].name, grad, OutputRole::Gradient, p, std::nullopt});
  }
  for (auto it = probes.rbegin(); it != probes.rend(); ++it) // in forward order
    g.setOutput(*it);
  g.compact();
  return g;
}

} // namespace mlpc
