// Layout ops. reshape(x, [dims]): the same elements (row-major) under
// another shape; a view (no code), its gradient reshapes back.
// broadcast(x, [dims]): numpy broadcasting of x to exactly `dims` (says a
// broadcast is meant, which silences the lowering's warning); its gradient
// sums back over the broadcast axes; codegen fuses it into elementwise loops.
#include "ir/ops/OpContext.h"

namespace mlpc {

const OpInfo oprecord::Reshape = {
    .name = "reshape",
    .arity = 1,
    .kind = OpKind::Structural,
    .syntax = OpSyntax::Call,
    .flags = opflag::AttrShape,
    .usage = "2 arguments (x, [dims])",
    .kernel = Kernel::None,
    .shape = [](ShapeCheck &c) -> std::optional<TensorType> {
      TensorType t{c.operand(0).dtype, c.node.shapeAttr};
      if (t.numel() != c.operand(0).numel()) {
        c.fail(fmt::format("cannot reshape {} ({} elements) to {} ({} elements)",
                           toString(c.operand(0).shape), c.operand(0).numel(),
                           toString(c.node.shapeAttr), t.numel()));
        return std::nullopt;
      }
      return t;
    },
    .interpret = [](EvalContext &k) -> llvm::Error {
      k.out = k.in(0);
      return llvm::Error::success();
    },
    .gradient = [](GradContext &c) -> std::optional<Grads> {
      return Grads{c.reshape(c.d, c.shapeOf(0))};
    },
    .eval = nullptr,
    .costly = nullptr,
};

const OpInfo oprecord::Broadcast = {
    .name = "broadcast",
    .arity = 1,
    .kind = OpKind::Structural,
    .syntax = OpSyntax::Call,
    .flags = opflag::AttrShape,
    .usage = "2 arguments (x, [dims])",
    .kernel = Kernel::Elementwise,
    .shape = [](ShapeCheck &c) -> std::optional<TensorType> {
      auto s = broadcastShapes(c.operand(0).shape, c.node.shapeAttr);
      if (!c.f32(0) || !s || *s != c.node.shapeAttr) {
        if (c.error.empty())
          c.fail(fmt::format("cannot broadcast {} to {}", toString(c.operand(0).shape),
                             toString(c.node.shapeAttr)));
        return std::nullopt;
      }
      return ShapeCheck::f32Type(c.node.shapeAttr);
    },
    .interpret = [](EvalContext &k) -> llvm::Error {
      BroadcastIndexer ia(k.shapeOf(0), k.os());
      for (size_t i = 0; i < k.out.size(); ++i)
        k.out[i] = k.in(0)[ia(i)];
      return llvm::Error::success();
    },
    .gradient = [](GradContext &c) -> std::optional<Grads> {
      return Grads{c.reduceToShape(c.d, c.shapeOf(0))};
    },
    .eval = nullptr,
    .costly = nullptr,
};

} // namespace mlpc
