// Fused closed forms: BatchNorm statistics, CrossEntropy, CrossEntropyGrad
// (BatchNormGrad: LowerBatchNormGrad.cpp).
//
// BatchNorm-type ops are column-wise over x[N, H]. The per-column statistics
// of one input are computed once per step by emitBatchStats (mean, then the
// Bessel-corrected variance of x - mean, as 1/sqrt(var + eps); a StatsPlan
// in BufferPlan.h) into 2H floats of workspace. BatchNorm, BatchNormXhat and
// BatchNormInfer are then elementwise expressions over x and those columns
// (LowerElementwise.cpp), so they fuse into their consumers: tanh(batchnorm)
// is one pass, sum(dout * xhat) another. BatchNormGrad has its own kernel
// (LowerBatchNormGrad.cpp).
//
// Cross-entropy is row-wise over logits[N, K]: per row a max, a sum of
// exp(x - max) (masked tail lanes load -inf, whose exp is 0), then the loss
// or the gradient row (softmax - onehot) * dloss / N. Rows are handled VW at
// a time so the horizontal reductions and the log are shared by VW rows.
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

void GraphLowering::lowerCrossEntropy(ValueId v) {
  const Node &n = g_[v];
  const bool grad = n.op == Op::CrossEntropyGrad;
  const Buf &logits = buf(n.operands[0]), &labels = buf(n.operands[1]), &out = buf(v);
  const Shape &ls = g_[n.operands[0]].type.shape;
  const int64_t rows = ls[0], k = ls[1], vw = k_->VW, full = k / vw * vw;
  Value *negInf = k_->splat(-INFINITY), *zero = k_->splat(0.0);
  auto fadd = [&](Value *a, Value *b) { return b_.CreateFAdd(a, b); };
  auto vmax = [&](Value *a, Value *b) { return k_->maxOf(a, b); };

  // Folds one row's chunks into one vector with `combine` (masked tail lanes
  // read -inf: neutral for max, and exp(-inf) = 0 for the sum). `each` sees
  // every chunk (the gradient stores exp(x - max) there for later).
  auto rowFold = [&](Value *row, Value *init,
                     function_ref<Value *(Value *, Value *, Value *, unsigned)> each) {
    Value *acc = k_->loopCarried(
        0, full, vw, {init},
        [&](Value *c, ArrayRef<Value *> a) {
          return Values{each(a[0], k_->loadVec(logits, k_->add(row, c), vw), c, vw)};
        },
        "kc")[0];
    if (k % vw) {
      unsigned lanes = static_cast<unsigned>(k % vw);
      acc = each(acc, k_->loadVec(logits, k_->add(row, full), lanes, negInf), k_->idx(full), lanes);
    }
    return acc;
  };

  // Rows go VW at a time: the per-row partial vectors are reduced together
  // (reduceRowsAcross), so a block's row maxima, sums, logs and losses are
  // each one vector; the per-row code is a loop, emitted once.
  Value *scale = nullptr;
  if (grad)
    scale = k_->splat(b_.CreateFDiv(k_->load(buf(n.operands[2]), k_->idx(0)),
                                    ConstantFP::get(k_->F32, double(rows))));
  Values total =
      k_->rowBlocks(rows, {zero}, [&](Value *r0, unsigned count, ArrayRef<Value *> acc) -> Values {
        auto rowStart = [&](Value *r) { return k_->mul(k_->add(r0, r), k); };
        auto label = [&](Value *r) { return k_->loadIndex(labels, k_->add(r0, r)); };
        Value *mx = k_->reduceRowsAcross(
            count, zero,
            [&](Value *r) {
              return rowFold(rowStart(r), negInf,
                             [&](Value *a, Value *x, Value *, unsigned) { return vmax(a, x); });
            },
            vmax);
        Value *mxSlot = k_->stackVector(mx);
        Value *sum = k_->reduceRowsAcross(
            count, k_->splat(1.0),
            [&](Value *r) {
              Value *m = k_->splatLane(mxSlot, r), *row = rowStart(r);
              return rowFold(row, zero, [&](Value *a, Value *x, Value *c, unsigned lanes) {
                Value *e = emitExpNonPositive(b_, b_.CreateFSub(x, m));
                if (grad)
                  k_->storeVec(out, k_->add(row, c), e, lanes);
                return b_.CreateFAdd(a, e);
              });
            },
            fadd);

        if (!grad) {
          // loss_r = log(sum_r) + max_r - x[r, y_r]; lanes past `count` add 0.
          Value *pickedSlot = k_->stackVector(zero);
          Buf picked{pickedSlot, k_->F32};
          k_->loop(
              0, count, 1,
              [&](Value *r) {
                k_->store(picked, r, k_->load(logits, k_->add(rowStart(r), label(r))));
              },
              "row");
          Value *loss = b_.CreateFSub(b_.CreateFAdd(emitLog(b_, sum), mx),
                                      k_->loadVec(picked, k_->idx(0), k_->VW));
          Value *valid = b_.CreateICmpULT(k_->laneIndices(k_->idx(0)),
                                          b_.CreateVectorSplat(vw, b_.getInt32(count)));
          return Values{b_.CreateFAdd(acc[0], b_.CreateSelect(valid, loss, zero))};
        }
        // dlogits = (e / sum - onehot(y)) * dloss / N, with e stored above.
        Value *factorSlot = k_->stackVector(b_.CreateFDiv(scale, sum));
        k_->loop(
            0, count, 1,
            [&](Value *r) {
              Value *f = k_->splatLane(factorSlot, r), *row = rowStart(r);
              Value *y = b_.CreateVectorSplat(vw, b_.CreateTrunc(label(r), k_->I32));
              k_->chunks(k, [&](Value *c, unsigned lanes) {
                Value *e = k_->loadVec(out, k_->add(row, c), lanes);
                Value *onehot =
                    b_.CreateSelect(b_.CreateICmpEQ(k_->laneIndices(c), y), scale, zero);
                k_->storeVec(out, k_->add(row, c), b_.CreateFSub(b_.CreateFMul(e, f), onehot),
                             lanes);
              });
            },
            "row");
        return Values{acc[0]};
      });
  if (!grad)
    k_->store(out, k_->idx(0),
              b_.CreateFDiv(k_->hsum(total[0]), ConstantFP::get(k_->F32, double(rows))));
}

} // namespace mlpc::codegen
