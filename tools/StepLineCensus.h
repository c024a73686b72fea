// `mlpc bench --line-census`: the cache lines a training step's threads pass
// between them, node by node and buffer by buffer (runtime/LineCensus.h).
#pragma once

#include "frontend/AST.h"
#include "runtime/Dataset.h"
#include "runtime/ModelRuntime.h"
#include "support/Diagnostics.h"

#include <llvm/Support/Error.h>
#include <llvm/Support/JSON.h>

namespace mlpc {

// Compiles the model's train step a second time with every load and store
// traced (CompileOptions::traceLines), runs `warmup` steps and then `steps`
// counted ones as `mlpc train` does, on the team of `execution` (at least
// two threads), and prints to stderr the lines per step that crossed between
// threads, by node and buffer, most first. Returns the same as JSON. The
// traced code runs tens of times slower: a few steps are enough, since a
// step's accesses do not depend on the data (the gather and scatter rows
// aside).
llvm::Expected<llvm::json::Object> lineCensus(const ModelAST &ast, const Vocabulary &vocab,
                                              DiagnosticEngine &diags, const Split &train,
                                              int64_t warmup, int64_t steps,
                                              const ExecutionOptions &execution);

} // namespace mlpc
