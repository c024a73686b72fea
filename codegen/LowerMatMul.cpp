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
//                            (VW x VW blocks through registers, see transposeInto,
//                            LowerMatMulTranspose.cpp)
//   TT  both of the above    (dA = dOut @ B^T)
// The transpose costs K*N moves (KernelBuilder::transposeBlock: 32 shuffles
// and 48 blends per 16 x 16 block) and keeps every inner loop on contiguous
// vectors with no horizontal sums. In the makemore step on the Sapphire
// Rapids host, leaving the transposes out (wrong results, timing only) took
// 1.05 and 0.79 us off the dh and dembcat nodes ([200,27] and [30,200]),
// while a second, repeated transpose of the same operand added only ~0.3
// us: most of their cost there is the operand and the scratch not being in
// L1, not the shuffles (prefetching both whole first gained nothing).
//
// Loop nest, outermost first: chunks of K (one unless a column tile's panel
// of op(B) passes 32 KB and N has a full column tile; see kPanelBlockBytes),
// column tiles, row tiles, k. Each finished accumulator vector goes to an
// epilogue: a plain store, or the consumer's fused elementwise expression
// (see LowerElementwise.cpp); between K chunks the accumulators go through
// partial sums in the node's scratch.
//
// A TN product with a narrow N (BufferPlan.h: MatMulKernel::Transposed)
// runs this kernel on C^T = op(B)^T op(A)^T instead, then transposes into
// the epilogue (LowerMatMulTransposed.cpp). A TN product over a batch that
// splits into row blocks (weight gradients at batch 128 and more) adds its
// blocks' sums in block order (LowerMatMulBatchBlocks.cpp).
//
// bench/matmul_bench.cpp times these kernels against oneDNN's dnnl_sgemm in
// one process (the comparison the README's performance table reports).
#include "codegen/Lowering.h"

using namespace llvm;

