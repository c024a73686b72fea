// Parallel code (CompileOptions::parallel): one function that every thread
// of a team runs at once, each with its ThreadContext {index, count, part}.
//
// Matmuls, elementwise loops (with whatever is fused into them), column
// reductions, the batchnorm kernels, cross-entropy and gathers are
// *shared*: their outermost loop (the matmul's row tiles, the elementwise
// nest's outer axis or its vector groups, the row blocks of a reduction over
// rows, of the batch statistics, of BatchNormGrad and of cross-entropy, a
// gather's rows) is cut into `count` contiguous parts by trip, each
// thread's the same fraction of every loop (ThreadContext::shareBegin /
// shareEnd; KernelBuilder::loopShared), so each thread keeps to the same
// batch rows (runtime/ThreadTeam.h, "Locality"). A trip is the same code on
// any thread, and every output element is written by exactly one trip, so
// the results are bit-identical for any thread count and wherever the cuts
// fall (the team moves them towards the faster cores, runtime/ThreadTeam.h;
// the time each thread works between barriers is counted for that,
// countSharedWork). A weight gradient over batch row blocks
// (LowerMatMulBatchBlocks.cpp) and the loss of cross-entropy are shared in
// two phases: the blocks, then the rows of the result (the loss: on one
// thread), and so is a scatter_add over many rows (its row blocks, then the
// rows of the table: LowerIndex.cpp), and a reduction along the last axis
// (its blocks of rows). Every other node (the scatters scatterRowBlocks
// leaves as one table, reductions to one value, and the output copies /
// write-backs) is *serial*: it runs on thread 0.
//
// Barriers, one call of ThreadContext::barrier each, go where a node may read
// or overwrite what another thread wrote or reads: before every shared node,
// before a serial node that follows a shared one, and
// inside a node between its phases (a matmul's transposed operand, the
// output actions after a shared loop). Serial nodes in a row need none. The
// caller's join (ThreadTeam::run) ends the step. With one thread, or a null
// context, no barrier is called.
#include "codegen/LineTrace.h"
#include "codegen/Lowering.h"

using namespace llvm;

