#include "codegen/KernelBuilder.h"
#include "codegen/Compiler.h"

#include <llvm/IR/Constants.h>
#include <llvm/IR/Intrinsics.h>

using namespace llvm;

namespace mlpc::codegen {

KernelBuilder::KernelBuilder(IRBuilder<> &b, unsigned vectorWidth, unsigned vectorRegisters)
    : B(b), VW(vectorWidth), VectorRegs(vectorRegisters), F32(b.getFloatTy()), I32(b.getInt32Ty()),
      I64(b.getInt64Ty()), VecTy(FixedVectorType::get(F32, vectorWidth)),
      VecI32Ty(FixedVectorType::get(I32, vectorWidth)) {}

namespace {
// An index as base + constant offset (base null for a constant).
std::pair<Value *, int64_t> splitOffset(Value *v) {
  if (auto *c = dyn_cast<ConstantInt>(v))
    return {nullptr, c->getSExtValue()};
  if (auto *op = dyn_cast<BinaryOperator>(v); op && op->getOpcode() == Instruction::Add)
    if (auto *c = dyn_cast<ConstantInt>(op->getOperand(1)))
      return {op->getOperand(0), c->getSExtValue()};
  return {v, 0};
}
} // namespace

// Why the offsets move outward: written as they come ((row0 + r) * cols +
// column + q * VW per element of a tile), every element's index was its own
// chain of adds and multiplies, which instruction selection then had to
// reassociate node by node (the DAG combiner's known-bits queries on i64
// adds were ~10% of the machine-code time of a matmul module). Two's
// complement arithmetic is associative, so the indices are the same.
Value *KernelBuilder::add(Value *a, int64_t c) {
  auto [base, offset] = splitOffset(a);
  Constant *sum = ConstantInt::get(a->getType(), offset + c, /*IsSigned=*/true);
  if (!base)
    return sum;
  return offset + c == 0 ? base : B.CreateAdd(base, sum);
}

Value *KernelBuilder::add(Value *a, Value *b) {
  auto [baseA, offsetA] = splitOffset(a);
  auto [baseB, offsetB] = splitOffset(b);
  Value *base = !baseA ? baseB : !baseB ? baseA : B.CreateAdd(baseA, baseB);
  Constant *sum = ConstantInt::get(a->getType(), offsetA + offsetB, /*IsSigned=*/true);
  if (!base)
    return sum;
  return offsetA + offsetB == 0 ? base : B.CreateAdd(base, sum);
}

Value *KernelBuilder::mul(Value *a, int64_t c) {
  if (c == 1)
    return a;
  if (c == 0)
    return ConstantInt::get(a->getType(), 0);
  auto [base, offset] = splitOffset(a);
  if (!base)
    return ConstantInt::get(a->getType(), offset * c, /*IsSigned=*/true);
  return add(B.CreateMul(base, ConstantInt::get(a->getType(), c, /*IsSigned=*/true)), offset * c);
}

Values KernelBuilder::loopCarried(int64_t begin, int64_t end, int64_t step, ArrayRef<Value *> init,
                                  function_ref<Values(Value *, ArrayRef<Value *>)> body,
                                  const Twine &name) {
  int64_t trips = end > begin ? (end - begin + step - 1) / step : 0;
  if (trips == 0)
    return Values(init.begin(), init.end());
  if (trips == 1)
    return body(idx(begin), init);

  // A bottom-tested loop (trip count >= 2 is known): header = body start.
  Function *f = B.GetInsertBlock()->getParent();
  BasicBlock *pre = B.GetInsertBlock();
  BasicBlock *header = BasicBlock::Create(B.getContext(), name, f);
  BasicBlock *exit = BasicBlock::Create(B.getContext(), name + ".end", f);
  B.CreateBr(header);
  B.SetInsertPoint(header);
  PHINode *iv = B.CreatePHI(I64, 2, name);
  iv->addIncoming(idx(begin), pre);
  SmallVector<PHINode *, 16> phis;
  Values carried;
  for (Value *v : init) {
    PHINode *phi = B.CreatePHI(v->getType(), 2);
    phi->addIncoming(v, pre);
    phis.push_back(phi);
    carried.push_back(phi);
  }
  Values next = body(iv, carried);
  BasicBlock *latch = B.GetInsertBlock();
  Value *ivNext = B.CreateAdd(iv, idx(step), name + ".next", /*HasNUW=*/true, /*HasNSW=*/true);
  B.CreateCondBr(B.CreateICmpSLT(ivNext, idx(end)), header, exit);
  iv->addIncoming(ivNext, latch);
  for (size_t i = 0; i < phis.size(); ++i)
    phis[i]->addIncoming(next[i], latch);
  B.SetInsertPoint(exit);
  return next;
}

void KernelBuilder::loop(int64_t begin, int64_t end, int64_t step, function_ref<void(Value *)> body,
                         const Twine &name) {
  loopCarried(
      begin, end, step, {},
      [&](Value *i, ArrayRef<Value *>) {
        body(i);
        return Values{};
      },
      name);
}

void KernelBuilder::chunks(int64_t n, function_ref<void(Value *, unsigned)> body) {
  int64_t full = n / VW * VW;
  loop(
      0, full, VW, [&](Value *off) { body(off, VW); }, "c");
  if (n % VW)
    body(idx(full), static_cast<unsigned>(n % VW));
}

// base + offset as two GEPs, the constant one last: the elements of a tile
// or a row then share the first (one pointer, deduplicated by early-cse)
// and differ by an immediate displacement.
Value *KernelBuilder::gep(const Buf &b, Value *index) {
  auto [base, offset] = splitOffset(index);
  if (offset < 0) // the first GEP could point past the end: not inbounds
    return B.CreateConstGEP1_64(b.elemTy, base ? B.CreateGEP(b.elemTy, b.ptr, base) : b.ptr,
                                uint64_t(offset));
  Value *ptr = base ? B.CreateInBoundsGEP(b.elemTy, b.ptr, base) : b.ptr;
  return offset ? B.CreateConstInBoundsGEP1_64(b.elemTy, ptr, uint64_t(offset)) : ptr;
}

void KernelBuilder::prefetch(const Buf &b, Value *index) {
  Value *at = B.CreateGEP(b.elemTy, b.ptr, index);
  // llvm.prefetch(address, read, locality 3 (keep in all levels), data cache)
  B.CreateIntrinsic(Intrinsic::prefetch, {B.getPtrTy()},
                    {at, B.getInt32(0), B.getInt32(3), B.getInt32(1)});
}

void KernelBuilder::annotate(Instruction *inst, const Buf &b) {
  if (b.scope)
    inst->setMetadata(LLVMContext::MD_alias_scope, b.scope);
  if (b.noalias)
    inst->setMetadata(LLVMContext::MD_noalias, b.noalias);
}

Value *KernelBuilder::mask(unsigned lanes) {
  SmallVector<Constant *, 16> bits;
  for (unsigned i = 0; i < VW; ++i)
    bits.push_back(B.getInt1(i < lanes));
  return ConstantVector::get(bits);
}

Value *KernelBuilder::loadVec(const Buf &b, Value *index, unsigned lanes, Value *passthru) {
  auto *ty = FixedVectorType::get(b.elemTy, VW);
  Instruction *inst;
  if (lanes == VW)
    inst = B.CreateAlignedLoad(ty, gep(b, index), Align(4));
  else
    inst = B.CreateMaskedLoad(ty, gep(b, index), Align(4), mask(lanes),
                              passthru ? passthru : Constant::getNullValue(ty));
  annotate(inst, b);
  return inst;
}

Value *KernelBuilder::loadVecMasked(const Buf &b, Value *index, Value *mask) {
  auto *ty = FixedVectorType::get(b.elemTy, VW);
  Instruction *inst =
      B.CreateMaskedLoad(ty, gep(b, index), Align(4), mask, Constant::getNullValue(ty));
  annotate(inst, b);
  return inst;
}

Value *KernelBuilder::runtimeMask(Value *count) {
  return B.CreateICmpULT(laneIndices(idx(0)), B.CreateVectorSplat(VW, B.CreateTrunc(count, I32)));
}

void KernelBuilder::storeVec(const Buf &b, Value *index, Value *v, unsigned lanes) {
  Instruction *inst;
  if (lanes == VW)
    inst = B.CreateAlignedStore(v, gep(b, index), Align(4));
  else
    inst = B.CreateMaskedStore(v, gep(b, index), Align(4), mask(lanes));
  annotate(inst, b);
}

// Lanes rotated up by VW - lanes (one shuffle), stored from index - (VW -
// lanes) with the top `lanes` lanes active. The inactive lanes then cover
// the end of the element before index instead of what follows: never
// accessed (as before), and written earlier rather than read next. The
// first inactive lane may point before the buffer: gep makes no inbounds
// claim for a negative offset.
void KernelBuilder::storeVecEndAligned(const Buf &b, Value *index, Value *v, unsigned lanes) {
  if (lanes == VW)
    return storeVec(b, index, v, lanes);
  const unsigned shift = VW - lanes;
  SmallVector<int, 16> rotate;
  SmallVector<Constant *, 16> active;
  for (unsigned lane = 0; lane < VW; ++lane) {
    rotate.push_back(static_cast<int>((lane + lanes) % VW));
    active.push_back(B.getInt1(lane >= shift));
  }
  Value *at = gep(b, add(index, -int64_t(shift)));
  annotate(B.CreateMaskedStore(B.CreateShuffleVector(v, rotate), at, Align(4),
                               ConstantVector::get(active)),
           b);
}

Value *KernelBuilder::load(const Buf &b, Value *index) {
  Instruction *inst = B.CreateAlignedLoad(b.elemTy, gep(b, index), Align(4));
  annotate(inst, b);
  return inst;
}

void KernelBuilder::store(const Buf &b, Value *index, Value *v) {
  annotate(B.CreateAlignedStore(v, gep(b, index), Align(4)), b);
}

Value *KernelBuilder::loadIndex(const Buf &b, Value *index) {
  return B.CreateSExt(load(b, index), I64);
}

Value *KernelBuilder::fmuladd(Value *a, Value *b, Value *c) {
  return B.CreateIntrinsic(Intrinsic::fmuladd, {a->getType()}, {a, b, c});
}

Value *KernelBuilder::maxOf(Value *acc, Value *x) {
  return B.CreateSelect(B.CreateFCmpOLT(acc, x), x, acc);
}

Value *KernelBuilder::hsum(Value *v) {
  auto *call = cast<CallInst>(B.CreateFAddReduce(ConstantFP::getNegativeZero(F32), v));
  FastMathFlags fmf;
  fmf.setAllowReassoc(); // tree order instead of a serial chain of VW adds
  call->setFastMathFlags(fmf);
  return call;
}

Value *KernelBuilder::hmax(Value *v) {
  // A shuffle tree with maxOf at each level (log2(VW) steps). llvm.vector.reduce.fmax
  // without nnan lowers to a serial chain of scalar max + NaN fix-ups.
  for (unsigned width = VW / 2; width >= 1; width /= 2) {
    SmallVector<int, 16> upper;
    for (unsigned i = 0; i < VW; ++i)
      upper.push_back(static_cast<int>((i + width) % VW));
    v = maxOf(v, B.CreateShuffleVector(v, upper));
  }
  return B.CreateExtractElement(v, uint64_t(0));
}

Value *KernelBuilder::laneIndices(Value *offset) {
  SmallVector<Constant *, 16> iota;
  for (unsigned i = 0; i < VW; ++i)
    iota.push_back(B.getInt32(i));
  return B.CreateAdd(B.CreateVectorSplat(VW, B.CreateTrunc(offset, I32)),
                     ConstantVector::get(iota));
}

Value *KernelBuilder::concat(ArrayRef<Value *> parts) {
  Values level(parts.begin(), parts.end());
  while (level.size() & (level.size() - 1)) // a power of two, padded with poison
    level.push_back(PoisonValue::get(level[0]->getType()));
  while (level.size() > 1) {
    Values next;
    for (size_t i = 0; i + 1 < level.size(); i += 2) {
      unsigned n = cast<FixedVectorType>(level[i]->getType())->getNumElements();
      SmallVector<int, 64> mask;
      for (unsigned j = 0; j < 2 * n; ++j)
        mask.push_back(static_cast<int>(j));
      next.push_back(B.CreateShuffleVector(level[i], level[i + 1], mask));
    }
    level = std::move(next);
  }
  return level[0];
}

Values KernelBuilder::split(Value *v, size_t parts) {
  Values out;
  for (size_t p = 0; p < parts; ++p) {
    SmallVector<int, 16> mask;
    for (unsigned j = 0; j < VW; ++j)
      mask.push_back(static_cast<int>(p * VW + j));
    out.push_back(B.CreateShuffleVector(v, mask));
  }
  return out;
}

Value *KernelBuilder::broadcastLane(Value *v, unsigned i) {
  return B.CreateShuffleVector(v, SmallVector<int, 16>(VW, static_cast<int>(i)));
}

Values KernelBuilder::rowBlocks(int64_t rows, ArrayRef<Value *> init,
                                function_ref<Values(Value *, unsigned, ArrayRef<Value *>)> body) {
  int64_t full = rows / VW * VW;
  Values carried = loopCarried(
      0, full, VW, init, [&](Value *r0, ArrayRef<Value *> c) { return body(r0, VW, c); }, "rb");
  if (rows % VW)
    carried = body(idx(full), static_cast<unsigned>(rows % VW), carried);
  return carried;
}

std::pair<SmallVector<int, 16>, SmallVector<int, 16>> KernelBuilder::pairMasks(unsigned s) const {
  SmallVector<int, 16> low, high;
  for (unsigned lane = 0; lane < VW; ++lane) {
    unsigned p = lane / (2 * s) * (2 * s), q = lane - p;
    unsigned from = q < s ? p + q : VW + p + (q - s);
    low.push_back(static_cast<int>(from));
    high.push_back(static_cast<int>(from + s));
  }
  return {low, high};
}

// Stage s combines vector i with vector i + s (i < s): each 2s-block of the
// result holds, for both, the combination of their two s-lane halves. With
// this pairing, lane r of the last vector belongs to rows[r].
Value *KernelBuilder::reduceAcross(ArrayRef<Value *> rows, Value *fill,
                                   function_ref<Value *(Value *, Value *)> combine) {
  Values v(rows.begin(), rows.end());
  v.resize(VW, fill);
  for (unsigned s = VW / 2; s >= 1; s /= 2) {
    auto [low, high] = pairMasks(s);
    for (unsigned i = 0; i < s; ++i)
      v[i] = combine(B.CreateShuffleVector(v[i], v[i + s], low),
                     B.CreateShuffleVector(v[i], v[i + s], high));
  }
  return v[0];
}

Value *KernelBuilder::entryAlloca(Type *ty, unsigned count) {
  BasicBlock &entry = B.GetInsertBlock()->getParent()->getEntryBlock();
  IRBuilder<> eb(&entry, entry.begin());
  AllocaInst *slot = eb.CreateAlloca(ty, eb.getInt32(count));
  slot->setAlignment(Align(64));
  return slot;
}

Value *KernelBuilder::reduceRowsAcross(unsigned count, Value *fill,
                                       function_ref<Value *(Value *)> perRow,
                                       function_ref<Value *(Value *, Value *)> combine) {
  // Each row is reduced in the loop, by halves (lane j with lane j + s,
  // s = VW/2 .. 1: the pairs and operand order reduceAcross gives each row,
  // so the same bits), and its scalar stored in lane r of a staged vector
  // that starts as reduceAcross's value for absent rows (fill reduced).
  // One slot per function serves every call: calls never nest (perRow does
  // not reduce across rows itself) and the staged values are dead once
  // reloaded.
  auto reduceRow = [&](Value *v) {
    for (unsigned s = VW / 2; s >= 1; s /= 2) {
      SmallVector<int, 16> upper(VW, -1);
      for (unsigned j = 0; j < s; ++j)
        upper[j] = static_cast<int>(s + j);
      v = combine(v, B.CreateShuffleVector(v, upper));
    }
    return B.CreateExtractElement(v, uint64_t(0));
  };
  if (!stage_)
    stage_ = entryAlloca(VecTy, 1);
  Value *stage = stage_;
  B.CreateAlignedStore(B.CreateVectorSplat(VW, reduceRow(fill)), stage, Align(64));
  loop(
      0, count, 1,
      [&](Value *r) {
        B.CreateAlignedStore(reduceRow(perRow(r)), B.CreateInBoundsGEP(F32, stage, r), Align(4));
      },
      "row");
  return B.CreateAlignedLoad(VecTy, stage, Align(64));
}

Value *KernelBuilder::stackVector(Value *v) {
  Value *slot = entryAlloca(v->getType(), 1);
  B.CreateAlignedStore(v, slot, Align(64));
  return slot;
}

Value *KernelBuilder::splatLane(Value *slot, Value *lane) {
  Type *elem = F32;
  return splat(B.CreateAlignedLoad(elem, B.CreateInBoundsGEP(elem, slot, lane), Align(4)));
}

} // namespace mlpc::codegen
