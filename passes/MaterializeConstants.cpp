// materialize-constants: see passes/FoldBatchNorm.h. Runs after fold-batchnorm
// when the weights are known, so the folded W' and b' cost nothing at run time.
#include "ir/Interpreter.h"
#include "passes/FoldBatchNorm.h"

#include <fmt/format.h>

namespace mlpc {

bool materializeConstantSubgraphs(Graph &g, std::map<std::string, std::vector<float>> &weights,
                                  PassContext &ctx) {
  // Which values depend only on weights (no batch input)?
  std::vector<bool> constant(g.size(), false);
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node &n = g[v];
    bool leafConstant = n.op == Op::Param || n.op == Op::State || n.op == Op::Const;
    constant[v] = opInfo(n.op).kind == OpKind::Leaf ? leafConstant : true;
    for (ValueId o : n.operands)
      constant[v] = constant[v] && constant[o];
  }
  // The frontier: computed constants used by a non-constant node or an output.
  std::vector<bool> frontier(g.size(), false);
  for (ValueId v = 0; v < g.size(); ++v)
    if (!constant[v])
      for (ValueId o : g[v].operands)
        frontier[o] = constant[o] && opInfo(g[o].op).kind != OpKind::Leaf;
  for (const GraphOutput &o : g.outputs)
    if (constant[o.value] && opInfo(g[o.value].op).kind != OpKind::Leaf)
      frontier[o.value] = true;

  std::map<std::string, std::vector<double>> leaves;
  for (const Node &n : g.nodes) {
    if (n.op == Op::Input)
      leaves[n.name].assign(n.type.numel(), 0.0);
    if (n.op != Op::Param && n.op != Op::State)
      continue;
    auto it = weights.find(n.name);
    if (it == weights.end()) {
      if (ctx.diags)
        ctx.diags->error({}, fmt::format("no weights for '{}'", n.name));
      return false;
    }
    leaves[n.name].assign(it->second.begin(), it->second.end());
  }
  bool any = false;
  for (ValueId v = 0; v < frontier.size(); ++v)
    any = any || frontier[v];
  if (!any)
    return false;
  auto values = interpret(g, leaves);
  if (!values) {
    if (ctx.diags)
      ctx.diags->error({}, llvm::toString(values.takeError()));
    else
      llvm::consumeError(values.takeError());
    return false;
  }
  size_t original = g.size();
  for (ValueId v = 0; v < original; ++v) {
    if (!frontier[v])
      continue;
    Node leaf(Op::Param);
    leaf.name = g[v].name.empty() ? fmt::format("const{}", v) : g[v].name;
    while (weights.count(leaf.name))
      leaf.name += "'";
    leaf.type = g[v].type;
    const std::vector<double> &x = (*values)[v];
    weights[leaf.name].assign(x.begin(), x.end());
    ValueId id = g.add(std::move(leaf));
    g.replaceAllUses(v, id);
  }
  g.compact(/*keepUnusedLeaves=*/false);
  return true;
}

} // namespace mlpc
