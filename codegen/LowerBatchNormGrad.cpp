// BatchNormGrad: the closed form of the BatchNorm backward pass,
//   dx = gain * invStd / n * (n * dout - sum(dout) - n/(n-1) * xhat * sum(dout * xhat)),
// with mean and invStd from the input's batch statistics (LowerFused.cpp,
// emitBatchStats) and xhat = (x - mean) * invStd.
//
// Two passes over the rows: the two column sums, then dx. The two sums are
// also the gain and bias gradients, and the column sums of dx the bias
// gradient of the layer below, which the kernel stores when the graph has
// them (BufferPlan::gradSums). The first pass sums dout * (x - mean) and
// scales by invStd once per column; the second is two FMAs and a subtract
// per element (dxRows): 7 vector operations per element instead of 12 (the
// makemore node 1.44 -> ~1.0 us).
//
// Small batches (one row block, BufferPlan.h: statsRowBlocks) go by groups
// of up to 4 column vectors down all the rows, the statistics in registers:
// with H = 200 and N = 32 a group's rows (4 x 16 floats x 32) stay in L1
// between the passes. Larger ones by row blocks along whole rows (byRows),
// which threads split; what crosses between threads is the blocks' partial
// sums. byRows adds every sum in the column groups' order (each block's rows
// in order, then the blocks in order), so the bits depend neither on the
// kernel nor on the thread count.
#include "codegen/Lowering.h"

#include <optional>

using namespace llvm;

namespace mlpc::codegen {
namespace {

// The kernel's pieces for one node; `Group` is one group of column vectors.
struct BatchNormGradKernel {
  KernelBuilder &k;
  IRBuilder<> &b;
  Buf x, gain, dout, out, meanIn, invStdIn;
  std::optional<Buf> sumOut[2]; // the graph's sum(dout, 0), sum(dout * xhat, 0)
  std::optional<Buf> dxSumOut;  // the graph's sum(dx, 0)
  int64_t rows, h;

  struct Group {
    Value *base;
    ArrayRef<unsigned> lanes;
    Values mean, invStd;
  };

  Value *col(Value *base, size_t c) { return k.add(base, int64_t(c) * k.VW); }
  Value *at(const Buf &t, Value *i, const Group &gr, size_t c) {
    return k.loadVec(t, k.add(k.mul(i, h), col(gr.base, c)), gr.lanes[c]);
  }
  Group group(Value *base, ArrayRef<unsigned> lanes) {
    Group gr{base, lanes, {}, {}};
    for (size_t c = 0; c < lanes.size(); ++c) {
      gr.mean.push_back(k.loadVec(meanIn, col(base, c), lanes[c]));
      gr.invStd.push_back(k.loadVec(invStdIn, col(base, c), lanes[c]));
    }
    return gr;
  }
  Value *xm(const Group &gr, Value *i, size_t c) {
    return b.CreateFSub(at(x, i, gr, c), gr.mean[c]);
  }
  // One row's step of sum(dout) and sum(dout * (x - mean)), as [sumD...,
  // sumDXm...]; withXhat turns the second into sum(dout * xhat) (one multiply
  // per column after the rows instead of one per element).
  auto sumsStep(const Group &gr) {
    return [this, &gr](Value *acc, Value *i, size_t j) -> Value * {
      const size_t nc = gr.lanes.size(), c = j % nc;
      Value *d = at(dout, i, gr, c);
      return j < nc ? b.CreateFAdd(acc, d) : k.fmuladd(d, xm(gr, i, c), acc);
    };
  }
  Values withXhat(const Group &gr, Values sums) {
    const size_t nc = gr.lanes.size();
    for (size_t c = 0; c < nc; ++c)
      sums[nc + c] = b.CreateFMul(sums[nc + c], gr.invStd[c]);
    return sums;
  }
  void storeSums(const Group &gr, ArrayRef<Value *> acc) {
    const size_t nc = gr.lanes.size();
    for (int slot = 0; slot < 2; ++slot)
      if (sumOut[slot])
        for (size_t c = 0; c < nc; ++c)
          k.storeVec(*sumOut[slot], col(gr.base, c), acc[slot * nc + c], gr.lanes[c]);
  }
  struct DxCoefficients {
    Values scale, xmCoef, offset;
    const Values &at(int64_t t) const { return t == 0 ? scale : t == 1 ? xmCoef : offset; }
  };
  // With s = gain * invStd, the closed form is, per column,
  //   dx = s * dout + (-s / (n - 1) * invStd * sum(dout * xhat)) * (x - mean)
  //        + (-s / n * sum(dout)):
  // two FMAs and a subtract per element. acc: [sumD..., sum(dout * xhat)...].
  DxCoefficients dxCoefficients(const Group &gr, ArrayRef<Value *> acc) {
    const size_t nc = gr.lanes.size();
    const double n = double(rows);
    DxCoefficients co{Values(nc), Values(nc), Values(nc)};
    for (size_t c = 0; c < nc; ++c) {
      co.scale[c] = b.CreateFMul(k.loadVec(gain, col(gr.base, c), gr.lanes[c]), gr.invStd[c]);
      co.xmCoef[c] = b.CreateFMul(b.CreateFMul(co.scale[c], k.splat(-1.0 / (n - 1))),
                                  b.CreateFMul(gr.invStd[c], acc[nc + c]));
      co.offset[c] = b.CreateFMul(b.CreateFMul(co.scale[c], k.splat(-1.0 / n)), acc[c]);
    }
    return co;
  }
  // dx of rows [first, first + count), from the sums [sumD..., sum(dout *
  // xhat)...]; returns their column sums (from zero) when the graph has
  // sum(dx, 0).
  Values dxRows(const Group &gr, ArrayRef<Value *> acc, Value *first, int64_t count) {
    const size_t nc = gr.lanes.size();
    const DxCoefficients co = dxCoefficients(gr, acc);
    const Values &scale = co.scale, &xmCoef = co.xmCoef, &offset = co.offset;
    Values init(dxSumOut ? nc : 0, k.splat(0.0));
    return k.loopCarried(0, count, 1, init, [&](Value *r, ArrayRef<Value *> a) {
      Value *i = k.add(first, r);
      Values next;
      for (size_t c = 0; c < nc; ++c) {
        Value *dx =
            k.fmuladd(scale[c], at(dout, i, gr, c), k.fmuladd(xmCoef[c], xm(gr, i, c), offset[c]));
        k.storeVec(out, k.add(k.mul(i, h), col(gr.base, c)), dx, gr.lanes[c]);
        if (dxSumOut)
          next.push_back(b.CreateFAdd(a[c], dx));
      }
      return next;
    });
  }
  void storeDxSum(const Group &gr, ArrayRef<Value *> sums) {
    for (size_t c = 0; c < sums.size(); ++c)
      k.storeVec(*dxSumOut, col(gr.base, c), sums[c], gr.lanes[c]);
  }

