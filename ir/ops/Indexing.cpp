// Indexing by i32 tensors, and the gradients of that indexing.
//   gather      `C[X]`: table[V,E], i32 X[...] -> [..., E] (rows of the table)
//   scatter_add d[..., E], X -> [V,E]: the rows added back (gather's gradient)
//   pick        `pick(x, Y)`: x[N,K], i32 Y[N] -> [N], x[n, Y[n]]
//   unpick      d[N], Y -> [N,K]: d[n] at (n, Y[n]), else 0 (pick's gradient)
// An index outside its range is an interpreter error. Codegen: LowerIndex.cpp.
#include "ir/ops/OpContext.h"

namespace mlpc {
namespace {

// gather and scatter_add: row r of the indices selects table row X[r].
template <bool Gather> llvm::Error rows(EvalContext &k) {
  int64_t count = static_cast<int64_t>(k.in(1).size());
  int64_t e = Gather ? k.shapeOf(0)[1] : k.os()[1];
  for (int64_t r = 0; r < count; ++r) {
    auto index = k.label(1, r, Gather ? k.shapeOf(0)[0] : k.os()[0]);
    if (!index)
      return index.takeError();
    for (int64_t j = 0; j < e; ++j) {
      if (Gather)
        k.out[r * e + j] = k.in(0)[*index * e + j];
      else
        k.out[*index * e + j] += k.in(0)[r * e + j];
    }
  }
  return llvm::Error::success();
}

// pick and unpick: row n's element Y[n].
template <bool Pick> llvm::Error picked(EvalContext &k) {
  int64_t count = k.os()[0], classes = Pick ? k.shapeOf(0)[1] : k.os()[1];
  for (int64_t r = 0; r < count; ++r) {
    auto y = k.label(1, r, classes);
    if (!y)
      return y.takeError();
    if (Pick)
      k.out[r] = k.in(0)[r * classes + *y];
    else
      k.out[r * classes + *y] = k.in(0)[r];
  }
  return llvm::Error::success();
}

// The gradient of an indexing op: `inverse` of d and the same indices,
// shaped like the indexed operand.
template <Op Inverse> std::optional<Grads> scatterBack(GradContext &c) {
  Node back(Inverse, {c.d, c.operand(1)});
  back.shapeAttr = c.shapeOf(0);
  return Grads{c.g.build(std::move(back)), std::nullopt};
}

} // namespace

const OpInfo oprecord::Gather = {
    .name = "gather",
    .arity = 2,
    .kind = OpKind::Structural,
    .syntax = OpSyntax::Operator,
    .flags = 0,
    .usage = "",
    .kernel = Kernel::Gather,
    .shape = [](ShapeCheck &c) -> std::optional<TensorType> {
      if (!c.f32(0) || !c.rank(0, 2) || !c.i32(1))
        return std::nullopt;
      Shape s = c.operand(1).shape;
      s.push_back(c.operand(0).shape[1]);
      return ShapeCheck::f32Type(s);
    },
    .interpret = rows<true>,
    .gradient = scatterBack<Op::ScatterAdd>,
    .eval = nullptr,
    .costly = nullptr,
};

const OpInfo oprecord::ScatterAdd = {
    .name = "scatter_add",
    .arity = 2,
    .kind = OpKind::Grad,
    .syntax = OpSyntax::Internal,
    .flags = opflag::AttrShape,
    .usage = "",
    .kernel = Kernel::ScatterAdd,
    .shape = [](ShapeCheck &c) -> std::optional<TensorType> {
      if (!c.f32(0) || !c.i32(1) || c.node.shapeAttr.size() != 2)
        return std::nullopt;
      Shape expect = c.operand(1).shape;
      expect.push_back(c.node.shapeAttr[1]);
      if (c.operand(0).shape != expect) {
        c.fail(fmt::format("scatter_add rows {} do not match indices {}",
                           toString(c.operand(0).shape), toString(c.operand(1).shape)));
        return std::nullopt;
      }
      return ShapeCheck::f32Type(c.node.shapeAttr);
    },
    .interpret = rows<false>,
    .gradient = nullptr,
    .eval = nullptr,
    .costly = nullptr,
};

const OpInfo oprecord::Pick = {
    .name = "pick",
    .arity = 2,
    .kind = OpKind::Structural,
    .syntax = OpSyntax::Call,
    .flags = 0,
    .usage = "2 arguments (x, labels)",
    .kernel = Kernel::Pick,
    .shape = [](ShapeCheck &c) -> std::optional<TensorType> {
      if (!c.rowLabels(0, 1))
        return std::nullopt;
      return ShapeCheck::f32Type({c.operand(0).shape[0]});
    },
    .interpret = picked<true>,
    .gradient = scatterBack<Op::Unpick>,
    .eval = nullptr,
    .costly = nullptr,
};

const OpInfo oprecord::Unpick = {
    .name = "unpick",
    .arity = 2,
    .kind = OpKind::Grad,
    .syntax = OpSyntax::Internal,
    .flags = opflag::AttrShape,
    .usage = "",
    .kernel = Kernel::Unpick,
    .shape = [](ShapeCheck &c) -> std::optional<TensorType> {
      if (!c.f32(0) || !c.rank(0, 1) || !c.i32(1) || c.node.shapeAttr.size() != 2 ||
          c.node.shapeAttr[0] != c.operand(0).shape[0])
        return std::nullopt;
      return ShapeCheck::f32Type(c.node.shapeAttr);
    },
    .interpret = picked<false>,
    .gradient = nullptr,
    .eval = nullptr,
    .costly = nullptr,
};

} // namespace mlpc
