#include "ir/ShapeRules.h"

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

// A per-feature vector of a [N, H] activation may be written [H] or [1, H].
bool isFeatureVector(const TensorType &t, int64_t h) {
  return t.dtype == DType::F32 && (t.shape == Shape{h} || t.shape == Shape{1, h});
}

struct Checker {
  const Graph &g;
  const Node &node;
  std::string &error;

  const TensorType &operand(size_t i) const { return g[node.operands[i]].type; }
  const char *name() const { return opInfo(node.op).name; }

  bool fail(std::string message) {
    error = std::move(message);
    return false;
  }
  bool f32(size_t i) {
    if (operand(i).dtype == DType::F32)
      return true;
    return fail(fmt::format("'{}' expects a f32 tensor as operand {}, got {}", name(), i + 1,
                            toString(operand(i))));
  }
  bool i32(size_t i) {
    if (operand(i).dtype == DType::I32)
      return true;
    return fail(fmt::format("'{}' expects an i32 index tensor as operand {}, got {}", name(), i + 1,
                            toString(operand(i))));
  }
  bool rank(size_t i, int r) {
    if (operand(i).rank() == r)
      return true;
    return fail(fmt::format("'{}' expects a rank-{} tensor as operand {}, got {}", name(), r, i + 1,
                            toString(operand(i))));
  }
  bool sameShape(size_t i, size_t j) {
    if (operand(i).shape == operand(j).shape)
      return true;
    return fail(fmt::format("'{}' operands must have the same shape, got {} and {}", name(),
                            toString(operand(i).shape), toString(operand(j).shape)));
  }
  bool axis(int r) {
    if (node.axis == -1 || (node.axis >= 0 && node.axis < r))
      return true;
    return fail(fmt::format("axis {} is out of range for a rank-{} tensor", node.axis, r));
  }
  bool rowLabels(size_t x, size_t y) { // x[N, K] with labels Y[N]
    if (!f32(x) || !rank(x, 2) || !i32(y) || !rank(y, 1))
      return false;
    if (operand(y).shape[0] == operand(x).shape[0])
      return true;
    return fail(fmt::format("'{}' needs one label per row: {} rows but labels of shape {}", name(),
                            operand(x).shape[0], toString(operand(y).shape)));
  }
  bool features(size_t x, std::initializer_list<size_t> vectors) { // x[N, H], vectors [H]
    if (!f32(x) || !rank(x, 2))
      return false;
    int64_t h = operand(x).shape[1];
    for (size_t v : vectors)
      if (!isFeatureVector(operand(v), h))
        return fail(
            fmt::format("'{}' operand {} must have shape [{}] or [1, {}] to match {}, got {}",
                        name(), v + 1, h, h, toString(operand(x).shape), toString(operand(v))));
    return true;
  }
};

// Every elementwise record: f32 operands, numpy broadcasting.
std::optional<TensorType> elementwiseRule(Checker &c) {
  for (size_t i = 0; i < c.node.operands.size(); ++i)
    if (!c.f32(i))
      return std::nullopt;
  if (c.node.operands.size() == 1)
    return c.operand(0);
  if (auto s = broadcastShapes(c.operand(0).shape, c.operand(1).shape))
    return TensorType{DType::F32, *s};
  c.error = fmt::format("cannot broadcast {} and {} in '{}'", toString(c.operand(0).shape),
                        toString(c.operand(1).shape), c.name());
  return std::nullopt;
}

