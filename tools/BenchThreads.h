// `mlpc bench --compare-threads N`: the step on one thread against N threads,
// alternated in one process.
#pragma once

#include "frontend/AST.h"
#include "runtime/Dataset.h"
#include "runtime/ModelRuntime.h"
#include "support/Diagnostics.h"

#include <llvm/Support/Error.h>
#include <llvm/Support/JSON.h>

namespace mlpc {

// Compiles the train step twice, for one thread and for `threads`, and runs
// `rounds` rounds of `steps` steps on each, alternating (as `mlpc train` runs
// them: minibatch sampling included). Returns both series and the speedup,
// as the median of the per-round ratios: a host whose speed drifts from one
// second to the next (virtual machines, frequency changes) moves both halves
// of a round alike, which separate processes minutes apart do not.
llvm::Expected<llvm::json::Object> compareThreads(const ModelAST &ast, const Vocabulary &vocab,
                                                  DiagnosticEngine &diags, const Split &train,
                                                  int64_t steps, int64_t rounds, unsigned threads,
                                                  ExecutionOptions execution);

} // namespace mlpc
