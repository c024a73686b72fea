// A hook for emitters that assemble their own LLVM module from several
// lowered graphs (codegen/InferenceObject.cpp): the same target selection as
// emitObjectFile (host CPU and features by default, CPU names checked).
#pragma once

#include "codegen/Compiler.h"

#include <llvm/Support/Error.h>

#include <memory>

namespace llvm {
class TargetMachine;
} // namespace llvm

namespace mlpc {

// A position-independent (object file) target machine for options.triple /
// options.cpu: empty means the host triple, CPU and feature list. Any target
// LLVM was built with works, not only the native one.
llvm::Expected<std::unique_ptr<llvm::TargetMachine>>
createObjectTargetMachine(const CompileOptions &options);

} // namespace mlpc
