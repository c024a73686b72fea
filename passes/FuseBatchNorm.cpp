// fuse-batchnorm: atomic BatchNorm chains -> batchnorm.
//
// Matches, for x[N,H] and per-feature gain, bias ([H] or [1,H]):
//     mu   = sum(x, 0) * 1/N          (or mean(x, 0), or sum(x, 0) / N)
//     d    = x - mu
//     d2   = d ^ 2                    (or d * d)
//     var  = sum(d2, 0) * 1/(N-1)     (Bessel's correction, as the seed;
//                                      a biased 1/N variance is NOT matched)
//     inv  = (var + eps) ^ -0.5
//     out  = gain * (d * inv) + bias  (operands of * and + in either order)
// and rewrites `out` to batchnorm(x, gain, bias) {eps}. With
// xhat = (x - mu) * inv, the fused op's input gradient is the closed form
//     dx = gain * inv / N * (N*dout - sum(dout, 0) - N/(N-1) * xhat * sum(dout*xhat, 0))
// (derivation: dxhat = gain*dout; dvar = sum(dxhat * d) * -1/2 inv^3;
// dmu = -sum(dxhat) * inv (the path through var is zero since sum(d) = 0);
// dx = dxhat*inv + dvar * 2d/(N-1) + dmu/N, then substitute d = xhat/inv),
// which autodiff emits as one batchnorm_grad op instead of ~15 VJPs.
// Factors of exactly 1 have been simplified away (1/N at N = 1, Bessel's
// 1/(N-1) at N = 2): a bare sum is matched as scale 1. At N = 1 the Bessel
// factor is inf, matched as such (simplifyBeforeFusion keeps the size-1
// batch sums), so one-row inference of an atomic model still gets its
// running statistics.
// Does nothing when no chain matches or an intermediate has another user
// (said under --verbose).
#include "passes/Match.h"

namespace mlpc {
namespace {

struct BnMatch {
  ValueId x, gain, bias;
  double eps;
  std::set<ValueId> interior;
};

// mean over axis 0, written any of the ways above, of a [N, H] value; the
// divisor must be N (or N-1 when `bessel`).
std::optional<ValueId> matchColumnMean(const Graph &g, ValueId v, bool bessel,
                                       std::set<ValueId> &interior) {
  if (!bessel && isOp(g, v, Op::Mean) && g[v].axis == 0) {
    interior.insert(v);
    return g[v].operands[0];
  }
  auto scaled = matchScale(g, v);
  // A factor of exactly 1 (Bessel at N = 2) has been simplified away: the
  // sum stands alone.
  if (!scaled && isOp(g, v, Op::Sum))
    scaled = std::make_pair(v, 1.0);
  if (!scaled || !isOp(g, scaled->first, Op::Sum) || g[scaled->first].axis != 0)
    return std::nullopt;
  ValueId x = g[scaled->first].operands[0];
  if (g[x].type.rank() != 2)
    return std::nullopt;
  double n = static_cast<double>(g[x].type.shape[0]);
  if (!approxEqual(scaled->second, 1.0 / (bessel ? n - 1 : n)))
    return std::nullopt;
  interior.insert({v, scaled->first});
  return x;
}

std::optional<BnMatch> matchBatchNorm(const Graph &g, ValueId out) {
  BnMatch m;
  const Node &add = g[out];
  if (add.op != Op::Add || add.type.rank() != 2)
    return std::nullopt;
  for (int i = 0; i < 2; ++i) {
    ValueId mul = add.operands[i];
    if (!isOp(g, mul, Op::Mul))
      continue;
    for (int j = 0; j < 2; ++j) {
      ValueId raw = g[mul].operands[j];
      if (!isOp(g, raw, Op::Mul))
        continue;
      std::set<ValueId> interior{mul, raw};
      // raw = d * inv (either order)
      for (int k = 0; k < 2; ++k) {
        ValueId d = g[raw].operands[k], inv = g[raw].operands[1 - k];
        if (!isOp(g, d, Op::Sub) || !isOp(g, inv, Op::Pow) || g[inv].scalar != -0.5)
          continue;
        ValueId varEps = g[inv].operands[0];
        if (!isOp(g, varEps, Op::Add))
          continue;
        std::optional<double> eps;
        ValueId var = 0;
        for (int e = 0; e < 2; ++e)
          if (auto c = constOf(g, g[varEps].operands[e])) {
            eps = *c;
            var = g[varEps].operands[1 - e];
          }
        if (!eps)
          continue;
        std::set<ValueId> chain = interior;
        chain.insert({d, inv, varEps});
        auto d2 = matchColumnMean(g, var, /*bessel=*/true, chain);
        if (!d2)
          continue;
        bool square = (isOp(g, *d2, Op::Pow) && g[*d2].scalar == 2.0 && g[*d2].operands[0] == d) ||
                      (isOp(g, *d2, Op::Mul) && g[*d2].operands[0] == d && g[*d2].operands[1] == d);
        if (!square)
          continue;
        chain.insert(*d2);
        ValueId x = g[d].operands[0];
        auto meanOf = matchColumnMean(g, g[d].operands[1], /*bessel=*/false, chain);
        if (!meanOf || *meanOf != x)
          continue;
        int64_t h = g[x].type.shape[1];
        ValueId gain = g[mul].operands[1 - j], bias = add.operands[1 - i];
        auto feature = [&](ValueId p) {
          const Shape &s = g[p].type.shape;
          return s == Shape{h} || s == Shape{1, h};
        };
        if (!feature(gain) || !feature(bias))
          continue;
        m = BnMatch{x, gain, bias, *eps, chain};
        return m;
      }
    }
  }
  return std::nullopt;
}

} // namespace

bool fuseBatchNorm(Graph &g, PassContext &ctx) {
  auto users = userLists(g);
  bool changed = false;
  size_t original = g.size();
  for (ValueId out = 0; out < original; ++out) {
    std::optional<BnMatch> m = matchBatchNorm(g, out);
    if (!m)
      continue;
    std::set<ValueId> all = m->interior;
    all.insert(out);
    std::string why;
    if (!usesStayInside(g, users, m->interior, all, why)) {
      ctx.remark(g[out].loc, "batchnorm chain not fused: " + why);
      continue;
    }
    Node fused(Op::BatchNorm, {m->x, m->gain, m->bias});
    fused.scalar = m->eps;
    fused.name = g[out].name;
    fused.loc = g[out].loc;
    ValueId bn = g.build(std::move(fused));
    g.replaceAllUses(out, bn);
    ctx.remark(g[bn].loc, "fused batchnorm chain into batchnorm");
    changed = true;
  }
  if (changed)
    g.compact();
  return changed;
}

} // namespace mlpc
