// Fused closed forms: BatchNorm statistics (BatchNormGrad:
// LowerBatchNormGrad.cpp; CrossEntropy and its gradient: LowerCrossEntropy.cpp).
//
// BatchNorm-type ops are column-wise over x[N, H]. The per-column statistics
// of one input are computed once per step by emitBatchStats (mean, then the
// Bessel-corrected variance of x - mean, as 1/sqrt(var + eps); a StatsPlan
// in BufferPlan.h) into 2H floats of workspace. BatchNorm, BatchNormXhat and
// BatchNormInfer are then elementwise expressions over x and those columns
// (LowerElementwise.cpp), so they fuse into their consumers: tanh(batchnorm)
// is one pass, sum(dout * xhat) another. BatchNormGrad has its own kernel
// (LowerBatchNormGrad.cpp).
#include "codegen/Lowering.h"
#include "codegen/MathEmitter.h"

#include <cmath>

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
  k_->chunkGroups(h, kColumnGroup, [&](Value *base, ArrayRef<unsigned> lanes) {
    const size_t nc = lanes.size();
    auto xAt = [&](Value *i, size_t c) {
      return k_->loadVec(x, k_->add(k_->mul(i, h), k_->add(base, int64_t(c) * k_->VW)), lanes[c]);
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
  });
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
// thread wrote: matmuls and elementwise loops split rows): the column sums
// along whole rows (KernelBuilder::blockColumnSums: why rows and not column
// groups) into the partial sums after the statistics (BufferPlan.h:
// StatsPlan), then per column (split between threads) the blocks added in
// order. Twice: the sums, then the squares around the mean. The additions
// are the column-group kernel's, in its order, so the bits are the same.
// At H = 1024 / B = 256 on Zen 5 (rows 4 KB apart) the column groups took
// 30 us where H = 1040 took 18.
void GraphLowering::emitBatchStatsByRows(ValueId leader) {
  const Node &n = g_[leader];
  const Buf &x = buf(n.operands[0]), &meanIn = stats_[2 * plan_.statsGroup[leader]];
  const int64_t rows = n.type.shape[0], h = n.type.shape[1];
  const int64_t blocks = statsRowBlocks(rows);
  Buf partial = meanIn;
  partial.ptr = b_.CreateConstInBoundsGEP1_64(k_->F32, meanIn.ptr, uint64_t(2 * h));
  auto slot = [&](size_t, Value *blk, Value *c) { return k_->add(k_->mul(blk, h), c); };
  auto xAt = [&](Value *i, Value *c, unsigned lanes) {
    return k_->loadVec(x, k_->add(k_->mul(i, h), c), lanes);
  };
  // This thread's columns, every block added in order.
  auto combine = [&](function_ref<void(Value *, ArrayRef<unsigned>, ArrayRef<Value *>)> use) {
    k_->chunkGroups(
        h, kColumnGroup,
        [&](Value *base, ArrayRef<unsigned> lanes) {
          use(base, lanes, k_->sumBlocks(blocks, partial, lanes, [&](size_t c, Value *blk) {
            return slot(0, blk, k_->add(base, int64_t(c) * k_->VW));
          }));
        },
        /*shared=*/true);
    shareBarrier();
  };
  k_->blockColumnSums(rows, blocks, h, 1, partial, slot,
                      [&](Value *i, Value *c, unsigned lanes, ArrayRef<Value *> sums) {
                        return Values{b_.CreateFAdd(sums[0], xAt(i, c, lanes))};
                      });
  shareBarrier();
  combine([&](Value *base, ArrayRef<unsigned> lanes, ArrayRef<Value *> sums) {
    Values mean;
    for (Value *s : sums)
      mean.push_back(b_.CreateFDiv(s, k_->splat(double(rows))));
    storeMean(leader, base, lanes, mean);
  });
  k_->blockColumnSums(rows, blocks, h, 1, partial, slot,
                      [&](Value *i, Value *c, unsigned lanes, ArrayRef<Value *> sums) {
                        Value *d = b_.CreateFSub(xAt(i, c, lanes), k_->loadVec(meanIn, c, lanes));
                        return Values{k_->fmuladd(d, d, sums[0])};
                      });
  shareBarrier();
  combine([&](Value *base, ArrayRef<unsigned> lanes, ArrayRef<Value *> squares) {
    storeInvStd(leader, base, lanes, squares);
  });
}

} // namespace mlpc::codegen
