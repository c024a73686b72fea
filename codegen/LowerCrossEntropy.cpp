// CrossEntropy and CrossEntropyGrad: the fused softmax-cross-entropy loss
// and its closed-form gradient, row-wise over logits[N, K]:
//   loss     = mean_r (log(sum_j e_rj) + max_r - x[r, y_r]),
//   dlogits  = (e_rj / sum_j e_rj - onehot(y_r)_j) * dloss / N,
// with e_rj = exp(x_rj - max_r). Per row a max, then a sum of e (masked tail
// lanes load -inf, whose exp is 0), then the loss or the gradient row. Rows
// go VW at a time: each row's partial vector is reduced in the row loop
// into lane r of one vector (KernelBuilder::reduceRowsAcross), so a block's
// row maxima, sums, logs and losses are each one vector; the per-row code is
// a loop, emitted once. The maxima and sums of every block go through the
// node's scratch, phase by phase over all the blocks (see emit).
//
// When the graph has both the loss and the gradient of the same logits and
// labels, with a constant dloss (the training step: dloss = 1), the loss
// kernel writes the gradient too (BufferPlan::lossGrad) and the gradient node
// runs no code: the max and exp pass, the expensive part, is made once
// instead of twice (-0.4 us of ~1.1 on the makemore step). The gradient's
// arithmetic is the same either way, so are its bits.
//
// Parallel code shares the row blocks between threads like the other nodes
// over the batch (LowerParallel.cpp), so each thread reads the logits rows
// it wrote and writes the gradient rows it will read; the loss then adds
// the blocks' loss vectors after a barrier, in the order one thread adds
// them as it goes. Run on thread 0, the node had it fetch the other core's
// logits and take back its gradient lines every step: makemore H = 1024 /
// B = 256 on 2 threads (vCPUs ~245 ns apart), per-node profile, 8
// alternated rounds: 12.2 -> 7.7 us (one thread: 3.9).
#include "codegen/Lowering.h"
#include "codegen/MathEmitter.h"

#include <cmath>
#include <functional>
#include <optional>

using namespace llvm;

namespace mlpc::codegen {
namespace {

struct CrossEntropyKernel {
  KernelBuilder &k;
  IRBuilder<> &b;
  Buf logits, labels;
  std::optional<Buf> lossOut; // the mean loss, f32[]
  std::optional<Buf> gradOut; // dlogits, f32[N, K]
  Value *dloss = nullptr;     // with gradOut: the incoming gradient of the loss
  int64_t rows, cols;
  // The node's scratch: per row its max, then per row its sum of e, then
  // (parallel code) each row block's loss vector; `padded` floats each.
  Buf rowStats;
  // Parallel code: the barrier before the blocks' losses are added.
  std::function<void()> barrier;
  int64_t padded() const { return (rows + k.VW - 1) / k.VW * k.VW; }

  Value *rowStart(Value *r0, Value *r) { return k.mul(k.add(r0, r), cols); }
  Value *label(Value *r0, Value *r) { return k.loadIndex(labels, k.add(r0, r)); }

  // Folds one row's chunks into one vector; `each` sees every chunk with its
  // column and lane count (masked tail lanes read -inf).
  Value *rowFold(Value *row, Value *init,
                 function_ref<Value *(Value *, Value *, Value *, unsigned)> each) {
    const int64_t vw = k.VW, full = cols / vw * vw;
    Value *acc = k.loopCarried(
        0, full, vw, {init},
        [&](Value *c, ArrayRef<Value *> a) {
          return Values{
              each(a[0], k.loadVec(logits, k.add(row, c), unsigned(vw)), c, unsigned(vw))};
        },
        "kc")[0];
    if (cols % vw) {
      unsigned lanes = static_cast<unsigned>(cols % vw);
      acc = each(acc, k.loadVec(logits, k.add(row, full), lanes, k.splat(-INFINITY)), k.idx(full),
                 lanes);
    }
    return acc;
  }

