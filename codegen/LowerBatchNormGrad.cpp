// BatchNormGrad: the closed form of the BatchNorm backward pass,
//   dx = gain * invStd / n * (n * dout - sum(dout) - n/(n-1) * xhat * sum(dout * xhat)),
// with mean and invStd from the input's batch statistics (LowerFused.cpp,
// emitBatchStats) and xhat = (x - mean) * invStd.
//
// Groups of up to 4 column vectors, two passes down the N rows: the two
// column sums, then dx; the statistics stay in registers. The two sums are
// also the gain and bias gradients, and the column sums of dx the bias
// gradient of the layer below, which the kernel stores when the graph has
// them (BufferPlan::gradSums). With H = 200 and N = 32 a group's rows
// (4 x 16 floats x 32) stay in L1 between the passes. The first pass sums
// dout * (x - mean) and scales by invStd once per column; the second is two
// FMAs and a subtract per element (dxRows): 7 vector operations per element
// instead of 12 (the makemore node 1.44 -> ~1.0 us).
//
// The column sums go by the statistics' row blocks (statsRowBlocks), added
// in a fixed order. One-thread code adds the blocks in registers; parallel
// code splits the blocks between threads, so each thread reads and writes
// only its own rows, and the blocks' partial sums (the node's scratch:
// sum(dout), sum(dout * (x - mean)), sum(dx) per block) are what crosses between
// threads. Both orders are the same, so the bits do not depend on the
// thread count.
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
  // dx of rows [first, first + count), from the sums [sumD..., sum(dout *
  // xhat)...]; returns their column sums (from zero) when the graph has
  // sum(dx, 0). With s = gain * invStd, the closed form is, per column,
  //   dx = s * dout + (-s / (n - 1) * invStd * sum(dout * xhat)) * (x - mean)
  //        + (-s / n * sum(dout)):
  // two FMAs and a subtract per element.
  Values dxRows(const Group &gr, ArrayRef<Value *> acc, Value *first, int64_t count) {
    const size_t nc = gr.lanes.size();
    const double n = double(rows);
    Values scale(nc), xmCoef(nc), offset(nc);
    for (size_t c = 0; c < nc; ++c) {
      scale[c] = b.CreateFMul(k.loadVec(gain, col(gr.base, c), gr.lanes[c]), gr.invStd[c]);
      xmCoef[c] = b.CreateFMul(b.CreateFMul(scale[c], k.splat(-1.0 / (n - 1))),
                               b.CreateFMul(gr.invStd[c], acc[nc + c]));
      offset[c] = b.CreateFMul(b.CreateFMul(scale[c], k.splat(-1.0 / n)), acc[c]);
    }
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

  // One thread, or too few rows for blocks: the column groups (split between
  // threads in parallel code), each with its blocks added in registers.
  void byColumnGroups(int64_t blocks) {
    const int64_t blockRows = rows / blocks;
    k.chunkGroups(
        h, kColumnGroup,
        [&](Value *base, ArrayRef<unsigned> lanes) {
          Group gr = group(base, lanes);
          Values acc = withXhat(gr, k.blockedFold(2 * lanes.size(), rows, blocks, sumsStep(gr)));
          storeSums(gr, acc);
          if (!dxSumOut || blocks == 1) {
            Values sums = dxRows(gr, acc, k.idx(0), rows);
            if (dxSumOut)
              storeDxSum(gr, sums);
            return;
          }
          storeDxSum(gr, k.sumOverBlocks(lanes.size(), blocks, [&](Value *blk) {
            return dxRows(gr, acc, k.mul(blk, blockRows), blockRows);
          }));
        },
        /*shared=*/true);
  }

  // Parallel code: threads split the row blocks. Block blk's sum s of column
  // j sits in `partial` at (blk * 3 + s) * h + j (s: sum(dout),
  // sum(dout * (x - mean)), sum(dx)); `barrier` separates the phases.
  void byRowBlocks(int64_t blocks, const Buf &partial, function_ref<void()> barrier) {
    const int64_t blockRows = rows / blocks;
    auto partialAt = [&](Value *blk, int64_t s, Value *base, size_t c) {
      return k.add(k.mul(k.add(k.mul(blk, 3), s), h), col(base, c));
    };
    // Sums `slots` of the blocks' partials, added in order from zero.
    auto combine = [&](const Group &gr, ArrayRef<int64_t> slots) {
      const size_t nc = gr.lanes.size();
      return k.fold(slots.size() * nc, k.idx(0), blocks, [&](Value *acc, Value *blk, size_t j) {
        return b.CreateFAdd(acc, k.loadVec(partial, partialAt(blk, slots[j / nc], gr.base, j % nc),
                                           gr.lanes[j % nc]));
      });
    };
    k.loopShared(0, blocks, 1, [&](Value *blk) {
      k.chunkGroups(h, kColumnGroup, [&](Value *base, ArrayRef<unsigned> lanes) {
        Group gr = group(base, lanes);
        Values part = k.fold(2 * lanes.size(), k.mul(blk, blockRows), blockRows, sumsStep(gr));
        for (size_t j = 0; j < part.size(); ++j)
          k.storeVec(partial, partialAt(blk, int64_t(j / lanes.size()), base, j % lanes.size()),
                     part[j], lanes[j % lanes.size()]);
      });
    });
    barrier();
    k.loopShared(0, blocks, 1, [&](Value *blk) {
      k.chunkGroups(h, kColumnGroup, [&](Value *base, ArrayRef<unsigned> lanes) {
        Group gr = group(base, lanes);
        Values part =
            dxRows(gr, withXhat(gr, combine(gr, {0, 1})), k.mul(blk, blockRows), blockRows);
        for (size_t c = 0; c < part.size(); ++c)
          k.storeVec(partial, partialAt(blk, 2, base, c), part[c], lanes[c]);
      });
    });
    barrier();
    // The column sums, by column groups.
    k.chunkGroups(
        h, kColumnGroup,
        [&](Value *base, ArrayRef<unsigned> lanes) {
          Group gr = group(base, lanes);
          storeSums(gr, withXhat(gr, combine(gr, {0, 1})));
          if (dxSumOut)
            storeDxSum(gr, combine(gr, {2}));
        },
        /*shared=*/true);
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
  if (!k_->share.index || blocks == 1)
    kernel.byColumnGroups(blocks);
  else
    kernel.byRowBlocks(blocks, scratch(v), [&] { emitBarrier(); });
}

} // namespace mlpc::codegen
