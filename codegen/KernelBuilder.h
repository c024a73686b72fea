// A thin layer over IRBuilder for writing kernels with compile-time shapes:
// counted loops (optionally carrying SSA values, e.g. vector accumulators),
// loops over vector-sized chunks of a row with one masked tail chunk, and
// loads/stores that carry the buffer's alias-scope metadata.
//
// Kernels are written with explicit <VW x float> vectors (VW from the
// target: 16 on AVX-512) instead of scalar loops left to the loop vectoriser:
// every shape is a constant, so the vector code can be laid out exactly
// (register-blocked matmuls, row reductions in registers, masked tails with
// no scalar epilogue), and the result does not depend on the vectoriser's
// cost model or on runtime alias checks.
#pragma once

#include <llvm/ADT/STLFunctionalExtras.h>
#include <llvm/ADT/SmallVector.h>
#include <llvm/IR/IRBuilder.h>

#include <cstdint>

namespace mlpc::codegen {

// A pointer to a tensor's first element plus what every access to it needs.
struct Buf {
  llvm::Value *ptr = nullptr;
  llvm::Type *elemTy = nullptr;    // float or i32
  llvm::MDNode *scope = nullptr;   // !alias.scope (workspace regions only)
  llvm::MDNode *noalias = nullptr; // !noalias
};

using Values = llvm::SmallVector<llvm::Value *, 16>;

class KernelBuilder {
public:
  KernelBuilder(llvm::IRBuilder<> &b, unsigned vectorWidth, unsigned vectorRegisters);

  llvm::IRBuilder<> &B;
  const unsigned VW;         // f32 lanes per vector
  const unsigned VectorRegs; // architectural vector registers (32 with AVX-512)
  // Cut long shuffle chains with llvm.arithmetic.fence (see transpose); only
  // for targets whose backend implements the fence (x86).
  bool FenceShuffles = false;
  llvm::Type *F32, *I32, *I64;
  llvm::FixedVectorType *VecTy, *VecI32Ty;

  // Index arithmetic in i64; constant operands fold, and constant offsets
  // move outward ((x + 1) * 4 + (y + 2) -> (x * 4 + y) + 6), so that the
  // indices of a tile's or a row's elements share one base expression and
  // differ by a constant, which the addressing modes absorb.
  llvm::Value *idx(int64_t c) const { return B.getInt64(c); }
  llvm::Value *add(llvm::Value *a, int64_t c);
  llvm::Value *add(llvm::Value *a, llvm::Value *b);
  llvm::Value *mul(llvm::Value *a, int64_t c);

  // for (i = begin; i < end; i += step) body(i). No loop for trip counts 0
  // and 1 (the body then sees a constant index).
  void loop(int64_t begin, int64_t end, int64_t step, llvm::function_ref<void(llvm::Value *)> body,
            const llvm::Twine &name = "i");
  // The same with loop-carried values: body gets the current values and
  // returns the next ones; returns the values after the last iteration.
  Values loopCarried(int64_t begin, int64_t end, int64_t step, llvm::ArrayRef<llvm::Value *> init,
                     llvm::function_ref<Values(llvm::Value *, llvm::ArrayRef<llvm::Value *>)> body,
                     const llvm::Twine &name = "i");
  // Work sharing inside a parallel node (CompileOptions::parallel; the
  // shared loops are in KernelShare.cpp): this thread's index and the
  // thread count (i64), or null outside such a node.
  struct Share {
    llvm::Value *index = nullptr, *count = nullptr;
    // ThreadContext::shareBegin / shareEnd: this thread's part, in
    // 1/kShareUnit of the trips.
    llvm::Value *begin = nullptr, *end = nullptr;
  } share;
  // loop() over only this thread's part of the trips when `share` is set:
  // trips [round(T*begin/U), round(T*end/U)), each cut rounded to the
  // nearest trip (U = ThreadContext::kShareUnit; KernelShare.cpp says why
  // nearest). Every trip
  // runs the same code on whichever thread it lands, so results depend
  // neither on the thread count nor on where the cuts fall.
  void loopShared(int64_t begin, int64_t end, int64_t step,
                  llvm::function_ref<void(llvm::Value *)> body, const llvm::Twine &name = "s");
  // body() on the last thread only (the tail after a shared loop): the one
  // whose nonempty part reaches the end of the trips; always when `share`
  // is not set.
  void onLastShare(llvm::function_ref<void()> body);
  // Trip `trip` of a loop of `trips` trips whose thread cuts are this
  // thread's part (as loopShared would cut it), but each trip a run of
  // work the threads may split further: body() runs when this thread's
  // part covers any of the trip, with `share` set to that portion rescaled
  // to the trip (so that the body's own shared loops split the trip's work
  // between the threads whose parts cover it); no cut then falls between
  // trips where loopShared's would not, and two threads with equal parts
  // of an even trip count each run whole trips. Without `share`: body()
  // as it is.
  void onShareOfTrip(llvm::Value *trip, int64_t trips, llvm::function_ref<void()> body);
  // Covers [0, n) with vector chunks: a loop over full chunks, then at most
  // one masked chunk of n % VW lanes. body(offset of the chunk's first lane, lanes).
  void chunks(int64_t n, llvm::function_ref<void(llvm::Value *, unsigned)> body);
  // The same with the full chunks shared between threads (loopShared) and
  // the masked one on the last share.
  void chunksShared(int64_t n, llvm::function_ref<void(llvm::Value *, unsigned)> body);
  // Like chunks, but hands out up to `group` consecutive chunks at a time so
  // a kernel can keep several independent accumulator chains in flight.
  // body(offset of the first chunk, lanes of each chunk); chunk c starts at
  // offset + c * VW.
  // shared: the groups are split between threads (see `share`).
  void chunkGroups(int64_t n, unsigned group,
                   llvm::function_ref<void(llvm::Value *, llvm::ArrayRef<unsigned>)> body,
                   bool shared = false);

