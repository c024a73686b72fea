// The abstract syntax tree of a model file. Every node carries the location of
// its first token so later stages (lowering, shape inference) can point at it.
//
// Expressions are one node type with a kind tag: the language is small and the
// lowering is a single switch, so a class hierarchy would only add ceremony.
#pragma once

#include "support/SourceLoc.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlpc {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind {
  Number, // 3, 0.1, 1e-5            (number, isInteger)
  Ident,  // W1, T                   (name)
  Unary,  // -x                      (op = '-', args[0])
  Binary, // a @ b, a + b, a ^ -0.5  (op in "+-*/@^", args[0], args[1])
  Call,   // tanh(x), sum(x, 1)      (name = callee, args)
  Index,  // C[X]                    (args[0] = table, args[1] = indices)
  List,   // [N, T*E]                (args = elements; only as a call argument)
};

struct Expr {
  ExprKind kind;
  SourceLoc loc;
  double number = 0;      // Number
  bool isInteger = false; // Number: written without '.', 'e' and fits in int64
  int64_t integer = 0;    // Number, when isInteger
  std::string name;       // Ident, Call
  char op = 0;            // Unary, Binary
  std::vector<ExprPtr> args;
  // Height of this subtree (1 for a leaf). The parser bounds it, so every
  // recursive walk of an expression (lowering, printing, destruction) is
  // bounded too, however long a chain like `a + a + ... + a` is.
  uint32_t depth = 1;
};

// `dim E = 10` or `dim V = vocab` / `dim N = batch` (bound later).
struct DimDecl {
  std::string name;
  SourceLoc loc;
  ExprPtr value;       // null when bound
  std::string binding; // "vocab" or "batch" when bound, else empty
};

// `input X : i32[N, T]` / `target Y : i32[N]`.
struct TensorDecl {
  enum class Role { Input, Target } role;
  std::string name;
  SourceLoc loc;
  std::string dtype; // "i32" (the only legal one today; checked by lowering)
  SourceLoc dtypeLoc;
  std::vector<ExprPtr> shape;
};

// `param W1 : [T*E, H] = randn * (5/3) / sqrt(T*E)`.
struct ParamDecl {
  std::string name;
  SourceLoc loc;
  std::vector<ExprPtr> shape;
  ExprPtr init;
};

// `hpreact = batchnorm(hprebn, bngain, bnbias)` inside `forward { }`.
struct Assign {
  std::string name;
  SourceLoc loc;
  ExprPtr value;
};

// One phase of the step schedule: `0.01 after 100000` (the first phase starts at 0).
struct LrPhase {
  double lr;
  int64_t fromStep;
  SourceLoc loc;
};

enum class OptimizerKind { SGD, Adam, AdamW };

// The optimizer statement's options, with PyTorch's defaults (torch.optim.SGD,
// Adam, AdamW); the pass that applies them is passes/Optimizer.cpp.
struct OptimizerDecl {
  OptimizerKind kind = OptimizerKind::SGD;
  SourceLoc loc;
  double momentum = 0, dampening = 0; // sgd
  bool nesterov = false;              // sgd
  double weightDecay = 0;             // sgd, adam: coupled (L2); adamw: decoupled (default 0.01)
  double beta1 = 0.9, beta2 = 0.999;  // adam, adamw
  double eps = 1e-8;                  // adam, adamw
};

struct TrainBlock {
  SourceLoc loc;
  std::optional<int64_t> steps;
  SourceLoc stepsLoc;
  std::optional<int64_t> batch;
  SourceLoc batchLoc;
  std::vector<LrPhase> schedule;          // the optimizer's `lr` list; empty if none
  std::optional<OptimizerDecl> optimizer; // none: plain SGD
  std::optional<double> clipGradNorm;     // `clip_grad_norm X`
  SourceLoc clipLoc;
  std::optional<int64_t> warmup; // `warmup N`
  SourceLoc warmupLoc;
  std::optional<double> cosineMinLr; // `cosine [min_lr X]` (0 when not given)
  SourceLoc cosineLoc;
};

struct ModelAST {
  std::string name;
  SourceLoc loc;
  std::vector<DimDecl> dims;
  std::vector<TensorDecl> tensors;
  std::vector<ParamDecl> params;
  std::vector<Assign> forward;
  SourceLoc forwardLoc;
  bool hasForward = false;
  std::optional<TrainBlock> train;
  // `--set` overrides applied to this AST, "NAME=VALUE" in order (see
  // frontend/Overrides.h); checkpoints record them.
  std::vector<std::string> overrides;
};

} // namespace mlpc