  // Too few rows for blocks (one block): the column groups, split between
  // threads in parallel code; each group's rows stay in L1 between its passes.
  void byColumnGroups() {
    k.chunkGroups(
        h, kColumnGroup,
        [&](Value *base, ArrayRef<unsigned> lanes) {
          Group gr = group(base, lanes);
          Values acc = withXhat(gr, k.fold(2 * lanes.size(), k.idx(0), rows, sumsStep(gr)));
          storeSums(gr, acc);
          Values sums = dxRows(gr, acc, k.idx(0), rows);
          if (dxSumOut)
            storeDxSum(gr, sums);
        },
        /*shared=*/true);
  }

  // Row blocks (parallel code: split between threads, each thread reading
  // and writing its own rows): the two sums along whole rows
  // (KernelBuilder::blockColumnSums); then, on every thread, all columns'
  // totals and dx's coefficients into the thread's own stack; dx and its
  // sums along whole rows again; then per column (split between threads)
  // the gradients' sums. Every sum is added in the column groups' order
  // (each block's rows in order from zero, then the blocks in order from
  // zero), so the bits do not depend on the blocking or the thread count.
  // Why every thread makes every coefficient (~20 instructions a column
  // vector) rather than its share of them: that costs a barrier and reading
  // the other core's coefficient lines. H = 1024 / B = 256 on 2 threads,
  // per-node profile, with the vCPUs ~250 ns apart: shared coefficients took
  // 130-174 us per thread where the old column-group kernel took 101-121
  // (one run each); these per-thread ones 126-195 against 109-167 in a
  // noisier quarter of an hour (3 rounds each): not told apart from the old
  // kernel on 2 threads. One thread: the same time as shared ones.
  // `barrier` separates the phases (a no-op on one thread); the next shared
  // node starts with one (LowerParallel.cpp). Scratch, in floats: block
  // blk's sum s of column j at (blk * 3 + s) * h + j (s: sum(dout),
  // sum(dout * (x - mean)), sum(dx)).
  static constexpr int64_t kStackCoefficientBytes = 64 * 1024; // H <= 5461
  void byRows(int64_t blocks, const Buf &scratch, function_ref<void()> barrier) {
    const int64_t stride = statsColumnStride(h);
    auto slot = [&](size_t s, Value *blk, Value *c) {
      return k.add(k.add(k.mul(blk, 3 * stride), int64_t(s) * stride), c);
    };
    auto elem = [&](Value *i, Value *c) { return k.add(k.mul(i, h), c); };
    // A group's columns' totals of sums `slots` (all columns of the first,
    // then of the second), the blocks added in order.
    auto totals = [&](const Group &gr, ArrayRef<size_t> slots) {
      const size_t nc = gr.lanes.size();
      SmallVector<unsigned, 16> lanes;
      for (size_t j = 0; j < slots.size() * nc; ++j)
        lanes.push_back(gr.lanes[j % nc]);
      return k.sumBlocks(blocks, scratch, lanes, [&](size_t j, Value *blk) {
        return slot(slots[j / nc], blk, col(gr.base, j % nc));
      });
    };
    auto perColumn = [&](bool shared, function_ref<void(const Group &)> body) {
      k.chunkGroups(
          h, kColumnGroup, [&](Value *base, ArrayRef<unsigned> lanes) { body(group(base, lanes)); },
          shared);
    };

    k.blockColumnSums(rows, blocks, h, 2, scratch, slot,
                      [&](Value *i, Value *c, unsigned lanes, ArrayRef<Value *> sums) {
                        Value *d = k.loadVec(dout, elem(i, c), lanes);
                        Value *xm = b.CreateFSub(k.loadVec(x, elem(i, c), lanes),
                                                 k.loadVec(meanIn, c, lanes));
                        return Values{b.CreateFAdd(sums[0], d), k.fmuladd(d, xm, sums[1])};
                      });
    barrier();
    // dx's scale, xmCoef and offset of column j at t * stride + j, on this
    // thread's stack up to kStackCoefficientBytes; wider layers make them
    // again for each chunk of each row (the same values, more work).
    std::optional<Buf> coef;
    if (3 * stride * int64_t(sizeof(float)) <= kStackCoefficientBytes) {
      coef = Buf{k.entryAlloca(k.F32, unsigned(3 * stride)), k.F32};
      perColumn(/*shared=*/false, [&](const Group &gr) {
        DxCoefficients co = dxCoefficients(gr, withXhat(gr, totals(gr, {0, 1})));
        for (size_t c = 0; c < gr.lanes.size(); ++c)
          for (int64_t t = 0; t < 3; ++t)
            k.storeVec(*coef, k.add(col(gr.base, c), t * stride), co.at(t)[c], gr.lanes[c]);
      });
    }
    auto dx = [&](Value *i, Value *c, unsigned lanes) {
      Values co(3);
      if (coef) {
        for (int64_t t = 0; t < 3; ++t)
          co[t] = k.loadVec(*coef, k.add(c, t * stride), lanes);
      } else {
        const unsigned one[] = {lanes};
        Group gr = group(c, one);
        DxCoefficients d = dxCoefficients(gr, withXhat(gr, totals(gr, {0, 1})));
        co = {d.scale[0], d.xmCoef[0], d.offset[0]};
      }
      Value *xm = b.CreateFSub(k.loadVec(x, elem(i, c), lanes), k.loadVec(meanIn, c, lanes));
      Value *v = k.fmuladd(co[1], xm, co[2]);
      v = k.fmuladd(co[0], k.loadVec(dout, elem(i, c), lanes), v);
      k.storeVec(out, elem(i, c), v, lanes);
      return v;
    };
    auto dxSlot = [&](size_t, Value *blk, Value *c) { return slot(2, blk, c); };
    k.blockColumnSums(rows, blocks, h, dxSumOut ? 1 : 0, scratch, dxSlot,
                      [&](Value *i, Value *c, unsigned lanes, ArrayRef<Value *> sums) {
                        Value *v = dx(i, c, lanes);
                        return dxSumOut ? Values{b.CreateFAdd(sums[0], v)} : Values{};
                      });
    if (!sumOut[0] && !sumOut[1] && !dxSumOut)
      return;
    barrier();
    perColumn(/*shared=*/true, [&](const Group &gr) {
      storeSums(gr, withXhat(gr, totals(gr, {0, 1})));
      if (dxSumOut)
        storeDxSum(gr, totals(gr, {2}));
    });
  }
};

} // namespace

void GraphLowering::lowerBatchNormGrad(ValueId v) {
  const Node &n = g_[v];
  const int64_t rows = n.type.shape[0], h = n.type.shape[1];
  BatchNormGradKernel kernel{*k_,
                             b_,
                             buf(n.operands[0]),
                             buf(n.operands[1]),
                             buf(n.operands[2]),
                             buf(v),
                             stats_[2 * plan_.statsGroup[v]],
                             stats_[2 * plan_.statsGroup[v] + 1],
                             {},
                             {},
                             rows,
                             h};
  for (int slot = 0; slot < 2; ++slot)
    if (int64_t sum = plan_.gradSums[v][slot]; sum >= 0)
      kernel.sumOut[slot] = buf(static_cast<ValueId>(sum));
  if (int64_t dxSum = plan_.gradSums[v][2]; dxSum >= 0)
    kernel.dxSumOut = buf(static_cast<ValueId>(dxSum));
  const int64_t blocks = statsRowBlocks(rows);
  if (blocks % 2 == 0) // two threads: the first blocks / 2 row blocks, the rest
    for (ValueId rowsValue : {n.operands[0], n.operands[2], v})
      if (g_[rowsValue].type.numel() == rows * h)
        splitsAtMiddle(rowsValue);
  if (blocks == 1)
    kernel.byColumnGroups();
  else
    kernel.byRows(blocks, scratch(v), [&] { shareBarrier(); });
}

} // namespace mlpc::codegen
