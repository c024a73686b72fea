// simplify: CSE, constant folding, algebraic identities, DCE.
//
// Contract. Matches, to a fixed point:
//   - constant folding: an elementwise op whose operands are all scalar
//     constants becomes one constant (so `1/N * sum(x, 0)` exposes 1/32 to
//     the fusion passes, and autodiff's `1 - 0` style leftovers vanish);
//   - identities, only when the result has the surviving operand's shape (a
//     scalar 1 that broadcasts x to a larger shape is not an identity):
//     x*1, 1*x, x/1, x+0, 0+x, x-0 -> x;  x*0, 0*x -> broadcast(0) (zero
//     constants only: NaN/Inf semantics of a real 0*x are deliberately
//     dropped, as every ML compiler does);  neg(neg(x)) -> x;  x^1 -> x;
//     reshape/broadcast to the operand's own shape -> operand;
//     reshape(reshape(x)) -> reshape(x);
//   - CSE: nodes with the same op, operands and attributes (the ones the op
//     reads, from its record) are merged (leaves never: two parameters with
//     equal shapes are different values; constants are leaves that do merge);
//   - DCE: Graph::compact() drops everything not reachable from an output.
// simplifyBeforeFusion is the same minus one identity: a sum/mean/max over
// an axis of size 1 stays. The fusion patterns are written with their batch
// reductions, and at N = 1 (one-row inference) collapsing `sum(x, 0)` would
// turn batchnorm's `x - mean(x)` into `x - x` before fuse-batchnorm saw it.
// Does nothing on a graph that is already minimal.
#include "passes/Pass.h"

#include <cmath>
#include <map>
#include <tuple>

namespace mlpc {

std::vector<std::vector<ValueId>> userLists(const Graph &g) {
  std::vector<std::vector<ValueId>> users(g.size());
  for (ValueId v = 0; v < g.size(); ++v)
    for (ValueId o : g[v].operands)
      users[o].push_back(v);
  return users;
}

namespace {

std::optional<double> constantValue(const Graph &g, ValueId v) {
  if (g[v].op == Op::Const)
    return g[v].scalar;
  return std::nullopt;
}

bool isConst(const Graph &g, ValueId v, double value) {
  auto c = constantValue(g, v);
  return c && *c == value;
}

// An elementwise record's `forward` on scalar constants (ir/ops/Elementwise.def).
std::optional<double> foldScalar(const Node &n, const std::vector<double> &x) {
  if (auto eval = opInfo(n.op).eval)
    return eval(x.data(), n.scalar);
  return std::nullopt;
}

// Returns the value `v` can be replaced with, or nullopt.
std::optional<ValueId> rewrite(Graph &g, ValueId v, bool collapseSizeOneReductions) {
  const Node n = g[v];
  const Shape &shape = n.type.shape;
  auto sameShape = [&](ValueId x) { return g[x].type.shape == shape; };

  if (opInfo(n.op).kind == OpKind::Elementwise && n.type.rank() == 0) {
    std::vector<double> args;
    for (ValueId o : n.operands)
      if (auto c = constantValue(g, o))
        args.push_back(*c);
    if (args.size() == n.operands.size())
      if (auto folded = foldScalar(n, args))
        return g.makeConst(*folded);
  }
  switch (n.op) {
  case Op::Mul:
    for (int i = 0; i < 2; ++i) {
      ValueId x = n.operands[i], other = n.operands[1 - i];
      if (isConst(g, x, 1.0) && sameShape(other))
        return other;
      if (isConst(g, x, 0.0)) {
        if (shape.empty())
          return x;
        Node b(Op::Broadcast, {x});
        b.shapeAttr = shape;
        return g.build(std::move(b));
      }
    }
    break;
  case Op::Div:
    if (isConst(g, n.operands[1], 1.0) && sameShape(n.operands[0]))
      return n.operands[0];
    break;
  case Op::Add:
    for (int i = 0; i < 2; ++i)
      if (isConst(g, n.operands[i], 0.0) && sameShape(n.operands[1 - i]))
        return n.operands[1 - i];
    break;
  case Op::Sub:
    if (isConst(g, n.operands[1], 0.0) && sameShape(n.operands[0]))
      return n.operands[0];
    break;
  case Op::Neg:
    if (g[n.operands[0]].op == Op::Neg)
      return g[n.operands[0]].operands[0];
    break;
  case Op::Pow:
    if (n.scalar == 1.0)
      return n.operands[0];
    break;
  case Op::Reshape:
  case Op::Broadcast:
    if (sameShape(n.operands[0]))
      return n.operands[0];
    if (n.op == Op::Reshape && g[n.operands[0]].op == Op::Reshape) {
      Node r(Op::Reshape, {g[n.operands[0]].operands[0]});
      r.shapeAttr = n.shapeAttr;
      return g.build(std::move(r));
    }
    break;
  default: // no identity of its own (a reduction's is below)
    break;
  }
  // Reducing an axis of size 1 (or a scalar) is the identity, for every
  // reduction (sum, mean, max: the records of kind Reduction).
  if (opInfo(n.op).kind == OpKind::Reduction && collapseSizeOneReductions &&
      sameShape(n.operands[0]))
    return n.operands[0];
  return std::nullopt;
}

// Op, operands and the attributes the op reads (its schema, as printed:
// doubles print exactly, so equal text is an equal value).
using CseKey = std::tuple<Op, std::vector<ValueId>, std::vector<std::string>>;

bool cse(Graph &g) {
  std::map<CseKey, ValueId> seen;
  bool changed = false;
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node &n = g[v];
    if (opInfo(n.op).kind == OpKind::Leaf && n.op != Op::Const)
      continue;
    CseKey key{n.op, n.operands, attributes(n)};
    auto [it, inserted] = seen.emplace(key, v);
    if (!inserted) {
      // Keep the earlier node; it inherits a source name if it had none.
      if (g[it->second].name.empty())
        g[it->second].name = n.name;
      g.replaceAllUses(v, it->second);
      changed = true;
    }
  }
  return changed;
}

bool simplifyImpl(Graph &g, bool collapseSizeOneReductions) {
  bool changedAny = false;
  for (int round = 0; round < 100; ++round) {
    bool changed = false;
    size_t original = g.size();
    for (ValueId v = 0; v < original; ++v) {
      if (auto replacement = rewrite(g, v, collapseSizeOneReductions)) {
        if (g[*replacement].name.empty())
          g[*replacement].name = g[v].name;
        g.replaceAllUses(v, *replacement);
        changed = true;
      }
    }
    changed |= cse(g);
    changed |= g.compact();
    changedAny |= changed;
    if (!changed)
      break;
  }
  return changedAny;
}

} // namespace

bool simplify(Graph &g, PassContext &) {
  return simplifyImpl(g, true);
}

bool simplifyBeforeFusion(Graph &g, PassContext &) {
  return simplifyImpl(g, false);
}

} // namespace mlpc
