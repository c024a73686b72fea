// Values other kernels compute anyway (BufferPlan::filledBy): a node whose
// value another node's kernel already has in registers runs no code of its
// own; that kernel stores it as well, and its buffer is allocated there.
// On the makemore step their own passes cost ~1.6 us. What is matched:
//   mean(x, 0) after x's batch statistics       the statistics kernel's mean
//                                                (the running mean)
//   sum((x - mean(x, 0))^2, 0), inlined          its sum of squares (the
//                                                running variance)
//   sum(dout, 0), sum(dout * xhat, 0), sum(dx, 0)  a BatchNormGrad's column
//                                                sums (BufferPlan::gradSums)
//   cross_entropy_grad(x, y, const) after        the loss kernel's softmax
//   cross_entropy(x, y)                          (BufferPlan::lossGrad)
// Each is the same arithmetic in the same order as the node's own kernel
// would do, except the BatchNormGrad sum(dout * xhat), which is scaled by
// 1/std once per column (LowerBatchNormGrad.cpp), and the statistics of
// batches of 64 rows and more, whose mean and sum of squares come from
// per-block running means combined (LowerFused.cpp, emitBatchStatsByRows):
// the same values to within rounding. Nothing is matched when
// the value is inlined into another loop, an output, or an epilogue.
#include "codegen/BufferPlan.h"

namespace mlpc::codegen {
namespace {

struct KernelFills {
  const Graph &g;
  BufferPlan &p;

  void fill(ValueId v, ValueId by) { p.filledBy[v] = by; }
  bool materialised(ValueId v) const { return p.storage[v] != Storage::Inlined; }
  bool sameBytes(ValueId a, ValueId b) const { return p.root[a] == p.root[b]; }

  void run() {
    const size_t n = g.size();
    p.gradSums.assign(n, {-1, -1, -1});
    p.filledBy.assign(n, -1);
    p.lossGrad.assign(n, -1);
    for (ValueId v = 0; v < n; ++v)
      fillLossGrad(v);
    for (ValueId s = 0; s < n; ++s) {
      const Node &sum = g[s];
      if ((sum.op != Op::Sum && sum.op != Op::Mean) || sum.axis != 0 ||
          g[sum.operands[0]].type.rank() != 2 || p.storage[s] != Storage::Workspace)
        continue;
      if (sum.op == Op::Mean)
        fillMean(s);
      else if (!fillSquares(s))
        fillGradSum(s);
    }
  }

  // mean(x, 0) after the statistics of x: the same sum in the same order
  // divided by N, so the same bits (the running mean update; batches of 64+
  // rows: the combined block means, equal to within rounding).
  void fillMean(ValueId s) {
    const ValueId o = g[s].operands[0];
    for (StatsPlan &st : p.stats)
      if (g[st.leader].op != Op::BatchNormInfer && st.leader < s && st.mean < 0 &&
          materialised(o) && sameBytes(o, g[st.leader].operands[0])) {
        st.mean = s;
        fill(s, st.leader);
        return;
      }
  }

  // sum(d * d, 0) with d = x - mean(x, 0), both inlined, after the statistics
  // of x that also fill that mean: the running variance's sum of squares,
  // which the statistics kernel computes for 1/std anyway (the same sum of the
  // same differences in the same row order, so the same bits; batches of
  // 64+ rows: the combined blocks' sums of squares, equal within rounding).
  bool fillSquares(ValueId s) {
    const ValueId o = g[s].operands[0];
    if (materialised(o) || g[o].op != Op::Mul || g[o].operands[0] != g[o].operands[1])
      return false;
    const ValueId d = g[o].operands[0];
    if (materialised(d) || g[d].op != Op::Sub)
      return false;
    const ValueId x = g[d].operands[0], mean = g[d].operands[1];
    for (StatsPlan &st : p.stats)
      if (st.mean == static_cast<int64_t>(mean) && st.squares < 0 && materialised(x) &&
          sameBytes(x, g[st.leader].operands[0])) {
        st.squares = s;
        fill(s, st.leader);
        return true;
      }
    return false;
  }

  // sum(dout, 0), sum(dout * xhat, 0) and sum(dx, 0) of an earlier
  // BatchNormGrad dx = batchnorm_grad(x, gain, dout).
  void fillGradSum(ValueId s) {
    const ValueId o = g[s].operands[0];
    for (ValueId v = 0; v < s && p.filledBy[s] < 0; ++v) {
      const Node &grad = g[v];
      if (grad.op != Op::BatchNormGrad)
        continue;
      const ValueId dout = grad.operands[2];
      auto isDout = [&](ValueId w) { return materialised(w) && sameBytes(w, dout); };
      auto isXhat = [&](ValueId w) {
        return g[w].op == Op::BatchNormXhat && !materialised(w) &&
               sameBytes(g[w].operands[0], grad.operands[0]) && g[w].scalar == grad.scalar;
      };
      int slot = -1;
      if (isDout(o))
        slot = 0;
      else if (materialised(o) && sameBytes(o, v))
        slot = 2; // sum(dx, 0): accumulated as dx is written, same order, same bits
      else if (!materialised(o) && g[o].op == Op::Mul) {
        ValueId a = g[o].operands[0], b = g[o].operands[1];
        if ((isDout(a) && isXhat(b)) || (isDout(b) && isXhat(a)))
          slot = 1;
      }
      if (slot >= 0 && p.gradSums[v][slot] < 0) {
        p.gradSums[v][slot] = s;
        fill(s, v);
      }
    }
  }

  // cross_entropy_grad(x, y, c) after cross_entropy(x, y), c a constant (the
  // training step's dloss = 1): the loss kernel, which computes the same
  // softmax, writes the gradient too (LowerCrossEntropy.cpp).
  void fillLossGrad(ValueId v) {
    const Node &grad = g[v];
    if (grad.op != Op::CrossEntropyGrad || p.storage[v] != Storage::Workspace ||
        g[grad.operands[2]].op != Op::Const)
      return;
    for (ValueId u = 0; u < v; ++u)
      if (g[u].op == Op::CrossEntropy && p.lossGrad[u] < 0 &&
          g[u].operands[0] == grad.operands[0] && g[u].operands[1] == grad.operands[1]) {
        p.lossGrad[u] = v;
        fill(v, u);
        return;
      }
  }
};

} // namespace

void planKernelFills(const Graph &g, BufferPlan &plan) {
  KernelFills{g, plan}.run();
}

} // namespace mlpc::codegen
