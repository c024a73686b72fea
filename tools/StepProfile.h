// `mlpc bench --profile`: where a training step's time goes, node by node.
#pragma once

#include "frontend/AST.h"
#include "runtime/Dataset.h"
#include "runtime/ModelRuntime.h"
#include "support/Diagnostics.h"

#include <llvm/Support/Error.h>
#include <llvm/Support/JSON.h>

namespace mlpc {

// Compiles the model's train step a second time with per-node cycle counters
// (CompileOptions::profileNodes), runs `steps` steps as `mlpc train` does
// (minibatch sampling included) and prints, to stderr, each node's share of
// the step, largest first. Returns the same numbers as JSON. With more than
// one thread (`execution`), the times are thread 0's, each node's wait at
// its barriers included (CompileOptions::profileNodes).
llvm::Expected<llvm::json::Object> profileTrainStep(const ModelAST &ast, const Vocabulary &vocab,
                                                    DiagnosticEngine &diags, const Split &train,
                                                    int64_t steps,
                                                    const ExecutionOptions &execution);

} // namespace mlpc
