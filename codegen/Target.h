// A hook for emitters that assemble their own LLVM module from several
// lowered graphs (codegen/InferenceObject.cpp): the same target selection as
// emitObjectFile (host CPU and features by default, CPU names checked).
#pragma once

#include "codegen/Compiler.h"

#include <llvm/Support/CodeGen.h>
#include <llvm/Support/Error.h>

#include <memory>
#include <optional>
#include <string>

namespace llvm {
class Module;
class TargetMachine;
class raw_pwrite_stream;
} // namespace llvm

namespace mlpc {

// A position-independent (object file) target machine for options.triple /
// options.cpu: empty means the host triple, CPU and feature list. Any target
// LLVM was built with works, not only the native one.
llvm::Expected<std::unique_ptr<llvm::TargetMachine>>
createObjectTargetMachine(const CompileOptions &options);

// An internal error naming `what` if `m` is not valid IR.
llvm::Error verifyModuleIR(const llvm::Module &m, const std::string &what);
// `m` as machine code of `type` for tm's target, into `os`.
llvm::Error emitMachineCode(llvm::Module &m, llvm::TargetMachine &tm, llvm::raw_pwrite_stream &os,
                            llvm::CodeGenFileType type);
// `m` as LLVM IR text (no `machineCode`) or as an object / assembly file.
llvm::Expected<std::string> moduleOutput(llvm::Module &m, llvm::TargetMachine &tm,
                                         std::optional<llvm::CodeGenFileType> machineCode);

} // namespace mlpc
