// fuse-cross-entropy: atomic softmax-cross-entropy chains -> cross_entropy.
//
// Matches, for logits L[N,K] and labels Y[N], a scalar loss of the form
//     -mean(pick(LP, Y))   or   mean(-pick(LP, Y))
// where LP is a log-softmax of L along axis 1 written in any of these forms
// (Z = L - max(L, 1), or Z = L without the stabilising shift):
//     log(exp(Z) * sum(exp(Z), 1) ^ -1)     (the seed's exercise 1, either order)
//     log(exp(Z) / sum(exp(Z), 1))
//     Z - log(sum(exp(Z), 1))              (log_softmax)
// and the log-sum-exp form
//     mean(reshape(LSE, [N]) - pick(L, Y))
// with LSE = log(sum(exp(L - M), 1)) + M, M = max(L, 1) (either operand
// order; logsumexp(L, 1)), or LSE = log(sum(exp(L), 1)).
// Rewrites the loss to cross_entropy(L, Y). The shift by max(L) cancels
// exactly in softmax, so every form is the same function:
//     loss = 1/N sum_n (log sum_k exp(L[n,k]) - L[n, Y[n]])
// and its gradient is the closed form (softmax(L) - onehot(Y)) / N, which
// autodiff then emits as one cross_entropy_grad op instead of ~10 VJPs.
// Does nothing if no chain matches, or if an intermediate (probs, counts, ...)
// has a user outside the chain (it would have to be computed anyway); under
// --verbose it says which value blocked the match.
#include "passes/Match.h"

