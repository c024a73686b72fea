// The lowering's internals, shared by Lowering.cpp (expressions, statements,
// the driver loop) and LowerConstants.cpp (dims, shapes, constants,
// initializers and the size limits). Not an API: include ir/Module.h instead.
#pragma once

#include "frontend/AST.h"
#include "frontend/Lowering.h"

#include <map>
#include <set>
#include <string>

namespace mlpc::detail {

class Lowerer {
public:
  Lowerer(const ModelAST &ast, const LoweringOptions &options, DiagnosticEngine &diags)
      : ast_(ast), options_(options), diags_(diags) {}

  std::optional<Module> run();

private:
  // Integer dim expressions (dims, shapes, axes).
  std::optional<int64_t> evalInt(const Expr &e);
  std::optional<Shape> evalShape(const std::vector<ExprPtr> &dims, SourceLoc where);
  // Constant real expressions (exponents).
  std::optional<double> evalConst(const Expr &e);
  std::optional<InitExpr> lowerInit(const Expr &e);
  std::optional<ValueId> lower(const Expr &e);
  std::optional<ValueId> lowerCall(const Expr &e);
  bool checkArity(const Expr &e, size_t lo, size_t hi, const char *usage);
  std::optional<std::vector<ValueId>> lowerArgs(const Expr &e, size_t count);
  // Argument `index` of a call as a non-negative axis (`fallback` if absent).
  std::optional<int> axisArg(const Expr &e, size_t index, int fallback);
  void warnIfBroadcastGrows(const Node &node, SourceLoc loc);
  // Composites.cpp: a call of a composite function (softmax, layernorm, ...),
  // built from primitive ops. Not a composite: empty, error false.
  struct CompositeResult {
    std::optional<ValueId> value;
    bool error = false;
    explicit operator bool() const { return value.has_value(); }
    ValueId operator*() const { return *value; }
  };
  CompositeResult lowerComposite(const Expr &e);
  friend struct CompositeBuilder;
  std::optional<ValueId> build(Node node, SourceLoc loc);
  bool declare(const std::string &name, SourceLoc loc);
  void lowerOptimizer(const TrainBlock &train, TrainConfig &config);
  void lowerTrain(Module &m);
  // run()'s steps, in order: the dims (into m.dims), the inputs and targets
  // (m's batch and context from the first), the parameters, the forward
  // assignments, and the scalar 'loss' as the graph's output. A declaration
  // that fails is poisoned: later uses of its name report nothing more.
  void lowerDims(Module &m);
  void lowerTensors(Module &m);
  void lowerParams();
  void lowerForward();
  void setLossOutput();
  // Adds a value of type `t` to the running totals; reports the first value
  // that takes the parameters past kMaxParamBytes or the forward pass past
  // kMaxForwardBytes, at `loc`, and returns false for it.
  bool account(const TensorType &t, SourceLoc loc, bool isParam);

  const ModelAST &ast_;
  const LoweringOptions &options_;
  DiagnosticEngine &diags_;
  Graph g_;
  std::map<std::string, int64_t> dims_;
  std::map<std::string, ValueId> values_; // inputs, params, forward assignments
  std::set<std::string> poisoned_;
  std::set<std::string> declared_;
  bool quiet_ = false;       // building a composite's internals: no broadcast warnings
  int64_t paramBytes_ = 0;   // saturates at the limit + 1
  int64_t forwardBytes_ = 0; // likewise
};

} // namespace mlpc::detail
