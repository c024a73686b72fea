// Column sums in a fixed blocking (KernelBuilder::fold, blockedFold,
// blockColumnSums, sumBlocks): the batch statistics, BatchNormGrad and the
// sums over rows add each column's rows by a fixed number of row blocks,
// each block's rows in order from zero, then the blocks in order from zero,
// so that threads can split the blocks and every thread count, and every
// kernel that reads the rows in another order of loads, gives the same bits.
#include "codegen/KernelBuilder.h"

using namespace llvm;

namespace mlpc::codegen {

Values KernelBuilder::fold(size_t vectors, Value *first, int64_t count, RowStep step) {
  return loopCarried(0, count, 1, Values(vectors, splat(0.0)),
                     [&](Value *i, ArrayRef<Value *> acc) {
                       Value *row = add(first, i);
                       Values next;
                       for (size_t v = 0; v < vectors; ++v)
                         next.push_back(step(acc[v], row, v));
                       return next;
                     });
}

Values KernelBuilder::sumOverBlocks(size_t vectors, int64_t blocks,
                                    function_ref<Values(Value *)> part) {
  return loopCarried(0, blocks, 1, Values(vectors, splat(0.0)),
                     [&](Value *b, ArrayRef<Value *> total) {
                       Values p = part(b), next;
                       for (size_t v = 0; v < vectors; ++v)
                         next.push_back(B.CreateFAdd(total[v], p[v]));
                       return next;
                     });
}

Values KernelBuilder::blockedFold(size_t vectors, int64_t rows, int64_t blocks, RowStep step) {
  if (blocks == 1)
    return fold(vectors, idx(0), rows, step); // no (0 + s)
  const int64_t blockRows = rows / blocks;
  return sumOverBlocks(vectors, blocks,
                       [&](Value *b) { return fold(vectors, mul(b, blockRows), blockRows, step); });
}

// Why whole rows: a column group's rows are a row apart, and reading
// 256 bytes of each (four vectors) halves what L2 delivers (a reading loop
// on Zen 5: ~29 bytes a cycle against ~60 streamed along rows); with 256
// rows a group's passes no longer fit in L1, and rows 4 KB apart (H = 1024)
// put all of a group's rows in the same cache sets. So the rows are read in
// order, kRowsAtOnce at a time, each column's sums going through the scratch
// (L1) between row groups. Per-node profile on Zen 5, column groups and rows
// alternated (3 rounds each): at H = 1024 / B = 256 BatchNormGrad 98-103 ->
// 72-83 us and the batch statistics 29.4 -> 22.0; at H = 200 10.7-14.0 ->
// 10.0-10.7 and no change. Two rows at a time rather than 1 or 4: 1 was
// slower at H = 200 (13.7 against 10.7 us) and 4 no faster than 2, for 2%
// more backend work (callgrind of the B = 256 step's machine code: column
// groups 551 M instructions, rows by 2 572 M, by 4 584 M).
static constexpr int64_t kRowsAtOnce = 2;

// Narrow rows (a whole row's sums in at most half the vector registers: 16
// with AVX-512, 8 with AVX2, where 16 spilled every loop) keep the
// sums in registers for the whole block and store them once: through the
// scratch, each row's sums are loaded from the store of the row before, and
// on Zen 5 that forwarding sits on the sums' dependency chain. One thread
// also runs two blocks side by side where the registers allow, which
// halves the chains (the statistics' running mean is a subtract and an FMA
// deep per row); parallel code keeps a block per trip, so that threads cut
// the blocks where the other nodes cut the rows. makemore's H = 64 / B =
// 256 step, one thread, per-node profile: the batch statistics 0.91 us
// through the scratch, 0.58 in registers, 0.39 two blocks at a time;
// BatchNormGrad 1.70, 1.55, 1.52. The same additions in the same order:
// the same bits.

namespace {
// Vectors of running sums the register path may hold.
int64_t registerSums(const KernelBuilder &k) {
  return k.VectorRegs / 2;
}
} // namespace

void KernelBuilder::blockColumnSumsInRegisters(int64_t rows, int64_t blocks, int64_t h, size_t sums,
                                               const Buf &scratch, BlockSlot slot,
                                               RowChunkStep step) {
  const int64_t blockRows = rows / blocks, chunkCount = (h + VW - 1) / VW;
  const int64_t group = blockRows % kRowsAtOnce == 0 ? kRowsAtOnce : 1;
  const int64_t perBlock = chunkCount * int64_t(sums);
  const int64_t together =
      !share.index && blocks % 2 == 0 && 2 * perBlock <= registerSums(*this) ? 2 : 1;
  auto lanesOf = [&](int64_t c) {
    return c + 1 < chunkCount || h % VW == 0 ? VW : static_cast<unsigned>(h % VW);
  };
  loopShared(0, blocks / together, 1, [&](Value *pair) {
    Value *firstBlock = mul(pair, together);
    Values zeros(static_cast<size_t>(together * perBlock), splat(0.0));
    Values total = loopCarried(0, blockRows, group, zeros, [&](Value *r, ArrayRef<Value *> acc) {
      Values next(acc.begin(), acc.end());
      for (int64_t q = 0; q < group; ++q)
        for (int64_t t = 0; t < together; ++t) {
          Value *row = add(add(mul(add(firstBlock, t), blockRows), r), q);
          for (int64_t c = 0; c < chunkCount; ++c) {
            auto chunkSums = MutableArrayRef<Value *>(next).slice(t * perBlock + c * sums, sums);
            Values updated = step(row, idx(c * VW), lanesOf(c), chunkSums);
            std::copy(updated.begin(), updated.end(), chunkSums.begin());
          }
        }
      return next;
    });
    for (int64_t t = 0; t < together; ++t)
      for (int64_t c = 0; c < chunkCount; ++c)
        for (size_t s = 0; s < sums; ++s)
          storeVec(scratch, slot(s, add(firstBlock, t), idx(c * VW)),
                   total[t * perBlock + c * sums + s], lanesOf(c));
  });
}

void KernelBuilder::blockColumnSums(int64_t rows, int64_t blocks, int64_t h, size_t sums,
                                    const Buf &scratch, BlockSlot slot, RowChunkStep step) {
  const int64_t blockRows = rows / blocks;
  if (sums > 0 && (h + VW - 1) / VW * int64_t(sums) <= registerSums(*this))
    return blockColumnSumsInRegisters(rows, blocks, h, sums, scratch, slot, step);
  const int64_t group = blockRows % kRowsAtOnce == 0 ? kRowsAtOnce : 1;
  // Threads split the blocks; where a thread's cut falls inside a block
  // (more threads than blocks, or uneven parts), the threads on either side
  // split that block's columns (onShareOfTrip, chunksShared): every column's
  // sums still add the block's rows in order.
  loop(0, blocks, 1, [&](Value *blk) {
    onShareOfTrip(blk, blocks, [&] {
      if (sums)
        chunksShared(h, [&](Value *c, unsigned lanes) {
          for (size_t s = 0; s < sums; ++s)
            storeVec(scratch, slot(s, blk, c), splat(0.0), lanes);
        });
      loop(0, blockRows, group, [&](Value *r) {
        Value *first = add(mul(blk, blockRows), r);
        chunksShared(h, [&](Value *c, unsigned lanes) {
          Values acc;
          for (size_t s = 0; s < sums; ++s)
            acc.push_back(loadVec(scratch, slot(s, blk, c), lanes));
          for (int64_t q = 0; q < group; ++q)
            acc = step(add(first, q), c, lanes, acc);
          for (size_t s = 0; s < sums; ++s)
            storeVec(scratch, slot(s, blk, c), acc[s], lanes);
        });
      });
    });
  });
}

Values KernelBuilder::sumBlocks(int64_t blocks, const Buf &scratch, ArrayRef<unsigned> lanes,
                                function_ref<Value *(size_t, Value *)> at) {
  return fold(lanes.size(), idx(0), blocks, [&](Value *acc, Value *blk, size_t j) {
    return B.CreateFAdd(acc, loadVec(scratch, at(j, blk), lanes[j]));
  });
}

} // namespace mlpc::codegen
