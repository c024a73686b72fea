// Sum / Mean / Max over one axis (or all, axis = -1), and MaxMask.
//
// The input is viewed as [outer, size, inner] (size = the reduced axis).
//   inner > 1: vectorise across `inner` (contiguous), accumulate over `size`
//              in registers, several column chunks at once so the add
//              latency of one chain overlaps the others (e.g. the bias
//              gradient sum over the batch axis of [32, 200]). Parallel
//              code splits the column groups between threads.
//   inner = 1: each output is a contiguous row: up to 4 vector accumulators
//              over the row, reduced to lane r of one vector per VW rows.
//              Parallel code splits the blocks of VW rows.
// Summation order therefore differs from the interpreter's serial order;
// the results agree to f32 rounding.
#include "codegen/Lowering.h"

#include <cmath>

using namespace llvm;

namespace mlpc::codegen {

namespace {

// One Sum / Mean / Max over its operand viewed as [outer, size, inner]: the
// steps every loop shape shares, and the loop shapes (see the file header).
struct Reduction {
  KernelBuilder &k;
  IRBuilder<> &b;
  const AxisSplit &s;
  const Buf &out;
  bool isMax, isMean;
  Value *identity;
  // Elements [index, index + lanes) of the operand (lowerReduction's loadX).
  function_ref<Value *(Value *index, Value *row, Value *column, unsigned lanes)> loadX;

  // Folds x into acc: max or add.
  Value *combine(Value *acc, Value *x) { return isMax ? k.maxOf(acc, x) : b.CreateFAdd(acc, x); }

  // The result from the folded value (Mean: divided by the axis size).
  Value *finish(Value *acc) {
    return isMean ? b.CreateFDiv(acc, ConstantFP::get(acc->getType(), double(s.size))) : acc;
  }

  // Sums over all rows (outer = 1) by the batch statistics' row blocks, on one thread.
  void sumBlockedColumns() {
    k.chunkGroups(
        s.inner, 4,
        [&](Value *base, ArrayRef<unsigned> lanes) {
          Values acc = k.blockedFold(
              lanes.size(), s.size, statsRowBlocks(s.size), [&](Value *a, Value *kk, size_t c) {
                Value *column = k.add(base, int64_t(c) * k.VW);
                return combine(a, loadX(k.add(k.mul(kk, s.inner), column), kk, column, lanes[c]));
              });
          for (size_t c = 0; c < lanes.size(); ++c)
            k.storeVec(out, k.add(base, int64_t(c) * k.VW), finish(acc[c]), lanes[c]);
        },
        /*shared=*/true);
  }

  // inner > 1: vectors across the columns, each accumulated over the axis.
  void reduceColumns() {
    k.loop(0, s.outer, 1, [&](Value *o) {
      // Parallel code: threads split the column groups (GraphLowering::nodeMode).
      k.chunkGroups(
          s.inner, 4,
          [&](Value *base, ArrayRef<unsigned> lanes) {
            Values init(lanes.size(), identity);
            Values acc = k.loopCarried(0, s.size, 1, init, [&](Value *kk, ArrayRef<Value *> acc) {
              Value *row = k.add(k.mul(k.add(k.mul(o, s.size), kk), s.inner), base);
              Values next;
              for (size_t c = 0; c < lanes.size(); ++c) {
                Value *column = k.add(base, int64_t(c) * k.VW); // outer is 1 when fused
                next.push_back(
                    combine(acc[c], loadX(k.add(row, int64_t(c) * k.VW), kk, column, lanes[c])));
              }
              return next;
            });
            for (size_t c = 0; c < lanes.size(); ++c)
              k.storeVec(out, k.add(k.add(k.mul(o, s.inner), base), int64_t(c) * k.VW),
                         finish(acc[c]), lanes[c]);
          },
          /*shared=*/true);
    });
  }

