// The op registry: every IR op is one record (OpInfo), defined once, in the
// file of its family under ir/ops/. A record holds everything the layers
// need to know about the op: its name and model-file syntax, arity,
// attribute schema and traits, shape rule (which is also the verifier),
// interpreter kernel, gradient rule, constant-folding rule and the codegen
// kernel that emits it. ir/Ops.def lists the ops (the Op enum); the table
// that maps each to its record (ir/ops/Registry.cpp) names every record, so
// an op without a record does not link, and the family files are compiled
// with -Werror=missing-field-initializers, so a record that forgets a field
// does not compile (a concern an op does not have is written as nullptr).
// What passes know about particular ops stays in the pass: algebraic
// identities (x * 1, reshape of a reshape) in passes/Simplify.cpp, fusion
// patterns in their passes; an op they do not mention is left alone.
#pragma once

#include "ir/Type.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace llvm {
class Error;
}

namespace mlpc {

using ValueId = uint32_t;

// The attribute schema and traits of an op (OpInfo::flags).
namespace opflag {
enum : unsigned {
  Nonlinearity = 1u << 0, // a layer activation (tanh, relu, ...): `train --stats` probes it
  AttrExponent = 1u << 1, // Node::scalar is an exponent
  AttrEps = 1u << 2,      // Node::scalar is BatchNorm's epsilon
  AttrAxis = 1u << 3,     // Node::axis
  AttrTrans = 1u << 4,    // Node::transA / transB
  AttrShape = 1u << 5,    // Node::shapeAttr
  AttrValue = 1u << 6,    // Node::scalar is the value (Const)
};
} // namespace opflag

enum class Op {
#define OP(Enum) Enum,
#include "ir/Ops.def"
};

// Leaf: no operands (graph inputs, parameters, state, constants);
// Elementwise: broadcasting f32 records (ir/ops/Elementwise.def); Reduction:
// one axis, kept as size 1; Structural: layout and indexing; Fused: closed
// forms of compound ops; Grad: ops that only autodiff creates.
enum class OpKind { Leaf, Elementwise, Reduction, Structural, Fused, Grad };
// Call: `name(args)` in model files; Operator: written with an operator or
// by another rule; Internal: only passes create it; Leaf: a declaration.
enum class OpSyntax { Call, Operator, Internal, Leaf };

// The code generator's entry for an op: which kernel of codegen/ emits it.
// ir/ does not depend on codegen/, so the record names the kernel and
// codegen's dispatch (GraphLowering::lowerNode) has one case per kernel,
// without `default:` (the build uses -Werror=switch): a kernel added here
// that codegen does not emit does not compile. An op that reuses a kernel
// (an elementwise record, a view) needs nothing in codegen.
enum class Kernel {
  None,          // no code: leaves, constants, views (reshape)
  Elementwise,   // a fused elementwise loop nest (LowerElementwise.cpp)
  Reduction,     // LowerReduce.cpp
  MaxMask,       // LowerReduce.cpp
  MatMul,        // LowerMatMul.cpp
  Gather,        // LowerIndex.cpp
  ScatterAdd,    // LowerIndex.cpp
  Pick,          // LowerIndex.cpp
  Unpick,        // LowerIndex.cpp
  BatchNormGrad, // LowerFused.cpp
  CrossEntropy,  // LowerFused.cpp (cross_entropy and its gradient)
};

// What a record's functions receive (ir/ops/OpContext.h).
struct ShapeCheck;  // the node and its operands' types; reports the error
struct EvalContext; // the node's operand values (double) and its output buffer
struct GradContext; // the graph being extended, the node and dloss/d(node)

using Grads = std::vector<std::optional<ValueId>>; // per operand; nullopt: no gradient (i32)

struct OpInfo {
  const char *name; // printed name, and the model-file function name (Call syntax)
  int arity;        // operand count (-1: checked by the shape rule)
  OpKind kind;
  OpSyntax syntax;
  unsigned flags;    // opflag bits: the attributes the op reads, and its traits
  const char *usage; // Call syntax: the arguments, for diagnostics ("3 arguments (x, gain, bias)")
  Kernel kernel;     // how codegen emits it
  // The result type from the operands' types and the attributes, or nullopt
  // with a user-facing message (lower-case, naming the shapes involved).
  std::optional<TensorType> (*shape)(ShapeCheck &);
  // The value in double (the reference interpreter); an error for bad data
  // (an out-of-range index, a missing binding).
  llvm::Error (*interpret)(EvalContext &);
  // dloss/d(each operand), as nodes appended to the graph; nullptr: not
  // differentiable (ops that only autodiff creates, inference-only ops).
  std::optional<Grads> (*gradient)(GradContext &);
  // Elementwise records only (else nullptr): the value in double of one
  // element from its operands' elements (p: the scalar attribute), for
  // constant folding; whether codegen treats it as costly.
  double (*eval)(const double *operands, double p);
  bool (*costly)(double p);

  bool has(unsigned flag) const { return (flags & flag) != 0; }
};

const OpInfo &opInfo(Op op);
std::optional<Op> opByName(const std::string &name);
// Every op, in enum order (the tests iterate the registry).
const std::vector<Op> &allOps();

} // namespace mlpc