namespace mlpc::codegen {
namespace {

// Element (r, c) of a matrix operand is at r * rowStride + c * colStride.
struct MatView {
  Buf buf;
  int64_t rowStride, colStride;
};

// How many rows ahead the row tile that packs a panel of op(B) prefetches
// the rows it will copy. Those rows are a multiple of 1 KB apart (the reason
// for packing), each row's part a new page, where the hardware prefetchers
// do not follow; and in parallel code the operand's rows were often written
// by the other core (BatchNormGrad at B = 256 splits row blocks, the weight
// gradient dW1 = emb^T @ dhprebn splits columns). dW1 at H = 1024 / B = 256
// (per-node profile, 3 alternated rounds): one thread 103.8 / 109.3 / 113.6
// -> 102.7 / 100.1 / 105.7 us, two threads 117 / 120 -> 96 / 100 us per
// thread (32 rows ahead: no better).
constexpr int64_t kPackPrefetchRows = 16;

// Independent accumulator chains a tile needs to keep the FMA pipes busy:
// 2 pipes x 4 cycles of latency = 8 on current x86 cores, plus slack for the
// broadcast loads between them.
constexpr int64_t kMinAccumulators = 10;

// K blocking (emitMatMul): a column tile's panel of op(B) (K rows of it)
// larger than kPanelBlockBytes is cut into chunks of at most
// kPanelChunkBytes, which stay in a 48 KB L1 data cache (Intel since Ice
// Lake, AMD Zen 5; Zen 4 has 32 KB) beside the chunk of op(A). Measured with
// bench/matmul_bench.cpp: 16 KB chunks beat 32 KB ones (30x200x256:TN 1.04x
// against 0.91x dnnl_sgemm); panels up to 32 KB gain nothing from blocking
// (makemore's logits and dembcat at B=32, 25.6 KB), which would only add a
// second copy of their loop nest to compile (+10 ms on the step).
constexpr int64_t kPanelBlockBytes = 32 * 1024, kPanelChunkBytes = 16 * 1024;

// Rows per tile: as many as the registers allow, preferring a divisor of M
// (no remainder tile: one copy of the micro-kernel less to compile) if one
// is at least half that and still has kMinAccumulators accumulators. With 16
// registers (AVX2) and 2 vectors per row, M = 32 or 256 would otherwise get
// 4-row tiles: 8 accumulators, which left the pipes idle (matmul_bench
// --cpu x86-64-v3 on the Sapphire Rapids host, against dnnl_sgemm limited to
// AVX2: 0.91-1.14x with 4 rows, 0.98-1.25x with 6).
// `parallel`: threads split the row tiles (see below).
int64_t rowsPerTile(int64_t m, int64_t depth, unsigned registers, size_t vectors, bool parallel) {
  int64_t maxRows =
      std::clamp<int64_t>((int64_t(registers) - 1 - int64_t(vectors)) / int64_t(vectors), 1, 12);
  maxRows = std::min(maxRows, std::max<int64_t>(m, 1));
  // A one-vector tile issues one broadcast per FMA: the broadcasts bound it,
  // not the FMA latency, so fewer rows cost nothing there.
  const int64_t minRows =
      vectors == 1 ? 1 : (kMinAccumulators + int64_t(vectors) - 1) / int64_t(vectors);
  // Tiles of one or two vectors (N below 2 VW: the logits, [B, 27]) over
  // many rows take all the rows the registers allow, remainder tile or not:
  // at M = 256, 12 rows x 2 vectors (24 accumulators) against the divisor's
  // 8 x 2, in one process: 256x27x1024:NN 1.06x, 256x30x1024:NT 1.06x,
  // 256x27x512:NN 1.08x, 256x16x1024:NN 1.06x, 256x30x200:NT 0.99x; 16
  // rows (spills) 0.77-0.84x. With 4 vectors, 6 rows instead of 4 gained
  // nothing (256x1024x30:NN 0.89x, 256x512x27:NT 1.03x). Only with K >=
  // 128: makemore's dW2 at B = 32 (200x27x32:TN) gained nothing (0.99x)
  // from the remainder tile 200 = 16 x 12 + 8, which added 5% to the
  // step's machine code.
  // Not in parallel code: there a tile height that divides M keeps the
  // threads' cuts on the rows where the other nodes over the batch cut them
  // (12-row tiles cut 256 rows at 132, and each thread then read 4 rows of
  // h and wrote 4 rows of logits that the other thread wrote or reads).
  // The row grouping does not change a product's additions (no K chunks
  // below one full column tile): the same bits as the serial code's.
  if (vectors <= 2 && m >= 64 && depth >= 128 && !parallel)
    return maxRows;
  for (int64_t r = maxRows; r * 2 >= maxRows && r >= minRows; --r)
    if (m % r == 0)
      return r;
  return maxRows;
}

} // namespace

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

namespace {

// The register-blocked loop nest of one matmul (see the file header): chunks
// of K (outermost; usually one), column tiles, row tiles, the k loop.
struct TiledMatMul {
  KernelBuilder &k;
  IRBuilder<> &b;
  MatView a, bm;
  Buf partial; // [M, N] partial sums between K chunks
  int64_t m, cols, depth;
  function_ref<void(Value *row, Value *column, unsigned lanes, Value *acc)> epilogue;
  // With a packed panel (panel.ptr set): each column tile copies its rows
  // of op(B) for the chunk into this frame buffer, [trips, panelStride]
  // (see columnTile); microKernel(packing) reads op(B) and writes the panel.
  Buf panel{};
  int64_t panelStride = 0;
  // K chunks as batch blocks (MatMulArgs::blockRows, LowerMatMulBatchBlocks.cpp):
  // each chunk's sums start at zero; block 2g's are stored in area g of the
  // partial sums, block 2g + 1's added to them (P_2g + P_2g+1); the last
  // block's pair sum is added to the earlier pairs' ((S_0 + S_1) + ...).
  bool addBlocks = false;
  int64_t blockRows = 0;
  // Column tiles (planColumns): fullTiles of `width` vectors (tileColumns
  // columns, fullLanes), then restLanes for the rest of N (maybe none);
  // splitColumns: threads split the full column tiles instead of the rows.
  int64_t width = 0, fullTiles = 0, tileColumns = 0, fullTileRows = 0;
  bool splitColumns = false;
  SmallVector<unsigned, 8> fullLanes{}, restLanes{};
  KernelBuilder::Share share{}; // the node's work sharing, as run() found it