  // loss_r = log(sum_r) + max_r - x[r, y_r] for the block's rows, as one
  // vector; lanes past `count` are 0.
  Value *blockLoss(Value *r0, unsigned count, Value *mx, Value *sum) {
    Value *zero = k.splat(0.0);
    Buf picked{k.stackVector(zero), k.F32};
    k.loop(
        0, count, 1,
        [&](Value *r) { k.store(picked, r, k.load(logits, k.add(rowStart(r0, r), label(r0, r)))); },
        "row");
    Value *loss =
        b.CreateFSub(b.CreateFAdd(emitLog(b, sum), mx), k.loadVec(picked, k.idx(0), k.VW));
    Value *valid =
        b.CreateICmpULT(k.laneIndices(k.idx(0)), b.CreateVectorSplat(k.VW, b.getInt32(count)));
    return b.CreateSelect(valid, loss, zero);
  }

  // dlogits = (e / sum - onehot(y)) * scale over the block's rows, with e
  // already stored in gradOut by the sum pass. Both passes store with
  // storeVecEndAligned: this one reloads gradOut row by row right after
  // the sum pass (and its own previous row) stored it, and a row's masked
  // tail stored from its own start would cover the next row's first
  // elements (27 floats a row in makemore).
  // makemore's loss node: 0.66 -> 0.58 us (Sapphire Rapids, per-node
  // profile minima of 8 interleaved rounds).
  void blockGrad(Value *r0, unsigned count, Value *sum, Value *scale) {
    Value *factorSlot = k.stackVector(b.CreateFDiv(scale, sum)), *zero = k.splat(0.0);
    k.loop(
        0, count, 1,
        [&](Value *r) {
          Value *f = k.splatLane(factorSlot, r), *row = rowStart(r0, r);
          Value *y = b.CreateVectorSplat(k.VW, b.CreateTrunc(label(r0, r), k.I32));
          k.chunks(cols, [&](Value *c, unsigned lanes) {
            Value *e = k.loadVec(*gradOut, k.add(row, c), lanes);
            Value *onehot = b.CreateSelect(b.CreateICmpEQ(k.laneIndices(c), y), scale, zero);
            k.storeVecEndAligned(*gradOut, k.add(row, c), b.CreateFSub(b.CreateFMul(e, f), onehot),
                                 lanes);
          });
        },
        "row");
  }

  // Phase 1 for one block of `count` rows from r0: the rows' maxima.
  void blockMax(Value *r0, unsigned count) {
    auto vmax = [&](Value *x, Value *y) { return k.maxOf(x, y); };
    Value *mx = k.reduceRowsAcross(
        count, k.splat(0.0),
        [&](Value *r) {
          return rowFold(rowStart(r0, r), k.splat(-INFINITY),
                         [&](Value *a, Value *x, Value *, unsigned) { return vmax(a, x); });
        },
        vmax);
    k.storeVec(rowStats, r0, mx, k.VW);
  }

  // Phase 2: the rows' sums of e = exp(x - max), e stored in gradOut.
  void blockSum(Value *r0, unsigned count) {
    Value *mxSlot = b.CreateInBoundsGEP(k.F32, rowStats.ptr, r0);
    Value *sum = k.reduceRowsAcross(
        count, k.splat(1.0),
        [&](Value *r) {
          Value *m = k.splatLane(mxSlot, r), *row = rowStart(r0, r);
          return rowFold(row, k.splat(0.0), [&](Value *a, Value *x, Value *c, unsigned lanes) {
            Value *e = emitExpNonPositive(b, b.CreateFSub(x, m));
            if (gradOut)
              k.storeVecEndAligned(*gradOut, k.add(row, c), e, lanes);
            return b.CreateFAdd(a, e);
          });
        },
        [&](Value *x, Value *y) { return b.CreateFAdd(x, y); });
    k.storeVec(rowStats, k.add(r0, padded()), sum, k.VW);
  }

  // Phase 3: the gradient rows (with gradOut) and the block's loss vector
  // (lanes past `count` 0; with lossOut, else null).
  Value *blockFinish(Value *r0, unsigned count, Value *scale) {
    Value *mx = k.loadVec(rowStats, r0, k.VW);
    Value *sum = k.loadVec(rowStats, k.add(r0, padded()), k.VW);
    Value *loss = lossOut ? blockLoss(r0, count, mx, sum) : nullptr;
    if (gradOut)
      blockGrad(r0, count, sum, scale);
    return loss;
  }

