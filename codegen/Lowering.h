// Graph -> LLVM IR. One GraphLowering emits one graph as two functions:
//
//   internal void <name>.body(ptr noalias leaf0, ..., ptr noalias out0, ...,
//                             float lr, ptr noalias align 64 workspace)
//   void <name>(ptr bindings, float lr, ptr workspace)   ; the public ABI
//
// The exported wrapper only loads the binding pointers and calls the body:
// as function arguments they can carry `noalias` (leaves, outputs and the
// workspace never overlap, see Compiler.h), which is what lets LLVM keep
// values in registers across stores and schedule loads freely. Within the
// workspace, accesses carry !alias.scope/!noalias metadata: one scope per
// planned buffer, declared noalias against every buffer whose bytes do not
// overlap it (buffers that reuse dead bytes stay ordered).
//
// Each op's kernel is a member function; they are spread over
// LowerElementwise.cpp, LowerMatMul.cpp, LowerReduce.cpp, LowerIndex.cpp and
// LowerFused.cpp, with the driver in LowerGraph.cpp.
#pragma once

#include "codegen/BufferPlan.h"
#include "codegen/Compiler.h"
#include "codegen/KernelBuilder.h"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Module.h>
#include <llvm/Target/TargetMachine.h>

#include <memory>
#include <optional>

namespace mlpc::codegen {

// The module for one graph, ready for the optimiser.
struct LoweredModule {
  std::unique_ptr<llvm::LLVMContext> context;
  std::unique_ptr<llvm::Module> module;
  size_t workspaceBytes = 0;
  std::vector<BindingInfo> bindings;
};

// Verifies the graph, plans its buffers and emits `name` for the target of
// `tm` (whose CPU and features are also attached to the functions).
llvm::Expected<LoweredModule> lowerGraph(const Graph &g, const std::string &name,
                                         const CompileOptions &options, llvm::TargetMachine &tm);

class GraphLowering {
public:
  GraphLowering(const Graph &g, const BufferPlan &plan, llvm::Module &m, llvm::TargetMachine &tm);
  void emit(const std::string &name);

private:
  // LowerGraph.cpp
  void createBuffers();
  const Buf &buf(ValueId v) const { return bufs_[v]; }
  Buf outputBuf(size_t output) const;
  const Buf &scratch(ValueId v) const { return scratch_[v]; }
  void lowerNode(ValueId v);
  void emitPostActions(size_t position);
  void copy(const Buf &from, const Buf &to, int64_t numel);
  void ifNonNull(llvm::Value *ptr, llvm::function_ref<void()> then);

  // LowerElementwise.cpp: fused elementwise expressions and Broadcast.
  void lowerElementwise(ValueId v);
  llvm::Value *applyElementwise(const Node &n, llvm::ArrayRef<llvm::Value *> args);
  // LowerReduce.cpp
  void lowerReduction(ValueId v);
  void lowerMaxMask(ValueId v);
  // LowerMatMul.cpp
  void lowerMatMul(ValueId v);
  // Runs matmul v's kernel, handing each finished accumulator vector (row,
  // first column, active lanes) to `epilogue` instead of storing it.
  using MatMulEpilogue = llvm::function_ref<void(llvm::Value *row, llvm::Value *column,
                                                 unsigned lanes, llvm::Value *acc)>;
  void emitMatMul(ValueId v, MatMulEpilogue epilogue);
  void transposeInto(const Buf &src, int64_t rows, int64_t cols, const Buf &dst);
  // LowerIndex.cpp
  void lowerGather(ValueId v);
  void lowerScatterAdd(ValueId v);
  void lowerPick(ValueId v);
  void lowerUnpick(ValueId v);
  // LowerFused.cpp
  void lowerBatchNorm(ValueId v); // BatchNorm, BatchNormInfer, BatchNormXhat
  void lowerBatchNormGrad(ValueId v);
  void lowerCrossEntropy(ValueId v); // CrossEntropy, CrossEntropyGrad
  void zeroFill(const Buf &b, int64_t numel);

  const Graph &g_;
  const BufferPlan &plan_;
  llvm::Module &m_;
  llvm::LLVMContext &ctx_;
  llvm::TargetMachine &tm_;
  llvm::IRBuilder<> b_;
  std::unique_ptr<KernelBuilder> k_;

  llvm::Function *body_ = nullptr;
  std::vector<llvm::Value *> leafArg_;   // per value id (leaves only)
  std::vector<llvm::Value *> outputArg_; // per graph output
  llvm::Value *lr_ = nullptr, *workspace_ = nullptr;
  std::vector<Buf> bufs_;    // per value id
  std::vector<Buf> scratch_; // per node (only nodes with scratch bytes)
  std::vector<llvm::MDNode *> regionScope_, regionNoAlias_;
};

} // namespace mlpc::codegen
