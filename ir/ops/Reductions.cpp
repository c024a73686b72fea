// Reductions over one axis (Node::axis), which stays as size 1; axis -1
// reduces every axis to a scalar. `sum(x)`, `sum(x, axis)`; mean divides by
// the count; max's gradient goes to the first arg-max only (as PyTorch's
// max(dim)), through max_mask. Codegen: LowerReduce.cpp.
#include "ir/ops/OpContext.h"

#include <cmath>

namespace mlpc {
namespace {

std::optional<TensorType> reduced(ShapeCheck &c) {
  if (!c.f32(0) || !c.axis(c.operand(0).rank()))
    return std::nullopt;
  if (c.node.axis == -1)
    return ShapeCheck::f32Type({});
  Shape s = c.operand(0).shape;
  s[c.node.axis] = 1;
  return ShapeCheck::f32Type(s);
}

llvm::Error reduce(EvalContext &k) {
  const Op op = k.n.op;
  AxisSplit s(k.shapeOf(0), k.n.axis);
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t i = 0; i < s.inner; ++i) {
      double acc = op == Op::Max ? -INFINITY : 0.0;
      for (int64_t j = 0; j < s.size; ++j) {
        double x = k.in(0)[(o * s.size + j) * s.inner + i];
        acc = op == Op::Max ? std::max(acc, x) : acc + x;
      }
      k.out[o * s.inner + i] = op == Op::Mean ? acc / s.size : acc;
    }
  return llvm::Error::success();
}

constexpr OpInfo reduction(const char *name, std::optional<Grads> (*gradient)(GradContext &)) {
  return {.name = name,
          .arity = 1,
          .kind = OpKind::Reduction,
          .syntax = OpSyntax::Call,
          .flags = opflag::AttrAxis,
          .usage = "(x) or (x, axis)",
          .kernel = Kernel::Reduction,
          .shape = reduced,
          .interpret = reduce,
          .gradient = gradient,
          .eval = nullptr,
          .costly = nullptr};
}

} // namespace

const OpInfo oprecord::Sum = reduction("sum", [](GradContext &c) -> std::optional<Grads> {
  return Grads{c.broadcastTo(c.d, c.shapeOf(0))};
});

const OpInfo oprecord::Mean = reduction("mean", [](GradContext &c) -> std::optional<Grads> {
  int64_t count = c.g[c.operand(0)].type.numel() / c.g[c.v].type.numel();
  return Grads{c.broadcastTo(c.mul(c.d, c.constant(1.0 / count)), c.shapeOf(0))};
});

const OpInfo oprecord::Max = reduction("max", [](GradContext &c) -> std::optional<Grads> {
  if (c.n.axis < 0) // a full max has no mask rule: not differentiable
    return std::nullopt;
  Node mask(Op::MaxMask, {c.operand(0)});
  mask.axis = c.n.axis;
  return Grads{c.mul(c.g.build(std::move(mask)), c.d)};
});

// 1 at the first arg-max along the axis, else 0 (max's gradient).
const OpInfo oprecord::MaxMask = {
    .name = "max_mask",
    .arity = 1,
    .kind = OpKind::Grad,
    .syntax = OpSyntax::Internal,
    .flags = opflag::AttrAxis,
    .usage = "",
    .kernel = Kernel::MaxMask,
    .shape = [](ShapeCheck &c) -> std::optional<TensorType> {
      if (!c.f32(0) || !c.axis(c.operand(0).rank()) || c.node.axis == -1)
        return std::nullopt;
      return c.operand(0);
    },
    .interpret = [](EvalContext &k) -> llvm::Error {
      AxisSplit s(k.shapeOf(0), k.n.axis);
      const std::vector<double> &x = k.in(0);
      for (int64_t o = 0; o < s.outer; ++o)
        for (int64_t i = 0; i < s.inner; ++i) {
          int64_t best = 0;
          for (int64_t j = 1; j < s.size; ++j)
            if (x[(o * s.size + j) * s.inner + i] > x[(o * s.size + best) * s.inner + i])
              best = j;
          k.out[(o * s.size + best) * s.inner + i] = 1.0;
        }
      return llvm::Error::success();
    },
    .gradient = nullptr,
    .eval = nullptr,
    .costly = nullptr,
};

} // namespace mlpc
