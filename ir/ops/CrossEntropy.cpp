// cross_entropy(logits, Y): logits[N,K], i32 labels Y[N] -> the scalar
//   mean over rows n of  log(sum_j exp(logits[n,j])) - logits[n, Y[n]]
// (PyTorch's F.cross_entropy), computed with the row max subtracted so that
// exp cannot overflow. Gradient: cross_entropy_grad(logits, Y, dloss) =
//   (softmax(logits) - onehot(Y)) / N * dloss.
// fuse-cross-entropy (passes/) turns the atomic forms into this op.
// Codegen: LowerFused.cpp (both ops).
#include "ir/ops/OpContext.h"

#include <cmath>

namespace mlpc {
namespace {

template <bool Grad> llvm::Error interpret(EvalContext &k) {
  const Shape &ls = k.shapeOf(0);
  int64_t count = ls[0], classes = ls[1];
  for (int64_t r = 0; r < count; ++r) {
    auto y = k.label(1, r, classes);
    if (!y)
      return y.takeError();
    const double *row = &k.in(0)[r * classes];
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < classes; ++j)
      mx = std::max(mx, row[j]);
    for (int64_t j = 0; j < classes; ++j)
      sum += std::exp(row[j] - mx);
    if (!Grad) {
      k.out[0] += (std::log(sum) + mx - row[*y]) / count;
    } else {
      for (int64_t j = 0; j < classes; ++j)
        k.out[r * classes + j] = (std::exp(row[j] - mx) / sum - (j == *y)) / count * k.in(2)[0];
    }
  }
  return llvm::Error::success();
}

} // namespace

const OpInfo oprecord::CrossEntropy = {
    .name = "cross_entropy",
    .arity = 2,
    .kind = OpKind::Fused,
    .syntax = OpSyntax::Call,
    .flags = 0,
    .usage = "2 arguments (logits, labels)",
    .kernel = Kernel::CrossEntropy,
    .shape = [](ShapeCheck &c) -> std::optional<TensorType> {
      if (!c.rowLabels(0, 1))
        return std::nullopt;
      return ShapeCheck::f32Type({});
    },
    .interpret = interpret<false>,
    .gradient = [](GradContext &c) -> std::optional<Grads> {
      return Grads{c.g.make(Op::CrossEntropyGrad, {c.operand(0), c.operand(1), c.d}), std::nullopt};
    },
    .eval = nullptr,
    .costly = nullptr,
};

const OpInfo oprecord::CrossEntropyGrad = {
    .name = "cross_entropy_grad",
    .arity = 3,
    .kind = OpKind::Grad,
    .syntax = OpSyntax::Internal,
    .flags = 0,
    .usage = "",
    .kernel = Kernel::CrossEntropy,
    .shape = [](ShapeCheck &c) -> std::optional<TensorType> {
      if (!c.rowLabels(0, 1) || !c.f32(2) || c.operand(2).rank() != 0)
        return std::nullopt;
      return c.operand(0);
    },
    .interpret = interpret<true>,
    .gradient = nullptr,
    .eval = nullptr,
    .costly = nullptr,
};

} // namespace mlpc
