// A transB matmul's operand transposed into the node's scratch (LowerMatMul.cpp):
// the in-register block transpose, and parallel code's choice between a copy
// per thread and one shared copy.
#include "codegen/Lowering.h"

using namespace llvm;

namespace mlpc::codegen {

// dst[K, N] (row stride dstStride) = src[N, K]^T in VW x VW register blocks: VW row loads, an
// in-register transpose, VW row stores. Written with explicit vectors because
// the scalar loop nest gets vectorised with gathers and fully unrolled, which
// is both slower and very costly to compile.
//
// One block body serves every block, so it is emitted once: with a variant
// per edge case (full/partial rows x full/partial columns), the two
// transposes of the makemore step took ~40 ms of its ~120 ms of machine-code
// generation. A dimension of at least VW has no partial blocks: its last
// block is moved back to end at the edge (start = min(start, size - VW)),
// overlapping the previous one, which only rewrites the same values. A
// dimension below VW is a single block with compile-time masks.
void GraphLowering::transposeInto(const Buf &src, int64_t rows, int64_t cols, const Buf &dst,
                                  int64_t dstStride) {
  const unsigned vw = k_->VW;
  auto blockStart = [&](Value *start, int64_t size) {
    if (size <= vw || size % vw == 0)
      return start;
    return b_.CreateBinaryIntrinsic(Intrinsic::umin, start, k_->idx(size - vw));
  };
  const unsigned rowCount = static_cast<unsigned>(std::min<int64_t>(rows, vw));
  const unsigned colCount = static_cast<unsigned>(std::min<int64_t>(cols, vw));
  auto block = [&](Value *rowStart, Value *colStart) {
    Value *r0 = blockStart(rowStart, rows), *c0 = blockStart(colStart, cols);
    // Row r of the block at first + r * cols: one base register and constant
    // displacements (with (r0 + r) * cols + c0, LSR kept VW row offsets in
    // spilled registers and added c0 to each).
    Value *first = k_->add(k_->mul(r0, cols), c0), *firstOut = k_->add(k_->mul(c0, dstStride), r0);
    auto srcRow = [&](unsigned r) { return k_->add(first, int64_t(r) * cols); };
    auto dstRow = [&](unsigned c) { return k_->add(firstOut, int64_t(c) * dstStride); };
    if (rowCount == vw && colCount == vw) {
      k_->transposeBlock(src, srcRow, dst, dstRow);
      return;
    }
    Values in;
    for (unsigned r = 0; r < vw; ++r)
      in.push_back(r < rowCount ? k_->loadVec(src, srcRow(r), colCount)
                                : Constant::getNullValue(k_->VecTy));
    Values out = k_->transpose(in);
    for (unsigned c = 0; c < colCount; ++c)
      k_->storeVec(dst, dstRow(c), out[c], rowCount);
  };
  // Threads split the blocks so that their stores do not share cache lines:
  // by src rows when a block's dst vectors are whole lines (rows and the dst
  // stride multiples of VW), else by dst rows (src columns), each thread's
  // stores then being one contiguous range. Splitting by src rows with,
  // say, rows = 30 had both threads write every 120-byte dst row: the lines
  // moved between the cores on every store (W1^T in makemore at H=1024: 4x
  // the node's one-thread time). One thread runs the longer dimension
  // outermost, so that each outer trip finishes whole lines of both sides:
  // with src rows outermost, W1^T in makemore ([30,200] -> [200,30]) wrote
  // every 128-byte dst row in two passes over all of dst (mlpc_matmul_bench
  // --evict-kb 256, 32x30x200:NT, median of 8: 0.885x -> 0.868x dnnl_sgemm).
  if (k_->share.index ? rows % vw == 0 && dstStride % vw == 0 : rows >= cols) {
    k_->loopShared(
        0, rows, vw,
        [&](Value *rowStart) {
          k_->loop(
              0, cols, vw, [&](Value *colStart) { block(rowStart, colStart); }, "tc");
        },
        "tr");
    return;
  }
  k_->loopShared(
      0, cols, vw,
      [&](Value *colStart) {
        k_->loop(
            0, rows, vw, [&](Value *rowStart) { block(rowStart, colStart); }, "tr");
      },
      "tc");
}

// Parallel code's transposed B: with a team of up to kTransposeSlots
// threads each thread transposes all of B into its own slot (the plan's
// thread slots, which no other node's bytes overlap) and reads only that;
// larger teams transpose it in parts into slot 0, which every thread then
// reads. Shared, each thread's parts travelled to the
// other cores every step, and the next step's stores into them waited for
// the other cores' copies to be dropped (runtime/ThreadTeam.h, "Locality").
// `--compare-threads 2`, vCPUs ~232 ns apart, 3 alternated rounds, with each
// thread's own copy on its stack up to 64 KB (the first version): makemore
// H = 256 / B = 256 (W1^T, W2^T ~30 KB) 1.03 / 1.00 / 1.06x -> 1.09 / 1.05 /
// 1.14x, H = 200 / B = 256 0.98 / 0.95 / 0.92x -> 0.97 / 0.97 / 0.99x. Slots
// in the scratch for any size, against that (6 alternated runs, vCPUs
// 240-264 ns apart): wavenet (W2^T, W3^T 128 KB) median 0.70x -> 0.76x,
// H = 1024 / B = 256 (110-123 KB) 1.085x / 1.065x (the noise: 1.01-1.27x);
// no stack frames of up to 64 KB on a caller's thread. Workspace: 3 more
// copies (makemore at B = 32: +138 KB; compiling run's peak RSS 38.6 ->
// 38.7 MiB).
// The slots were in each node's scratch until the line census showed the
// transposes written over bytes the other thread had read in other nodes'
// scratch (dW2's pair sums). Per step on 2 threads, lines written after
// the other thread wrote them: makemore H = 1024 / B = 256 773 -> 460,
// wavenet 1182 -> 324, H = 64 160 -> 86. The writes after reads stay
// (8775 at H = 1024): the pair sums' bytes, once the other thread has read
// them, cross whichever node writes them next. Step time unchanged (H =
// 1024, 3 alternated rounds, vCPUs ~77 ns apart: 311-319 -> 309-324 us);
// serial plans keep one copy in the node's scratch instead of four.
void GraphLowering::transposeOwnOrShared(const MatMulArgs &args, int64_t stride, Buf &transposed) {
  const int64_t slot = plan_.threadSlotBytes / kElemBytes;
  Value *own = b_.CreateICmpULE(k_->share.count, k_->idx(kTransposeSlots));
  transposed = threadSlots_;
  transposed.ptr = b_.CreateInBoundsGEP(
      k_->F32, threadSlots_.ptr, b_.CreateSelect(own, k_->mul(k_->share.index, slot), k_->idx(0)));
  Function *f = b_.GetInsertBlock()->getParent();
  BasicBlock *ownBB = BasicBlock::Create(ctx_, "transpose.own", f);
  BasicBlock *sharedBB = BasicBlock::Create(ctx_, "transpose.shared", f);
  BasicBlock *done = BasicBlock::Create(ctx_, "transpose.done", f);
  b_.CreateCondBr(own, ownBB, sharedBB);
  b_.SetInsertPoint(ownBB);
  const KernelBuilder::Share share = k_->share;
  k_->share = {};
  transposeInto(args.b, args.n, args.k, transposed, stride);
  k_->share = share;
  b_.CreateBr(done);
  b_.SetInsertPoint(sharedBB);
  transposeInto(args.b, args.n, args.k, threadSlots_, stride);
  shareBarrier(); // every thread reads all of the transposed B
  b_.CreateBr(done);
  b_.SetInsertPoint(done);
}

} // namespace mlpc::codegen
