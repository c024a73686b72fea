// Weight gradients by batch row blocks (BufferPlan.h: matMulBatchBlocks).
//
// Matches a TN matmul C[M, N] = A^T @ B, A stored [K, M] and B [K, N], whose
// K (the batch rows: dW1 = emb^T @ dhprebn, dW2 = h^T @ dlogits) statsRowBlocks
// cuts into blocks of at least kMatMulBatchBlockRows rows. Elsewhere (batch
// 32, K not a multiple of the blocks) the plain kernels run.
//
// What it computes: C = (S_0 + S_1) + ..., S_g = P_2g + P_2g+1 and P_b =
// A[b]^T @ B[b] over block b's rows, each P_b's products added in k order
// from zero.
//   One thread (serial code): the blocks are the K chunks of one run of the
//   register-blocked kernel (LowerMatMul.cpp, MatMulArgs::blockRows; for
//   MatMulKernel::Transposed its C^T form, LowerMatMulTransposed.cpp): a
//   tile stores block 2g's sums in area g of the scratch, adds block
//   2g + 1's to them, and the last block's tile adds the pairs before.
//   Threads (parallel code): phase 1 makes each S_g into area g (the same
//   kernel run over the pair's rows), threads splitting the pairs, and a
//   pair's tiles where a thread's cut falls inside it (more threads than
//   pairs); a barrier; phase 2 adds the pairs for each element in order
//   and hands the sums to the epilogue (the fused SGD update, a store),
//   threads splitting C's rows.
// Both add the same values in the same order (IEEE addition commutes, and
// the first pair's sums are taken as they are, not as 0 + S_0), so every
// thread count gives the same bits (tests/unit/test_threads.cpp); they
// differ from an unblocked K loop's in rounding only.
//
// Why: every other node of a step splits the batch rows between threads
// (matmuls by row tiles, elementwise loops by rows, the batch statistics and
// BatchNormGrad by these same row blocks), so each thread's activation rows
// stay in its own core's caches. A weight gradient split by C's rows or
// columns instead had each thread read every batch row of its columns, half
// of them written by the other core; worse, the next step's writes of those
// activations (h by tanh, dhprebn by BatchNormGrad) then waited for the
// other core to give up its copies of the lines. On the 2-core Zen 5 VM with
// its vCPUs ~250 ns apart, writing 512 KB whose lines the other core had
// just read took 64 us against 8 us (a C microbenchmark, both threads at
// once). makemore at B = 256 on 2 threads, per-node profile, old and new
// binaries alternated (8 rounds, medians): H = 1024 tanh 71.6 -> 52.5 us
// per thread, BatchNormGrad 160.5 -> 132.1, the step 810 -> 695 (minima
// 702 -> 656); the dW nodes themselves +3..8% (phase 2 reads every block).
// `--compare-threads 2` (1 against 2 threads in one process): H = 256
// 0.65-0.68x -> 0.84-0.91x, H = 512 0.82-0.93x -> 0.95-0.98x. One thread:
// no change beyond the noise (H = 1024, 10 alternated rounds, minima: step
// 678 -> 667 us, dW2 87.3 -> 86.6, dW1 85.7 -> 87.0). A first version that
// ran the two phases on one thread too cost it 4% (H = 512: dW2 +12%).
// Pairs rather than four blocks each in its own area: the other thread
// then reads one pair's sums instead of two blocks', and the next step's
// writes of them take half as many lines back (2 threads, H = 1024 / B =
// 256, `--compare-threads 2`, 4 alternated runs of 7 rounds: 1.14-1.22x
// -> 1.12-1.28x, medians of the runs 1.165 -> 1.235; dW2 on each thread
// 95.0 -> 81.4 us, median of 8 profiles; one thread at H = 512: step
// minima 322.4 / 322.6 us, 10 rounds).
// Batches of 32 (makemore's) are one block: nothing changes there.
#include "codegen/Lowering.h"

using namespace llvm;

static_assert(mlpc::codegen::kStatsBlocks % 2 == 0, "weight gradients add pairs of blocks");

