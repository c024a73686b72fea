// The IR: a graph of SSA values with static shapes.
//
// Each node defines exactly one value, identified by its index (ValueId).
// `nodes` is kept in topological order (operands precede users) so every
// consumer (interpreter, codegen, printers) is a single forward walk. Passes
// rewrite by appending nodes and redirecting uses, then call compact(), which
// drops dead nodes and restores topological order deterministically.
#pragma once

#include "ir/Op.h"
#include "ir/Type.h"
#include "support/SourceLoc.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlpc {

// A parameter's initialiser, e.g. `randn * (5/3) / sqrt(T*E)` with dims
// already folded to numbers. Evaluated once per element by the runtime.
struct InitExpr {
  enum class Kind { Randn, Zeros, Ones, Number, Add, Sub, Mul, Div, Neg, Sqrt } kind;
  double value = 0;
  std::vector<InitExpr> args;
  std::string str() const;
};

// What a State leaf holds: who sets it and whether checkpoints keep it.
enum class StateRole : uint8_t {
  Model,        // BatchNorm running statistics: saved, loaded, read by inference
  Optimizer,    // momentum buffers, Adam moments: saved; zero in a fresh run (--init)
  LearningRate, // the step's learning rate, set by the runtime before each step; not saved
  StepCount,    // the 1-based step number t (bias correction), set by the runtime; not
                // saved (a checkpoint's metadata holds the run position)
};

struct Node {
  Node() = default;
  explicit Node(Op op, std::vector<ValueId> operands = {})
      : op(op), operands(std::move(operands)) {}

  Op op = Op::Const;
  std::vector<ValueId> operands;
  TensorType type;
  // Attributes; which ones an op reads is its record's opflag::Attr* schema (ir/Op.h).
  double scalar = 0;                   // Const value, Pow exponent, BatchNorm epsilon
  int axis = -1;                       // reductions, MaxMask
  bool transA = false, transB = false; // MatMul
  Shape shapeAttr;                     // Reshape, Broadcast, ScatterAdd, Unpick
  // Source name (parameters, inputs, forward assignments, `d<name>` for gradients).
  std::string name;
  SourceLoc loc;
  std::shared_ptr<const InitExpr> init;   // Param
  bool isTarget = false;                  // Input: declared with `target`
  StateRole stateRole = StateRole::Model; // State
  // autodiff also outputs dloss/d(this value) (role Adjoint): the statistics
  // step's probes of activation gradients.
  bool probe = false;
};

// What an output means to the code that runs the graph. Every layer (the
// buffer planner, the runtime, the statistics, the tools) reads the role and
// its subjects as data; the output's name is only a label for printing and
// for binding buffers by name, and nothing parses it.
enum class OutputRole {
  Loss,           // the scalar objective
  Logits,         // [rows, classes] scores (inference graphs)
  Value,          // any other result (e.g. an activation exposed for statistics)
  Gradient,       // dloss/d(subject), subject a Param leaf (SGD may apply it in place)
  WriteBack,      // the next value of the leaf `subject` (State or Param): stored
                  // into it once nothing reads the old value any more
  Adjoint,        // dloss/d(subject), subject a forward value (a probe)
  BatchNormInput, // the input x of a batchnorm_infer whose running mean and
                  // variance are the State leaves subject and subject2
};
const char *toString(OutputRole role);

// The attributes node `n`'s op reads (its opflag::Attr* schema), as
// `name = value` text in a fixed order: the printer shows them and
// simplify's CSE compares them.
std::vector<std::string> attributes(const Node &n);

struct GraphOutput {
  std::string name; // unique among the graph's outputs
  ValueId value;
  OutputRole role = OutputRole::Value;
  // The leaf or value the role refers to (see OutputRole); compact() and
  // replaceAllUses() keep them up to date, and they count as reachable.
  std::optional<ValueId> subject, subject2;
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
  // The value of the first output with this role (Loss, Logits), if any.
  std::optional<ValueId> output(OutputRole role) const;
  // The value of the output with this role whose subject is the leaf or
  // value named `subject` (e.g. the Gradient of parameter "W1"), if any.
  std::optional<ValueId> output(OutputRole role, const std::string &subject) const;
  // Adds the output, or replaces the one with the same name.
  void setOutput(GraphOutput out);
  void setOutput(const std::string &outputName, ValueId v, OutputRole role = OutputRole::Value) {
    setOutput(GraphOutput{outputName, v, role, std::nullopt, std::nullopt});
  }

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
