// MatMul C[M,N] = op(A)[M,K] @ op(B)[K,N] for every transA/transB case.
//
// One register-blocked kernel: C is cut into tiles of MR rows x NR vectors
// (VW columns each, the last one masked when N % VW != 0). A tile's MR*NR
// accumulators stay in registers for the whole k loop; each k step loads NR
// vectors of row k of op(B) (contiguous), broadcasts MR scalars of op(A)
// and issues MR*NR FMAs. With 32 AVX-512 registers, MR*NR + NR + 1 <= 32,
// e.g. [32,30]@[30,200] runs 4x5 and 4x4 tiles (3 column tiles of 80/64/56
// columns): 9 loads per 20 FMAs, so the FMA units, not the load ports, bound
// it (~210 GFLOP/s measured, i.e. ~1.8 us for this product on this machine).
//
// The kernel needs op(B)'s rows contiguous (vectors run along N):
//   NN  A[M,K] @ B[K,N]      B rows as they are; A scalars A[i,k]
//   TN  A[K,M]^T @ B[K,N]    the same with A scalars A[k,i] (dB = A^T @ dOut):
//                            the MR scalars of one k are adjacent in memory
//   NT  A[M,K] @ B[N,K]^T    B is first transposed into scratch [K,N]
//                            (VW x VW blocks through registers, see transposeInto)
//   TT  both of the above    (dA = dOut @ B^T)
// The transpose costs K*N moves (~0.1-0.3 us for the makemore weights),
// small next to the M*N*K FMAs, and keeps every inner loop on contiguous
// vectors with no horizontal sums.
//
// Each finished accumulator vector goes to an epilogue: a plain store, or the
// consumer's fused elementwise expression (see LowerElementwise.cpp).
#include "codegen/Lowering.h"

using namespace llvm;

