// Fused closed forms: BatchNorm statistics (BatchNormGrad:
// LowerBatchNormGrad.cpp; CrossEntropy and its gradient: LowerCrossEntropy.cpp).
//
// BatchNorm-type ops are column-wise over x[N, H]. The per-column statistics
// of one input are computed once per step by emitBatchStats (mean, then the
// Bessel-corrected variance of x - mean, as 1/sqrt(var + eps): two passes
// over a small batch, one of per-block running means over 64 rows and more)
// into the region of a StatsPlan (BufferPlan.h: statsRegionFloats). BatchNorm,
// BatchNormXhat and BatchNormInfer are then elementwise expressions over x and those columns
// (LowerElementwise.cpp), so they fuse into their consumers: tanh(batchnorm)
// is one pass, sum(dout * xhat) another. BatchNormGrad has its own kernel
// (LowerBatchNormGrad.cpp).
#include "codegen/Lowering.h"
#include "codegen/MathEmitter.h"

#include <cmath>
#include <optional>

using namespace llvm;

namespace mlpc::codegen {

// Batch statistics of x[N, H] for a StatsPlan: per column the mean, then the
// Bessel-corrected variance of x - mean, stored as mean and 1/sqrt(var + eps).
// Computed once per (x, eps) and shared: before, BatchNorm, BatchNormXhat and
// BatchNormGrad each made these two passes over x (-0.5 us on the makemore
// step, and three copies of the kernel less to compile).
void GraphLowering::emitBatchStats(ValueId leader) {
  const Node &n = g_[leader];
  const Buf &x = buf(n.operands[0]);
  const Buf &invStdOut = stats_[2 * plan_.statsGroup[leader] + 1];
  const int64_t rows = n.type.shape[0], h = n.type.shape[1];
  if (n.op == Op::BatchNormInfer) {
    Value *eps = k_->splat(n.scalar), *one = k_->splat(1.0);
    // Running statistics: scale = gain / sqrt(running_var + eps) per column,
    // once per call instead of once per element.
    // One thread in parallel code: a short loop over the columns.
    k_->onLastShare([&] {
      k_->chunks(h, [&](Value *c, unsigned lanes) {
        Value *var = k_->loadVec(buf(n.operands[4]), c, lanes);
        Value *invStd =
            b_.CreateFDiv(one, b_.CreateUnaryIntrinsic(Intrinsic::sqrt, b_.CreateFAdd(var, eps)));
        k_->storeVec(invStdOut, c, b_.CreateFMul(k_->loadVec(buf(n.operands[1]), c, lanes), invStd),
                     lanes);
      });
    });
    return;
  }

  if (statsRowBlocks(rows) > 1)
    return emitBatchStatsByRows(leader);
  // One block: column groups (split between threads), each group's rows
  // staying in L1 between the two passes.
  k_->chunkGroups(
      h, kColumnGroup,
      [&](Value *base, ArrayRef<unsigned> lanes) {
        const size_t nc = lanes.size();
        auto xAt = [&](Value *i, size_t c) {
          return k_->loadVec(x, k_->add(k_->mul(i, h), k_->add(base, int64_t(c) * k_->VW)),
                             lanes[c]);
        };
        Values sums = k_->fold(nc, k_->idx(0), rows, [&](Value *acc, Value *i, size_t c) {
          return b_.CreateFAdd(acc, xAt(i, c));
        });
        Values mean(nc);
        for (size_t c = 0; c < nc; ++c)
          mean[c] = b_.CreateFDiv(sums[c], k_->splat(double(rows)));
        storeMean(leader, base, lanes, mean);
        Values squares = k_->fold(nc, k_->idx(0), rows, [&](Value *acc, Value *i, size_t c) {
          Value *d = b_.CreateFSub(xAt(i, c), mean[c]);
          return k_->fmuladd(d, d, acc);
        });
        storeInvStd(leader, base, lanes, squares);
      },
      /*shared=*/true);
}

void GraphLowering::storeMean(ValueId leader, Value *base, ArrayRef<unsigned> lanes,
                              ArrayRef<Value *> mean) {
  const StatsPlan &plan = plan_.stats[plan_.statsGroup[leader]];
  for (size_t c = 0; c < lanes.size(); ++c) {
    Value *col = k_->add(base, int64_t(c) * k_->VW);
    k_->storeVec(stats_[2 * plan_.statsGroup[leader]], col, mean[c], lanes[c]);
    if (plan.mean >= 0) // the running mean's
      k_->storeVec(buf(static_cast<ValueId>(plan.mean)), col, mean[c], lanes[c]);
  }
}

void GraphLowering::storeInvStd(ValueId leader, Value *base, ArrayRef<unsigned> lanes,
                                ArrayRef<Value *> squares) {
  const Node &n = g_[leader];
  const StatsPlan &plan = plan_.stats[plan_.statsGroup[leader]];
  Value *eps = k_->splat(n.scalar), *one = k_->splat(1.0);
  for (size_t c = 0; c < lanes.size(); ++c) {
    if (plan.squares >= 0) // the running variance's sum of squares
      k_->storeVec(buf(static_cast<ValueId>(plan.squares)), k_->add(base, int64_t(c) * k_->VW),
                   squares[c], lanes[c]);
    Value *var = b_.CreateFDiv(squares[c], k_->splat(double(n.type.shape[0] - 1)));
    Value *invStd =
        b_.CreateFDiv(one, b_.CreateUnaryIntrinsic(Intrinsic::sqrt, b_.CreateFAdd(var, eps)));
    k_->storeVec(stats_[2 * plan_.statsGroup[leader] + 1], k_->add(base, int64_t(c) * k_->VW),
                 invStd, lanes[c]);
  }
}

// Batch statistics by row blocks (batches of 64 rows and more; parallel code
// splits the blocks, so each thread reads only its own rows, which the same
// thread wrote: matmuls and elementwise loops split rows): one pass along
// whole rows (KernelBuilder::blockColumnSums: why rows and not column
// groups) that keeps each block's running mean and sum of squared
// deviations per column (Welford: with delta = x - mean before row j of
// the block, mean += delta / j and m2 += delta * (x - mean after)) in the
// partial sums after the statistics (BufferPlan.h: StatsPlan); then per
// column (split between threads) the blocks, all of n rows, combined in
// order (Chan et al.): mean = sum(mean_b) / B,
// m2 = sum(m2_b) + n * sum((mean_b - mean)^2). As accurate as the two
// passes the column-group kernel makes for small batches (the sums, then
// the squares around the mean), which read every row twice and passed four
// barriers; this reads each row once and passes two. (Sums of x - s and
// (x - s)^2 around a shift s, the first row, were as fast but drift: the
// sums grow as n |mean - s|, and a layer's bias gradient below, which is
// zero in exact arithmetic, came out 1.2e-5 off in the oracle test.) The
// bits differ from the column-group kernel's on the same data, and are the
// same for every thread count (every block and every combination in order).
// Zen 5, one thread, per-node profile at H = 1024 / B = 256: 24.9 -> 15.6
// us; whole step, old and new alternated (5 rounds): H = 200 / B = 256
// 119.0 -> 117.4 us, H = 64 / B = 256 39.7 -> 39.2 (the 1 / j from a table:
// computed per row it cost more than the pass saved here), wavenet equal.
void GraphLowering::emitBatchStatsByRows(ValueId leader) {
  const Node &n = g_[leader];
  const Buf &x = buf(n.operands[0]), &meanIn = stats_[2 * plan_.statsGroup[leader]];
  const int64_t rows = n.type.shape[0], h = n.type.shape[1];
  const int64_t blocks = statsRowBlocks(rows), blockRows = rows / blocks;
  const int64_t stride = statsColumnStride(h);
  if (blocks % 2 == 0)
    splitsAtMiddle(n.operands[0]); // two threads: the first blocks / 2 row blocks, the rest
  Buf partial = meanIn;
  partial.ptr = b_.CreateConstInBoundsGEP1_64(k_->F32, meanIn.ptr, uint64_t(2 * stride));
  // Block blk's mean (s = 0) and m2 (s = 1) of column c at (blk * 2 + s) * stride + c.
  auto slot = [&](size_t s, Value *blk, Value *c) {
    return k_->add(k_->add(k_->mul(blk, 2 * stride), int64_t(s) * stride), c);
  };
  // 1 / j for the block's j-th row: from a table (a load, off the chains)
  // for blocks of up to kWelfordTableRows rows, else divided at run time
  // (the same correctly rounded floats).
  constexpr int64_t kWelfordTableRows = 4096;
  std::optional<Buf> inverse;
  if (blockRows <= kWelfordTableRows) {
    std::vector<float> inverses(static_cast<size_t>(blockRows));
    for (size_t j = 0; j < inverses.size(); ++j)
      inverses[j] = 1.0f / float(j + 1);
    Constant *table = ConstantDataArray::get(ctx_, ArrayRef<float>(inverses));
    inverse = Buf{new GlobalVariable(m_, table->getType(), /*isConstant=*/true,
                                     GlobalValue::PrivateLinkage, table, "welford.inverse"),
                  k_->F32};
  }
  auto inverseOf = [&](Value *i) -> Value * {
    Value *j = b_.CreateURem(i, k_->idx(blockRows));
    if (inverse)
      return k_->load(*inverse, j);
    return b_.CreateFDiv(ConstantFP::get(k_->F32, 1.0),
                         b_.CreateUIToFP(b_.CreateAdd(j, k_->idx(1)), k_->F32));
  };
  k_->blockColumnSums(rows, blocks, h, 2, partial, slot,
                      [&](Value *i, Value *c, unsigned lanes, ArrayRef<Value *> acc) {
                        Value *inv = k_->splat(inverseOf(i));
                        Value *xi = k_->loadVec(x, k_->add(k_->mul(i, h), c), lanes);
                        Value *delta = b_.CreateFSub(xi, acc[0]);
                        Value *mean = k_->fmuladd(delta, inv, acc[0]);
                        return Values{mean, k_->fmuladd(delta, b_.CreateFSub(xi, mean), acc[1])};
                      });
  shareBarrier();
  // This thread's columns, the blocks combined in order.
  k_->chunkGroups(
      h, kColumnGroup,
      [&](Value *base, ArrayRef<unsigned> lanes) {
        const size_t nc = lanes.size();
        auto at = [&](size_t s, size_t c, Value *blk) {
          return k_->loadVec(partial, slot(s, blk, k_->add(base, int64_t(c) * k_->VW)), lanes[c]);
        };
        Values mean = k_->sumBlocks(blocks, partial, lanes, [&](size_t c, Value *blk) {
          return slot(0, blk, k_->add(base, int64_t(c) * k_->VW));
        });
        for (Value *&m : mean)
          m = b_.CreateFDiv(m, k_->splat(double(blocks)));
        // [sum(m2_b)..., sum((mean_b - mean)^2)...]
        Values sums = k_->fold(2 * nc, k_->idx(0), blocks, [&](Value *acc, Value *blk, size_t j) {
          if (j < nc)
            return b_.CreateFAdd(acc, at(1, j, blk));
          Value *d = b_.CreateFSub(at(0, j - nc, blk), mean[j - nc]);
          return k_->fmuladd(d, d, acc);
        });
        Values squares(nc);
        for (size_t c = 0; c < nc; ++c)
          squares[c] = k_->fmuladd(k_->splat(double(blockRows)), sums[nc + c], sums[c]);
        storeMean(leader, base, lanes, mean);
        storeInvStd(leader, base, lanes, squares);
      },
      /*shared=*/true);
  shareBarrier();
}

} // namespace mlpc::codegen
