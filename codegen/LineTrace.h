// CompileOptions::traceLines: the generated code reports every memory access
// to ThreadContext::traceAccess, so that runtime/LineCensus.h can count the
// cache lines that pass between the threads of a team (`mlpc bench
// --line-census`).
//
// Two halves:
//   * the lowering marks the start of each node's code with a call of kind
//     ThreadContext::kTraceNode (LowerGraph.cpp), and tags each function
//     whose last argument is the ThreadContext with kTraceLinesAttribute;
//   * instrumentLineTrace, run on the module after the IR passes (so that
//     what is traced is what the machine code does: the accesses the
//     optimiser kept, vectors as vectors), puts a call of kind kTraceLoad /
//     kTraceStore before every load, store, masked load / store and
//     memset / memcpy of a tagged function.
// The node marks are calls to an unknown function, but the buffers are
// noalias arguments, so the optimiser may still move an access across one:
// near a node's start or end an access can be counted for its neighbour.
#pragma once

#include "codegen/BufferPlan.h"
#include "codegen/Compiler.h"

#include <vector>

#include <llvm/IR/IRBuilder.h>
#include <llvm/Support/Error.h>

namespace llvm {
class Module;
class StructType;
class FunctionType;
class LLVMContext;
} // namespace llvm

namespace mlpc::codegen {

inline constexpr const char *kTraceLinesAttribute = "mlpc-trace-lines";

// The LLVM type of ThreadContext (Compiler.h), field for field.
llvm::StructType *threadContextType(llvm::LLVMContext &ctx);

// Adds the access calls to every function tagged kTraceLinesAttribute; an
// error for a memory-touching intrinsic it cannot trace.
llvm::Error instrumentLineTrace(llvm::Module &m);

// The type of ThreadContext::traceAccess: (tracer, thread, address, bytes, kind).
llvm::FunctionType *traceHookType(llvm::LLVMContext &ctx);

// `hook` (a ThreadContext::traceAccess just loaded), or a no-op function of
// the same type where it is null.
llvm::Value *traceHookOrNop(llvm::IRBuilder<> &b, llvm::Value *hook);

// Per node (by value id) the workspace regions its code may touch: its own
// buffer, the buffers its fused expression reads, its scratch and its batch
// statistics (CompiledFunction::nodeRegions).
std::vector<std::vector<WorkspaceRegion>> nodeWorkspaceRegions(const Graph &g,
                                                               const BufferPlan &plan);

} // namespace mlpc::codegen