  // Column sums in a fixed blocking (the batch statistics, BatchNormGrad,
  // column reductions), so that threads can split the blocks and still get
  // the one-thread bits. step(acc, row, v) folds one row into accumulator v.
  using RowStep = llvm::function_ref<llvm::Value *(llvm::Value *, llvm::Value *, size_t)>;
  // The fold of rows [first, first + count), each accumulator from zero.
  Values fold(size_t vectors, llvm::Value *first, int64_t count, RowStep step);
  // ((0 + p_0) + p_1) + ... over blocks b of p_b = part(b): the order in
  // which parallel kernels add the blocks' partial sums.
  Values sumOverBlocks(size_t vectors, int64_t blocks,
                       llvm::function_ref<Values(llvm::Value *)> part);
  // The fold of rows [0, rows) as `blocks` equal blocks added in order (one
  // block: just the fold).
  Values blockedFold(size_t vectors, int64_t rows, int64_t blocks, RowStep step);
  // The same column sums of [rows, h] along whole rows, for many columns
  // (KernelColumnSums.cpp says why): for each of this thread's row blocks (a
  // shared loop), `sums` running sums per column, kept at element
  // slot(s, block, column) of `scratch` and started from zero; step(row,
  // column, lanes, sums) adds one row's chunk and returns the new sums. The
  // same additions in the same order as blockedFold's blocks.
  using RowChunkStep = llvm::function_ref<Values(llvm::Value *row, llvm::Value *column,
                                                 unsigned lanes, llvm::ArrayRef<llvm::Value *>)>;
  using BlockSlot = llvm::function_ref<llvm::Value *(size_t, llvm::Value *, llvm::Value *)>;
  void blockColumnSums(int64_t rows, int64_t blocks, int64_t h, size_t sums, const Buf &scratch,
                       BlockSlot slot, RowChunkStep step);
  void blockColumnSumsInRegisters(int64_t rows, int64_t blocks, int64_t h, size_t sums,
                                  const Buf &scratch, BlockSlot slot, RowChunkStep step);
  // ((0 + p_0) + p_1) + ... over the blocks' partial sums (sumOverBlocks'
  // order) of vectors.size() columns at once: p_b of column j is lanes[j]
  // lanes at element at(j, b) of `scratch`.
  Values sumBlocks(int64_t blocks, const Buf &scratch, llvm::ArrayRef<unsigned> lanes,
                   llvm::function_ref<llvm::Value *(size_t, llvm::Value *)> at);

  // Vector and scalar memory access at an element index. Partial vectors use
  // masked loads/stores (inactive lanes are never touched; loads fill them
  // with `passthru`, zero by default).
  llvm::Value *loadVec(const Buf &b, llvm::Value *index, unsigned lanes,
                       llvm::Value *passthru = nullptr);
  // A load under a runtime <VW x i1> mask (inactive lanes read 0).
  llvm::Value *loadVecMasked(const Buf &b, llvm::Value *index, llvm::Value *mask);
  void storeVec(const Buf &b, llvm::Value *index, llvm::Value *v, unsigned lanes);
  // A read prefetch of element `index` of `b` into every cache level. The
  // element may lie past the end of `b` (a prefetch never faults), so the
  // address makes no inbounds claim.
  void prefetch(const Buf &b, llvm::Value *index);
  // storeVec whose masked store (lanes < VW) ends at the vector's last
  // element: for a row-by-row in-place update whose rows are not whole
  // vectors. Intel cores hold a load that overlaps the full width of an
  // older masked store, inactive lanes included, until that store has
  // written the cache; stored from index, row r's tail covers the start of
  // row r + 1, which is loaded next. Costs one shuffle.
  void storeVecEndAligned(const Buf &b, llvm::Value *index, llvm::Value *v, unsigned lanes);
  llvm::Value *load(const Buf &b, llvm::Value *index);
  void store(const Buf &b, llvm::Value *index, llvm::Value *v);
  llvm::Value *loadIndex(const Buf &b, llvm::Value *index); // i32 element, sign-extended to i64
  llvm::Value *mask(unsigned lanes);
  // The first `count` lanes (an i64 computed at run time, clamped to VW by the caller).
  llvm::Value *runtimeMask(llvm::Value *count);

