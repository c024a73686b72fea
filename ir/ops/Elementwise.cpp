// The elementwise family: each record of ir/ops/Elementwise.def expanded
// into its OpInfo. Shape rule: f32 operands, numpy broadcasting. Interpreter
// and constant folding: `forward` in double. Gradient: `vjp` built as graph
// nodes (binary ones summed back over broadcast axes). Codegen: the fused
// elementwise kernel evaluates `forward` on f32 vectors (it expands the
// records itself: codegen/LowerElementwise.cpp).
#include "ir/ops/GradExpr.h"
#include "ir/ops/OpContext.h"
#include "ir/ops/OpMath.h"

namespace mlpc {
namespace {

std::optional<TensorType> broadcasting(ShapeCheck &c) {
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

llvm::Error elementwise(EvalContext &k) {
  const double p = k.n.scalar;
  auto eval = opInfo(k.n.op).eval;
  if (k.n.operands.size() == 1) {
    for (size_t i = 0; i < k.out.size(); ++i)
      k.out[i] = eval(&k.in(0)[i], p);
    return llvm::Error::success();
  }
  BroadcastIndexer ia(k.shapeOf(0), k.os()), ib(k.shapeOf(1), k.os());
  for (size_t i = 0; i < k.out.size(); ++i) {
    const double ab[2] = {k.in(0)[ia(i)], k.in(1)[ib(i)]};
    k.out[i] = eval(ab, p);
  }
  return llvm::Error::success();
}

} // namespace

#define UNARY(Enum, Name, Syntax, Flags, Costly, Forward, Vjp)                                     \
  const OpInfo oprecord::Enum = {                                                                  \
      .name = Name,                                                                                \
      .arity = 1,                                                                                  \
      .kind = OpKind::Elementwise,                                                                 \
      .syntax = OpSyntax::Syntax,                                                                  \
      .flags = Flags,                                                                              \
      .usage = "1 argument (x)",                                                                   \
      .kernel = Kernel::Elementwise,                                                               \
      .shape = broadcasting,                                                                       \
      .interpret = elementwise,                                                                    \
      .gradient = [](GradContext &c) -> std::optional<Grads> {                                     \
        using namespace gradexpr;                                                                  \
        GVal x{&c.g, c.operand(0)}, y{&c.g, c.v}, d{&c.g, c.d};                                    \
        const double p = c.n.scalar;                                                               \
        (void)x, (void)y, (void)d, (void)p;                                                        \
        return Grads{(Vjp).id};                                                                    \
      },                                                                                           \
      .eval = [](const double *in, double p) -> double {                                           \
        using namespace opmath;                                                                    \
        const double x = in[0];                                                                    \
        (void)p;                                                                                   \
        return Forward;                                                                            \
      },                                                                                           \
      .costly = [](double p) -> bool {                                                             \
        (void)p;                                                                                   \
        return Costly;                                                                             \
      },                                                                                           \
  };
#define BINARY(Enum, Name, Syntax, Flags, Costly, Forward, VjpA, VjpB)                             \
  const OpInfo oprecord::Enum = {                                                                  \
      .name = Name,                                                                                \
      .arity = 2,                                                                                  \
      .kind = OpKind::Elementwise,                                                                 \
      .syntax = OpSyntax::Syntax,                                                                  \
      .flags = Flags,                                                                              \
      .usage = "2 arguments (a, b)",                                                               \
      .kernel = Kernel::Elementwise,                                                               \
      .shape = broadcasting,                                                                       \
      .interpret = elementwise,                                                                    \
      .gradient = [](GradContext &c) -> std::optional<Grads> {                                     \
        using namespace gradexpr;                                                                  \
        GVal a{&c.g, c.operand(0)}, b{&c.g, c.operand(1)}, y{&c.g, c.v}, d{&c.g, c.d};             \
        (void)a, (void)b, (void)y;                                                                 \
        ValueId da = (VjpA).id;                                                                    \
        ValueId db = (VjpB).id;                                                                    \
        return Grads{c.reduceToShape(da, c.shapeOf(0)), c.reduceToShape(db, c.shapeOf(1))};        \
      },                                                                                           \
      .eval = [](const double *in, double p) -> double {                                           \
        using namespace opmath;                                                                    \
        const double a = in[0], b = in[1];                                                         \
        (void)p;                                                                                   \
        return Forward;                                                                            \
      },                                                                                           \
      .costly = [](double p) -> bool {                                                             \
        (void)p;                                                                                   \
        return Costly;                                                                             \
      },                                                                                           \
  };
#include "ir/ops/Elementwise.def"

} // namespace mlpc
