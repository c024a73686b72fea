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
  k_->loopShared(0, rows, 1, [&](Value *r) {
    Value *src = k_->mul(k_->loadIndex(index, r), e), *dst = k_->mul(r, e);
    k_->chunks(e, [&](Value *off, unsigned lanes) {
      k_->storeVec(out, k_->add(dst, off), k_->loadVec(table, k_->add(src, off), lanes), lanes);
    });
  });
}

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
void GraphLowering::lowerScatterAdd(ValueId v) {
  const Node &n = g_[v];
  if (scatterRowBlocks(g_, n) > 1)
    return lowerScatterAddBlocks(v);
  const Buf &d = buf(n.operands[0]), &index = buf(n.operands[1]), &out = buf(v);
  const int64_t rows = g_[n.operands[1]].type.numel(), e = n.type.shape[1],
                tableRows = n.type.shape[0];
  const bool padded = e % k_->VW != 0;
  const int64_t stride = padded ? roundUpTo(e, kScatterRowPad) : e;
  const Buf &sums = padded ? scratch(v) : out;
  zeroFill(sums, tableRows * stride);
  k_->loop(0, rows, 1, [&](Value *r) {
    Value *dst = k_->mul(k_->loadIndex(index, r), stride), *src = k_->mul(r, e);
    k_->chunks(e, [&](Value *off, unsigned lanes) {
      const unsigned width = padded ? k_->VW : lanes; // padded: the tail lanes add 0
      Value *sum = b_.CreateFAdd(k_->loadVec(sums, k_->add(dst, off), width),
                                 k_->loadVec(d, k_->add(src, off), lanes));
      k_->storeVec(sums, k_->add(dst, off), sum, width);
    });
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
  const unsigned vw = k_->VW;
  Value *zero = Constant::getNullValue(k_->VecTy);
  k_->loopShared(0, blocks, 1, [&](Value *block) {
    Value *table = k_->mul(block, tableFloats);
    k_->loop(0, tableFloats, vw,
             [&](Value *i) { k_->storeVec(tables, k_->add(table, i), zero, vw); });
    k_->loop(0, blockRows, 1, [&](Value *j) {
      Value *r = k_->add(k_->mul(block, blockRows), j);
      Value *dst = k_->add(table, k_->mul(k_->loadIndex(index, r), stride)), *src = k_->mul(r, e);
      k_->chunks(e, [&](Value *off, unsigned lanes) { // padded: the tail lanes add 0
        Value *sum = b_.CreateFAdd(k_->loadVec(tables, k_->add(dst, off), vw),
                                   k_->loadVec(d, k_->add(src, off), lanes));
        k_->storeVec(tables, k_->add(dst, off), sum, vw);
      });
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