  // inner = 1: each contiguous row folded into one output.
  void reduceRows() {
    // Row reductions: each row folds into one vector (up to 4 accumulators
    // for long rows, so consecutive adds are independent), reduced into lane
    // r of a block vector of VW rows (KernelBuilder::reduceRowsAcross) stored
    // as one vector; a single row (axis = -1) ends in a horizontal reduction.
    const int64_t vw = k.VW, fullChunks = s.size / vw;
    const unsigned streams = static_cast<unsigned>(std::clamp<int64_t>(fullChunks, 1, 4));
    auto combineOp = [&](Value *acc, Value *x) { return combine(acc, x); };
    auto foldRow = [&](Value *rowIndex) {
      Value *row = k.mul(rowIndex, s.size);
      auto chunk = [&](Value *c, unsigned lanes) {
        return loadX(k.add(row, c), rowIndex, c, lanes);
      };
      Values acc(streams, identity);
      int64_t grouped = fullChunks / streams * streams * vw;
      acc =
          k.loopCarried(0, grouped, int64_t(streams) * vw, acc, [&](Value *c, ArrayRef<Value *> a) {
            Values next;
            for (unsigned u = 0; u < streams; ++u)
              next.push_back(combine(a[u], chunk(k.add(c, int64_t(u) * vw), vw)));
            return next;
          });
      for (int64_t c = grouped, u = 0; c < fullChunks * vw; c += vw, ++u)
        acc[u] = combine(acc[u], chunk(k.idx(c), vw));
      if (s.size % vw)
        acc[0] = combine(acc[0], chunk(k.idx(fullChunks * vw), static_cast<unsigned>(s.size % vw)));
      Value *total = acc[0];
      for (unsigned u = 1; u < streams; ++u)
        total = combine(total, acc[u]);
      return total;
    };
    if (s.outer == 1) {
      Value *total = foldRow(k.idx(0));
      k.store(out, k.idx(0), finish(isMax ? k.hmax(total) : k.hsum(total)));
      return;
    }
    // Blocks of VW rows; parallel code splits them (GraphLowering::nodeMode),
    // each row's fold the same code on any thread. layernorm_gelu at B = 256
    // on 2 threads: its four row means and sums took ~25 us a step on thread
    // 0 alone.
    k.rowBlocksShared(s.outer, [&](Value *r0, unsigned count) {
      Value *reduced = k.reduceRowsAcross(
          count, identity, [&](Value *r) { return foldRow(k.add(r0, r)); }, combineOp);
      k.storeVec(out, r0, finish(reduced), count);
    });
  }
};

} // namespace

void GraphLowering::lowerReduction(ValueId v) {
  const Node &n = g_[v];
  const ValueId operand = n.operands[0];
  const Buf &x = buf(operand), &out = buf(v);
  AxisSplit s(g_[operand].type.shape, n.axis);
  // A fused operand (BufferPlan: fusesOperandTree) is evaluated where it is
  // loaded; it is rank 2 reduced along one axis, or rank 1, so every load
  // below is one vector of one row of it.
  const bool fused = plan_.storage[operand] == Storage::Inlined;
  const bool isMax = n.op == Op::Max;
  Value *identity = k_->splat(isMax ? -INFINITY : 0.0);
  // Elements [index, index + lanes) of the operand, at (row, column) of its
  // rank-2 view; inactive lanes read the identity.
  auto loadX = [&](Value *index, Value *row, Value *column, unsigned lanes) -> Value * {
    if (!fused)
      return k_->loadVec(x, index, lanes, lanes < k_->VW ? identity : nullptr);
    Value *value = evalRowVector(operand, row, column, lanes);
    return lanes < k_->VW ? b_.CreateSelect(k_->mask(lanes), value, identity) : value;
  };
  Reduction r{*k_, b_, s, out, isMax, n.op == Op::Mean, identity, loadX};

  // Sums over all rows (outer = 1) go by the batch statistics' row blocks
  // (BufferPlan.h: statsRowBlocks), added in order: parallel code splits
  // the blocks, so each thread reads its own rows (lowerColumnSumShared).
  const bool blocked = !isMax && s.inner > 1 && s.outer == 1 && statsRowBlocks(s.size) > 1;
  if (blocked && k_->share.index)
    return lowerColumnSumShared(v);
  if (blocked)
    return r.sumBlockedColumns();
  if (s.inner > 1)
    return r.reduceColumns();
  r.reduceRows();
}

// A Sum / Mean over the rows of [rows, inner] in parallel code: threads
// split the row blocks and store each block's column sums in scratch, then
// split the column groups to add the blocks in order (the one-thread
// kernel's order, KernelBuilder::blockedFold).
void GraphLowering::lowerColumnSumShared(ValueId v) {
  const Node &n = g_[v];
  const ValueId operand = n.operands[0];
  const Buf &x = buf(operand), &out = buf(v), &partial = scratch(v);
  AxisSplit s(g_[operand].type.shape, n.axis);
  const bool fused = plan_.storage[operand] == Storage::Inlined;
  const int64_t blocks = statsRowBlocks(s.size), blockRows = s.size / blocks;
  if (!fused && blocks % 2 == 0)
    splitsAtMiddle(operand); // two threads: the first blocks / 2 blocks of rows, the rest
  auto column = [&](Value *base, size_t c) { return k_->add(base, int64_t(c) * k_->VW); };
  k_->loopShared(0, blocks, 1, [&](Value *b) {
    k_->chunkGroups(s.inner, 4, [&](Value *base, ArrayRef<unsigned> lanes) {
      Values part = k_->fold(
          lanes.size(), k_->mul(b, blockRows), blockRows, [&](Value *a, Value *kk, size_t c) {
            Value *x0 =
                fused ? evalRowVector(operand, kk, column(base, c), lanes[c])
                      : k_->loadVec(x, k_->add(k_->mul(kk, s.inner), column(base, c)), lanes[c]);
            if (fused && lanes[c] < k_->VW)
              x0 = b_.CreateSelect(k_->mask(lanes[c]), x0, k_->splat(0.0));
            return b_.CreateFAdd(a, x0);
          });
      for (size_t c = 0; c < lanes.size(); ++c)
        k_->storeVec(partial, k_->add(k_->mul(b, s.inner), column(base, c)), part[c], lanes[c]);
    });
  });
  emitBarrier();
  k_->chunkGroups(
      s.inner, 4,
      [&](Value *base, ArrayRef<unsigned> lanes) {
        Values total =
            k_->fold(lanes.size(), k_->idx(0), blocks, [&](Value *a, Value *b, size_t c) {
              return b_.CreateFAdd(
                  a, k_->loadVec(partial, k_->add(k_->mul(b, s.inner), column(base, c)), lanes[c]));
            });
        for (size_t c = 0; c < lanes.size(); ++c) {
          Value *t = total[c];
          if (n.op == Op::Mean)
            t = b_.CreateFDiv(t, ConstantFP::get(t->getType(), double(s.size)));
          k_->storeVec(out, column(base, c), t, lanes[c]);
        }
      },
      /*shared=*/true);
}

// 1 at the first arg-max along the axis, else 0: a scalar search per
// (outer, inner) position, then one pass writing the column. Only the atomic
// (unfused) max backward uses it, so it is kept simple.
void GraphLowering::lowerMaxMask(ValueId v) {
  const Node &n = g_[v];
  const Buf &x = buf(n.operands[0]), &out = buf(v);
  AxisSplit s(g_[n.operands[0]].type.shape, n.axis);
  if (s.size == 0)
    return;
  k_->loop(0, s.outer, 1, [&](Value *o) {
    k_->loop(0, s.inner, 1, [&](Value *i) {
      auto at = [&](Value *kk) {
        return k_->add(k_->mul(k_->add(k_->mul(o, s.size), kk), s.inner), i);
      };
      Value *first = k_->load(x, at(k_->idx(0)));
      Values best =
          k_->loopCarried(1, s.size, 1, {k_->idx(0), first}, [&](Value *kk, ArrayRef<Value *> cur) {
            Value *xv = k_->load(x, at(kk));
            Value *gt = b_.CreateFCmpOGT(xv, cur[1]);
            return Values{b_.CreateSelect(gt, kk, cur[0]), b_.CreateSelect(gt, xv, cur[1])};
          });
      k_->loop(0, s.size, 1, [&](Value *kk) {
        Value *hit = b_.CreateICmpEQ(kk, best[0]);
        k_->store(
            out, at(kk),
            b_.CreateSelect(hit, ConstantFP::get(k_->F32, 1.0), ConstantFP::get(k_->F32, 0.0)));
      });
    });
  });
}

} // namespace mlpc::codegen
