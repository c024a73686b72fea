// matmul: `a @ b`, [M,K] @ [K,N] -> [M,N]; transA / transB (set by autodiff
// and the fusion passes) multiply by a transposed operand without moving it.
// Gradient of C = op(A) @ op(B): d op(A) = dC @ op(B)^T, d op(B) =
// op(A)^T @ dC, transposed back when the forward operand was itself
// transposed. Codegen: LowerMatMul.cpp.
#include "ir/ops/OpContext.h"

namespace mlpc {
namespace {

ValueId matmul(Graph &g, ValueId a, ValueId b, bool transA, bool transB) {
  Node n(Op::MatMul, {a, b});
  n.transA = transA;
  n.transB = transB;
  return g.build(std::move(n));
}

std::optional<TensorType> shape(ShapeCheck &c) {
  if (!c.f32(0) || !c.f32(1) || !c.rank(0, 2) || !c.rank(1, 2))
    return std::nullopt;
  const Node &n = c.node;
  const Shape &a = c.operand(0).shape, &b = c.operand(1).shape;
  int64_t m = n.transA ? a[1] : a[0], ka = n.transA ? a[0] : a[1];
  int64_t kb = n.transB ? b[1] : b[0], cols = n.transB ? b[0] : b[1];
  if (ka != kb) {
    c.fail(fmt::format("matmul shapes do not match: {} @ {} (inner dimensions {} and {} differ)",
                       toString(a), toString(b), ka, kb));
    return std::nullopt;
  }
  return ShapeCheck::f32Type({m, cols});
}

llvm::Error interpret(EvalContext &k) {
  const Node &n = k.n;
  const Shape &a = k.shapeOf(0), &b = k.shapeOf(1);
  int64_t m = k.os()[0], cols = k.os()[1], inner = n.transA ? a[0] : a[1];
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < inner; ++p) {
        double av = n.transA ? k.in(0)[p * a[1] + i] : k.in(0)[i * a[1] + p];
        double bv = n.transB ? k.in(1)[j * b[1] + p] : k.in(1)[p * b[1] + j];
        acc += av * bv;
      }
      k.out[i * cols + j] = acc;
    }
  return llvm::Error::success();
}

std::optional<Grads> gradient(GradContext &c) {
  const Node &n = c.n;
  ValueId a = c.operand(0), b = c.operand(1), d = c.d;
  ValueId da = n.transA ? matmul(c.g, b, d, n.transB, true) : matmul(c.g, d, b, false, !n.transB);
  ValueId db = n.transB ? matmul(c.g, d, a, true, n.transA) : matmul(c.g, a, d, !n.transA, false);
  return Grads{da, db};
}

} // namespace

const OpInfo oprecord::MatMul = {
    .name = "matmul",
    .arity = 2,
    .kind = OpKind::Structural,
    .syntax = OpSyntax::Operator,
    .flags = opflag::AttrTrans,
    .usage = "",
    .kernel = Kernel::MatMul,
    .shape = shape,
    .interpret = interpret,
    .gradient = gradient,
    .eval = nullptr,
    .costly = nullptr,
};

} // namespace mlpc