namespace mlpc::codegen {

// Elementwise nodes of at most this many elements run serial (nodeMode).
constexpr int64_t kSerialElementwiseMax = 4096;

GraphLowering::NodeMode GraphLowering::nodeMode(ValueId v) const {
  const Kernel kernel = opInfo(g_[v].op).kernel;
  const bool shareable = kernel == Kernel::MatMul || kernel == Kernel::Elementwise ||
                         kernel == Kernel::BatchNormGrad || kernel == Kernel::Gather ||
                         kernel == Kernel::CrossEntropy || isColumnReduction(v) ||
                         isRowReduction(v) ||
                         (kernel == Kernel::ScatterAdd && scatterRowBlocks(g_, g_[v]) > 1);
  const bool statsLeader = plan_.statsGroup[v] >= 0 && plan_.stats[plan_.statsGroup[v]].leader == v;
  if (statsLeader) // the batch statistics by column, a barrier, then the node's loop
    return shareable ? NodeMode::Shared : NodeMode::Serial;
  if (!runsOwnKernel(v))
    return hasPostActions(v) ? NodeMode::Serial : NodeMode::NoCode;
  // A small elementwise loop (a BatchNorm's running statistics, the update of
  // a gain or a bias: 1024 floats, tens of nanoseconds of work) runs on
  // thread 0: shared, it cost a barrier (~0.25 us with the vCPUs ~250 ns
  // apart) and its lines went to the other core, and serial ones in a row
  // pass no barrier between them (makemore's step: three after the loss,
  // three after BatchNormGrad). `--compare-threads 2`, 4 alternated runs,
  // vCPUs ~250 ns apart, medians: wavenet 0.70x -> 0.75x (every run of the
  // new at or above the old's median), makemore H = 256 / B = 256 0.97x ->
  // 1.04x (0.89-1.17x: the noise).
  // Not when a matmul runs in its loop: a weight gradient with its SGD
  // update (dW1 [30, 64] = emb^T @ dhprebn at H = 64) is K = batch rows of
  // work per element, and left on thread 0 it made that thread read every
  // batch row, so the other's next writes of its rows waited for thread 0's
  // copies of the lines. makemore H = 64 / B = 4096, `--compare-threads 2`,
  // Zen 5 VM: 1.00x -> 1.64x (the step 674 -> 419 us on 2 threads).
  if (kernel == Kernel::Elementwise && g_[v].type.numel() <= kSerialElementwiseMax &&
      !hasEpilogueMatMul(v))
    return NodeMode::Serial;
  return shareable ? NodeMode::Shared : NodeMode::Serial;
}

bool GraphLowering::hasEpilogueMatMul(ValueId v) const {
  std::vector<ValueId> leaves;
  std::map<ValueId, size_t> leafIndex;
  std::optional<ValueId> matmul;
  collectExpression(v, leaves, leafIndex, matmul);
  return matmul.has_value();
}

bool GraphLowering::isRowReduction(ValueId v) const {
  const Node &n = g_[v];
  if (opInfo(n.op).kernel != Kernel::Reduction || n.axis < 0)
    return false;
  const AxisSplit s(g_[n.operands[0]].type.shape, n.axis);
  return s.inner == 1 && s.outer > 1;
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

void GraphLowering::emitTraceNodeMark(ValueId v) {
  if (!traceFn_) // CompileOptions::traceLines (LineTrace.h): node v's accesses follow
    return;
  b_.CreateCall(traceHookType(ctx_), traceFn_,
                {tracer_, threadIndex_, ConstantPointerNull::get(b_.getPtrTy()), b_.getInt64(v),
                 b_.getInt64(ThreadContext::kTraceNode)});
}

void GraphLowering::loadThreadContext(Value *context) {
  // A null context is one thread: read from a constant {0, 1, null, null,
  // 0, kShareUnit, null, null, null}.
  Type *i64 = b_.getInt64Ty(), *ptr = b_.getPtrTy();
  StructType *ty = threadContextType(ctx_);
  Constant *null = ConstantPointerNull::get(b_.getPtrTy());
  auto *single = new GlobalVariable(
      m_, ty, /*isConstant=*/true, GlobalValue::PrivateLinkage,
      ConstantStruct::get(ty, {b_.getInt64(0), b_.getInt64(1), null, null, b_.getInt64(0),
                               b_.getInt64(ThreadContext::kShareUnit), null, null, null}),
      "single.thread");
  Value *c = b_.CreateSelect(b_.CreateIsNull(context), single, context);
  auto field = [&](Type *t, unsigned i, const char *name) {
    return b_.CreateLoad(t, b_.CreateStructGEP(ty, c, i), name);
  };
  threadIndex_ = field(i64, 0, "thread.index");
  threadCount_ = field(i64, 1, "thread.count");
  barrierFn_ = field(ptr, 2, "barrier");
  team_ = field(ptr, 3, "team");
  shareBegin_ = field(i64, 4, "share.begin");
  shareEnd_ = field(i64, 5, "share.end");
  sharedCycles_ = field(ptr, 6, "shared.cycles");
  if (traceLines_) {
    traceFn_ = traceHookOrNop(b_, field(ptr, 7, "trace.access"));
    tracer_ = field(ptr, 8, "tracer");
  }
  // Where this thread's current stretch of shared work began (see
  // emitBarrier); a function of a split step starts one at its entry. Only
  // on x86, whose time-stamp counter user code may read (elsewhere the
  // cycle counter can trap; the team then keeps equal parts).
  sectionStart_ = nullptr;
  if (!tm_.getTargetTriple().isX86())
    return;
  sectionStart_ = k_->entryAlloca(i64, 1);
  b_.CreateStore(b_.CreateIntrinsic(Intrinsic::readcyclecounter, {}, {}), sectionStart_);
}

void GraphLowering::countSharedWork() {
  if (!sectionStart_)
    return;
  // One thread runs no barrier and counts nothing.
  BasicBlock *count = BasicBlock::Create(ctx_, "shared.count", body_);
  BasicBlock *cont = BasicBlock::Create(ctx_, "shared.count.end", body_);
  b_.CreateCondBr(b_.CreateAnd(b_.CreateICmpUGT(threadCount_, b_.getInt64(1)),
                               b_.CreateIsNotNull(sharedCycles_)),
                  count, cont);
  b_.SetInsertPoint(count);
  Value *now = b_.CreateIntrinsic(Intrinsic::readcyclecounter, {}, {});
  Value *worked = b_.CreateSub(now, b_.CreateLoad(b_.getInt64Ty(), sectionStart_));
  b_.CreateStore(b_.CreateAdd(b_.CreateLoad(b_.getInt64Ty(), sharedCycles_), worked),
                 sharedCycles_);
  b_.CreateBr(cont);
  b_.SetInsertPoint(cont);
}

void GraphLowering::emitBarrier(bool endsSharedWork) {
  if (endsSharedWork)
    countSharedWork();
  BasicBlock *call = BasicBlock::Create(ctx_, "barrier", body_);
  BasicBlock *cont = BasicBlock::Create(ctx_, "barrier.end", body_);
  b_.CreateCondBr(b_.CreateICmpUGT(threadCount_, b_.getInt64(1)), call, cont);
  b_.SetInsertPoint(call);
  // Profiled: the cycles this thread waits here go to the node's wait
  // counter (CompileOptions::profileNodes), so that a node's own work and
  // its wait for the slowest thread can be told apart.
  Value *arrived =
      profileOffset_ ? b_.CreateIntrinsic(Intrinsic::readcyclecounter, {}, {}) : nullptr;
  FunctionType *type = FunctionType::get(b_.getVoidTy(), {b_.getPtrTy()}, false);
  b_.CreateCall(type, barrierFn_, {team_});
  Value *left =
      arrived || sectionStart_ ? b_.CreateIntrinsic(Intrinsic::readcyclecounter, {}, {}) : nullptr;
  if (arrived)
    addToProfileCounter(/*waits=*/true, loweringNode_, b_.CreateSub(left, arrived));
  // Shared work, if any follows, starts when the barrier lets the thread go.
  if (sectionStart_)
    b_.CreateStore(left, sectionStart_);
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
      emitBarrier(/*endsSharedWork=*/true);
    onThreadZero([&] {
      lowerNode(v);
      emitPostActions(v);
    });
    sharedBefore = false;
    return;
  case NodeMode::Shared:
    // Thread 0 may have written this node's operands (serial nodes), and any
    // thread those of an earlier shared node.
    emitBarrier(/*endsSharedWork=*/sharedBefore);
    k_->share = {threadIndex_, threadCount_, shareBegin_, shareEnd_};
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