std::optional<TensorType> ruleFor(const Graph &g, const Node &node, std::string &error) {
  const OpInfo &info = opInfo(node.op);
  if (info.arity >= 0 && node.operands.size() != static_cast<size_t>(info.arity)) {
    error = fmt::format("'{}' takes {} operand(s), got {}", info.name, info.arity,
                        node.operands.size());
    return std::nullopt;
  }
  Checker c{g, node, error};
  auto f32 = [](Shape s) { return TensorType{DType::F32, std::move(s)}; };

  switch (node.op) {
  case Op::Input:
  case Op::Param:
  case Op::State:
    return node.type;
  case Op::Const:
    return f32({});

#define UNARY(Enum, ...) case Op::Enum:
#define BINARY(Enum, ...) case Op::Enum:
#include "ir/ops/Elementwise.def"
    return elementwiseRule(c);

  case Op::Sum:
  case Op::Mean:
  case Op::Max: {
    if (!c.f32(0) || !c.axis(c.operand(0).rank()))
      return std::nullopt;
    if (node.axis == -1)
      return f32({});
    Shape s = c.operand(0).shape;
    s[node.axis] = 1;
    return f32(s);
  }
  case Op::MaxMask:
    if (!c.f32(0) || !c.axis(c.operand(0).rank()) || node.axis == -1)
      return std::nullopt;
    return c.operand(0);

  case Op::MatMul: {
    if (!c.f32(0) || !c.f32(1) || !c.rank(0, 2) || !c.rank(1, 2))
      return std::nullopt;
    const Shape &a = c.operand(0).shape, &b = c.operand(1).shape;
    int64_t m = node.transA ? a[1] : a[0], ka = node.transA ? a[0] : a[1];
    int64_t kb = node.transB ? b[1] : b[0], n = node.transB ? b[0] : b[1];
    if (ka != kb) {
      error = fmt::format("matmul shapes do not match: {} @ {} (inner dimensions {} and {} differ)",
                          toString(a), toString(b), ka, kb);
      return std::nullopt;
    }
    return f32({m, n});
  }
  case Op::Reshape: {
    TensorType t{c.operand(0).dtype, node.shapeAttr};
    if (t.numel() != c.operand(0).numel()) {
      error = fmt::format("cannot reshape {} ({} elements) to {} ({} elements)",
                          toString(c.operand(0).shape), c.operand(0).numel(),
                          toString(node.shapeAttr), t.numel());
      return std::nullopt;
    }
    return t;
  }
  case Op::Broadcast: {
    auto s = broadcastShapes(c.operand(0).shape, node.shapeAttr);
    if (!c.f32(0) || !s || *s != node.shapeAttr) {
      if (error.empty())
        error = fmt::format("cannot broadcast {} to {}", toString(c.operand(0).shape),
                            toString(node.shapeAttr));
      return std::nullopt;
    }
    return f32(node.shapeAttr);
  }
  case Op::Gather: {
    if (!c.f32(0) || !c.rank(0, 2) || !c.i32(1))
      return std::nullopt;
    Shape s = c.operand(1).shape;
    s.push_back(c.operand(0).shape[1]);
    return f32(s);
  }
  case Op::Pick:
    if (!c.rowLabels(0, 1))
      return std::nullopt;
    return f32({c.operand(0).shape[0]});

  case Op::BatchNorm:
    // (At least 2 rows are needed to train: lowering checks that, since the
    // same forward graph is also lowered for one-row inference.)
    if (!c.features(0, {1, 2}))
      return std::nullopt;
    return c.operand(0);
  case Op::BatchNormInfer:
    if (!c.features(0, {1, 2, 3, 4}))
      return std::nullopt;
    return c.operand(0);
  case Op::CrossEntropy:
    if (!c.rowLabels(0, 1))
      return std::nullopt;
    return f32({});

  case Op::ScatterAdd: {
    if (!c.f32(0) || !c.i32(1) || node.shapeAttr.size() != 2)
      return std::nullopt;
    Shape expect = c.operand(1).shape;
    expect.push_back(node.shapeAttr[1]);
    if (c.operand(0).shape != expect) {
      error = fmt::format("scatter_add rows {} do not match indices {}",
                          toString(c.operand(0).shape), toString(c.operand(1).shape));
      return std::nullopt;
    }
    return f32(node.shapeAttr);
  }
  case Op::Unpick:
    if (!c.f32(0) || !c.rank(0, 1) || !c.i32(1) || node.shapeAttr.size() != 2 ||
        node.shapeAttr[0] != c.operand(0).shape[0])
      return std::nullopt;
    return f32(node.shapeAttr);
  case Op::BatchNormXhat:
    if (!c.f32(0) || !c.rank(0, 2))
      return std::nullopt;
    return c.operand(0);
  case Op::BatchNormGrad:
    if (!c.features(0, {1}) || !c.f32(2) || !c.sameShape(0, 2))
      return std::nullopt;
    return c.operand(0);
  case Op::CrossEntropyGrad:
    if (!c.rowLabels(0, 1) || !c.f32(2) || c.operand(2).rank() != 0)
      return std::nullopt;
    return c.operand(0);
  }
  error = "unknown op";
  return std::nullopt;
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
