// Indexing ops: Gather (embedding lookup), ScatterAdd (its gradient), Pick
// and Unpick (one element per row by label).
//
// Indices are trusted to be in range (documented in Compiler.h): checking
// them here would put a branch in every row; the trainer validates its data
// once, and the interpreter reports bad indices when testing.
#include "codegen/Lowering.h"

using namespace llvm;

namespace mlpc::codegen {

// out[r, :] = table[idx[r], :] — one vector copy per row (E = 10 is a
// single masked vector on AVX-512). Parallel code splits the rows, so each
// thread writes the rows of the batch its part of the next node (a matmul
// by row tiles) reads: on one thread the node wrote every line the other
// thread had read in the step before (wavenet, 2 threads: 2.5 us on thread
// 0 with thread 1 waiting, against 0.6 us serial on one).
void GraphLowering::lowerGather(ValueId v) {
  const Node &n = g_[v];
  const Buf &table = buf(n.operands[0]), &index = buf(n.operands[1]), &out = buf(v);
  const int64_t rows = g_[n.operands[1]].type.numel(), e = g_[n.operands[0]].type.shape[1];
  if (rows % 2 == 0) // two threads: indices [0, rows / 2) and the rest
    splitsAtMiddle(v);
  k_->loopShared(0, rows, 1, [&](Value *r) {
    Value *src = k_->mul(k_->loadIndex(index, r), e), *dst = k_->mul(r, e);
    k_->chunks(e, [&](Value *off, unsigned lanes) {
      k_->storeVec(out, k_->add(dst, off), k_->loadVec(table, k_->add(src, off), lanes), lanes);
    });
  });
}

// The builder of a scatter's row updates: the kernels' builder at most
// kScatterLanes lanes wide (lowerScatterAdd says why), sharing its place in
// a parallel node.
KernelBuilder GraphLowering::narrowRowUpdates() {
  KernelBuilder narrow(b_, std::min<unsigned>(k_->VW, kScatterLanes), k_->VectorRegs);
  narrow.share = k_->share;
  narrow.FenceShuffles = k_->FenceShuffles;
  return narrow;
}

namespace {
// table[dst + j] += d[src + j] for j < e, in vectors of rows.VW lanes.
// Padded rows (stride a multiple of kScatterRowPad >= rows.VW) load and
// store whole vectors: their tail lanes add 0.
void addRow(KernelBuilder &rows, const Buf &table, Value *dst, const Buf &d, Value *src, int64_t e,
            bool padded) {
  rows.chunks(e, [&](Value *off, unsigned lanes) {
    const unsigned width = padded ? rows.VW : lanes;
    Value *sum = rows.B.CreateFAdd(rows.loadVec(table, rows.add(dst, off), width),
                                   rows.loadVec(d, rows.add(src, off), lanes));
    rows.storeVec(table, rows.add(dst, off), sum, width);
  });
}
} // namespace

// One table: out = 0; out[idx[r], :] += d[r, :] in row order, so repeated
// indices accumulate exactly like the interpreter's loop.
// Rows whose length is not a multiple of VW (E = 10) would need a masked
// load and a masked store per row; x86 cannot forward a masked store to the
// next load of the same row (a repeated index), which stalls until the
// store retires: 0.34 us for makemore's 96 rows. So the sums go to rows
// padded to kScatterRowPad floats in the node's scratch (NodeScratch.cpp:
// scratchBytes), with full-width loads and stores, and are copied out once
// at the end (~0.1 us).
// Many rows (BufferPlan.h: scatterRowBlocks) go by row blocks instead: see
// lowerScatterAddBlocks.
//
// The read-modify-write of a row goes at most kScatterLanes (8) lanes wide,
// whatever the kernels' width (narrowRowUpdates): a repeated index loads
// what the store before it wrote, and Zen 5 serves a 512-bit load from a
// recent 512-bit store much more slowly than two 256-bit ones. makemore's
// dC at batch 256 (768 rows of 10 into 27, the real indices, a C replica of
// this loop): 1.72 -> 0.91 us, 128-bit 1.11; one table or four, rows
// interleaved or not, made no difference. The node in the step's profile:
// 1.65 -> 0.92 us. The sums are the same element by element: the same bits.
void GraphLowering::lowerScatterAdd(ValueId v) {
  const Node &n = g_[v];
  if (scatterRowBlocks(g_, n) > 1)
    return lowerScatterAddBlocks(v);
  const Buf &d = buf(n.operands[0]), &index = buf(n.operands[1]), &out = buf(v);
  const int64_t rows = g_[n.operands[1]].type.numel(), e = n.type.shape[1],
                tableRows = n.type.shape[0];
  KernelBuilder rowUpdates = narrowRowUpdates();
  const bool padded = e % rowUpdates.VW != 0;
  const int64_t stride = padded ? roundUpTo(e, kScatterRowPad) : e;
  const Buf &sums = padded ? scratch(v) : out;
  zeroFill(sums, tableRows * stride);
  rowUpdates.loop(0, rows, 1, [&](Value *r) {
    Value *dst = rowUpdates.mul(rowUpdates.loadIndex(index, r), stride),
          *src = rowUpdates.mul(r, e);
    addRow(rowUpdates, sums, dst, d, src, e, padded);
  });
  if (!padded)
    return;
  k_->loop(0, tableRows, 1, [&](Value *r) {
    k_->chunks(e, [&](Value *off, unsigned lanes) {
      k_->storeVec(out, k_->add(k_->mul(r, e), off),
                   k_->loadVec(sums, k_->add(k_->mul(r, stride), off), lanes), lanes);
    });
  });
}

// ScatterAdd by row blocks: block b's rows, in row order, into table b (its
// own, from zero, rows padded to kScatterRowPad floats), then out = ((T0 +
// T1) + T2) + T3 row by row. Parallel code splits the blocks, so each thread
// reads the gradient rows it wrote (the matmul before cut the same batch
// rows), with a barrier before the tables are added; one thread runs the
// blocks in turn, the same additions in the same order: the same bits.
// Before, the node ran on thread 0 alone, reading every row: makemore at
// H = 64 / B = 4096 on 2 threads spent 58 us there (27 on one; the
// per-node profile) while the other thread waited.
void GraphLowering::lowerScatterAddBlocks(ValueId v) {
  const Node &n = g_[v];
  const Buf &d = buf(n.operands[0]), &index = buf(n.operands[1]), &out = buf(v),
            &tables = scratch(v);
  const int64_t rows = g_[n.operands[1]].type.numel(), e = n.type.shape[1],
                tableRows = n.type.shape[0];
  const int64_t blocks = scatterRowBlocks(g_, n), blockRows = rows / blocks;
  const int64_t stride = roundUpTo(e, kScatterRowPad), tableFloats = tableRows * stride;
  if (blocks % 2 == 0 && g_[n.operands[0]].type.numel() == rows * e)
    splitsAtMiddle(n.operands[0]); // two threads: blocks [0, blocks / 2) read the first half
  const unsigned vw = k_->VW;
  Value *zero = Constant::getNullValue(k_->VecTy);
  KernelBuilder rowUpdates = narrowRowUpdates();
  k_->loopShared(0, blocks, 1, [&](Value *block) {
    Value *table = k_->mul(block, tableFloats);
    k_->loop(0, tableFloats, vw,
             [&](Value *i) { k_->storeVec(tables, k_->add(table, i), zero, vw); });
    rowUpdates.loop(0, blockRows, 1, [&](Value *j) {
      Value *r = rowUpdates.add(rowUpdates.mul(block, blockRows), j);
      Value *dst = rowUpdates.add(table, rowUpdates.mul(rowUpdates.loadIndex(index, r), stride));
      addRow(rowUpdates, tables, dst, d, rowUpdates.mul(r, e), e, /*padded=*/true);
    });
  });
  shareBarrier(); // a table row below adds tables other threads wrote
  k_->loopShared(0, tableRows, 1, [&](Value *r) {
    k_->chunks(e, [&](Value *off, unsigned lanes) {
      Value *at = k_->add(k_->mul(r, stride), off);
      Value *sum = k_->loadVec(tables, at, vw);
      for (int64_t b = 1; b < blocks; ++b)
        sum = b_.CreateFAdd(sum, k_->loadVec(tables, k_->add(at, b * tableFloats), vw));
      k_->storeVec(out, k_->add(k_->mul(r, e), off), sum, lanes);
    });
  });
}

// out[r] = x[r, y[r]]
void GraphLowering::lowerPick(ValueId v) {
  const Node &n = g_[v];
  const Buf &x = buf(n.operands[0]), &y = buf(n.operands[1]), &out = buf(v);
  const int64_t rows = n.type.shape[0], k = g_[n.operands[0]].type.shape[1];
  k_->loop(0, rows, 1, [&](Value *r) {
    k_->store(out, r, k_->load(x, k_->add(k_->mul(r, k), k_->loadIndex(y, r))));
  });
}

// out = 0; out[r, y[r]] = d[r]
void GraphLowering::lowerUnpick(ValueId v) {
  const Node &n = g_[v];
  const Buf &d = buf(n.operands[0]), &y = buf(n.operands[1]), &out = buf(v);
  const int64_t rows = n.type.shape[0], k = n.type.shape[1];
  zeroFill(out, n.type.numel());
  k_->loop(0, rows, 1, [&](Value *r) {
    k_->store(out, k_->add(k_->mul(r, k), k_->loadIndex(y, r)), k_->load(d, r));
  });
}

} // namespace mlpc::codegen