  // Chooses the column tiles and whether threads split them (or the rows).
  void planColumns() {
    const unsigned vw = k.VW;
    // Column tiles of `width` vectors, all alike, in a run-time loop, then at
    // most one narrower tile for the rest of N (its last vector masked when
    // N % VW != 0): two copies of the micro-kernel and its epilogue whatever
    // N is. (One tile per 5 vectors, as before, gave 3 copies at N = 200 and
    // 13 at N = 1024; machine-code generation time grows with the copies.)
    // 4 vectors x up to 6 rows (24 accumulators + 4 B vectors + 1 broadcast
    // of 32 registers) load one vector per 2-3 FMAs, within Zen 5's two
    // 512-bit loads per cycle.
    width = k.VectorRegs >= 32 ? 4 : 2;
    fullTiles = cols / vw / width;
    tileColumns = width * vw;
    // Parallel code splits the dimension with more tiles: the row tiles, or
    // the full column tiles when M is small (a weight gradient emb^T @ dhpre,
    // [30, 1024], whose batch is not cut in row blocks; those that are run
    // this kernel per pair of blocks, LowerMatMulBatchBlocks.cpp, the threads
    // splitting the pairs), so that each thread reads only its part of the
    // wide operand. Fixed by the shapes, not by the thread count.
    fullTileRows = rowsPerTile(m, depth, k.VectorRegs, width, k.share.index != nullptr);
    splitColumns = fullTiles > (m + fullTileRows - 1) / fullTileRows;
    fullLanes.assign(width, vw);
    for (int64_t c = fullTiles * tileColumns; c < cols; c += vw)
      restLanes.push_back(static_cast<unsigned>(std::min<int64_t>(vw, cols - c)));
  }

  // The rows of a K chunk (depth: no chunks); sets up the partial sums
  // (from `partialAt` floats into `scratch`) where there are chunks.
  int64_t planChunks(int64_t blockRowsArg, int64_t partialAt, const Buf &scratch) {
    const unsigned vw = k.VW;
    // K blocking: when a panel of op(B) (K rows of a column tile) outgrows
    // kPanelBlockBytes, K runs in chunks of kc rows, outermost, so that a chunk's
    // panel stays in L1 while the row tiles reuse it and the chunk of op(A)
    // stays in L1 across the column tiles; the accumulators pass through the
    // node's partial-sum scratch ([M, N] floats, BufferPlan:
    // matMulPartialOffset) between chunks. One runtime loop over the chunks but
    // the last, which ends in the epilogue: two copies of the loop nest
    // whatever K is. The weight gradient dW1 = emb^T @ dhprebn at batch 256
    // (30x200x256:TN, 64 KB panels re-read from L2 by each of its 5 row
    // tiles) went from 0.87-0.93x dnnl_sgemm to 1.04x (bench/matmul_bench.cpp).
    // Not when N is narrower than one full column tile (logits = h @ W2 at
    // H = 1024, [256, 27]): there the chunks cut each row of op(A) into short
    // runs (512 bytes at kc = 128) that the hardware prefetchers barely start
    // on, and the whole panel (K x 2 vectors) is re-read from L2 at little
    // cost. Unblocked against blocked, in one process (matmul_bench with both
    // compiled): 256x27x1024:NN 1.05x with operands in L2 (--evict-kb 256),
    // 1.23x from L3 (--evict-kb 16384; the step's case at H = 1024, whose
    // working set outgrows L2); 256x30x1024:NT 1.05x / 1.12x; 256x27x2048:NN
    // 1.23x; 128x48x1024:NN 1.02x; K = 512: 1.00x.
    const int64_t panelBytes = std::min<int64_t>(width, (cols + vw - 1) / vw) * vw * kElemBytes;
    int64_t kc = depth;
    if (blockRowsArg > 0) {
      kc = blockRowsArg;
      addBlocks = true;
      blockRows = blockRowsArg;
      partial.ptr = b.CreateInBoundsGEP(k.F32, scratch.ptr, k.idx(partialAt));
    } else if (partialAt >= 0 && fullTiles > 0 && depth * panelBytes > kPanelBlockBytes) {
      const int64_t chunks = (depth * panelBytes + kPanelChunkBytes - 1) / kPanelChunkBytes;
      kc = (depth + chunks - 1) / chunks;
      partial.ptr = b.CreateInBoundsGEP(k.F32, scratch.ptr, k.idx(partialAt));
    }
    return kc;
  }

  // Decides whether column tiles pack their panel of op(B) (`panel`, kc rows).
  void planPanel(bool transB, int64_t kc) {
    // op(B) rows a multiple of 256 floats (1 KB) apart all start in the
    // same few L1 sets, so a column tile's panel (K rows x 4 lines) evicts
    // itself: 256x1024x30 ran at 0.64x dnnl_sgemm (1.03x packed), 32x1024x30
    // at 0.77x (0.95-0.99x). With several row tiles to reuse it, each column
    // tile first copies its panel into a contiguous frame buffer (per thread:
    // every thread copies the panel it reads). At 128 floats (N = 128, as in
    // wavenet) the copy cost more than the conflicts (0.85-0.93x against
    // 0.95-1.03x unpacked).
    if (!transB && bm.rowStride % 256 == 0 && m > fullTileRows) {
      panelStride = width * k.VW;
      panel = Buf{k.entryAlloca(k.F32, static_cast<unsigned>(kc * panelStride)), k.F32};
    }
  }

