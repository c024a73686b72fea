#include "ir/ShapeRules.h"

#include "ir/ops/OpContext.h"

#include <fmt/format.h>

namespace mlpc {

std::optional<int64_t> checkedNumel(const Shape &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(n, d, &n))
      return std::nullopt;
  return n;
}

std::optional<Shape> broadcastShapes(const Shape &a, const Shape &b) {
  size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1)
      return std::nullopt;
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {

// The arity from the record, then the record's shape rule (ir/ops/*.cpp).
std::optional<TensorType> ruleFor(const Graph &g, const Node &node, std::string &error) {
  const OpInfo &info = opInfo(node.op);
  if (info.arity >= 0 && node.operands.size() != static_cast<size_t>(info.arity)) {
    error = fmt::format("'{}' takes {} operand(s), got {}", info.name, info.arity,
                        node.operands.size());
    return std::nullopt;
  }
  ShapeCheck c{g, node, error};
  return info.shape(c);
}

} // namespace

std::optional<TensorType> inferType(const Graph &g, const Node &node, std::string &error) {
  // Attribute shapes come from the model file (reshape targets) or from
  // passes; check them before any rule multiplies their dims.
  if (!node.shapeAttr.empty()) {
    auto n = checkedNumel(node.shapeAttr);
    if (!n || *n > kMaxTensorElements) {
      error = fmt::format("'{}' target shape {} is too large: more than {} elements",
                          opInfo(node.op).name, toString(node.shapeAttr), kMaxTensorElements);
      return std::nullopt;
    }
  }
  std::optional<TensorType> t = ruleFor(g, node, error);
  // Each operand is within the limit, but a result need not be: broadcasting
  // [K, 1] with [1, K], an outer matmul, a gather of a large table.
  if (t) {
    auto n = checkedNumel(t->shape);
    if (!n || *n > kMaxTensorElements) {
      error = fmt::format("result of '{}' is too large: {} has more than {} elements",
                          opInfo(node.op).name, toString(t->shape), kMaxTensorElements);
      return std::nullopt;
    }
  }
  return t;
}

std::vector<std::string> verifyGraph(const Graph &g) {
  std::vector<std::string> problems;
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node &n = g[v];
    for (ValueId o : n.operands)
      if (o >= v) {
        problems.push_back(
            fmt::format("%{} ({}) uses %{} before it is defined", v, opInfo(n.op).name, o));
      }
    if (!problems.empty())
      continue;
    std::string error;
    std::optional<TensorType> t = inferType(g, n, error);
    if (!t)
      problems.push_back(fmt::format("%{} ({}): {}", v, opInfo(n.op).name, error));
    else if (*t != n.type)
      problems.push_back(fmt::format("%{} ({}) has type {} but its shape rule gives {}", v,
                                     opInfo(n.op).name, toString(n.type), toString(*t)));
  }
  for (const GraphOutput &o : g.outputs)
    if (o.value >= g.size())
      problems.push_back(fmt::format("output '{}' refers to a missing value", o.name));
  return problems;
}

} // namespace mlpc
