// Buffer planning: where every value of a graph lives while the compiled
// function runs, and when outputs are copied / written back.
//
// Decided before any IR is emitted, from the graph alone:
//   * which elementwise nodes are fused into their single consumer (Inlined:
//     they get no buffer and no loop of their own), and which matmuls feed
//     their single elementwise consumer from registers (Epilogue),
//   * which values alias another one (Reshape: same bytes, new shape),
//   * which values are computed straight into an output binding,
//   * a workspace offset for every other value, reusing the bytes of values
//     that are dead (liveness from the topological order, counting the reads
//     that fused expressions perform at their consumer's position),
//   * the position (node index) after which each output is copied, each SGD
//     update (a Gradient output) and each WriteBack runs: after the value
//     exists and after the last read of the leaf it overwrites.
#pragma once

#include "ir/Graph.h"

#include <llvm/Support/Error.h>

#include <array>
#include <cstdint>
#include <vector>

namespace mlpc::codegen {

// The most f32 lanes of a kernel vector (512 bits).
constexpr int64_t kMaxVectorLanes = 16;
constexpr int64_t roundUpTo(int64_t n, int64_t multiple) {
  return (n + multiple - 1) / multiple * multiple;
}

enum class Storage {
  Leaf,      // a bindings-array pointer (Input / Param / State)
  Const,     // a constant global in the module
  Workspace, // [offset, offset + bytes) of the workspace
  Output,    // computed directly into an output binding (outputSlot)
  Alias,     // Reshape: the bytes of `root`
  Inlined,   // fused into its consumer's loop, never stored
  Epilogue,  // a MatMul whose result tiles feed its elementwise consumer's
             // expression directly (the consumer's kernel runs the matmul)
  LeafWrite, // a WriteBack output's value, computed straight into the leaf
             // it replaces (writeTarget): its loop is the write-back
};

// How an output is produced (from its OutputRole and CompileOptions::sgdUpdate):
// a plain copy; P -= lr * value for a Gradient of P under SGD; a store into
// the leaf for a WriteBack.
enum class OutputKind { Plain, SgdUpdate, WriteBack };

struct OutputPlan {
  OutputKind kind = OutputKind::Plain;
  ValueId value = 0;
  ValueId target = 0;    // SgdUpdate / WriteBack: the leaf overwritten
  bool direct = false;   // the value was computed straight into this binding
  bool optional = false; // the binding may be null
  size_t position = 0;   // runs after node `position` has been lowered
  // SgdUpdate of a matmul's result: done by the matmul kernel as each tile
  // is finished (P -= lr * tile, and the tile stored to the binding if it is
  // non-null), instead of a loop that reloads the gradient afterwards.
  bool inKernel = false;
  // WriteBack whose value's loop stores into the leaf itself (Storage::LeafWrite):
  // no buffer for the value and no copy afterwards.
  bool inPlace = false;
};

// A byte range of the workspace owned by one value (or one node's scratch)
// for part of the function; used for alias-scope metadata.
struct Region {
  int64_t begin = 0, end = 0;
};

// Batch statistics (per-column mean and 1/sqrt(var + eps)) of one BatchNorm
// input: computed once, by the first of the BatchNorm / BatchNormXhat /
// BatchNormGrad nodes that normalise that input with that eps (the leader),
// and read by all of them (see LowerFused.cpp). A BatchNormInfer has a group
// of its own whose second half holds gain / sqrt(running_var + eps).
// The batch statistics and BatchNormGrad add their column sums by blocks of
// rows, a fixed number of them (LowerFused.cpp), so that threads can split
// the blocks (and a block's columns where a thread's cut falls inside it:
// KernelBuilder::blockColumnSums) and every thread count gives the same bits.
constexpr int64_t kStatsBlocks = 4;
// The row blocks for `rows` rows: kStatsBlocks when they divide the rows
// into blocks of at least 16, else one block (then threads split columns).
// Small batches keep one block: their steps are too small to gain from
// threads (runtime/ThreadTeam.h: autoThreads), and the nested block loops
// would cost them compile time (makemore at B = 32: +5 ms).
inline int64_t statsRowBlocks(int64_t rows) {
  return rows % kStatsBlocks == 0 && rows >= 16 * kStatsBlocks ? kStatsBlocks : 1;
}

// Floats from one row of per-column values (means, 1/std, a block's partial
// sums) to the next in a StatsPlan's region and in BatchNormGrad's scratch:
// H rounded up to a cache line, so that every column vector the kernels load
// and store there starts on a 64-byte boundary whatever H is. With rows of
// H = 200 floats (800 bytes) every other row of those sums straddled two
// lines (makemore H = 200 / B = 256 on Zen 5, per-node profile: statistics
// 2.86 -> 2.09 us, BatchNormGrad 8.73 -> 7.52, tanh(BatchNorm) 9.14 -> 8.65;
// the step 116.5 -> 115.3 us, 4 alternated rounds; the same bits).
constexpr int64_t statsColumnStride(int64_t h) {
  return roundUpTo(h, kMaxVectorLanes);
}

// Floats of a StatsPlan's region, for its leader node x[N, H]: H means, H
// 1/std (BatchNormInfer: the scale), then, where the statistics go by row
// blocks, two partial sums per block and column (LowerFused.cpp,
// emitBatchStatsByRows: each block's running mean and m2); each of these
// rows statsColumnStride(H) floats apart.
inline int64_t statsRegionFloats(const Node &leader) {
  const int64_t blocks = leader.op == Op::BatchNormInfer ? 1 : statsRowBlocks(leader.type.shape[0]);
  return (2 + (blocks > 1 ? 2 * blocks : 0)) * statsColumnStride(leader.type.shape[1]);
}

struct StatsPlan {
  ValueId leader = 0;   // its position runs the statistics kernel
  int64_t mean = -1;    // a later mean(x, 0) node the kernel also writes, or -1
  int64_t squares = -1; // a later sum((x - mean(x, 0))^2, 0) node it writes, or -1
  int64_t offset = 0;   // workspace bytes of its region (statsRegionFloats)
  int region = -1;
};

struct BufferPlan {
  std::vector<Storage> storage;       // per value
  std::vector<ValueId> root;          // the value owning the bytes (itself unless Alias)
  std::vector<int64_t> offset;        // Workspace roots: byte offset
  std::vector<int> outputSlot;        // Output roots: index into Graph::outputs
  std::vector<int64_t> writeTarget;   // LeafWrite roots: the leaf they overwrite
  std::vector<int> region;            // Workspace roots: index into regions, else -1
  std::vector<int64_t> scratchOffset; // per node: offset of its scratch bytes, or -1
  std::vector<int> scratchRegion;     // per node: region of its scratch, or -1
  std::vector<Region> regions;
  std::vector<OutputPlan> outputs; // parallel to Graph::outputs
  std::vector<int> statsGroup;     // per node: index into stats, or -1
  std::vector<StatsPlan> stats;
  // Column sums that a BatchNormGrad kernel computes anyway, when the graph
  // also asks for them: sum(dout, 0) and sum(dout * xhat, 0) (the BatchNorm
  // bias and gain gradients) and sum(dx, 0) (the bias gradient of the layer
  // below). Per BatchNormGrad node the Sum nodes its kernel fills, or -1.
  std::vector<std::array<int64_t, 3>> gradSums;
  // Per CrossEntropy node: the CrossEntropyGrad of the same logits and labels
  // (with a constant dloss) that its kernel also writes, or -1.
  std::vector<int64_t> lossGrad;
  // Per node: the node whose kernel writes its value (a BatchNormGrad for
  // those sums; a statistics leader for mean(x, 0)), or -1. Its buffer then
  // exists from that node on and it emits no code of its own.
  std::vector<int64_t> filledBy;
  // Parallel plans: the threads' own scratch, kTransposeSlots slots of
  // threadSlotBytes from threadSlotsOffset (one region), slot t read and
  // written by thread t only: a transB matmul's transposed operand
  // (LowerMatMulTranspose.cpp). In a node's scratch, which nodes share, a
  // thread's transpose landed on bytes the other thread had read in another
  // node (mlpc bench --line-census). -1 / 0 without such matmuls.
  int64_t threadSlotsOffset = -1, threadSlotBytes = 0;
  int threadSlotsRegion = -1;
  bool parallel = false; // planned for parallel code (planBuffers)
  int64_t workspaceBytes = 0;
};

// Element size in bytes of a value (f32 and i32 are both 4).
constexpr int64_t kElemBytes = 4;
// Every workspace buffer starts on a cache line, so full-vector accesses never split one.
constexpr int64_t kBufferAlign = 64;

// A step of planBuffers (KernelFills.cpp): marks the values that other
// kernels compute anyway (filledBy, gradSums, lossGrad, StatsPlan::mean and
// squares), given storage, roots and stats groups.
void planKernelFills(const Graph &g, BufferPlan &plan);

// Temporary bytes a node's kernel needs beyond its result: a transB matmul's
// transposed right operand, then (K >= kMatMulPartialMinK) room for the
// partial sums of a K-blocked matmul, [M, N] floats at matMulPartialOffset
// (see LowerMatMul.cpp). Parallel code's transposes go to the threads' own
// slots instead (BufferPlan::threadSlotsOffset).
int64_t scratchBytes(const Graph &g, const Node &n, bool parallel);
constexpr int64_t kMatMulPartialMinK = 128;
// Row length, in floats, of a ScatterAdd's padded sums in its scratch: the
// widest vector (LowerIndex.cpp).
constexpr int64_t kScatterRowPad = kMaxVectorLanes;
// The widest vector of a ScatterAdd's row updates (LowerIndex.cpp says why):
// rows of a multiple of it need no padded copy.
constexpr unsigned kScatterLanes = 8;
// A ScatterAdd over rows that kStatsBlocks blocks of at least
// kScatterBlockMinRows divide adds each block's rows into a table of its
// own, then the tables in block order (LowerIndex.cpp): threads split the
// blocks. Fewer rows (makemore's 96 at batch 32) keep one table, and so do
// tables of more (padded) floats than a block's rows of the gradient (a
// vocabulary of thousands of rows): zeroing and adding four of them would
// cost more than the scatter itself, and their scratch would be four times
// the table.
constexpr int64_t kScatterBlockMinRows = 64;
inline int64_t scatterRowBlocks(const Graph &g, const Node &scatter) {
  const int64_t rows = g[scatter.operands[1]].type.numel(), width = scatter.type.shape[1];
  const int64_t tableFloats = scatter.type.shape[0] * roundUpTo(width, kScatterRowPad);
  const bool blocked = rows % kStatsBlocks == 0 && rows >= kStatsBlocks * kScatterBlockMinRows &&
                       tableFloats <= rows / kStatsBlocks * width;
  return blocked ? kStatsBlocks : 1;
}
// Row stride, in floats, of a transB matmul's transposed operand [K, N] in
// its scratch: N, plus one cache line when N is a multiple of 128 floats
// (512 bytes), where every row would start in the same few L1 sets
// (256x1024x27:NT ran at 0.62x dnnl_sgemm with a 4 KB stride).
int64_t transposedRowStride(int64_t n);
// Copies of a transB matmul's transposed operand [K, N], each
// transposeSlotFloats: serial code transposes into the node's scratch;
// parallel code into the threads' own slots (BufferPlan::threadSlotsOffset),
// with a team of up to kTransposeSlots threads each thread its own
// (LowerMatMulTranspose.cpp), larger teams sharing the first.
constexpr int64_t kTransposeSlots = 4;
int64_t transposeSlotFloats(int64_t k, int64_t n);
// One copy of node n's transposed operand, in floats (0 unless a transB matmul).
int64_t transposedOperandFloats(const Graph &g, const Node &n);
// Offset in floats of a matmul's partial-sum area within its scratch, or -1.
int64_t matMulPartialOffset(const Graph &g, const Node &n, bool parallel);

// Which loop nest runs a matmul C[M, N] = op(A)[M, K] @ op(B)[K, N]; a
// function of the shapes only (the scratch size depends on it):
//   Tiled       the register-blocked kernel, vectors along N (LowerMatMul.cpp)
//   Transposed  TN with a narrow N (at most kNarrowColumns), M >= 2N and
//               K >= kMatMulPartialMinK (dW2 = h^T @ dlogits at batch 256):
//               C^T = op(B)^T op(A)^T by the tiled kernel, vectors along M,
//               then transposed into the epilogue; scratch: C^T, [N, M]
//               floats (LowerMatMulTransposed.cpp)
enum class MatMulKernel { Tiled, Transposed };
constexpr int64_t kNarrowColumns = 32;
MatMulKernel matMulKernel(const Graph &g, const Node &n);
// The batch row blocks of a weight gradient (LowerMatMulBatchBlocks.cpp):
// for a TN matmul C = A^T @ B (A and B stored [K, *], K the batch rows) whose
// K statsRowBlocks cuts into blocks of at least kMatMulBatchBlockRows rows,
// that many blocks, a pair's partial sums in the node's scratch ([blocks /
// 2, M, N] floats, C^T's layout for MatMulKernel::Transposed); else 1.
constexpr int64_t kMatMulBatchBlockRows = 32;
int64_t matMulBatchBlocks(const Graph &g, const Node &n);

// True for the ops lowered by the fused elementwise engine (LowerElementwise.cpp).
bool isElementwiseLike(Op op);
// BatchNorm, BatchNormXhat, BatchNormInfer: given their StatsPlan,
// elementwise expressions that fuse like the ops above.
bool isBatchNormElementwise(Op op);
// True for the reductions that evaluate a fused elementwise operand tree in
// their own loop (Sum / Mean / Max of a rank-1 tensor or of a rank-2 tensor
// along one axis; see LowerReduce.cpp).
bool fusesOperandTree(const Graph &g, const Node &n);

llvm::Expected<BufferPlan> planBuffers(const Graph &g, bool sgdUpdate, bool parallel = false);

} // namespace mlpc::codegen