  // The whole loop nest: chunks of kc rows of K, each over allColumns.
  // Two threads with equal parts split every column tile's rows (and so
  // C's and a plain A's elements) at the middle row: the row tiles are
  // shared, divide M, and come in an even count in every column tile.
  bool rowsAtMiddle() const {
    if (!k.share.index || splitColumns)
      return false;
    auto halves = [&](size_t vectors) {
      const int64_t mr = rowsPerTile(m, depth, k.VectorRegs, vectors, /*parallel=*/true);
      return m % mr == 0 && (m / mr) % 2 == 0;
    };
    return (fullTiles == 0 || halves(width)) && (restLanes.empty() || halves(restLanes.size()));
  }

  void run(int64_t kc) {
    share = k.share;
    if (kc == depth) {
      allColumns(nullptr, depth, nullptr, /*last=*/true);
      return;
    }
    const int64_t lastChunk = (depth - 1) / kc * kc; // first k of the last chunk
    k.loop(
        0, lastChunk, kc,
        [&](Value *k0) { allColumns(k0, kc, b.CreateICmpEQ(k0, k.idx(0)), /*last=*/false); }, "kc");
    allColumns(k.idx(lastChunk), depth - lastChunk, nullptr, /*last=*/true);
  }

  // Every column tile for k in [k0, k0 + trips) (see microKernel).
  void allColumns(Value *k0, int64_t trips, Value *first, bool last) {
    // Split columns: each thread runs whole column tiles (their row loops unshared).
    const KernelBuilder::Share rows = splitColumns ? KernelBuilder::Share{} : share;
    auto tile = [&](Value *c0) {
      k.share = rows;
      columnTile(c0, fullLanes, k0, trips, first, last);
      k.share = share;
    };
    if (splitColumns)
      k.loopShared(0, fullTiles * tileColumns, tileColumns, tile, "ct");
    else
      k.loop(0, fullTiles * tileColumns, tileColumns, tile, "ct");
    if (restLanes.empty())
      return;
    Value *c0 = k.idx(fullTiles * tileColumns);
    if (splitColumns)
      k.onLastShare([&] {
        k.share = rows;
        columnTile(c0, restLanes, k0, trips, first, last);
        k.share = share;
      });
    else
      columnTile(c0, restLanes, k0, trips, first, last);
  }

