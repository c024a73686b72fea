// Leaves: the graph's interface (inputs, parameters, state) and constants.
// Their type is declared (a leaf's Node::type is set when it is created);
// the interpreter reads inputs, parameters and state from the bindings, by
// name; they have no operands, so nothing to differentiate; codegen gives
// them buffers (BufferPlan), not code.
#include "ir/ops/OpContext.h"

namespace mlpc {
namespace {

std::optional<TensorType> declaredType(ShapeCheck &c) {
  return c.node.type;
}

llvm::Error bound(EvalContext &k) {
  auto it = k.leaves.find(k.n.name);
  if (it == k.leaves.end())
    return evalError(fmt::format("no value bound for '{}'", k.n.name));
  if (it->second.size() != k.out.size())
    return evalError(fmt::format("'{}' has {} elements, expected {} for {}", k.n.name,
                                 it->second.size(), k.out.size(), toString(k.n.type)));
  k.out = it->second;
  return llvm::Error::success();
}

std::optional<Grads> noOperands(GradContext &) {
  return Grads{};
}

constexpr OpInfo leaf(const char *name) {
  return {.name = name,
          .arity = 0,
          .kind = OpKind::Leaf,
          .syntax = OpSyntax::Leaf,
          .flags = 0,
          .usage = "",
          .kernel = Kernel::None,
          .shape = declaredType,
          .interpret = bound,
          .gradient = noOperands,
          .eval = nullptr,
          .costly = nullptr};
}

} // namespace

const OpInfo oprecord::Input = leaf("input"); // i32 batch tensor (input or target)
const OpInfo oprecord::Param = leaf("param"); // trainable f32 tensor
const OpInfo oprecord::State = leaf("state"); // non-trainable f32 tensor

// An f32 scalar (Node::scalar); broadcasts like any scalar.
const OpInfo oprecord::Const = {
    .name = "const",
    .arity = 0,
    .kind = OpKind::Leaf,
    .syntax = OpSyntax::Leaf,
    .flags = opflag::AttrValue,
    .usage = "",
    .kernel = Kernel::None,
    .shape = [](ShapeCheck &) -> std::optional<TensorType> { return ShapeCheck::f32Type({}); },
    .interpret = [](EvalContext &k) -> llvm::Error {
      k.out[0] = k.n.scalar;
      return llvm::Error::success();
    },
    .gradient = noOperands,
    .eval = nullptr,
    .costly = nullptr,
};

} // namespace mlpc
