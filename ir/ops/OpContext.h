// What an op record's functions receive (ir/Op.h: OpInfo), and the helpers
// the family files (ir/ops/*.cpp) write their rules with:
//   ShapeCheck   shape rule: the node, its operands' types; checks that
//                report a user-facing message and return false
//   EvalContext  interpreter kernel: the operands' values in double and the
//                node's zeroed output buffer
//   GradContext  gradient rule: the graph to append to, the node (a copy:
//                the graph may reallocate) and d = dloss/d(node)
#pragma once

#include "ir/Gradients.h"
#include "ir/Graph.h"
#include "ir/ShapeRules.h"

#include <fmt/format.h>
#include <llvm/Support/Error.h>

#include <map>
#include <string>
#include <vector>

namespace mlpc {

// Each op's record, defined in its family's file (the registry's table in
// ir/ops/Registry.cpp names them all).
namespace oprecord {
#define OP(Enum) extern const OpInfo Enum;
#include "ir/Ops.def"
} // namespace oprecord

struct ShapeCheck {
  const Graph &g;
  const Node &node;
  std::string &error;

  const TensorType &operand(size_t i) const { return g[node.operands[i]].type; }
  const char *name() const { return opInfo(node.op).name; }
  static TensorType f32Type(Shape s) { return TensorType{DType::F32, std::move(s)}; }

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
};

// Maps a flat index of `out` to the flat index of an operand broadcast to it.
struct BroadcastIndexer {
  std::vector<int64_t> outShape, strides; // operand strides per output axis (0 = broadcast)
  BroadcastIndexer(const Shape &operand, const Shape &out)
      : outShape(out), strides(broadcastStrides(operand, out)) {}
  int64_t operator()(int64_t flat) const {
    int64_t index = 0;
    for (size_t a = outShape.size(); a-- > 0;) {
      index += (flat % outShape[a]) * strides[a];
      flat /= outShape[a];
    }
    return index;
  }
};

inline llvm::Error evalError(std::string message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

struct EvalContext {
  const Graph &g;
  const Node &n;
  const std::vector<std::vector<double>> &val;              // every earlier node's value
  std::vector<double> &out;                                 // this node's, zero-filled
  const std::map<std::string, std::vector<double>> &leaves; // bindings by name

  const std::vector<double> &in(size_t i) const { return val[n.operands[i]]; }
  const Shape &shapeOf(size_t i) const { return g[n.operands[i]].type.shape; }
  const Shape &os() const { return n.type.shape; }

  // Operand `operand`'s element `row` as an index into [0, classes).
  llvm::Expected<int64_t> label(size_t operand, int64_t row, int64_t classes) const {
    double y = in(operand)[row];
    if (y < 0 || y >= classes)
      return evalError(fmt::format("'{}': label {} in row {} is outside [0, {})", opInfo(n.op).name,
                                   y, row, classes));
    return static_cast<int64_t>(y);
  }
};

struct GradContext {
  Graph &g;
  ValueId v;    // the node
  const Node n; // a copy of it
  ValueId d;    // dloss/d(v), v's shape

  ValueId operand(size_t i) const { return n.operands[i]; }
  Shape shapeOf(size_t i) const { return g[n.operands[i]].type.shape; }
  ValueId mul(ValueId a, ValueId b) { return g.make(Op::Mul, {a, b}); }
  ValueId constant(double x) { return g.makeConst(x); }
  ValueId sumAxis(ValueId x, int axis) {
    Node s(Op::Sum, {x});
    s.axis = axis;
    return g.build(std::move(s));
  }
  ValueId reshape(ValueId x, const Shape &shape) {
    if (g[x].type.shape == shape)
      return x;
    Node r(Op::Reshape, {x});
    r.shapeAttr = shape;
    return g.build(std::move(r));
  }
  ValueId broadcastTo(ValueId x, const Shape &shape) {
    Node b(Op::Broadcast, {x});
    b.shapeAttr = shape;
    return g.build(std::move(b));
  }
  // `grad` summed over the axes along which a value of shape `target` was
  // broadcast, then reshaped to `target` (undoes numpy broadcasting).
  ValueId reduceToShape(ValueId grad, const Shape &target) {
    return mlpc::reduceToShape(g, grad, target);
  }
};

} // namespace mlpc
