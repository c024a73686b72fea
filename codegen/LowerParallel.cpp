// Parallel code (CompileOptions::parallel): one function that every thread
// of a team runs at once, each with its ThreadContext {index, count}.
//
// Matmuls, elementwise loops (with whatever is fused into them), column
// reductions and the batchnorm kernels are *shared*: their outermost loop
// (the matmul's row tiles, the elementwise nest's outer axis or its vector
// groups, the column groups of a reduction over rows, of the batch
// statistics and of BatchNormGrad) is cut into `count`
// contiguous parts by trip, KernelBuilder::loopShared. A trip is the same code on any
// thread, and every output element is written by exactly one trip, so the
// results are bit-identical for any thread count. Every other node
// (row reductions, gathers and scatters, cross-entropy, and
// the output copies / write-backs) is *serial*: it runs on thread 0.
//
// Barriers, one call of ThreadContext::barrier each, go where a node may read
// or overwrite what another thread wrote or reads: before every shared node,
// before a serial node that follows a shared one, and
// inside a node between its phases (a matmul's transposed operand, the
// output actions after a shared loop). Serial nodes in a row need none. The
// caller's join (ThreadTeam::run) ends the step. With one thread, or a null
// context, no barrier is called.
#include "codegen/Lowering.h"

using namespace llvm;

namespace mlpc::codegen {

GraphLowering::NodeMode GraphLowering::nodeMode(ValueId v) const {
  const Kernel kernel = opInfo(g_[v].op).kernel;
  const bool shareable = kernel == Kernel::MatMul || kernel == Kernel::Elementwise ||
                         kernel == Kernel::BatchNormGrad || isColumnReduction(v);
  const bool statsLeader = plan_.statsGroup[v] >= 0 && plan_.stats[plan_.statsGroup[v]].leader == v;
  if (statsLeader) // the batch statistics by column, a barrier, then the node's loop
    return shareable ? NodeMode::Shared : NodeMode::Serial;
  if (!runsOwnKernel(v))
    return hasPostActions(v) ? NodeMode::Serial : NodeMode::NoCode;
  return shareable ? NodeMode::Shared : NodeMode::Serial;
}

bool GraphLowering::isColumnReduction(ValueId v) const {
  const Node &n = g_[v];
  return opInfo(n.op).kernel == Kernel::Reduction &&
         AxisSplit(g_[n.operands[0]].type.shape, n.axis).inner > 1;
}

bool GraphLowering::hasPostActions(size_t position) const {
  for (const OutputPlan &op : plan_.outputs)
    if (isPostAction(op, position))
      return true;
  return false;
}

void GraphLowering::loadThreadContext(Value *context) {
  // A null context is one thread: read from a constant {0, 1, null, null}.
  Type *i64 = b_.getInt64Ty(), *ptr = b_.getPtrTy();
  StructType *ty = StructType::get(ctx_, {i64, i64, ptr, ptr});
  auto *single =
      new GlobalVariable(m_, ty, /*isConstant=*/true, GlobalValue::PrivateLinkage,
                         ConstantStruct::get(ty, {b_.getInt64(0), b_.getInt64(1),
                                                  ConstantPointerNull::get(b_.getPtrTy()),
                                                  ConstantPointerNull::get(b_.getPtrTy())}),
                         "single.thread");
  Value *c = b_.CreateSelect(b_.CreateIsNull(context), single, context);
  threadIndex_ = b_.CreateLoad(i64, b_.CreateStructGEP(ty, c, 0), "thread.index");
  threadCount_ = b_.CreateLoad(i64, b_.CreateStructGEP(ty, c, 1), "thread.count");
  barrierFn_ = b_.CreateLoad(ptr, b_.CreateStructGEP(ty, c, 2), "barrier");
  team_ = b_.CreateLoad(ptr, b_.CreateStructGEP(ty, c, 3), "team");
}

void GraphLowering::emitBarrier() {
  BasicBlock *call = BasicBlock::Create(ctx_, "barrier", body_);
  BasicBlock *cont = BasicBlock::Create(ctx_, "barrier.end", body_);
  b_.CreateCondBr(b_.CreateICmpUGT(threadCount_, b_.getInt64(1)), call, cont);
  b_.SetInsertPoint(call);
  FunctionType *type = FunctionType::get(b_.getVoidTy(), {b_.getPtrTy()}, false);
  b_.CreateCall(type, barrierFn_, {team_});
  b_.CreateBr(cont);
  b_.SetInsertPoint(cont);
}

void GraphLowering::shareBarrier() {
  if (k_->share.index)
    emitBarrier();
}

void GraphLowering::onThreadZero(function_ref<void()> body) {
  onThreadBelow(1, body);
}

void GraphLowering::onThreadBelow(unsigned count, function_ref<void()> body) {
  BasicBlock *then = BasicBlock::Create(ctx_, "thread0", body_);
  BasicBlock *cont = BasicBlock::Create(ctx_, "thread0.end", body_);
  b_.CreateCondBr(b_.CreateICmpULT(threadIndex_, b_.getInt64(count)), then, cont);
  b_.SetInsertPoint(then);
  body();
  b_.CreateBr(cont);
  b_.SetInsertPoint(cont);
}

void GraphLowering::lowerNodeParallel(ValueId v, bool &sharedBefore) {
  switch (nodeMode(v)) {
  case NodeMode::NoCode:
    return;
  case NodeMode::Serial:
    if (sharedBefore)
      emitBarrier();
    onThreadZero([&] {
      lowerNode(v);
      emitPostActions(v);
    });
    sharedBefore = false;
    return;
  case NodeMode::Shared:
    // Thread 0 may have written this node's operands (serial nodes), and any
    // thread those of an earlier shared node.
    emitBarrier();
    k_->share = {threadIndex_, threadCount_};
    lowerNode(v);
    k_->share = {};
    sharedBefore = true;
    if (hasPostActions(v)) {
      emitBarrier();
      onThreadZero([&] { emitPostActions(v); });
      sharedBefore = false;
    }
    return;
  }
}

} // namespace mlpc::codegen
