// The lowering driver: function signatures, buffers, the per-node dispatch
// and the output copies / SGD updates / state write-backs (the module-level
// entry points are in LowerModule.cpp).
#include "codegen/LineTrace.h"
#include "codegen/Lowering.h"
#include "codegen/MathEmitter.h"
#include "codegen/VectorShape.h"

#include <llvm/Analysis/TargetTransformInfo.h>
#include <llvm/IR/IntrinsicInst.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/MDBuilder.h>
#include <llvm/Support/raw_ostream.h>

using namespace llvm;

namespace mlpc::codegen {

GraphLowering::GraphLowering(const Graph &g, const BufferPlan &plan, Module &m, TargetMachine &tm,
                             unsigned vectorBits)
    : g_(g), plan_(plan), m_(m), ctx_(m.getContext()), tm_(tm), vectorBits_(vectorBits),
      b_(m.getContext()) {
  for (ValueId v = 0; v < g_.size(); ++v)
    if (isBindingLeaf(g_[v].op))
      leaves_.push_back(v);
}

Function *GraphLowering::createBodyFunction(const std::string &fnName,
                                            GlobalValue::LinkageTypes linkage) {
  Type *ptrTy = b_.getPtrTy(), *f32 = b_.getFloatTy();
  std::vector<Type *> params(leaves_.size() + g_.outputs.size(), ptrTy);
  params.push_back(f32);
  params.push_back(ptrTy);
  if (parallel_)
    params.push_back(ptrTy); // const ThreadContext *
  Function *f =
      Function::Create(FunctionType::get(b_.getVoidTy(), params, false), linkage, fnName, m_);
  addCommonAttributes(f);
  if (parallel_ && traceLines_)
    f->addFnAttr(kTraceLinesAttribute); // its last argument is the ThreadContext
  // Keep the body a real function: noalias on its arguments is the precise
  // form (after inlining it would become scoped metadata); one call is free.
  f->addFnAttr(Attribute::NoInline);
  f->addFnAttr("reciprocal-estimates", kReciprocalEstimates);
  auto ptrArg = [&](unsigned i, const std::string &argName, int64_t bytes, bool optional,
                    bool readOnly) {
    Argument *a = f->getArg(i);
    a->setName(argName);
    a->addAttr(Attribute::NoAlias);
    a->addAttr(Attribute::NoCapture);
    a->addAttr(Attribute::get(ctx_, Attribute::Alignment, 4));
    if (bytes > 0)
      a->addAttr(optional ? Attribute::getWithDereferenceableOrNullBytes(ctx_, bytes)
                          : Attribute::getWithDereferenceableBytes(ctx_, bytes));
    if (readOnly)
      a->addAttr(Attribute::ReadOnly);
  };
  for (size_t i = 0; i < leaves_.size(); ++i) {
    const Node &n = g_[leaves_[i]];
    ptrArg(i, n.name, n.type.numel() * kElemBytes, false, n.op == Op::Input);
  }
  for (size_t i = 0; i < g_.outputs.size(); ++i)
    ptrArg(leaves_.size() + i, "out." + g_.outputs[i].name,
           g_[g_.outputs[i].value].type.numel() * kElemBytes, plan_.outputs[i].optional, false);
  const size_t lrArg = leaves_.size() + g_.outputs.size();
  f->getArg(lrArg)->setName("lr");
  if (parallel_)
    f->getArg(lrArg + 2)->setName("thread");
  Argument *ws = f->getArg(lrArg + 1);
  ws->setName("workspace");
  ws->addAttr(Attribute::NoAlias);
  ws->addAttr(Attribute::NoCapture);
  ws->addAttr(Attribute::get(ctx_, Attribute::Alignment, kBufferAlign));
  if (plan_.workspaceBytes > 0)
    ws->addAttr(Attribute::getWithDereferenceableBytes(ctx_, plan_.workspaceBytes));
  return f;
}

void GraphLowering::addCommonAttributes(Function *f) {
  addTargetAttributes(*f, tm_, vectorBits_);
  f->addFnAttr(Attribute::NoUnwind);
  f->addFnAttr(Attribute::NoSync);
  f->addFnAttr(Attribute::WillReturn);
  f->addFnAttr(Attribute::MustProgress);
}

void GraphLowering::emitWrapper(const std::string &name, Function *body) {
  Type *ptrTy = b_.getPtrTy();
  Function *wrapper = Function::Create(
      FunctionType::get(b_.getVoidTy(), {ptrTy, b_.getFloatTy(), ptrTy, ptrTy}, false),
      GlobalValue::ExternalLinkage, name, m_);
  addCommonAttributes(wrapper);
  b_.SetInsertPoint(BasicBlock::Create(ctx_, "entry", wrapper));
  Argument *bindings = wrapper->getArg(0);
  bindings->setName("bindings");
  bindings->addAttr(Attribute::NoCapture);
  bindings->addAttr(Attribute::ReadOnly);
  std::vector<Value *> args;
  for (size_t i = 0; i < leaves_.size() + g_.outputs.size(); ++i)
    args.push_back(
        b_.CreateAlignedLoad(ptrTy, b_.CreateConstInBoundsGEP1_64(ptrTy, bindings, i), Align(8)));
  args.push_back(wrapper->getArg(1));
  args.push_back(wrapper->getArg(2));
  if (parallel_)
    args.push_back(wrapper->getArg(3));
  b_.CreateCall(body, args);
  b_.CreateRetVoid();
}

void GraphLowering::emit(const std::string &name) {
  emitHead(name, g_.size(), {});
}

void GraphLowering::emitHead(const std::string &name, size_t end,
                             ArrayRef<std::string> continuations) {
  Function *body = createBodyFunction(name + ".body", GlobalValue::InternalLinkage);
  emitWrapper(name, body);
  std::vector<Function *> calls;
  for (const std::string &c : continuations) {
    Function *defined = m_.getFunction(c); // a range this module defines
    calls.push_back(defined ? defined : createBodyFunction(c, GlobalValue::ExternalLinkage));
  }
  lowerRange(body, 0, end, calls, nullptr);
}

void GraphLowering::emitPart(const std::string &fnName, size_t begin, size_t end) {
  lowerRange(createBodyFunction(fnName, GlobalValue::ExternalLinkage), begin, end, {}, nullptr);
}

namespace {
// What an instruction costs the backend, in units of ~10k instructions of
// llc-19 -O3 (callgrind's count, deterministic where this VM's clock is
// not), per vector register it spans. The weights only serve to cut a graph
// into modules of equal cost (planRanges); they are a non-negative least-
// squares fit of the llc count of 140 one-node modules (makemore at B = 32
// and 256, at H = 1024 / B = 256, wavenet, deep_tanh) on the trial
// lowering's instruction mix: what a loop costs (one scalar phi per loop:
// loop analyses, strength reduction, 242) and the vector compares and
// selects (84: mask registers, blends) dominate the rest (shuffles 15,
// fences 25, fmuladd 26, masked loads and stores 14, plain vector loads,
// stores and arithmetic 10, divisions 20); the scalar index arithmetic
// that feeds addresses and the vector phis cost nothing measurable. Fit
// within ~10% on the large nodes. The previous model (10 for FP arithmetic,
// 19 for any other vector instruction, 6 per scalar one, chosen on the
// splits alone) weighed matmul kernels 2-3x what tanh, cross-entropy or
// batch statistics of the same cost got. Larger of the 2-core split's two
// modules, old -> new (M instructions, with kHeadWeight): makemore 316 ->
// 290 (the other 262 -> 287), wavenet 538 -> 532, makemore at B = 256
// 436 -> 419, at H = 1024 / B = 256 383 -> 383, deep_tanh 1564 -> 1242.
// Wall clock (cold compile_ms median of 8-16 interleaved runs, old -> new
// weights in one binary): deep_tanh 270 -> 222 ms, wavenet 129 -> 121,
// makemore 69.8 -> 69.9 and B = 256 99.1 -> 99.4 (unchanged: there each
// module's thread CPU time varies by +-20% from run to run, so the better
// expected balance is within what the slower of the two draws anyway).
size_t backendWeight(const Instruction &inst, unsigned lanes) {
  auto registersOf = [&](Type *t) -> size_t {
    auto *vec = dyn_cast<FixedVectorType>(t);
    return vec ? std::max<size_t>(1, vec->getNumElements() / lanes) : 0;
  };
  if (isa<PHINode>(inst)) // a scalar phi is a loop: its analyses and LSR
    return registersOf(inst.getType()) ? 0 : 242;
  if (auto *store = dyn_cast<StoreInst>(&inst))
    return 10 * registersOf(store->getValueOperand()->getType());
  const size_t registers = registersOf(inst.getType());
  if (auto *call = dyn_cast<IntrinsicInst>(&inst)) {
    switch (call->getIntrinsicID()) {
    case Intrinsic::masked_load:
      return 14 * registers;
    case Intrinsic::masked_store:
      return 14 * registersOf(call->getArgOperand(0)->getType());
    case Intrinsic::fmuladd:
      return 26 * registers;
    case Intrinsic::arithmetic_fence:
      return 25 * registers;
    default:
      return 0;
    }
  }
  switch (inst.getOpcode()) {
  case Instruction::Load:
    return 10 * registers;
  case Instruction::FAdd:
  case Instruction::FSub:
  case Instruction::FMul:
    return 10 * registers;
  case Instruction::FDiv:
    return 20 * registers;
  case Instruction::ShuffleVector:
    return 15 * registers;
  case Instruction::FCmp:
  case Instruction::ICmp:
  case Instruction::Select:
    return 84 * registers;
  default:
    return 0;
  }
}
} // namespace

// The backend weight of what was emitted since the insertion point was
// `count` instructions into `block` and `last` was the function's last
// block: the rest of `block` and every block after `last` (new blocks go to
// the function's end; a loop's exit block is created before its body's).
size_t GraphLowering::weightSince(BasicBlock *block, size_t count, BasicBlock *last) const {
  size_t weight = 0;
  for (auto it = std::next(block->begin(), count); it != block->end(); ++it)
    weight += backendWeight(*it, k_->VW);
  for (auto bb = std::next(last->getIterator()); bb != body_->end(); ++bb)
    if (&*bb != block)
      for (const Instruction &inst : *bb)
        weight += backendWeight(inst, k_->VW);
  return weight;
}

std::vector<size_t> GraphLowering::emitMeasured(const std::string &name) {
  std::vector<size_t> cost(g_.size(), 0);
  lowerRange(createBodyFunction(name, GlobalValue::InternalLinkage), 0, g_.size(), {}, &cost);
  // The head (entry, thread context, the calls of the other modules' parts)
  // goes with node 0's module (planRanges): its cost is charged to node 0.
  // Chosen on the splits above from 0, 1000, 2000 and 3000 (at 0 module 0
  // came out 4-27 M instructions the larger).
  constexpr size_t kHeadWeight = 2000;
  if (!cost.empty())
    cost[0] += kHeadWeight;
  return cost;
}

void GraphLowering::lowerRange(Function *f, size_t begin, size_t end, ArrayRef<Function *> calls,
                               std::vector<size_t> *cost) {
  body_ = f;
  leafArg_.assign(g_.size(), nullptr);
  outputArg_.assign(g_.outputs.size(), nullptr);
  for (size_t i = 0; i < leaves_.size(); ++i)
    leafArg_[leaves_[i]] = f->getArg(i);
  for (size_t i = 0; i < g_.outputs.size(); ++i)
    outputArg_[i] = f->getArg(leaves_.size() + i);
  lr_ = f->getArg(leaves_.size() + g_.outputs.size());
  workspace_ = f->getArg(leaves_.size() + g_.outputs.size() + 1);

  // codegen/VectorShape.h: 16 lanes / 32 registers on AVX-512, 8 / 16 on AVX2.
  const VectorShape shape = vectorShapeOf(*f, tm_);
  b_.SetInsertPoint(BasicBlock::Create(ctx_, "entry", f));
  k_ = std::make_unique<KernelBuilder>(b_, shape.lanes, shape.registers);
  k_->FenceShuffles = tm_.getTargetTriple().isX86();
  if (parallel_)
    loadThreadContext(f->getArg(leaves_.size() + g_.outputs.size() + 2));
  createBuffers();
  auto size = [&] {
    size_t n = 0;
    for (const BasicBlock &bb : *f)
      n += bb.size();
    return n;
  };
  // A part of a split function starts after a barrier: the previous part's
  // last node may have been shared.
  bool sharedBefore = begin > 0;
  for (ValueId v = begin; v < end; ++v) {
    BasicBlock *startBlock = b_.GetInsertBlock(), *lastBlock = &f->back();
    size_t startCount = cost ? startBlock->size() : 0;
    Instruction *started = nullptr;
    size_t startedSize = 0;
    loweringNode_ = v;
    emitTraceNodeMark(v);
    if (profileOffset_) {
      started = b_.CreateIntrinsic(Intrinsic::readcyclecounter, {}, {});
      startedSize = size();
    }
    if (parallel_) {
      lowerNodeParallel(v, sharedBefore);
    } else {
      lowerNode(v);
      emitPostActions(v);
    }
    if (started && size() == startedSize) {
      started->eraseFromParent(); // the node emitted no code
    } else if (started) {
      addToProfileCounter(
          /*waits=*/false, v,
          b_.CreateSub(b_.CreateIntrinsic(Intrinsic::readcyclecounter, {}, {}), started));
    }
    if (cost)
      (*cost)[v] = weightSince(startBlock, startCount, lastBlock);
  }
  if (parallel_ && sharedBefore) // the step's (or this part's) last shared stretch
    countSharedWork();
  std::vector<Value *> args;
  for (Argument &a : f->args())
    args.push_back(&a);
  for (Function *c : calls)
    b_.CreateCall(c, args);
  b_.CreateRetVoid();
}

void GraphLowering::addToProfileCounter(bool waits, ValueId v, Value *cycles) {
  // CompileOptions::profileNodes: a row of g_.size() counters per thread,
  // kProfileThreads rows of node times, then as many of barrier waits.
  const size_t rows = waits ? CompileOptions::kProfileThreads : 0;
  Value *counter = b_.CreateConstInBoundsGEP1_64(
      b_.getInt8Ty(), workspace_, *profileOffset_ + 8 * (rows * g_.size() + size_t(v)));
  auto add = [&] {
    b_.CreateStore(b_.CreateAdd(b_.CreateLoad(b_.getInt64Ty(), counter), cycles), counter);
  };
  if (!parallel_)
    return add();
  onThreadBelow(CompileOptions::kProfileThreads, [&] {
    counter = b_.CreateInBoundsGEP(b_.getInt64Ty(), counter,
                                   b_.CreateMul(threadIndex_, b_.getInt64(g_.size())));
    add();
  });
}

void GraphLowering::createBuffers() {
  // Alias scopes for the workspace regions (see Lowering.h).
  MDBuilder mdb(ctx_);
  MDNode *domain = mdb.createAnonymousAliasScopeDomain("mlpc.workspace");
  const auto &regions = plan_.regions;
  regionScope_.clear();
  regionNoAlias_.clear();
  std::vector<Metadata *> scopes;
  for (size_t i = 0; i < regions.size(); ++i)
    scopes.push_back(mdb.createAnonymousAliasScope(domain, "buf" + std::to_string(i)));
  for (size_t i = 0; i < regions.size(); ++i) {
    regionScope_.push_back(MDNode::get(ctx_, {scopes[i]}));
    std::vector<Metadata *> disjoint;
    for (size_t j = 0; j < regions.size(); ++j)
      if (j != i && (regions[j].end <= regions[i].begin || regions[i].end <= regions[j].begin))
        disjoint.push_back(scopes[j]);
    regionNoAlias_.push_back(disjoint.empty() ? nullptr : MDNode::get(ctx_, disjoint));
  }
  auto workspaceBuf = [&](int64_t offset, int region, Type *elemTy) {
    Buf b;
    b.ptr = b_.CreateConstInBoundsGEP1_64(b_.getInt8Ty(), workspace_, offset);
    b.elemTy = elemTy;
    b.scope = regionScope_[region];
    b.noalias = regionNoAlias_[region];
    return b;
  };

  bufs_.assign(g_.size(), Buf{});
  scratch_.assign(g_.size(), Buf{});
  std::vector<GlobalVariable *> constants(g_.size(), nullptr);
  for (ValueId v = 0; v < g_.size(); ++v) {
    ValueId r = plan_.root[v];
    Type *elemTy = g_[v].type.dtype == DType::F32 ? k_->F32 : k_->I32;
    Buf &b = bufs_[v];
    b.elemTy = elemTy;
    switch (plan_.storage[r]) {
    case Storage::Leaf:
      b.ptr = leafArg_[r];
      break;
    case Storage::Const:
      if (!constants[r])
        constants[r] =
            new GlobalVariable(m_, k_->F32, /*isConstant=*/true, GlobalValue::PrivateLinkage,
                               ConstantFP::get(k_->F32, g_[r].scalar), "const");
      b.ptr = constants[r];
      break;
    case Storage::Workspace:
      b = workspaceBuf(plan_.offset[r], plan_.region[r], elemTy);
      break;
    case Storage::Output:
      b.ptr = outputArg_[plan_.outputSlot[r]];
      break;
    case Storage::LeafWrite:
      b.ptr = leafArg_[plan_.writeTarget[r]];
      break;
    case Storage::Alias:
    case Storage::Inlined:
    case Storage::Epilogue:
      break; // roots are never aliases; fused values have no bytes
    }
    if (plan_.scratchOffset[v] >= 0)
      scratch_[v] = workspaceBuf(plan_.scratchOffset[v], plan_.scratchRegion[v], k_->F32);
  }
  if (plan_.threadSlotsOffset >= 0)
    threadSlots_ = workspaceBuf(plan_.threadSlotsOffset, plan_.threadSlotsRegion, k_->F32);
  stats_.clear();
  for (size_t i = 0; i < plan_.stats.size(); ++i) {
    const StatsPlan &s = plan_.stats[i];
    stats_.push_back(workspaceBuf(s.offset, s.region, k_->F32)); // means
    stats_.push_back(workspaceBuf(s.offset + statsColumnStride(statsColumns(i)) * kElemBytes,
                                  s.region, k_->F32));
  }
}

Buf GraphLowering::outputBuf(size_t output) const {
  Buf b;
  b.ptr = outputArg_[output];
  b.elemTy = g_[g_.outputs[output].value].type.dtype == DType::F32 ? k_->F32 : k_->I32;
  return b;
}

bool GraphLowering::runsOwnKernel(ValueId v) const {
  if (plan_.filledBy[v] >= 0)
    return false; // a sum that a BatchNormGrad kernel has already written
  Storage s = plan_.storage[v];
  if (s != Storage::Workspace && s != Storage::Output && s != Storage::LeafWrite)
    return false; // leaves, constants, aliases and fused values emit no code of their own
  return opInfo(g_[v].op).kernel != Kernel::None;
}

bool GraphLowering::isPostAction(const OutputPlan &op, size_t position) {
  return op.position == position && !op.direct && !op.inKernel;
}

void GraphLowering::lowerNode(ValueId v) {
  // The statistics a BatchNorm group shares, ahead of every use (the leader
  // itself may be fused into a later loop).
  if (int group = plan_.statsGroup[v]; group >= 0 && plan_.stats[group].leader == v) {
    emitBatchStats(v);
    shareBarrier(); // threads computed different columns of the statistics
  }
  if (!runsOwnKernel(v))
    return;
  // The kernel each op's record names (ir/Op.h: Kernel); no `default:`, so
  // a kernel that is not emitted here does not compile (-Werror=switch).
  switch (opInfo(g_[v].op).kernel) {
  case Kernel::None:
    return;
  case Kernel::Elementwise: // elementwise records, broadcast, batchnorm over its statistics
    return lowerElementwise(v);
  case Kernel::Reduction:
    return lowerReduction(v);
  case Kernel::MaxMask:
    return lowerMaxMask(v);
  case Kernel::MatMul:
    return lowerMatMul(v);
  case Kernel::Gather:
    return lowerGather(v);
  case Kernel::ScatterAdd:
    return lowerScatterAdd(v);
  case Kernel::Pick:
    return lowerPick(v);
  case Kernel::Unpick:
    return lowerUnpick(v);
  case Kernel::BatchNormGrad:
    return lowerBatchNormGrad(v);
  case Kernel::CrossEntropy: // cross_entropy and cross_entropy_grad
    return lowerCrossEntropy(v);
  }
}

void GraphLowering::copy(const Buf &from, const Buf &to, int64_t numel) {
  // Bit copies go through i32 lanes so i32 tensors and NaN payloads survive.
  Buf src = from, dst = to;
  src.elemTy = dst.elemTy = k_->I32;
  k_->chunks(numel, [&](Value *off, unsigned lanes) {
    k_->storeVec(dst, off, k_->loadVec(src, off, lanes), lanes);
  });
}

void GraphLowering::ifNonNull(Value *ptr, function_ref<void()> then) {
  BasicBlock *thenBB = BasicBlock::Create(ctx_, "nonnull", body_);
  BasicBlock *cont = BasicBlock::Create(ctx_, "nonnull.end", body_);
  b_.CreateCondBr(b_.CreateIsNotNull(ptr), thenBB, cont);
  b_.SetInsertPoint(thenBB);
  then();
  b_.CreateBr(cont);
  b_.SetInsertPoint(cont);
}

void GraphLowering::emitPostActions(size_t position) {
  // Plain copies first: they may read a leaf that a write-back below overwrites.
  for (int pass = 0; pass < 2; ++pass)
    for (size_t i = 0; i < plan_.outputs.size(); ++i) {
      const OutputPlan &op = plan_.outputs[i];
      if (!isPostAction(op, position) || (op.kind == OutputKind::Plain) != (pass == 0))
        continue;
      const Buf &value = buf(op.value);
      int64_t numel = g_[op.value].type.numel();
      if (op.kind == OutputKind::Plain) {
        copy(value, outputBuf(i), numel);
        continue;
      }
      ifNonNull(outputArg_[i], [&] { copy(value, outputBuf(i), numel); });
      if (op.inPlace)
        continue; // the value's loop wrote the leaf
      const Buf &target = buf(op.target);
      if (op.kind == OutputKind::WriteBack) {
        copy(value, target, numel);
        continue;
      }
      // P -= lr * grad
      Value *negLr = k_->splat(b_.CreateFNeg(lr_));
      k_->chunks(numel, [&](Value *off, unsigned lanes) {
        Value *p = k_->loadVec(target, off, lanes), *grad = k_->loadVec(value, off, lanes);
        k_->storeVec(target, off, k_->fmuladd(negLr, grad, p), lanes);
      });
    }
}

void GraphLowering::zeroFill(const Buf &b, int64_t numel) {
  Value *zero = Constant::getNullValue(FixedVectorType::get(b.elemTy, k_->VW));
  k_->chunks(numel, [&](Value *off, unsigned lanes) { k_->storeVec(b, off, zero, lanes); });
}

} // namespace mlpc::codegen
