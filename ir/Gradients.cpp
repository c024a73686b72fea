#include "ir/Gradients.h"

#include "ir/ops/OpContext.h"

namespace mlpc {

ValueId reduceToShape(Graph &g, ValueId grad, const Shape &target) {
  Shape shape = g[grad].type.shape;
  ValueId cur = grad;
  size_t extra = shape.size() - target.size();
  for (size_t axis = 0; axis < shape.size(); ++axis) {
    bool broadcastAxis =
        axis < extra ? shape[axis] != 1 : (target[axis - extra] == 1 && shape[axis] != 1);
    if (broadcastAxis) {
      Node sum(Op::Sum, {cur});
      sum.axis = static_cast<int>(axis);
      cur = g.build(std::move(sum));
    }
  }
  if (g[cur].type.shape == target)
    return cur;
  Node r(Op::Reshape, {cur});
  r.shapeAttr = target;
  return g.build(std::move(r));
}

// Each op's rule is its record's (ir/ops/*.cpp).
std::optional<Grads> gradientRule(Graph &g, ValueId v, ValueId dout) {
  const OpInfo &info = opInfo(g[v].op);
  if (!info.gradient)
    return std::nullopt;
  GradContext ctx{g, v, g[v], dout};
  return info.gradient(ctx);
}

} // namespace mlpc
