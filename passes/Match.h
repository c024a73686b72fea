// Tiny pattern-matching helpers shared by the fusion passes. A chain matches
// only if its intermediate values are used nowhere outside the chain: fusing
// would otherwise have to keep (and recompute) them anyway.
#pragma once

#include "passes/Pass.h"

#include <cmath>
#include <optional>
#include <set>
#include <string>

namespace mlpc {

inline bool isOp(const Graph &g, ValueId v, Op op) {
  return g[v].op == op;
}

inline std::optional<double> constOf(const Graph &g, ValueId v) {
  if (g[v].op == Op::Const)
    return g[v].scalar;
  return std::nullopt;
}

inline bool approxEqual(double a, double b) {
  // a == b first: equal infinities (Bessel's 1/(N-1) at N = 1) match.
  return a == b || std::fabs(a - b) <= 1e-6 * std::fabs(b);
}

// Matches `x * c`, `c * x` or `x / (1/c)` where c is a constant; returns {x, c}.
inline std::optional<std::pair<ValueId, double>> matchScale(const Graph &g, ValueId v) {
  const Node &n = g[v];
  if (n.op == Op::Mul) {
    if (auto c = constOf(g, n.operands[0]))
      return std::make_pair(n.operands[1], *c);
    if (auto c = constOf(g, n.operands[1]))
      return std::make_pair(n.operands[0], *c);
  }
  if (n.op == Op::Div)
    if (auto c = constOf(g, n.operands[1]))
      return std::make_pair(n.operands[0], 1.0 / *c);
  return std::nullopt;
}

// Checks that every value in `interior` is used only by members of `chain`
// (which includes `interior`); names the first offender in `why`.
inline bool usesStayInside(const Graph &g, const std::vector<std::vector<ValueId>> &users,
                           const std::set<ValueId> &interior, const std::set<ValueId> &chain,
                           std::string &why) {
  for (ValueId v : interior) {
    for (ValueId u : users[v])
      if (!chain.count(u)) {
        why = "'" + (g[v].name.empty() ? std::string(opInfo(g[v].op).name) : g[v].name) +
              "' has another user";
        return false;
      }
    for (const GraphOutput &o : g.outputs)
      if (o.value == v) {
        why = "'" + g[v].name + "' is a graph output";
        return false;
      }
  }
  return true;
}

} // namespace mlpc
