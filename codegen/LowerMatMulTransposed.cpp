// MatMulKernel::Transposed (BufferPlan.h: matMulKernel): a TN matmul with a
// narrow N, the weight gradient of a layer with few outputs (dW2 = h^T @
// dlogits, [H, 27] from [B, H] and [B, 27]).
//
// What the tiled kernel does there (LowerMatMul.cpp): vectors along N, so
// 27 columns are 2 vectors of 16 with 5 lanes idle, and each k step
// broadcasts MR scalars of op(A) = A^T from row k of A: at H = 1024 the rows
// are 4 KB apart, so a tile's K = 256 rows of A fall in the same L1 sets and
// come from L2 every time (1024x27x256:TN at 0.75-0.85x dnnl_sgemm).
//
// What this does: (A^T B)^T = B^T A. The tiled kernel runs C^T[N, M] =
// op(B)^T @ A, a TN matmul with the long M as its vector dimension, reading
// rows of A contiguously (4 vectors x a few rows per tile), with the N
// scalars of one k adjacent in B's row k. C^T goes to the node's scratch;
// then a pass transposes VW x VW blocks of it in registers
// (KernelBuilder::transpose) and hands each row of C, up to VW columns at a
// time, to the epilogue (the fused SGD update, a plain store). The sums are
// the same products added in the same k order as the tiled kernel's, so the
// result equals its (max abs diff 0 in matmul_bench). Measured with bench/matmul_bench.cpp
// (--evict-kb 256, one process against dnnl_sgemm): 1024x27x256:TN
// 0.85x -> 1.28x, 512x27x256:TN 0.97x -> 1.06x, 200x27x256:TN 1.01x -> 1.02x.
// With a short K the extra pass costs more than it saves (200x27x32:TN, the
// makemore step at batch 32: 1.45x tiled, 0.93x transposed; 1024x27x32:TN
// 1.10x against 0.89x), hence K >= kMatMulPartialMinK (128); 1024x27x128:TN
// is 0.94x tiled, 1.03x transposed.
#include "codegen/Lowering.h"

using namespace llvm;

namespace mlpc::codegen {

void GraphLowering::emitTransposedMatMul(ValueId v, MatMulEpilogue epilogue) {
  const Node &n = g_[v];
  const int64_t m = n.type.shape[0], cols = n.type.shape[1];
  const int64_t k = g_[n.operands[0]].type.shape[0]; // A stored [K, M], B [K, N]
  const Buf &ct = scratch(v);                        // C^T, [N, M]
  // C^T = op(B)^T @ A: B stored [K, N] is the transposed left operand.
  // The partial sums of a K-blocked run use the same floats as C^T (a
  // tile's last chunk reads its partial sums, then stores the result there).
  emitTiledMatMul(MatMulArgs{buf(n.operands[1]), buf(n.operands[0]), cols, m, k,
                             /*transA=*/true, /*transB=*/false, ct, /*partialAt=*/0},
                  [&](Value *row, Value *column, unsigned lanes, Value *acc) {
                    k_->storeVec(ct, k_->add(k_->mul(row, m), column), acc, lanes);
                  });
  shareBarrier(); // a block of C below reads rows of C^T other threads wrote
  emitTransposedEpilogue(
      v, [&](Value *at, unsigned lanes) { return k_->loadVec(ct, at, lanes); }, epilogue);
}

void GraphLowering::emitTransposedEpilogue(ValueId v, TransposedLoad loadCt,
                                           MatMulEpilogue epilogue) {
  const Node &n = g_[v];
  const int64_t m = n.type.shape[0], cols = n.type.shape[1];
  // Blocks of VW rows of C (i) x VW columns (j): VW row loads of C^T, an
  // in-register transpose, then the epilogue for each row of C in the block.
  // The transposed vectors are staged in a frame slot and the epilogue runs
  // in a loop over them: one copy of the (fused) epilogue per block shape.
  const unsigned vw = k_->VW;
  Value *stage = k_->entryAlloca(k_->VecTy, vw);
  auto block = [&](Value *i0, unsigned rowsOfC, Value *j0, unsigned colsOfC) {
    Values in;
    for (unsigned r = 0; r < vw; ++r)
      in.push_back(r < colsOfC ? loadCt(k_->add(k_->mul(k_->add(j0, r), m), i0), rowsOfC)
                               : Constant::getNullValue(k_->VecTy));
    Values out = k_->transpose(in);
    for (unsigned c = 0; c < rowsOfC; ++c)
      b_.CreateAlignedStore(out[c], b_.CreateConstInBoundsGEP1_64(k_->VecTy, stage, c), Align(64));
    k_->loop(
        0, rowsOfC, 1,
        [&](Value *c) {
          Value *vec =
              b_.CreateAlignedLoad(k_->VecTy, b_.CreateInBoundsGEP(k_->VecTy, stage, c), Align(64));
          epilogue(k_->add(i0, c), j0, colsOfC, vec);
        },
        "ci");
  };
  const int64_t fullJ = cols / vw * vw;
  auto rowBlock = [&](Value *i0, unsigned rowsOfC) {
    k_->loop(
        0, fullJ, vw, [&](Value *j0) { block(i0, rowsOfC, j0, vw); }, "cj");
    if (cols % vw)
      block(i0, rowsOfC, k_->idx(fullJ), static_cast<unsigned>(cols % vw));
  };
  k_->rowBlocksShared(m, rowBlock, "ct");
}

} // namespace mlpc::codegen
