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

  if (k_->share.index && statsRowBlocks(rows) > 1)
    return emitBatchStatsShared(leader);
  k_->chunkGroups(h, kColumnGroup, [&](Value *base, ArrayRef<unsigned> lanes) {
    const size_t nc = lanes.size();
    auto xAt = [&](Value *i, size_t c) {
      return k_->loadVec(x, k_->add(k_->mul(i, h), k_->add(base, int64_t(c) * k_->VW)), lanes[c]);
    };
    Values sums =
        k_->blockedFold(nc, rows, statsRowBlocks(rows), [&](Value *acc, Value *i, size_t c) {
          return b_.CreateFAdd(acc, xAt(i, c));
        });
    Values mean(nc);
    for (size_t c = 0; c < nc; ++c)
      mean[c] = b_.CreateFDiv(sums[c], k_->splat(double(rows)));
    storeMean(leader, base, lanes, mean);
    Values squares =
        k_->blockedFold(nc, rows, statsRowBlocks(rows), [&](Value *acc, Value *i, size_t c) {
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

// Parallel batch statistics that keep each thread on its own rows: threads
// split the row blocks, each block's column sums go to the partial sums
// after the statistics (BufferPlan.h: StatsPlan), and after a barrier the
// threads split the columns to add the blocks in order. Twice: the sums,
// then the squares around the mean. The rows of x were written by the same
// threads (matmuls and elementwise loops split rows), so only the partial
// sums, H floats per block, cross between cores, instead of half of x as
// when the threads split the columns.
void GraphLowering::emitBatchStatsShared(ValueId leader) {
  const Node &n = g_[leader];
  const Buf &x = buf(n.operands[0]), &meanIn = stats_[2 * plan_.statsGroup[leader]];
  const int64_t rows = n.type.shape[0], h = n.type.shape[1];
  const int64_t blocks = statsRowBlocks(rows), blockRows = rows / blocks;
  Buf partial = meanIn;
  partial.ptr = b_.CreateConstInBoundsGEP1_64(k_->F32, meanIn.ptr, uint64_t(2 * h));
  auto at = [&](Value *row, Value *base, size_t c) {
    return k_->add(k_->mul(row, h), k_->add(base, int64_t(c) * k_->VW));
  };
  // Phase 1 and 3: this thread's blocks, every column.
  auto blockPartials =
      [&](function_ref<Value *(Value *, Value *, Value *, size_t, unsigned)> step) {
        k_->loopShared(0, blocks, 1, [&](Value *b) {
          k_->chunkGroups(h, kColumnGroup, [&](Value *base, ArrayRef<unsigned> lanes) {
            Values part = k_->fold(lanes.size(), k_->mul(b, blockRows), blockRows,
                                   [&](Value *acc, Value *i, size_t c) {
                                     return step(acc, k_->loadVec(x, at(i, base, c), lanes[c]),
                                                 base, c, lanes[c]);
                                   });
            for (size_t c = 0; c < lanes.size(); ++c)
              k_->storeVec(partial, at(b, base, c), part[c], lanes[c]);
          });
        });
        emitBarrier();
      };
  // Phase 2 and 4: this thread's columns, every block, in order.
  auto combine = [&](function_ref<void(Value *, ArrayRef<unsigned>, ArrayRef<Value *>)> use) {
    k_->chunkGroups(
        h, kColumnGroup,
        [&](Value *base, ArrayRef<unsigned> lanes) {
          Values total =
              k_->fold(lanes.size(), k_->idx(0), blocks, [&](Value *acc, Value *b, size_t c) {
                return b_.CreateFAdd(acc, k_->loadVec(partial, at(b, base, c), lanes[c]));
              });
          use(base, lanes, total);
        },
        /*shared=*/true);
    emitBarrier();
  };
  blockPartials(
      [&](Value *acc, Value *xv, Value *, size_t, unsigned) { return b_.CreateFAdd(acc, xv); });
  combine([&](Value *base, ArrayRef<unsigned> lanes, ArrayRef<Value *> sums) {
    Values mean;
    for (Value *s : sums)
      mean.push_back(b_.CreateFDiv(s, k_->splat(double(rows))));
    storeMean(leader, base, lanes, mean);
  });
  blockPartials([&](Value *acc, Value *xv, Value *base, size_t c, unsigned lanes) {
    Value *d = b_.CreateFSub(xv, k_->loadVec(meanIn, k_->add(base, int64_t(c) * k_->VW), lanes));
    return k_->fmuladd(d, d, acc);
  });
  combine([&](Value *base, ArrayRef<unsigned> lanes, ArrayRef<Value *> squares) {
    storeInvStd(leader, base, lanes, squares);
  });
}

} // namespace mlpc::codegen
