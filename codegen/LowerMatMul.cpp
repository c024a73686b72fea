// MatMul C[M,N] = op(A)[M,K] @ op(B)[K,N] for every transA/transB case.
//
// One register-blocked kernel: C is cut into tiles of MR rows x NR vectors
// (VW columns each, the last one masked when N % VW != 0). A tile's MR*NR
// accumulators stay in registers for the whole k loop; each k step loads NR
// vectors of row k of op(B) (contiguous), broadcasts MR scalars of op(A)
// and issues MR*NR FMAs. With 32 AVX-512 registers, MR*NR + NR + 1 <= 32,
// e.g. [32,30]@[30,200] runs three 4x4 tiles of 64 columns in a loop and one
// 8x1 tile for the last 8 columns: 8 loads per 16 FMAs, so the FMA units, not
// the load ports, bound it (~205 GFLOP/s measured, i.e. ~1.9 us for this
// product; the machine's peak is 226 GFLOP/s: 2 FMA pipes x 16 lanes x 2
// flops x 3.53 GHz).
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

// Independent accumulator chains a tile needs to keep the FMA pipes busy:
// 2 pipes x 4 cycles of latency = 8 on current x86 cores, plus slack for the
// broadcast loads between them.
constexpr int64_t kMinAccumulators = 10;

// Rows per tile: as many as the registers allow, preferring a divisor of M
// (no remainder tile: one copy of the micro-kernel less to compile) if one
// is at least half that and still has kMinAccumulators accumulators. With 16
// registers (AVX2) and 2 vectors per row, M = 32 or 256 would otherwise get
// 4-row tiles: 8 accumulators, which left the pipes idle (matmul_bench
// --cpu x86-64-v3 on the Sapphire Rapids host, against dnnl_sgemm limited to
// AVX2: 0.91-1.14x with 4 rows, 0.98-1.25x with 6).
int64_t rowsPerTile(int64_t m, unsigned registers, size_t vectors) {
  int64_t maxRows =
      std::clamp<int64_t>((int64_t(registers) - 1 - int64_t(vectors)) / int64_t(vectors), 1, 12);
  maxRows = std::min(maxRows, std::max<int64_t>(m, 1));
  // A one-vector tile issues one broadcast per FMA: the broadcasts bound it,
  // not the FMA latency, so fewer rows cost nothing there.
  const int64_t minRows =
      vectors == 1 ? 1 : (kMinAccumulators + int64_t(vectors) - 1) / int64_t(vectors);
  for (int64_t r = maxRows; r * 2 >= maxRows && r >= minRows; --r)
    if (m % r == 0)
      return r;
  return maxRows;
}

} // namespace

// dst[K, N] = src[N, K]^T in VW x VW register blocks: VW row loads, an
// in-register transpose, VW row stores. Written with explicit vectors because
// the scalar loop nest gets vectorised with gathers and fully unrolled, which
// is both slower and very costly to compile.
//
// One block body serves every block, so it is emitted once: with a variant
// per edge case (full/partial rows x full/partial columns), the two
// transposes of the makemore step took ~40 ms of its ~120 ms of machine-code
// generation. A dimension of at least VW has no partial blocks: its last
// block is moved back to end at the edge (start = min(start, size - VW)),
// overlapping the previous one, which only rewrites the same values. A
// dimension below VW is a single block with compile-time masks.
void GraphLowering::transposeInto(const Buf &src, int64_t rows, int64_t cols, const Buf &dst) {
  const unsigned vw = k_->VW;
  auto blockStart = [&](Value *start, int64_t size) {
    if (size <= vw || size % vw == 0)
      return start;
    return b_.CreateBinaryIntrinsic(Intrinsic::umin, start, k_->idx(size - vw));
  };
  const unsigned rowCount = static_cast<unsigned>(std::min<int64_t>(rows, vw));
  const unsigned colCount = static_cast<unsigned>(std::min<int64_t>(cols, vw));
  k_->loopShared(
      0, rows, vw,
      [&](Value *rowStart) {
        Value *r0 = blockStart(rowStart, rows);
        k_->loop(
            0, cols, vw,
            [&](Value *colStart) {
              Value *c0 = blockStart(colStart, cols);
              Values in;
              for (unsigned r = 0; r < vw; ++r)
                in.push_back(
                    r < rowCount
                        ? k_->loadVec(src, k_->add(k_->mul(k_->add(r0, r), cols), c0), colCount)
                        : Constant::getNullValue(k_->VecTy));
              Values out = k_->transpose(in);
              for (unsigned c = 0; c < colCount; ++c)
                k_->storeVec(dst, k_->add(k_->mul(k_->add(c0, c), rows), r0), out[c], rowCount);
            },
            "tc");
      },
      "tr");
}

