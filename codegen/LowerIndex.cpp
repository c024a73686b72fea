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
// single masked vector on AVX-512).
void GraphLowering::lowerGather(ValueId v) {
  const Node &n = g_[v];
  const Buf &table = buf(n.operands[0]), &index = buf(n.operands[1]), &out = buf(v);
  const int64_t rows = g_[n.operands[1]].type.numel(), e = g_[n.operands[0]].type.shape[1];
  k_->loop(0, rows, 1, [&](Value *r) {
    Value *src = k_->mul(k_->loadIndex(index, r), e), *dst = k_->mul(r, e);
    k_->chunks(e, [&](Value *off, unsigned lanes) {
      k_->storeVec(out, k_->add(dst, off), k_->loadVec(table, k_->add(src, off), lanes), lanes);
    });
  });
}

// out = 0; out[idx[r], :] += d[r, :] in row order, so repeated indices
// accumulate exactly like the interpreter's loop.
void GraphLowering::lowerScatterAdd(ValueId v) {
  const Node &n = g_[v];
  const Buf &d = buf(n.operands[0]), &index = buf(n.operands[1]), &out = buf(v);
  const int64_t rows = g_[n.operands[1]].type.numel(), e = n.type.shape[1];
  zeroFill(out, n.type.numel());
  k_->loop(0, rows, 1, [&](Value *r) {
    Value *dst = k_->mul(k_->loadIndex(index, r), e), *src = k_->mul(r, e);
    k_->chunks(e, [&](Value *off, unsigned lanes) {
      Value *sum = b_.CreateFAdd(k_->loadVec(out, k_->add(dst, off), lanes),
                                 k_->loadVec(d, k_->add(src, off), lanes));
      k_->storeVec(out, k_->add(dst, off), sum, lanes);
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