namespace mlpc {
namespace {

struct Chain {
  ValueId logits = 0;
  std::set<ValueId> interior; // every node between logits and the loss
};

// Z: either L - max(L, 1) (L is the logits) or L itself.
void matchShift(const Graph &g, ValueId z, Chain &c) {
  const Node &n = g[z];
  if (n.op == Op::Sub && isOp(g, n.operands[1], Op::Max) && g[n.operands[1]].axis == 1 &&
      g[n.operands[1]].operands[0] == n.operands[0]) {
    c.logits = n.operands[0];
    c.interior.insert({z, n.operands[1]});
    return;
  }
  c.logits = z;
}

// S = sum(exp(Z), 1); returns Z.
std::optional<ValueId> matchSumExp(const Graph &g, ValueId s, ValueId expected, Chain &c) {
  if (!isOp(g, s, Op::Sum) || g[s].axis != 1 || g[s].operands[0] != expected)
    return std::nullopt;
  c.interior.insert(s);
  return expected;
}

std::optional<Chain> matchLogSoftmax(const Graph &g, ValueId lp) {
  Chain c;
  const Node &n = g[lp];
  c.interior.insert(lp);
  if (n.op == Op::Sub && isOp(g, n.operands[1], Op::Log)) { // Z - log(sum(exp(Z)))
    ValueId z = n.operands[0];
    ValueId logS = n.operands[1];
    ValueId s = g[logS].operands[0];
    if (!isOp(g, s, Op::Sum) || !isOp(g, g[s].operands[0], Op::Exp) ||
        g[g[s].operands[0]].operands[0] != z)
      return std::nullopt;
    ValueId e = g[s].operands[0];
    if (!matchSumExp(g, s, e, c))
      return std::nullopt;
    c.interior.insert({logS, e});
    matchShift(g, z, c);
    return c;
  }
  if (n.op != Op::Log)
    return std::nullopt;
  ValueId probs = n.operands[0];
  const Node &p = g[probs];
  std::optional<ValueId> counts, sum;
  if (p.op == Op::Div) {
    counts = p.operands[0];
    sum = p.operands[1];
  } else if (p.op == Op::Mul) {
    for (int i = 0; i < 2; ++i) {
      ValueId inv = p.operands[i];
      if (isOp(g, inv, Op::Pow) && g[inv].scalar == -1.0) {
        counts = p.operands[1 - i];
        sum = g[inv].operands[0];
        c.interior.insert(inv);
      }
    }
  }
  if (!counts || !isOp(g, *counts, Op::Exp) || !matchSumExp(g, *sum, *counts, c))
    return std::nullopt;
  c.interior.insert({probs, *counts});
  matchShift(g, g[*counts].operands[0], c);
  return c;
}

// LSE = log(sum(exp(L - M), 1)) + M with M = max(L, 1), or log(sum(exp(L), 1)):
// returns the chain (logits L) or nullopt.
std::optional<Chain> matchLogSumExp(const Graph &g, ValueId lse) {
  Chain c;
  std::optional<ValueId> shift; // M
  ValueId logS = lse;
  if (isOp(g, lse, Op::Add)) {
    for (int i = 0; i < 2 && !shift; ++i)
      if (isOp(g, g[lse].operands[i], Op::Log) && isOp(g, g[lse].operands[1 - i], Op::Max)) {
        logS = g[lse].operands[i];
        shift = g[lse].operands[1 - i];
      }
    if (!shift)
      return std::nullopt;
    c.interior.insert(lse);
  }
  if (!isOp(g, logS, Op::Log))
    return std::nullopt;
  ValueId s = g[logS].operands[0];
  if (!isOp(g, s, Op::Sum) || g[s].axis != 1 || !isOp(g, g[s].operands[0], Op::Exp))
    return std::nullopt;
  ValueId e = g[s].operands[0];
  c.interior.insert({logS, s, e});
  ValueId z = g[e].operands[0];
  matchShift(g, z, c);
  if (shift) { // the shift inside must be the M added back
    if (c.logits == z || g[z].operands[1] != *shift)
      return std::nullopt;
  } else if (c.logits != z) {
    return std::nullopt; // log(sum(exp(L - M))) without + M is not a log-sum-exp
  }
  return c;
}

// mean(A - pick(L, Y)) with A = LSE [N] or reshape(LSE [N, 1], [N]).
std::optional<Chain> matchLogSumExpLoss(const Graph &g, ValueId loss, ValueId &labels) {
  const Node &n = g[loss];
  if (n.op != Op::Mean || n.axis != -1 || !isOp(g, n.operands[0], Op::Sub))
    return std::nullopt;
  ValueId sub = n.operands[0];
  ValueId a = g[sub].operands[0], pick = g[sub].operands[1];
  if (!isOp(g, pick, Op::Pick) || g[a].type.shape != g[pick].type.shape)
    return std::nullopt;
  std::set<ValueId> extra{sub, pick};
  if (isOp(g, a, Op::Reshape)) {
    extra.insert(a);
    a = g[a].operands[0];
  }
  std::optional<Chain> c = matchLogSumExp(g, a);
  if (!c || c->logits != g[pick].operands[0])
    return std::nullopt;
  c->interior.insert(extra.begin(), extra.end());
  labels = g[pick].operands[1];
  return c;
}

// -mean(pick(LP, Y)) or mean(-pick(LP, Y)) with LP a log-softmax of L.
std::optional<Chain> matchLogSoftmaxLoss(const Graph &g, ValueId loss, ValueId &labels) {
  const Node &n = g[loss];
  if (n.op != Op::Neg && n.op != Op::Mean)
    return std::nullopt;
  ValueId inner = n.operands[0];
  Op second = n.op == Op::Neg ? Op::Mean : Op::Neg;
  if (!isOp(g, inner, second) || (second == Op::Mean && g[inner].axis != -1))
    return std::nullopt;
  if (n.op == Op::Mean && n.axis != -1)
    return std::nullopt;
  ValueId pick = g[inner].operands[0];
  if (!isOp(g, pick, Op::Pick))
    return std::nullopt;
  std::optional<Chain> chain = matchLogSoftmax(g, g[pick].operands[0]);
  if (!chain)
    return std::nullopt;
  labels = g[pick].operands[1];
  chain->interior.insert({inner, pick});
  return chain;
}

} // namespace

bool fuseCrossEntropy(Graph &g, PassContext &ctx) {
  auto users = userLists(g);
  bool changed = false;
  size_t original = g.size();
  for (ValueId loss = 0; loss < original; ++loss) {
    const Node &n = g[loss];
    if (n.type.rank() != 0)
      continue;
    ValueId labels = 0;
    std::optional<Chain> chain = matchLogSoftmaxLoss(g, loss, labels);
    if (!chain)
      chain = matchLogSumExpLoss(g, loss, labels);
    if (!chain)
      continue;
    std::set<ValueId> all = chain->interior;
    all.insert(loss);
    std::string why;
    if (!usesStayInside(g, users, chain->interior, all, why)) {
      ctx.remark(n.loc, "softmax-cross-entropy chain not fused: " + why);
      continue;
    }
    Node fused(Op::CrossEntropy, {chain->logits, labels});
    fused.name = g[loss].name;
    fused.loc = g[loss].loc;
    ValueId ce = g.build(std::move(fused));
    g.replaceAllUses(loss, ce);
    ctx.remark(g[ce].loc, "fused softmax-cross-entropy chain into cross_entropy");
    changed = true;
  }
  if (changed)
    g.compact();
  return changed;
}

} // namespace mlpc
