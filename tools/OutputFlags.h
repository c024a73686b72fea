// The driver's side of runtime/OutputFiles.h: every command checks the output
// paths its flags name before it does any work.
#pragma once

#include "tools/Args.h"

#include <llvm/Support/Error.h>

#include <initializer_list>

namespace mlpc {

// checkOutputPath for each of `fileFlags` and checkOutputDir for each of
// `dirFlags` that `args` has; the first failure.
llvm::Error checkOutputFlags(const ParsedArgs &args, std::initializer_list<const char *> fileFlags,
                             std::initializer_list<const char *> dirFlags = {});

} // namespace mlpc
