// What each kernel needs besides its operands and result (BufferPlan.h):
// the kernel shape choices that size it (a transB matmul's transposed
// operand, the narrow TN product's C^T, the weight gradients' batch row
// blocks, K-chunk partial sums) and the scratch bytes of every node kind
// (row-block partial sums, scatter_add's padded rows, the loss blocks).
// planBuffers places the scratch (BufferPlan.cpp, step 5); the lowering
// reads the same functions, so the two cannot disagree.
#include "codegen/BufferPlan.h"

namespace mlpc::codegen {

int64_t transposedRowStride(int64_t n) {
  const int64_t lineFloats = kBufferAlign / kElemBytes;
  return n % 128 == 0 ? n + lineFloats : n;
}

int64_t transposedOperandFloats(const Graph &g, const Node &n) {
  if (n.op != Op::MatMul || !n.transB)
    return 0;
  const Shape &b = g[n.operands[1]].type.shape; // [N, K]
  return transposeSlotFloats(b[1], b[0]);
}

namespace {
// Floats of the transposed operand in the node's scratch: serial code's
// copy (parallel code's go to the threads' own slots).
int64_t transposedFloats(const Graph &g, const Node &n, bool parallel) {
  return parallel ? 0 : transposedOperandFloats(g, n);
}
} // namespace

int64_t transposeSlotFloats(int64_t k, int64_t n) {
  return roundUpTo(k * transposedRowStride(n), kBufferAlign / kElemBytes);
}

MatMulKernel matMulKernel(const Graph &g, const Node &n) {
  const Shape &a = g[n.operands[0]].type.shape;
  const int64_t m = n.type.shape[0], cols = n.type.shape[1], k = n.transA ? a[0] : a[1];
  return n.transA && !n.transB && cols <= kNarrowColumns && m >= 2 * cols && k >= kMatMulPartialMinK
             ? MatMulKernel::Transposed
             : MatMulKernel::Tiled;
}

int64_t matMulBatchBlocks(const Graph &g, const Node &n) {
  if (n.op != Op::MatMul || !n.transA || n.transB)
    return 1;
  const int64_t k = g[n.operands[0]].type.shape[0], blocks = statsRowBlocks(k);
  return blocks > 1 && k / blocks >= kMatMulBatchBlockRows ? blocks : 1;
}

int64_t matMulPartialOffset(const Graph &g, const Node &n, bool parallel) {
  if (n.op != Op::MatMul || matMulKernel(g, n) != MatMulKernel::Tiled ||
      matMulBatchBlocks(g, n) > 1)
    return -1;
  const Shape &a = g[n.operands[0]].type.shape;
  const int64_t k = n.transA ? a[0] : a[1];
  if (k < kMatMulPartialMinK)
    return -1;
  // After the transposed B, rounded up to a cache line.
  const int64_t lineFloats = kBufferAlign / kElemBytes;
  return roundUpTo(transposedFloats(g, n, parallel), lineFloats);
}

int64_t scratchBytes(const Graph &g, const Node &n, bool parallel) {
  // A Sum / Mean over the rows of [rows, inner] (LowerReduce.cpp): partial
  // sums per row block in parallel code.
  if (n.op == Op::Sum || n.op == Op::Mean) {
    AxisSplit s(g[n.operands[0]].type.shape, n.axis);
    if (s.outer == 1 && s.inner > 1 && statsRowBlocks(s.size) > 1)
      return statsRowBlocks(s.size) * s.inner * kElemBytes;
  }
  // ScatterAdd: by row blocks, a table per block; else, with rows of a
  // length that is not a multiple of the row updates' vector (kScatterLanes,
  // or fewer lanes on narrower targets, which divide it), one. Table rows
  // are padded to kScatterRowPad floats (LowerIndex.cpp).
  if (n.op == Op::ScatterAdd) {
    const int64_t blocks = scatterRowBlocks(g, n);
    if (blocks > 1 || n.type.shape[1] % kScatterLanes != 0)
      return blocks * n.type.shape[0] * roundUpTo(n.type.shape[1], kScatterRowPad) * kElemBytes;
  }
  // BatchNormGrad by row blocks (LowerBatchNormGrad.cpp, byRows): three
  // partial column sums per block.
  if (n.op == Op::BatchNormGrad && statsRowBlocks(n.type.shape[0]) > 1)
    return 3 * statsRowBlocks(n.type.shape[0]) * statsColumnStride(n.type.shape[1]) * kElemBytes;
  // CrossEntropy (and a CrossEntropyGrad with a kernel of its own): per row
  // its max and its sum of e, then in parallel code each block of VW rows'
  // loss vector (LowerCrossEntropy.cpp), VW lanes at most kMaxVectorLanes.
  if (n.op == Op::CrossEntropy || n.op == Op::CrossEntropyGrad)
    return 3 * roundUpTo(g[n.operands[0]].type.shape[0], kMaxVectorLanes) * kElemBytes;
  if (n.op != Op::MatMul)
    return 0;
  if (int64_t blocks = matMulBatchBlocks(g, n); blocks > 1)
    return blocks / 2 * n.type.numel() * kElemBytes; // a partial sum per pair of blocks
  if (matMulKernel(g, n) == MatMulKernel::Transposed)
    return n.type.numel() * kElemBytes; // C^T
  // MatMul{transB}: B is transposed into a contiguous [K, N] block first so
  // the kernel's vector loads run along N (see LowerMatMul.cpp).
  int64_t floats = transposedFloats(g, n, parallel);
  if (int64_t partial = matMulPartialOffset(g, n, parallel); partial >= 0)
    floats = partial + n.type.numel();
  return floats * kElemBytes;
}

} // namespace mlpc::codegen