  llvm::Value *splat(llvm::Value *scalar) { return B.CreateVectorSplat(VW, scalar); }
  llvm::Value *splat(double c) { return llvm::ConstantFP::get(VecTy, c); }
  llvm::Value *fmuladd(llvm::Value *a, llvm::Value *b, llvm::Value *c);
  // max(acc, x) with the interpreter's semantics: x if acc < x, else acc.
  llvm::Value *maxOf(llvm::Value *acc, llvm::Value *x);
  // Horizontal reductions (tree order).
  llvm::Value *hsum(llvm::Value *v);
  llvm::Value *hmax(llvm::Value *v);
  // <offset, offset+1, ...> as i32 lanes, for one-hot compares.
  llvm::Value *laneIndices(llvm::Value *offset);
  // Vectors of VW lanes joined into one of parts.size() * VW lanes (a
  // no-op after type legalisation: the parts stay in their registers), and
  // split back.
  llvm::Value *concat(llvm::ArrayRef<llvm::Value *> parts);
  Values split(llvm::Value *v, size_t parts);
  // Lane i of v in every lane.
  llvm::Value *broadcastLane(llvm::Value *v, unsigned i);

  // Row-blocked helpers: process `rows` rows VW at a time (a loop over full
  // blocks, then one partial block), carrying values across blocks.
  Values rowBlocks(int64_t rows, llvm::ArrayRef<llvm::Value *> init,
                   llvm::function_ref<Values(llvm::Value *firstRow, unsigned count,
                                             llvm::ArrayRef<llvm::Value *>)>
                       body);
  // The blocks of VW rows with nothing carried across them, shared: parallel
  // code splits the full blocks (loopShared) and gives the partial one to the
  // last thread, so that the threads cut the rows where every other row-split
  // loop cuts them; one thread runs them all in order.
  void rowBlocksShared(int64_t rows,
                       llvm::function_ref<void(llvm::Value *firstRow, unsigned count)> body,
                       const llvm::Twine &name = "rb");
  // `count` elements of `ty` in the function's frame (an alloca in the entry
  // block, 64-byte aligned): per-thread scratch with no workspace bytes.
  llvm::Value *entryAlloca(llvm::Type *ty, unsigned count);
  // The VW x VW transpose of VW row vectors, in registers (VW*log2(VW) shuffles).
  Values transpose(Values rows);
  Values transposeByHalves(Values rows); // transpose's fallback for VW % 4 != 0
  // Memory to memory: row c of dst (from element dstRow(c)) = column c of
  // the VW x VW block of src whose row r starts at element srcRow(r). Part
  // of the transpose is done by the loads (fewer shuffles; see
  // KernelTranspose.cpp).
  void transposeBlock(const Buf &src, llvm::function_ref<llvm::Value *(unsigned)> srcRow,
                      const Buf &dst, llvm::function_ref<llvm::Value *(unsigned)> dstRow);
  // Lane r of the result = the reduction (by `combine`) of all lanes of
  // rows[r]; rows.size() <= VW, absent rows count as `fill`. The same
  // shuffle tree as transpose with one combine per pair: 2*(VW-1) shuffles
  // and VW-1 combines reduce VW rows at once, instead of a log2(VW)-deep
  // tree per row (whose latency chains limit ILP in per-row loops).
  llvm::Value *
  reduceAcross(llvm::ArrayRef<llvm::Value *> rows, llvm::Value *fill,
               llvm::function_ref<llvm::Value *(llvm::Value *, llvm::Value *)> combine);
  // The same result for `count` rows produced by perRow(r) in a loop (one
  // copy of the per-row code, however many rows): each row is reduced by
  // halves in the loop, with the pairs and operand order reduceAcross gives
  // it (the same bits), and its lane stored in a staged vector. Not the
  // shared tree: its VW loads, 2*(VW-1) shuffles and VW-1 combines were a
  // third of the cross-entropy kernel's machine code (~4 ms of the JIT's
  // time on the makemore step) for no measurable step time (the loop's rows
  // are independent, so their short trees overlap).
  llvm::Value *
  reduceRowsAcross(unsigned count, llvm::Value *fill,
                   llvm::function_ref<llvm::Value *(llvm::Value *)> perRow,
                   llvm::function_ref<llvm::Value *(llvm::Value *, llvm::Value *)> combine);
  // Stores v in a fresh stack slot so that lanes can be read at a runtime
  // index: splatLane(slot, r) is lane r of v in every lane.
  llvm::Value *stackVector(llvm::Value *v);
  llvm::Value *splatLane(llvm::Value *slot, llvm::Value *lane);

private:
  // Shuffle masks pairing (a, b) at block size s: lanes of each 2s-block
  // take a's then b's low halves (low) or high halves (high).
  std::pair<llvm::SmallVector<int, 16>, llvm::SmallVector<int, 16>> pairMasks(unsigned s) const;
  llvm::Value *gep(const Buf &b, llvm::Value *index);
  llvm::Value *stage_ = nullptr; // reduceRowsAcross's staging slot
  void annotate(llvm::Instruction *inst, const Buf &b);
};

} // namespace mlpc::codegen
