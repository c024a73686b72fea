// fold-batchnorm (inference graphs): BatchNorm disappears into the Linear
// layer before it (the practice board's Q2).
//
// Matches batchnorm_infer(z, gain, bias, mean, var) where
//     z = x @ W + b      or      z = x @ W
// with W (and b) Param leaves, gain/bias Params, mean/var State leaves (the
// running or calibrated statistics: constants at inference time), and the
// Linear's intermediate values (x @ W, and z) used only by this BatchNorm.
//
// Math. Per output column j, with s_j = gain_j / sqrt(var_j + eps):
//     bn(z)_j = gain_j * (z_j - mean_j) / sqrt(var_j + eps) + bias_j
//             = s_j * ((x @ W)_j + b_j - mean_j) + bias_j
//             = (x @ (W * s))_j + (b_j - mean_j) * s_j + bias_j
// so W' = W * s (each column of W scaled by s_j; s broadcasts over rows) and
// b' = (b - mean) * s + bias (b = 0 when the Linear has no bias). Any x works,
// including an embedding lookup reshaped into rows.
//
// Rewrite. The pass is symbolic: it builds W' and b' as small subgraphs of the
// leaves and rewires the BatchNorm's users to x @ W' + b'. Those subgraphs
// depend only on parameters and state, so materializeConstantSubgraphs()
// turns them into new parameters once the weights are known (mlpc compile,
// fold-check); without weights (`--emit=infer`) they stay visible in the dump.
// Does nothing if no batchnorm_infer matches.
#include "passes/FoldBatchNorm.h"

#include "passes/Match.h"

namespace mlpc {

bool foldBatchNorm(Graph &g, PassContext &ctx) {
  auto users = userLists(g);
  auto isLeaf = [&](ValueId v, Op op) { return g[v].op == op; };
  bool changed = false;
  size_t original = g.size();
  for (ValueId bn = 0; bn < original; ++bn) {
    if (g[bn].op != Op::BatchNormInfer)
      continue;
    const Node n = g[bn];
    ValueId z = n.operands[0], gain = n.operands[1], bias = n.operands[2];
    ValueId mean = n.operands[3], var = n.operands[4];
    if (!isLeaf(gain, Op::Param) || !isLeaf(bias, Op::Param) || !isLeaf(mean, Op::State) ||
        !isLeaf(var, Op::State)) {
      ctx.remark(n.loc, "batchnorm not folded: its gain, bias and statistics must be parameters");
      continue;
    }
    std::optional<ValueId> linearBias;
    ValueId matmul = z;
    if (g[z].op == Op::Add) {
      for (int i = 0; i < 2; ++i)
        if (isOp(g, g[z].operands[i], Op::MatMul) && isLeaf(g[z].operands[1 - i], Op::Param)) {
          matmul = g[z].operands[i];
          linearBias = g[z].operands[1 - i];
        }
    }
    const Node &mm = g[matmul];
    if (mm.op != Op::MatMul || mm.transA || mm.transB || !isLeaf(mm.operands[1], Op::Param)) {
      ctx.remark(n.loc, "batchnorm not folded: its input is not a Linear layer x @ W (+ b)");
      continue;
    }
    std::set<ValueId> interior{matmul};
    if (linearBias)
      interior.insert(z);
    std::set<ValueId> chain = interior;
    chain.insert(bn);
    std::string why;
    if (!usesStayInside(g, users, interior, chain, why)) {
      ctx.remark(n.loc, "batchnorm not folded: " + why);
      continue;
    }
    ValueId x = mm.operands[0], W = mm.operands[1];
    int64_t h = g[bn].type.shape[1];
    auto vectorOf = [&](ValueId v) {
      Node r(Op::Reshape, {v});
      r.shapeAttr = {h};
      return g[v].type.shape == Shape{h} ? v : g.build(std::move(r));
    };
    Node invStd(Op::Pow, {g.make(Op::Add, {var, g.makeConst(n.scalar)})});
    invStd.scalar = -0.5;
    ValueId scale = g.make(Op::Mul, {vectorOf(gain), vectorOf(g.build(std::move(invStd)))});
    ValueId foldedW = g.make(Op::Mul, {W, scale});
    ValueId centered =
        linearBias ? g.make(Op::Sub, {vectorOf(*linearBias), mean}) : g.make(Op::Neg, {mean});
    ValueId foldedB = g.make(Op::Add, {g.make(Op::Mul, {centered, scale}), vectorOf(bias)});
    g[foldedW].name = g[W].name + ".folded";
    g[foldedB].name = (linearBias ? g[*linearBias].name : g[W].name + ".bias") + ".folded";
    ValueId out = g.make(Op::Add, {g.make(Op::MatMul, {x, foldedW}), foldedB});
    g[out].name = n.name;
    g.replaceAllUses(bn, out);
    ctx.remark(n.loc, "folded batchnorm into the preceding Linear layer");
    changed = true;
  }
  if (changed)
    g.compact(/*keepUnusedLeaves=*/false);
  return changed;
}

} // namespace mlpc
