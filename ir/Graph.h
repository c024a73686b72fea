// The IR: a graph of SSA values with static shapes.
//
// Each node defines exactly one value, identified by its index (ValueId).
// `nodes` is kept in topological order (operands precede users) so every
// consumer (interpreter, codegen, printers) is a single forward walk. Passes
// rewrite by appending nodes and redirecting uses, then call compact(), which
// drops dead nodes and restores topological order deterministically.
#pragma once

#include "frontend/SourceLoc.h"
#include "ir/Type.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlpc {

enum class Op {
#define OP(Enum, Name, Arity, Kind) Enum,
#include "ir/Ops.def"
};

enum class OpKind { Leaf, Elementwise, Reduction, Structural, Fused, Grad };

struct OpInfo {
  const char *name;
  int arity;
  OpKind kind;
};
const OpInfo &opInfo(Op op);
std::optional<Op> opByName(const std::string &name);

// A parameter's initialiser, e.g. `randn * (5/3) / sqrt(T*E)` with dims
// already folded to numbers. Evaluated once per element by the runtime.
struct InitExpr {
  enum class Kind { Randn, Zeros, Ones, Number, Add, Sub, Mul, Div, Neg, Sqrt } kind;
  double value = 0;
  std::vector<InitExpr> args;
  std::string str() const;
};

using ValueId = uint32_t;

struct Node {
  Node() = default;
  explicit Node(Op op, std::vector<ValueId> operands = {})
      : op(op), operands(std::move(operands)) {}

  Op op = Op::Const;
  std::vector<ValueId> operands;
  TensorType type;
  // Attributes; which ones an op reads is stated in ir/Ops.def.
  double scalar = 0;                   // Const value, Pow exponent, BatchNorm epsilon
  int axis = -1;                       // reductions, MaxMask
  bool transA = false, transB = false; // MatMul
  Shape shapeAttr;                     // Reshape, Broadcast, ScatterAdd, Unpick
  // Source name (parameters, inputs, forward assignments, `d<name>` for gradients).
  std::string name;
  SourceLoc loc;
  std::shared_ptr<const InitExpr> init; // Param
  bool isTarget = false;                // Input: declared with `target`
};

struct GraphOutput {
  std::string name;
  ValueId value;
};

class Graph {
public:
  std::string name;
  std::vector<Node> nodes;
  std::vector<GraphOutput> outputs;

  const Node &operator[](ValueId v) const { return nodes[v]; }
  Node &operator[](ValueId v) { return nodes[v]; }
  size_t size() const { return nodes.size(); }

  ValueId add(Node node);
  // Appends a node (attributes already set) whose type comes from the op's
  // shape rule; the node must be well-typed (passes cannot produce user errors).
  ValueId build(Node node);
  ValueId make(Op op, std::vector<ValueId> operands, SourceLoc loc = {});
  ValueId makeConst(double value);

  std::optional<ValueId> output(const std::string &outputName) const;
  void setOutput(const std::string &outputName, ValueId v);

  std::vector<ValueId> leaves(Op op) const; // all Input / Param / State nodes, in order
  std::optional<ValueId> findLeaf(Op op, const std::string &leafName) const;

  std::vector<unsigned> useCounts() const; // outputs count as uses
  void replaceAllUses(ValueId from, ValueId to);

  // Drops nodes not reachable from an output (leaves are kept: they are the
  // interface, unless keepUnusedLeaves is false), and re-sorts the rest
  // topologically. Returns true if anything was removed or moved.
  bool compact(bool keepUnusedLeaves = true);
  std::vector<ValueId> reachableFromOutputs() const;
};

} // namespace mlpc