  // One tile: rows x lanes.size() vectors at (row0, firstColumn), over
  // k in [k0, k0 + trips) (k0 null: [0, trips)). The accumulators start at
  // zero (k0 null), at the stored partial sums, or at zero when the runtime
  // flag `first` is set; they end in the epilogue (`last`) or the partial sums.
  void microKernel(Value *row0, int64_t rows, Value *firstColumn, ArrayRef<unsigned> lanes,
                   Value *k0, int64_t trips, Value *first, bool last, bool packing = false) {
    const size_t nv = lanes.size();
    const unsigned vw = k.VW;
    auto partialIndex = [&](int64_t r, size_t q) {
      return k.add(k.mul(k.add(row0, r), cols), k.add(firstColumn, int64_t(q) * vw));
    };
    Value *zero = Constant::getNullValue(k.VecTy);
    Values init;
    for (int64_t r = 0; r < rows; ++r)
      for (size_t q = 0; q < nv; ++q) {
        Value *stored =
            k0 && !addBlocks ? k.loadVec(partial, partialIndex(r, q), lanes[q]) : nullptr;
        init.push_back(!stored ? zero : first ? b.CreateSelect(first, zero, stored) : stored);
      }
    Values acc = k.loopCarried(
        0, trips, 1, init,
        [&](Value *kk, ArrayRef<Value *> acc) {
          Values bv;
          Value *panelRow = panel.ptr ? k.mul(kk, panelStride) : nullptr;
          if (k0)
            kk = b.CreateAdd(k0, kk);
          const bool fromPanel = panel.ptr && !packing;
          Value *bRow = fromPanel ? panelRow : k.add(k.mul(kk, bm.rowStride), firstColumn);
          for (size_t q = 0; q < nv; ++q) {
            bv.push_back(
                k.loadVec(fromPanel ? panel : bm.buf, k.add(bRow, int64_t(q) * vw), lanes[q]));
            if (packing) // the first row tile copies the panel as it goes
              k.storeVec(panel, k.add(panelRow, int64_t(q) * vw), bv.back(), lanes[q]);
            if (packing) // the same vector kPackPrefetchRows rows on (see there)
              k.prefetch(bm.buf, k.add(bRow, int64_t(q) * vw + kPackPrefetchRows * bm.rowStride));
          }
          Values next(acc.begin(), acc.end());
          for (int64_t r = 0; r < rows; ++r) {
            Value *aIndex = k.add(k.mul(k.add(row0, r), a.rowStride), k.mul(kk, a.colStride));
            Value *av = k.splat(k.load(a.buf, aIndex));
            for (size_t q = 0; q < nv; ++q)
              next[r * nv + q] = k.fmuladd(av, bv[q], acc[r * nv + q]);
          }
          return next;
        },
        "k");
    // Row by row, or vector by vector when the last one is masked: an
    // epilogue that updates its buffer in place (the fused SGD update W2 -=
    // lr * dW2, [200, 27]) loads row r + 1 right after storing row r's
    // masked tail, whose 64-byte footprint overlaps it (27 floats = 108-byte
    // rows), and x86 cores hold such a load until the masked store has
    // written the cache (no store forwarding from masked stores). Storing
    // every row's full vectors first, then every row's tail, keeps the
    // tails 108 bytes apart. makemore's dW2 node (200x27x32:TN) went from
    // 4.2 to 2.9 us in the step on the Sapphire Rapids host (per-node
    // profile, minimum of 5 interleaved rounds); alone, with its result in
    // a separate buffer, it took 2.6-2.8 us either way.
    const bool tailsLast = lanes.back() < vw;
    Value *area = nullptr; // addBlocks: this block's pair's partial sums
    if (addBlocks && k0)
      addBlockSums(acc, rows, lanes, partialIndex, k0, last, area);
    for (size_t i = 0; i < size_t(rows) * nv; ++i) {
      const int64_t r = tailsLast ? int64_t(i) % rows : int64_t(i / nv);
      const size_t q = tailsLast ? i / size_t(rows) : i % nv;
      if (last)
        epilogue(k.add(row0, r), k.add(firstColumn, int64_t(q) * vw), lanes[q], acc[r * nv + q]);
      else
        k.storeVec(partial, area ? k.add(area, partialIndex(r, q)) : partialIndex(r, q),
                   acc[r * nv + q], lanes[q]);
    }
  }

  // addBlocks, for the block from k0: the odd block of a pair adds the
  // even one's stored sums; the last block also adds the earlier pairs'.
  void addBlockSums(Values &acc, int64_t rows, ArrayRef<unsigned> lanes,
                    function_ref<Value *(int64_t, size_t)> partialIndex, Value *k0, bool last,
                    Value *&area) {
    const size_t nv = lanes.size();
    const int64_t areaFloats = m * cols, pairs = depth / (2 * blockRows);
    Value *block = b.CreateUDiv(k0, k.idx(blockRows));
    Value *odd = b.CreateTrunc(b.CreateAnd(block, k.idx(1)), b.getInt1Ty());
    area = k.mul(b.CreateLShr(block, k.idx(1)), areaFloats);
    for (int64_t r = 0; r < rows; ++r)
      for (size_t q = 0; q < nv; ++q) {
        Value *&sum = acc[r * nv + q];
        Value *at = partialIndex(r, q);
        Value *pair = b.CreateFAdd(k.loadVec(partial, k.add(area, at), lanes[q]), sum);
        sum = b.CreateSelect(odd, pair, sum);
        if (!last || pairs < 2)
          continue;
        Value *before = k.loadVec(partial, at, lanes[q]);
        for (int64_t g = 1; g + 1 < pairs; ++g)
          before = b.CreateFAdd(before, k.loadVec(partial, k.add(at, g * areaFloats), lanes[q]));
        sum = b.CreateFAdd(before, sum);
      }
  }