  void storeMean(Value *total) {
    k.store(*lossOut, k.idx(0), b.CreateFDiv(k.hsum(total), ConstantFP::get(k.F32, double(rows))));
  }

  // The three phases each go over all of this thread's row blocks before the
  // next starts: a block's max -> sum -> log -> gradient chain, hundreds of
  // cycles deep, then overlaps other blocks' work instead of stalling the
  // one after it (makemore H = 64 / B = 256 on Zen 5, one thread: loss node
  // 3.2 -> 2.8 us in the per-node profile; step 39.15 -> 38.67 us, medians
  // of 5 alternated rounds). Parallel code splits the blocks between
  // threads the same way in every phase (loopShared), so each thread only
  // reads the rows and row statistics it wrote, and no barrier is needed
  // between phases. The same arithmetic per row as block by block: the
  // same bits.
  template <class Body> void eachBlock(Body body) { k.rowBlocksShared(rows, body); }

  // The loss adds the blocks' loss vectors in block order from a zero
  // vector, then across the lanes: on one thread as the blocks go, in
  // parallel code from the stored vectors after a barrier; the same bits.
  void emit() {
    Value *scale = nullptr;
    if (gradOut)
      scale = k.splat(b.CreateFDiv(dloss, ConstantFP::get(k.F32, double(rows))));
    eachBlock([&](Value *r0, unsigned count) { blockMax(r0, count); });
    eachBlock([&](Value *r0, unsigned count) { blockSum(r0, count); });
    if (!barrier) {
      Values total = k.rowBlocks(rows, {k.splat(0.0)},
                                 [&](Value *r0, unsigned count, ArrayRef<Value *> acc) -> Values {
                                   Value *loss = blockFinish(r0, count, scale);
                                   return Values{loss ? b.CreateFAdd(acc[0], loss) : acc[0]};
                                 });
      if (lossOut)
        storeMean(total[0]);
      return;
    }
    const int64_t lossesAt = 2 * padded();
    eachBlock([&](Value *r0, unsigned count) {
      if (Value *loss = blockFinish(r0, count, scale))
        k.storeVec(rowStats, k.add(r0, lossesAt), loss, k.VW);
    });
    if (!lossOut)
      return;
    barrier();
    k.onLastShare([&] {
      const int64_t vw = k.VW, blocks = (rows + vw - 1) / vw;
      Values total =
          k.loopCarried(0, blocks, 1, {k.splat(0.0)}, [&](Value *blk, ArrayRef<Value *> acc) {
            Value *loss = k.loadVec(rowStats, k.add(k.mul(blk, vw), lossesAt), k.VW);
            return Values{b.CreateFAdd(acc[0], loss)};
          });
      storeMean(total[0]);
    });
  }
};

} // namespace

void GraphLowering::lowerCrossEntropy(ValueId v) {
  const Node &n = g_[v];
  const Shape &ls = g_[n.operands[0]].type.shape;
  CrossEntropyKernel kernel{
      *k_,        b_, buf(n.operands[0]), buf(n.operands[1]), {}, {}, nullptr, ls[0], ls[1],
      scratch(v), {}};
  std::optional<ValueId> grad;
  if (n.op == Op::CrossEntropyGrad)
    grad = v;
  else if (plan_.lossGrad[v] >= 0)
    grad = static_cast<ValueId>(plan_.lossGrad[v]);
  if (n.op == Op::CrossEntropy)
    kernel.lossOut = buf(v);
  if (grad) {
    kernel.gradOut = buf(*grad);
    kernel.dloss = k_->load(buf(g_[*grad].operands[2]), k_->idx(0));
  }
  if (k_->share.index) // parallel code: threads split the row blocks
    kernel.barrier = [&] { shareBarrier(); };
  // Blocks of VW rows, none partial, an even count: two threads take the
  // first half of the rows and the rest (the loss's sum reads only scratch).
  if (ls[0] % k_->VW == 0 && (ls[0] / k_->VW) % 2 == 0) {
    splitsAtMiddle(n.operands[0]);
    if (grad)
      splitsAtMiddle(*grad);
  }
  kernel.emit();
}

} // namespace mlpc::codegen
