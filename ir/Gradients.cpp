#include "ir/Gradients.h"

#include "ir/ops/GradExpr.h"

namespace mlpc {

namespace {

ValueId sumAxis(Graph &g, ValueId x, int axis) {
  Node n(Op::Sum, {x});
  n.axis = axis;
  return g.build(std::move(n));
}

ValueId reshape(Graph &g, ValueId x, const Shape &shape) {
  if (g[x].type.shape == shape)
    return x;
  Node n(Op::Reshape, {x});
  n.shapeAttr = shape;
  return g.build(std::move(n));
}

ValueId broadcastTo(Graph &g, ValueId x, const Shape &shape) {
  Node n(Op::Broadcast, {x});
  n.shapeAttr = shape;
  return g.build(std::move(n));
}

ValueId matmul(Graph &g, ValueId a, ValueId b, bool transA, bool transB) {
  Node n(Op::MatMul, {a, b});
  n.transA = transA;
  n.transB = transB;
  return g.build(std::move(n));
}

} // namespace

ValueId reduceToShape(Graph &g, ValueId grad, const Shape &target) {
  Shape shape = g[grad].type.shape;
  ValueId cur = grad;
  size_t extra = shape.size() - target.size();
  for (size_t axis = 0; axis < shape.size(); ++axis) {
    bool broadcastAxis =
        axis < extra ? shape[axis] != 1 : (target[axis - extra] == 1 && shape[axis] != 1);
    if (broadcastAxis)
      cur = sumAxis(g, cur, static_cast<int>(axis));
  }
  return reshape(g, cur, target);
}

std::optional<std::vector<std::optional<ValueId>>> gradientRule(Graph &g, ValueId v, ValueId dout) {
  // Copy what we need: g.nodes may reallocate while we append.
  const Node n = g[v];
  auto operand = [&](size_t i) { return n.operands[i]; };
  auto shapeOf = [&](size_t i) { return g[n.operands[i]].type.shape; };
  auto mul = [&](ValueId a, ValueId b) { return g.make(Op::Mul, {a, b}); };
  auto c = [&](double x) { return g.makeConst(x); };
  const ValueId d = dout;
  using Grads = std::vector<std::optional<ValueId>>;

  switch (n.op) {
  case Op::Input:
  case Op::Param:
  case Op::State:
  case Op::Const:
    return Grads{};
    // The records of ir/ops/Elementwise.def: their `vjp` over graph values.
#define UNARY(Enum, Name, Syntax, Flags, Costly, Forward, Vjp)                                     \
  case Op::Enum: {                                                                                 \
    using namespace gradexpr;                                                                      \
    GVal x{&g, operand(0)}, y{&g, v}, d{&g, dout};                                                 \
    const double p = n.scalar;                                                                     \
    (void)x, (void)y, (void)d, (void)p;                                                            \
    return Grads{(Vjp).id};                                                                        \
  }
#define BINARY(Enum, Name, Syntax, Flags, Costly, Forward, VjpA, VjpB)                             \
  case Op::Enum: {                                                                                 \
    using namespace gradexpr;                                                                      \
    GVal a{&g, operand(0)}, b{&g, operand(1)}, y{&g, v}, d{&g, dout};                              \
    (void)a, (void)b, (void)y;                                                                     \
    ValueId da = (VjpA).id;                                                                        \
    ValueId db = (VjpB).id;                                                                        \
    return Grads{reduceToShape(g, da, shapeOf(0)), reduceToShape(g, db, shapeOf(1))};              \
  }
#include "ir/ops/Elementwise.def"
  case Op::Sum:
    return Grads{broadcastTo(g, d, shapeOf(0))};
  case Op::Mean: {
    int64_t count = g[operand(0)].type.numel() / g[v].type.numel();
    return Grads{broadcastTo(g, mul(d, c(1.0 / count)), shapeOf(0))};
  }
  case Op::Max: {
    // Gradient flows to the first arg-max only (as PyTorch's max(dim) does).
    Node mask(Op::MaxMask, {operand(0)});
    mask.axis = n.axis;
    if (n.axis < 0) // a full max of a [.] tensor: flatten the mask question away
      return std::nullopt;
    return Grads{mul(g.build(std::move(mask)), d)};
  }
  case Op::MatMul: {
    // C = op(A) @ op(B):  d op(A) = dC @ op(B)^T,  d op(B) = op(A)^T @ dC,
    // transposed back when the forward operand was itself transposed.
    ValueId a = operand(0), b = operand(1);
    ValueId da = n.transA ? matmul(g, b, d, n.transB, true) : matmul(g, d, b, false, !n.transB);
    ValueId db = n.transB ? matmul(g, d, a, true, n.transA) : matmul(g, a, d, !n.transA, false);
    return Grads{da, db};
  }
  case Op::Reshape:
    return Grads{reshape(g, d, shapeOf(0))};
  case Op::Broadcast:
    return Grads{reduceToShape(g, d, shapeOf(0))};
  case Op::Gather: {
    Node scatter(Op::ScatterAdd, {d, operand(1)});
    scatter.shapeAttr = shapeOf(0);
    return Grads{g.build(std::move(scatter)), std::nullopt};
  }
  case Op::Pick: {
    Node unpick(Op::Unpick, {d, operand(1)});
    unpick.shapeAttr = shapeOf(0);
    return Grads{g.build(std::move(unpick)), std::nullopt};
  }
  case Op::BatchNorm: {
    Node xhat(Op::BatchNormXhat, {operand(0)});
    xhat.scalar = n.scalar;
    ValueId xh = g.build(std::move(xhat));
    Node dx(Op::BatchNormGrad, {operand(0), operand(1), d});
    dx.scalar = n.scalar;
    return Grads{g.build(std::move(dx)), reduceToShape(g, mul(d, xh), shapeOf(1)),
                 reduceToShape(g, d, shapeOf(2))};
  }
  case Op::CrossEntropy:
    return Grads{g.make(Op::CrossEntropyGrad, {operand(0), operand(1), d}), std::nullopt};

  // Ops that only autodiff creates, and inference-only BatchNorm, are never
  // differentiated: training graphs are built from forward graphs.
  case Op::BatchNormInfer:
  case Op::MaxMask:
  case Op::ScatterAdd:
  case Op::Unpick:
  case Op::BatchNormXhat:
  case Op::BatchNormGrad:
  case Op::CrossEntropyGrad:
    return std::nullopt;
  }
  return std::nullopt;
}

} // namespace mlpc