namespace mlpc::codegen {
namespace {

// Element (r, c) of a matrix operand is at r * rowStride + c * colStride.
struct MatView {
  Buf buf;
  int64_t rowStride, colStride;
};

struct ColumnTile {
  int64_t firstColumn;
  SmallVector<unsigned, 8> lanes; // per vector of the tile
};

// Splits ceil(N / VW) vectors into near-equal tiles of at most maxVectors.
std::vector<ColumnTile> columnTiles(int64_t n, unsigned vw, unsigned maxVectors) {
  int64_t vectors = (n + vw - 1) / vw;
  int64_t tiles = (vectors + maxVectors - 1) / maxVectors;
  std::vector<ColumnTile> out;
  int64_t column = 0;
  for (int64_t t = 0; t < tiles; ++t) {
    int64_t count = vectors / tiles + (t < vectors % tiles ? 1 : 0);
    ColumnTile tile{column, {}};
    for (int64_t v = 0; v < count; ++v, column += vw)
      tile.lanes.push_back(static_cast<unsigned>(std::min<int64_t>(vw, n - column)));
    out.push_back(std::move(tile));
  }
  return out;
}

// Rows per tile: as many as the registers allow, preferring a divisor of M
// (no remainder tile) if one is at least half that.
int64_t rowsPerTile(int64_t m, unsigned registers, size_t vectors) {
  int64_t maxRows =
      std::clamp<int64_t>((int64_t(registers) - 1 - int64_t(vectors)) / int64_t(vectors), 1, 12);
  maxRows = std::min(maxRows, std::max<int64_t>(m, 1));
  for (int64_t r = maxRows; r * 2 >= maxRows; --r)
    if (m % r == 0)
      return r;
  return maxRows;
}

} // namespace

// dst[K, N] = src[N, K]^T in VW x VW register blocks: VW row loads (masked
// at the right edge), an in-register transpose, VW row stores (masked at the
// bottom edge). Written with explicit vectors because the scalar loop nest
// gets vectorised with gathers and fully unrolled, which is both slower and
// very costly to compile.
void GraphLowering::transposeInto(const Buf &src, int64_t rows, int64_t cols, const Buf &dst) {
  const unsigned vw = k_->VW;
  auto block = [&](Value *r0, unsigned rowCount, Value *c0, unsigned colCount) {
    Values in;
    for (unsigned r = 0; r < vw; ++r)
      in.push_back(r < rowCount
                       ? k_->loadVec(src, k_->add(k_->mul(k_->add(r0, r), cols), c0), colCount)
                       : Constant::getNullValue(k_->VecTy));
    Values out = k_->transpose(in);
    for (unsigned c = 0; c < colCount; ++c)
      k_->storeVec(dst, k_->add(k_->mul(k_->add(c0, c), rows), r0), out[c], rowCount);
  };
  // Loops (not unrolled blocks) over both block indices: each block is ~100
  // instructions, and one straight-line run of them is slow to schedule.
  auto blockRow = [&](Value *r0, unsigned rowCount) {
    const int64_t fullCols = cols / vw * vw;
    k_->loop(
        0, fullCols, vw, [&](Value *c0) { block(r0, rowCount, c0, vw); }, "tc");
    if (cols % vw)
      block(r0, rowCount, k_->idx(fullCols), static_cast<unsigned>(cols % vw));
  };
  const int64_t fullRows = rows / vw * vw;
  k_->loop(
      0, fullRows, vw, [&](Value *r0) { blockRow(r0, vw); }, "tr");
  if (rows % vw)
    blockRow(k_->idx(fullRows), static_cast<unsigned>(rows % vw));
}

void GraphLowering::lowerMatMul(ValueId v) {
  const Buf &c = buf(v);
  const int64_t cols = g_[v].type.shape[1];
  emitMatMul(v, [&](Value *row, Value *column, unsigned lanes, Value *acc) {
    k_->storeVec(c, k_->add(k_->mul(row, cols), column), acc, lanes);
  });
}

void GraphLowering::emitMatMul(ValueId v, MatMulEpilogue epilogue) {
  const Node &n = g_[v];
  const Shape &as = g_[n.operands[0]].type.shape, &bs = g_[n.operands[1]].type.shape;
  const int64_t m = n.type.shape[0], cols = n.type.shape[1], k = n.transA ? as[0] : as[1];
  const unsigned vw = k_->VW;
  MatView a{buf(n.operands[0]), n.transA ? 1 : as[1], n.transA ? as[1] : 1};
  MatView b{buf(n.operands[1]), bs[1], 1};
  if (n.transB) {
    transposeInto(buf(n.operands[1]), cols, k, scratch(v));
    b = MatView{scratch(v), cols, 1};
  }
  const unsigned maxVectors = k_->VectorRegs >= 32 ? 5 : 3;

  for (const ColumnTile &tile : columnTiles(cols, vw, maxVectors)) {
    const size_t nv = tile.lanes.size();
    auto microKernel = [&](Value *row0, int64_t rows) {
      Values init(rows * nv, Constant::getNullValue(k_->VecTy));
      Values acc = k_->loopCarried(
          0, k, 1, init,
          [&](Value *kk, ArrayRef<Value *> acc) {
            Values bv;
            Value *bRow = k_->add(k_->mul(kk, b.rowStride), tile.firstColumn);
            for (size_t q = 0; q < nv; ++q)
              bv.push_back(k_->loadVec(b.buf, k_->add(bRow, int64_t(q) * vw), tile.lanes[q]));
            Values next(acc.begin(), acc.end());
            for (int64_t r = 0; r < rows; ++r) {
              Value *aIndex =
                  k_->add(k_->mul(k_->add(row0, r), a.rowStride), k_->mul(kk, a.colStride));
              Value *av = k_->splat(k_->load(a.buf, aIndex));
              for (size_t q = 0; q < nv; ++q)
                next[r * nv + q] = k_->fmuladd(av, bv[q], acc[r * nv + q]);
            }
            return next;
          },
          "k");
      for (int64_t r = 0; r < rows; ++r)
        for (size_t q = 0; q < nv; ++q)
          epilogue(k_->add(row0, r), k_->idx(tile.firstColumn + int64_t(q) * vw), tile.lanes[q],
                   acc[r * nv + q]);
    };
    const int64_t mr = rowsPerTile(m, k_->VectorRegs, nv);
    const int64_t mainRows = m / mr * mr;
    k_->loop(
        0, mainRows, mr, [&](Value *row0) { microKernel(row0, mr); }, "row");
    if (m % mr)
      microKernel(k_->idx(mainRows), m % mr);
  }
}

} // namespace mlpc::codegen
