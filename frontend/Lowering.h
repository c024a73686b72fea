// Model file -> IR: lowers a parsed model (frontend/AST.h) to a verified
// forward graph and its training configuration (ir/Module.h). Dims are
// resolved, every expression is typed by the op records' shape rules
// (ir/Op.h), composite functions are expanded (Composites.cpp), and every
// error is reported, located, to the DiagnosticEngine.
#pragma once

#include "ir/Module.h"
#include "support/Diagnostics.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mlpc {

struct ModelAST; // frontend/AST.h

struct LoweringOptions {
  int64_t vocab = 27; // value bound to `dim V = vocab` (the dataset's, or 27 by default)
  // Overrides a dim's value (e.g. the batch dim, to compile the forward pass
  // for one row or for a large evaluation block).
  std::map<std::string, int64_t> dimOverrides;
  // The graph will only run in inference mode (batchnorm with running
  // statistics), so a batch of one row is fine.
  bool inferenceOnly = false;
};

// Whole-model size limits, checked by lowering before anything is allocated
// (kMaxTensorElements in ir/Type.h bounds each tensor on its own):
// - all parameters together (f32), i.e. one copy of the weights; training
//   needs a few more (gradients, checkpoints), so this is already generous;
constexpr int64_t kMaxParamBytes = int64_t(4) << 30;
// - every value of the forward pass (inputs, parameters and each operation's
//   result, before simplification), a bound on the activations a step needs.
constexpr int64_t kMaxForwardBytes = int64_t(16) << 30;

// The composite functions a model file can call (softmax, layernorm, ...;
// frontend/Composites.cpp), in table order: the tests iterate them.
std::vector<std::string> compositeFunctions();

// Lowers a parsed model to a verified forward graph. Reports every error it
// finds to `diags` (continuing past bad statements) and returns nullopt if any.
std::optional<Module> lowerModel(const ModelAST &ast, const LoweringOptions &options,
                                 DiagnosticEngine &diags);

} // namespace mlpc