namespace mlpc::codegen {
namespace {

// The node's shapes: C [m, cols] = A^T @ B over k batch rows (A stored
// [k, m], B [k, cols]) in `blocks` blocks of blockRows rows.
struct BatchBlocks {
  int64_t m, cols, k, blocks, blockRows, blockFloats;
  bool transposed; // MatMulKernel::Transposed: the kernel makes C^T
  BatchBlocks(const Graph &g, const Node &n)
      : m(n.type.shape[0]), cols(n.type.shape[1]), k(g[n.operands[0]].type.shape[0]),
        blocks(matMulBatchBlocks(g, n)), blockRows(k / blocks), blockFloats(m * cols),
        transposed(matMulKernel(g, n) == MatMulKernel::Transposed) {}
};

} // namespace

void GraphLowering::emitBatchBlockPairs(ValueId v) {
  const Node &n = g_[v];
  const BatchBlocks s(g_, n);
  const int64_t m = s.m, cols = s.cols, blocks = s.blocks, blockRows = s.blockRows;
  const int64_t blockFloats = s.blockFloats;
  const bool transposed = s.transposed;
  const Buf &parts = scratch(v);
  const Buf &a = buf(n.operands[0]), &b = buf(n.operands[1]);
  auto offset = [&](const Buf &base, Value *at) {
    Buf view = base;
    view.ptr = b_.CreateInBoundsGEP(k_->F32, base.ptr, at);
    return view;
  };

  // Phase 1: the sums of the pairs of blocks, each pair one run of the
  // kernel over its rows (MatMulArgs::blockRows: the pair's second block
  // added to its first in place). The threads' parts cut the pairs as one
  // loop of `pairs` trips would, but a cut may fall inside a pair: the
  // threads on either side then share that pair's run by its own tiles
  // (KernelBuilder::onShareOfTrip). Two threads with equal parts each run one whole pair, as
  // before; three or more all work (at four, two on each pair) instead of
  // leaving all but two idle. Every element of a pair's sums is still made
  // by one tile in k order, so the bits do not depend on who runs it.
  const int64_t pairs = blocks / 2, pairRows = 2 * blockRows;
  k_->loop(
      0, pairs, 1,
      [&](Value *pair) {
        const Buf part = offset(parts, k_->mul(pair, blockFloats));
        const Buf ab = offset(a, k_->mul(pair, pairRows * m));
        const Buf bb = offset(b, k_->mul(pair, pairRows * cols));
        const int64_t partCols = transposed ? m : cols;
        const MatMulArgs args =
            transposed ? MatMulArgs{bb, ab, cols, m, pairRows, true, false, part, 0, blockRows}
                       : MatMulArgs{ab, bb, m, cols, pairRows, true, false, part, 0, blockRows};
        k_->onShareOfTrip(pair, pairs, [&] {
          emitTiledMatMul(args, [&](Value *row, Value *column, unsigned lanes, Value *acc) {
            k_->storeVec(part, k_->add(k_->mul(row, partCols), column), acc, lanes);
          });
        });
      },
      "kpair");
}

void GraphLowering::emitBatchBlockedMatMul(ValueId v, MatMulEpilogue epilogue) {
  const Node &n = g_[v];
  const BatchBlocks s(g_, n);
  const int64_t m = s.m, cols = s.cols, k = s.k, blocks = s.blocks, blockRows = s.blockRows;
  const int64_t blockFloats = s.blockFloats;
  const bool transposed = s.transposed;
  const Buf &parts = scratch(v);
  const Buf &a = buf(n.operands[0]), &b = buf(n.operands[1]);
  if (blocks / 2 == 2) { // two pairs: two threads take K rows [0, K / 2) and the rest
    splitsAtMiddle(n.operands[0]);
    splitsAtMiddle(n.operands[1]);
  }

  // One thread: the blocks are the K chunks of one kernel run, each adding
  // its sums to the earlier blocks' (MatMulArgs::blockRows) in C's (or
  // C^T's) own scratch: the same additions in the same order as the two
  // phases below, for the memory traffic of an unblocked K-chunked kernel.
  if (!k_->share.index) {
    if (!transposed) {
      emitTiledMatMul(MatMulArgs{a, b, m, cols, k, true, false, parts, /*partialAt=*/0, blockRows},
                      epilogue);
      return;
    }
    emitTiledMatMul(MatMulArgs{b, a, cols, m, k, true, false, parts, 0, blockRows},
                    [&](Value *row, Value *column, unsigned lanes, Value *acc) {
                      k_->storeVec(parts, k_->add(k_->mul(row, m), column), acc, lanes);
                    });
    return emitTransposedEpilogue(
        v, [&](Value *at, unsigned lanes) { return k_->loadVec(parts, at, lanes); }, epilogue);
  }

  emitBatchBlockPairs(v);
  shareBarrier(); // phase 2 reads every pair

  // Phase 2: the pairs' sums of each element in pair order, from pair 0's
  // (not from 0 + S_0, whose -0 would come out +0), to the epilogue.
  const int64_t pairs = blocks / 2;
  auto pairSum = [&](Value *at, unsigned lanes) {
    return k_->loopCarried(
        1, pairs, 1, {k_->loadVec(parts, at, lanes)}, [&](Value *pair, ArrayRef<Value *> sum) {
          Value *p = k_->loadVec(parts, k_->add(k_->mul(pair, blockFloats), at), lanes);
          return Values{b_.CreateFAdd(sum[0], p)};
        })[0];
  };
  if (transposed)
    return emitTransposedEpilogue(v, pairSum, epilogue);
  k_->loopShared(
      0, m, 1,
      [&](Value *row) {
        k_->chunks(cols, [&](Value *c, unsigned lanes) {
          epilogue(row, c, lanes, pairSum(k_->add(k_->mul(row, cols), c), lanes));
        });
      },
      "crow");
}

} // namespace mlpc::codegen