void GraphLowering::lowerMatMul(ValueId v) {
  const Buf &c = buf(v);
  const int64_t cols = g_[v].type.shape[1];
  for (size_t i = 0; i < plan_.outputs.size(); ++i) {
    const OutputPlan &op = plan_.outputs[i];
    if (!op.inKernel || op.value != v)
      continue;
    // The SGD update in the epilogue (BufferPlan: OutputPlan::inKernel). The
    // tile goes to the gradient binding, or when that is null to the value's
    // own workspace buffer: a select instead of a branch per vector.
    Buf grad = outputBuf(i);
    grad.ptr = b_.CreateSelect(b_.CreateIsNull(outputArg_[i]), c.ptr, outputArg_[i]);
    const Buf &param = buf(op.target);
    Value *negLr = k_->splat(b_.CreateFNeg(lr_));
    emitMatMul(v, [&](Value *row, Value *column, unsigned lanes, Value *acc) {
      Value *at = k_->add(k_->mul(row, cols), column);
      k_->storeVec(grad, at, acc, lanes);
      k_->storeVec(param, at, k_->fmuladd(negLr, acc, k_->loadVec(param, at, lanes)), lanes);
    });
    return;
  }
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
    shareBarrier(); // every thread reads all of the transposed B
  }
  // Column tiles of `width` vectors, all alike, in a run-time loop, then at
  // most one narrower tile for the rest of N (its last vector masked when
  // N % VW != 0): two copies of the micro-kernel and its epilogue whatever
  // N is. (One tile per 5 vectors, as before, gave 3 copies at N = 200 and
  // 13 at N = 1024; machine-code generation time grows with the copies.)
  // 4 vectors x up to 6 rows (24 accumulators + 4 B vectors + 1 broadcast
  // of 32 registers) load one vector per 2-3 FMAs, within Zen 5's two
  // 512-bit loads per cycle.
  const int64_t width = k_->VectorRegs >= 32 ? 4 : 2;
  const int64_t fullTiles = cols / vw / width, tileColumns = width * vw;
  // Parallel code splits the dimension with more tiles: the row tiles, or
  // the full column tiles when M is small (weight gradients such as
  // emb^T @ dhpre, [30, 1024]), so that each thread reads only its part of
  // the wide operand. Fixed by the shapes, not by the thread count.
  const int64_t fullTileRows = rowsPerTile(m, k_->VectorRegs, width);
  const bool splitColumns = fullTiles > (m + fullTileRows - 1) / fullTileRows;
  const KernelBuilder::Share share = k_->share;
  if (splitColumns)
    k_->share = {}; // the row loops of each column tile run whole
  auto columnTile = [&](Value *firstColumn, ArrayRef<unsigned> lanes) {
    const size_t nv = lanes.size();
    auto microKernel = [&](Value *row0, int64_t rows) {
      Values init(rows * nv, Constant::getNullValue(k_->VecTy));
      Values acc = k_->loopCarried(
          0, k, 1, init,
          [&](Value *kk, ArrayRef<Value *> acc) {
            Values bv;
            Value *bRow = k_->add(k_->mul(kk, b.rowStride), firstColumn);
            for (size_t q = 0; q < nv; ++q)
              bv.push_back(k_->loadVec(b.buf, k_->add(bRow, int64_t(q) * vw), lanes[q]));
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
          epilogue(k_->add(row0, r), k_->add(firstColumn, int64_t(q) * vw), lanes[q],
                   acc[r * nv + q]);
    };
    const int64_t mr = rowsPerTile(m, k_->VectorRegs, nv);
    const int64_t mainRows = m / mr * mr;
    // Threads split the row tiles (CompileOptions::parallel); the tiles are
    // the same for any thread count.
    k_->loopShared(
        0, mainRows, mr, [&](Value *row0) { microKernel(row0, mr); }, "row");
    if (m % mr)
      k_->onLastShare([&] { microKernel(k_->idx(mainRows), m % mr); });
  };
  SmallVector<unsigned, 8> lanes(width, vw);
  {
    KernelBuilder::Share inner = k_->share;
    k_->share = share;
    auto tile = [&](Value *c0) {
      k_->share = inner;
      columnTile(c0, lanes);
      k_->share = share;
    };
    if (splitColumns)
      k_->loopShared(0, fullTiles * tileColumns, tileColumns, tile, "ct");
    else
      k_->loop(0, fullTiles * tileColumns, tileColumns, tile, "ct");
  }
  lanes.clear();
  for (int64_t c = fullTiles * tileColumns; c < cols; c += vw)
    lanes.push_back(static_cast<unsigned>(std::min<int64_t>(vw, cols - c)));
  if (!lanes.empty()) {
    if (splitColumns)
      k_->onLastShare([&] { columnTile(k_->idx(fullTiles * tileColumns), lanes); });
    else
      columnTile(k_->idx(fullTiles * tileColumns), lanes);
  }
  k_->share = share;
}

} // namespace mlpc::codegen
