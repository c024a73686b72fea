// Work sharing inside a parallel node (CompileOptions::parallel): the
// loops whose trips the threads of a team split by their parts
// (KernelBuilder::share, ThreadContext::shareBegin / shareEnd), the tail a
// shared loop leaves to one thread, and trips the threads split further.
// Serial code (no `share`) gets the plain loops. Which thread runs a trip
// never changes what the trip computes: every thread count gives the same
// bits (LowerParallel.cpp).
#include "codegen/Compiler.h"
#include "codegen/KernelBuilder.h"

#include <llvm/IR/Intrinsics.h>
#include <llvm/Support/MathExtras.h>

using namespace llvm;

namespace mlpc::codegen {

void KernelBuilder::chunksShared(int64_t n, function_ref<void(Value *, unsigned)> body) {
  if (!share.index)
    return chunks(n, body);
  int64_t full = n / VW * VW;
  loopShared(
      0, full, VW, [&](Value *off) { body(off, VW); }, "c");
  if (n % VW)
    onLastShare([&] { body(idx(full), static_cast<unsigned>(n % VW)); });
}

void KernelBuilder::chunkGroups(int64_t n, unsigned group,
                                function_ref<void(Value *, ArrayRef<unsigned>)> body, bool shared) {
  int64_t fullChunks = n / VW, step = int64_t(group) * VW;
  int64_t grouped = fullChunks / group * step;
  SmallVector<unsigned, 16> lanes(group, VW);
  auto groupBody = [&](Value *off) { body(off, lanes); };
  if (shared)
    loopShared(0, grouped, step, groupBody, "cg");
  else
    loop(0, grouped, step, groupBody, "cg");
  lanes.assign(fullChunks % group, VW);
  if (n % VW)
    lanes.push_back(static_cast<unsigned>(n % VW));
  if (lanes.empty())
    return;
  if (shared)
    onLastShare([&] { body(idx(grouped), lanes); });
  else
    body(idx(grouped), lanes);
}

void KernelBuilder::loopShared(int64_t begin, int64_t end, int64_t step,
                               function_ref<void(Value *)> body, const Twine &name) {
  if (!share.index)
    return loop(begin, end, step, body, name);
  const int64_t trips = end > begin ? (end - begin + step - 1) / step : 0;
  if (trips == 0)
    return;
  // Each cut goes to the nearest trip boundary (kShareUnit is a power of
  // two: the divisions are shifts). Nearest rather than below, so that loops
  // of different grain over the same rows cut them in about the same place:
  // a thread then reads only rows it wrote itself (runtime/ThreadTeam.h,
  // "Locality"). Rounding down, a share of 0.489 gave thread 0 one of the
  // four row blocks of the batch statistics but 125 of the 256 rows of the
  // elementwise loops around them.
  auto cut = [&](Value *at) {
    return B.CreateLShr(
        B.CreateAdd(B.CreateMul(idx(trips), at), idx(ThreadContext::kShareUnit / 2)),
        idx(llvm::Log2_64(ThreadContext::kShareUnit)));
  };
  Value *first = cut(share.begin), *last = cut(share.end);
  // A top-tested loop over [first, last) trips (possibly none on this thread).
  Function *f = B.GetInsertBlock()->getParent();
  BasicBlock *pre = B.GetInsertBlock();
  BasicBlock *header = BasicBlock::Create(B.getContext(), name, f);
  BasicBlock *bodyBB = BasicBlock::Create(B.getContext(), name + ".body", f);
  BasicBlock *exit = BasicBlock::Create(B.getContext(), name + ".end", f);
  B.CreateBr(header);
  B.SetInsertPoint(header);
  PHINode *trip = B.CreatePHI(I64, 2, name);
  trip->addIncoming(first, pre);
  B.CreateCondBr(B.CreateICmpULT(trip, last), bodyBB, exit);
  B.SetInsertPoint(bodyBB);
  body(add(mul(trip, step), begin));
  trip->addIncoming(B.CreateAdd(trip, idx(1), name + ".next", true, true), B.GetInsertBlock());
  B.CreateBr(header);
  B.SetInsertPoint(exit);
}

void KernelBuilder::onLastShare(function_ref<void()> body) {
  if (!share.index)
    return body();
  Function *f = B.GetInsertBlock()->getParent();
  BasicBlock *then = BasicBlock::Create(B.getContext(), "last.share", f);
  BasicBlock *cont = BasicBlock::Create(B.getContext(), "last.share.end", f);
  // Not `index == count - 1`: a part rescaled to one trip (onShareOfTrip)
  // reaches the trip's end on whichever thread's cut lies past it. Exactly
  // one nonempty part ends at kShareUnit: the parts tile [0, kShareUnit).
  Value *unit = idx(ThreadContext::kShareUnit);
  B.CreateCondBr(
      B.CreateAnd(B.CreateICmpEQ(share.end, unit), B.CreateICmpULT(share.begin, share.end)), then,
      cont);
  B.SetInsertPoint(then);
  body();
  B.CreateBr(cont);
  B.SetInsertPoint(cont);
}

void KernelBuilder::onShareOfTrip(Value *trip, int64_t trips, function_ref<void()> body) {
  if (!share.index)
    return body();
  // This thread's part of the whole loop in trips x kShareUnit, relative to
  // the trip's start, clamped to the trip: [0, kShareUnit) is all of it.
  const Share whole = share;
  Value *unit = idx(ThreadContext::kShareUnit), *start = mul(trip, ThreadContext::kShareUnit);
  auto within = [&](Value *at) {
    Value *rel = B.CreateSub(B.CreateMul(at, idx(trips)), start);
    return B.CreateBinaryIntrinsic(Intrinsic::smin,
                                   B.CreateBinaryIntrinsic(Intrinsic::smax, rel, idx(0)), unit);
  };
  Value *begin = within(whole.begin), *end = within(whole.end);
  Function *f = B.GetInsertBlock()->getParent();
  BasicBlock *then = BasicBlock::Create(B.getContext(), "trip.share", f);
  BasicBlock *cont = BasicBlock::Create(B.getContext(), "trip.share.end", f);
  B.CreateCondBr(B.CreateICmpSLT(begin, end), then, cont);
  B.SetInsertPoint(then);
  share.begin = begin;
  share.end = end;
  body();
  share = whole;
  B.CreateBr(cont);
  B.SetInsertPoint(cont);
}

void KernelBuilder::rowBlocksShared(int64_t rows, function_ref<void(Value *, unsigned)> body,
                                    const Twine &name) {
  const int64_t full = rows / VW * VW;
  loopShared(
      0, full, VW, [&](Value *r0) { body(r0, VW); }, name);
  if (rows % VW)
    onLastShare([&] { body(idx(full), static_cast<unsigned>(rows % VW)); });
}

} // namespace mlpc::codegen
