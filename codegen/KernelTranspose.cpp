// VW x VW transposes of f32 blocks in vector registers (KernelBuilder::
// transpose, transposeBlock, transposeByHalves): the NT matmuls' operand
// transposes (LowerMatMul.cpp: transposeInto) and the transposed TN kernel's
// epilogue (LowerMatMulTransposed.cpp).
//
// On Intel cores every shuffle of 512-bit vectors runs on one port (p5),
// so a 16 x 16 block costs at least as many cycles as it has shuffles.
// transposeBlock, memory to memory, moves half of them to the loads and to
// blends that p0 can run too (see there).
#include "codegen/KernelBuilder.h"

#include <array>

#include <llvm/IR/Constants.h>
#include <llvm/IR/Intrinsics.h>

using namespace llvm;

namespace mlpc::codegen {
namespace {

SmallVector<int, 16> laneMask(unsigned vw, function_ref<int(int)> pick) {
  SmallVector<int, 16> mask;
  for (unsigned lane = 0; lane < vw; ++lane)
    mask.push_back(pick(static_cast<int>(lane)));
  return mask;
}

// The 4 x 4 transpose inside every 128-bit lane of v[0..3] (two rounds of
// unpacks, one uop each): lane g of result j holds lane g's column j, i.e.
// element j of lane g of v[0], v[1], v[2], v[3].
std::array<Value *, 4> transposeInLanes(IRBuilder<> &B, unsigned vw,
                                        const std::array<Value *, 4> &v) {
  // unpck{lo,hi}ps of (0, 1) and (2, 3), then unpck{lo,hi}pd. A pattern
  // gives, per lane of a 128-bit group, {operand (0 = a, 1 = b), lane within
  // a's / b's group}.
  using Pattern = std::array<std::pair<int, int>, 4>;
  static const Pattern lowPs{{{0, 0}, {1, 0}, {0, 1}, {1, 1}}},
      highPs{{{0, 2}, {1, 2}, {0, 3}, {1, 3}}}, lowPd{{{0, 0}, {0, 1}, {1, 0}, {1, 1}}},
      highPd{{{0, 2}, {0, 3}, {1, 2}, {1, 3}}};
  auto unpack = [&](Value *a, Value *b, const Pattern &p) {
    return B.CreateShuffleVector(a, b, laneMask(vw, [&](int lane) {
                                   auto [operand, q] = p[lane % 4];
                                   return operand * int(vw) + lane / 4 * 4 + q;
                                 }));
  };
  Value *t0 = unpack(v[0], v[1], lowPs), *t1 = unpack(v[0], v[1], highPs);
  Value *t2 = unpack(v[2], v[3], lowPs), *t3 = unpack(v[2], v[3], highPs);
  return {unpack(t0, t2, lowPd), unpack(t0, t2, highPd), unpack(t1, t3, lowPd),
          unpack(t1, t3, highPd)};
}

} // namespace

// With VW a multiple of 4 (128-bit lanes of 4 floats), the x86 way (the
// same shuffles a hand-written AVX-512 transpose uses): first a 4 x 4
// transpose inside every 128-bit lane of each group of 4 rows, which leaves
// in vector 4i + j, lane g, the chunk column 4g + j of rows 4i .. 4i + 3;
// then the 128-bit chunks themselves are transposed across vectors,
// log2(VW/4) rounds that pair vectors d apart (d = 4, 8, ...) into their
// even and odd chunks (vshuff32x4 on AVX-512, vperm2f128 on AVX2). Every
// shuffle is one single-uop instruction with an immediate: 64 for 16 x 16.
// The generic pairing (transposeByHalves: halves, then quarters, ...)
// selected two-source permutes with index registers (vpermt2ps plus a copy
// for the operand it overwrites): the makemore step's two operand
// transposes ([200,27] and [30,200]) took ~1.1 us each, 0.65 us for the same
// blocks written in C with these shuffles.
Values KernelBuilder::transpose(Values rows) {
  if (VW % 4 != 0)
    return transposeByHalves(std::move(rows));
  Values out(VW);
  for (unsigned i = 0; i < VW; i += 4) {
    auto t = transposeInLanes(B, VW, {rows[i], rows[i + 1], rows[i + 2], rows[i + 3]});
    std::copy(t.begin(), t.end(), out.begin() + i);
  }
  // An arithmetic fence (no instruction) between the two halves: x86's DAG
  // combiner otherwise merges each shuffle with the whole tree above it
  // (one 16 x 16 block cost ~8 ms to compile that way, ~3 ms cut in two).
  if (FenceShuffles)
    for (Value *&r : out)
      r = B.CreateUnaryIntrinsic(Intrinsic::arithmetic_fence, r);
  // 128-bit chunks: pairs d apart -> (even chunks of both, odd chunks of both).
  const int vw = static_cast<int>(VW);
  for (unsigned d = 4; d < VW; d *= 2) {
    auto chunks = [&](bool odd) {
      return laneMask(VW, [&](int lane) {
        int c = lane / 4, q = lane % 4, half = vw / 8; // chunks per source
        int from = c < half ? 0 : vw, chunk = 2 * (c % half) + (odd ? 1 : 0);
        return from + 4 * chunk + q;
      });
    };
    const auto even = chunks(false), odd = chunks(true);
    Values next(VW);
    for (unsigned v = 0; v < VW; ++v)
      if ((v / d) % 2 == 0) {
        next[v] = B.CreateShuffleVector(out[v], out[v + d], even);
        next[v + d] = B.CreateShuffleVector(out[v], out[v + d], odd);
      }
    out = std::move(next);
  }
  return out;
}

// The chunk rounds of transpose done by the loads instead: vector (r, q)
// is joined from 128-bit loads, its lane g holding columns 4q .. 4q + 3 of
// row 4g + r, and the in-lane 4 x 4 transpose of vectors (0..3, q) then
// leaves column 4q + j of all VW rows in result 4q + j. On x86 each chunk
// is loaded broadcast to every lane (vbroadcastf32x4: a load uop only) and
// the VW/4 of them are merged by blends (vmovaps with a constant k-mask,
// one uop for p0 or p5; arithmetic fences keep the DAG combiner from
// turning the blends back into vinsertf64x4, a p5 shuffle). Per 16 x 16
// block: 32 unpacks on p5 and 48 blends on p0/p5, against transpose's 64 p5
// shuffles. Measured on the Sapphire Rapids host (mlpc_matmul_bench, M = 1
// so that the transpose is nearly all the time, min of 5 interleaved
// runs): 1x200x27:NT 0.72 -> 0.56 us, 1x30x200:NT 0.87 -> 0.74 us,
// 1x208x32:NT 0.72 -> 0.54 us; in the makemore step, whose transposes wait
// mostly on memory (LowerMatMul.cpp's header), ~0.1 us on each of the two
// NT nodes. Tried and slower or no better: 8 x 8
// sub-blocks in 256-bit vectors (vinsertf128 from memory and 256-bit
// unpacks: these too wait for p5 here, and it stores twice as many
// vectors); the joins left to the DAG (vinsertf128 pairs, then a
// vinsertf64x4 on p5 per vector).
void KernelBuilder::transposeBlock(const Buf &src, function_ref<Value *(unsigned)> srcRow,
                                   const Buf &dst, function_ref<Value *(unsigned)> dstRow) {
  Values srcAt, dstAt;
  for (unsigned i = 0; i < VW; ++i) {
    srcAt.push_back(srcRow(i));
    dstAt.push_back(dstRow(i));
  }
  if (VW % 4 != 0) {
    Values rows;
    for (Value *at : srcAt)
      rows.push_back(loadVec(src, at, VW));
    Values cols = transposeByHalves(std::move(rows));
    for (unsigned c = 0; c < VW; ++c)
      storeVec(dst, dstAt[c], cols[c], VW);
    return;
  }
  const unsigned groups = VW / 4;
  auto *chunkTy = FixedVectorType::get(src.elemTy, 4);
  auto fence = [&](Value *v) {
    return FenceShuffles ? B.CreateUnaryIntrinsic(Intrinsic::arithmetic_fence, v) : v;
  };
  // Lane g of the result = chunk g (parts: 128-bit loads).
  auto join = [&](ArrayRef<Value *> parts) {
    Value *joined = nullptr;
    for (unsigned g = 0; g < parts.size(); ++g) {
      Value *everywhere =
          fence(B.CreateShuffleVector(parts[g], laneMask(VW, [](int lane) { return lane % 4; })));
      joined =
          !joined ? everywhere
                  : fence(B.CreateShuffleVector(joined, everywhere, laneMask(VW, [&](int lane) {
                                                  return lane / 4 == int(g) ? int(VW) + lane : lane;
                                                })));
    }
    return joined;
  };
  for (unsigned q = 0; q < groups; ++q) {
    std::array<Value *, 4> v;
    for (unsigned r = 0; r < 4; ++r) {
      Values parts;
      for (unsigned g = 0; g < groups; ++g) {
        Instruction *chunk =
            B.CreateAlignedLoad(chunkTy, gep(src, add(srcAt[4 * g + r], 4 * q)), Align(4));
        annotate(chunk, src);
        parts.push_back(chunk);
      }
      v[r] = join(parts);
    }
    auto t = transposeInLanes(B, VW, v);
    for (unsigned j = 0; j < 4; ++j)
      storeVec(dst, dstAt[4 * q + j], t[j], VW);
  }
}

// Stage s pairs row i with row i + s and swaps the off-diagonal s x s blocks
// of every 2s x 2s block; after stages VW/2, ..., 1 row i holds column i.
// (For widths that are not whole 128-bit lanes.)
Values KernelBuilder::transposeByHalves(Values rows) {
  for (unsigned s = VW / 2; s >= 1; s /= 2) {
    auto [low, high] = pairMasks(s);
    Values next(rows.size());
    for (unsigned i = 0; i < VW; ++i)
      if ((i & s) == 0) {
        next[i] = B.CreateShuffleVector(rows[i], rows[i + s], low);
        next[i + s] = B.CreateShuffleVector(rows[i], rows[i + s], high);
      }
    rows = std::move(next);
    if (FenceShuffles && s == VW / 4)
      for (Value *&r : rows)
        r = B.CreateUnaryIntrinsic(Intrinsic::arithmetic_fence, r);
  }
  return rows;
}

} // namespace mlpc::codegen