  // Every row tile of one column tile. Threads split the row tiles
  // (CompileOptions::parallel) unless the caller cleared k.share; the tiles
  // are the same for any thread count, and a tile's partial sums are read
  // back by the thread that wrote them (the same split in every chunk).
  void columnTile(Value *firstColumn, ArrayRef<unsigned> lanes, Value *k0, int64_t trips,
                  Value *first, bool last) {
    const int64_t mr = rowsPerTile(m, depth, k.VectorRegs, lanes.size(), k.share.index != nullptr);
    const int64_t mainRows = m / mr * mr;
    // The panel copy: on one thread (or threads splitting column tiles),
    // the first row tile makes it while it computes, instead of a loop of
    // its own before the row tiles, whose stores the FMAs then hid: in one
    // process, 30x512x256:TN 1.13x, 30x1024x256:TN 1.08x, the transposed
    // dW2 1024x27x256:TN / 512x27x256:TN 1.07x / 1.09x, 256x1024x30:NN
    // 1.00x (256 rows: the copy was already spread over 64 row tiles).
    // Threads splitting the row tiles each copy the panel first.
    if (panel.ptr && !k.share.index) {
      microKernel(k.idx(0), mr, firstColumn, lanes, k0, trips, first, last, /*packing=*/true);
      k.loop(
          mr, mainRows, mr,
          [&](Value *row0) { microKernel(row0, mr, firstColumn, lanes, k0, trips, first, last); },
          "row");
      if (m % mr)
        microKernel(k.idx(mainRows), m % mr, firstColumn, lanes, k0, trips, first, last);
      return;
    }
    if (panel.ptr)
      k.loop(
          0, trips, 1,
          [&](Value *kk) {
            Value *row = k.add(k.mul(k0 ? b.CreateAdd(k0, kk) : kk, bm.rowStride), firstColumn);
            for (size_t q = 0; q < lanes.size(); ++q)
              k.storeVec(panel, k.add(k.mul(kk, panelStride), int64_t(q) * k.VW),
                         k.loadVec(bm.buf, k.add(row, int64_t(q) * k.VW), lanes[q]), lanes[q]);
          },
          "pack");
    k.loopShared(
        0, mainRows, mr,
        [&](Value *row0) { microKernel(row0, mr, firstColumn, lanes, k0, trips, first, last); },
        "row");
    if (m % mr)
      k.onLastShare([&] {
        microKernel(k.idx(mainRows), m % mr, firstColumn, lanes, k0, trips, first, last);
      });
  }
};

} // namespace

bool GraphLowering::emitMatMul(ValueId v, MatMulEpilogue epilogue) {
  const Node &n = g_[v];
  if (matMulBatchBlocks(g_, n) > 1) {
    emitBatchBlockedMatMul(v, epilogue);
    return false;
  }
  if (matMulKernel(g_, n) == MatMulKernel::Transposed) {
    emitTransposedMatMul(v, epilogue);
    return false;
  }
  const Shape &as = g_[n.operands[0]].type.shape;
  const bool middle =
      emitTiledMatMul(MatMulArgs{buf(n.operands[0]), buf(n.operands[1]), n.type.shape[0],
                                 n.type.shape[1], n.transA ? as[0] : as[1], n.transA, n.transB,
                                 scratch(v), matMulPartialOffset(g_, n, plan_.parallel)},
                      epilogue);
  if (middle) { // C's rows, and A's where A is stored [M, K]
    splitsAtMiddle(v);
    if (!n.transA)
      splitsAtMiddle(n.operands[0]);
  }
  return middle;
}

bool GraphLowering::emitTiledMatMul(const MatMulArgs &args, MatMulEpilogue epilogue) {
  const int64_t m = args.m, cols = args.n, k = args.k;
  TiledMatMul mm{*k_,
                 b_,
                 MatView{args.a, args.transA ? 1 : k, args.transA ? m : 1},
                 MatView{args.b, cols, 1},
                 args.scratch,
                 m,
                 cols,
                 k,
                 epilogue};
  if (args.transB) {
    const int64_t stride = transposedRowStride(cols);
    // Serial code of a parallel plan (splitGraph's trial lowering) has no
    // copy in the node's scratch: it uses the first thread slot.
    mm.bm = MatView{plan_.parallel ? threadSlots_ : args.scratch, stride, 1};
    if (k_->share.index)
      transposeOwnOrShared(args, stride, mm.bm.buf);
    else
      transposeInto(args.b, cols, k, mm.bm.buf, stride);
  }
  mm.planColumns();
  const int64_t kc = mm.planChunks(args.blockRows, args.partialAt, args.scratch);
  mm.planPanel(args.transB, kc);
  const bool middle = mm.rowsAtMiddle();
  mm.run(kc);
  return middle;
}

} // namespace mlpc::codegen
