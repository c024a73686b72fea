// Elementwise ops and Broadcast, with fusion.
//
// A materialised elementwise node is the root of an expression tree whose
// inner nodes are the operands the planner marked Inlined (same shape, single
// use) and whose leaves are buffers or constants. The whole tree is evaluated
// in one loop nest over the root's shape, one vector of VW lanes at a time.
//
// Broadcasting is index arithmetic with constant strides: each leaf gets a
// stride per output axis (0 where it broadcasts). Adjacent axes that every
// leaf walks contiguously (or broadcasts across together) are merged, so
// [32,200] + [200] is a 32 x 200 nest and [32,200] * [32,200] one loop of 6400.
// After merging, the innermost axis has stride 1 or 0 for every leaf (numpy
// broadcasting of row-major tensors), so a leaf is either a vector load or a
// splat of one element (hoisted out of the loop by LICM).
//
// If the tree contains a matmul planned as an Epilogue (single use, same
// shape), there is no loop nest of its own: the matmul kernel runs and each
// accumulator vector goes through the tree before the one store, e.g.
// `x @ W + b` and `(dlogits @ W2^T) * (1 - h*h)` cost one pass, not two.
#include "codegen/ElementwiseEmit.h"
#include "codegen/Lowering.h"
#include "codegen/MathEmitter.h"

#include <cmath>
#include <map>
#include <optional>

using namespace llvm;

namespace mlpc::codegen {
namespace {

struct LoopDim {
  int64_t size;
  std::vector<int64_t> stride; // per leaf
};

// The loop nest over `shape` for leaves with these broadcast strides.
std::vector<LoopDim> loopDims(const Shape &shape,
                              const std::vector<std::vector<int64_t>> &leafStrides) {
  // Loop dimensions: drop size-1 axes, merge axes contiguous for every leaf.
  std::vector<LoopDim> dims;
  for (size_t axis = 0; axis < shape.size(); ++axis) {
    if (shape[axis] == 1)
      continue;
    LoopDim d{shape[axis], {}};
    for (auto &s : leafStrides)
      d.stride.push_back(s[axis]);
    if (!dims.empty()) {
      LoopDim &outer = dims.back();
      bool contiguous = true;
      for (size_t l = 0; l < leafStrides.size(); ++l)
        contiguous &= outer.stride[l] == d.stride[l] * d.size;
      if (contiguous) {
        outer.size *= d.size;
        outer.stride = d.stride;
        continue;
      }
    }
    dims.push_back(std::move(d));
  }
  if (dims.empty())
    dims.push_back(LoopDim{1, std::vector<int64_t>(leafStrides.size(), 0)});
  return dims;
}

// The records of ir/ops/Elementwise.def: their `forward` on f32 vectors,
// one emitter per op (nullptr for the other ops).
using RecordEmitter = Value *(*)(IRBuilder<> &b, ArrayRef<Value *> a, double p);
constexpr RecordEmitter kRecordEmitters[] = {
#define OP(Enum) nullptr,
#define UNARY(Enum, Name, Syntax, Flags, Costly, Forward, Vjp)                                     \
  [](IRBuilder<> &b, ArrayRef<Value *> a, double p) -> Value * {                                   \
    using namespace emit;                                                                          \
    const LVal x{&b, a[0]};                                                                        \
    (void)p;                                                                                       \
    return (Forward).v;                                                                            \
  },
#define BINARY(Enum, Name, Syntax, Flags, Costly, Forward, VjpA, VjpB)                             \
  [](IRBuilder<> &builder, ArrayRef<Value *> a, double) -> Value * {                               \
    using namespace emit;                                                                          \
    const LVal a0{&builder, a[0]}, a1{&builder, a[1]};                                             \
    return [](LVal a, LVal b) { return (Forward).v; }(a0, a1);                                     \
  },
#include "ir/Ops.def"
};

} // namespace

// The ops the planner fuses into an expression (isElementwiseLike,
// isBatchNormElementwise in BufferPlan.cpp).
Value *GraphLowering::applyElementwise(const Node &n, ArrayRef<Value *> a) {
  IRBuilder<> &b = b_;
  if (RecordEmitter record = kRecordEmitters[static_cast<size_t>(n.op)])
    return record(b, a, n.scalar);
  if (n.op == Op::Broadcast)
    return a[0];
  if (n.op == Op::BatchNorm) // (x, gain, bias, mean, 1/std): (x - mean) * (gain / std) + bias
    return k_->fmuladd(b.CreateFSub(a[0], a[3]), b.CreateFMul(a[1], a[4]), a[2]);
  if (n.op == Op::BatchNormXhat) // (x, mean, 1/std)
    return b.CreateFMul(b.CreateFSub(a[0], a[1]), a[2]);
  if (n.op == Op::BatchNormInfer) // (x, gain, bias, running mean, running var, -, scale)
    return k_->fmuladd(b.CreateFSub(a[0], a[3]), a[6], a[2]);
  // The planner never fuses another op, so no expression reaches one.
  report_fatal_error(Twine("internal error: '") + opInfo(n.op).name +
                     "' in an elementwise expression");
}

void GraphLowering::collectExpression(ValueId root, std::vector<ValueId> &leaves,
                                      std::map<ValueId, size_t> &leafIndex,
                                      std::optional<ValueId> &matmul) const {
  // Leaves of the fused tree: operands that have their own bytes (and at
  // most one matmul whose tiles arrive from registers).
  auto addLeaf = [&](ValueId leaf) {
    if (leafIndex.emplace(leaf, leaves.size()).second)
      leaves.push_back(leaf);
  };
  std::function<void(ValueId)> collect = [&](ValueId v) {
    if (isBatchNormElementwise(g_[v].op)) {
      addLeaf(statsLeaf(plan_.statsGroup[v], false));
      addLeaf(statsLeaf(plan_.statsGroup[v], true));
    }
    for (ValueId o : g_[v].operands) {
      if (g_[o].op == Op::Const)
        continue;
      if (plan_.storage[o] == Storage::Inlined)
        collect(o);
      else if (plan_.storage[o] == Storage::Epilogue)
        matmul = o;
      else
        addLeaf(o);
    }
  };
  collect(root);
}

void GraphLowering::splitsAtMiddleWithLeaves(ValueId root, ArrayRef<ValueId> leaves) const {
  splitsAtMiddle(root);
  for (ValueId l : leaves) // leaves of the result's shape are read element for element
    if (l < g_.size() && g_[l].type.shape == g_[root].type.shape)
      splitsAtMiddle(l);
}

Buf GraphLowering::leafBuf(ValueId leaf) const {
  return leaf < g_.size() ? buf(leaf) : stats_[leaf - g_.size()];
}

Shape GraphLowering::leafShape(ValueId leaf) const {
  if (leaf < g_.size())
    return g_[leaf].type.shape;
  return Shape{statsColumns((leaf - g_.size()) / 2)};
}

Value *GraphLowering::evalExpression(ValueId root, const std::map<ValueId, size_t> &leafIndex,
                                     ArrayRef<Value *> leafValues, Value *acc, unsigned width) {
  if (width == 0)
    width = k_->VW;
  // Memoised: a fused node read twice by its consumer (x * x) is computed once.
  std::map<ValueId, Value *> done;
  std::function<Value *(ValueId)> eval = [&](ValueId v) -> Value * {
    if (g_[v].op == Op::Const)
      return ConstantFP::get(FixedVectorType::get(k_->F32, width), g_[v].scalar);
    if (plan_.storage[v] == Storage::Epilogue)
      return acc;
    if (v != root && plan_.storage[v] != Storage::Inlined)
      return leafValues[leafIndex.at(v)];
    if (auto it = done.find(v); it != done.end())
      return it->second;
    std::vector<Value *> args;
    for (ValueId o : g_[v].operands)
      args.push_back(eval(o));
    if (isBatchNormElementwise(g_[v].op)) { // + the group's mean and 1/std
      args.push_back(leafValues[leafIndex.at(statsLeaf(plan_.statsGroup[v], false))]);
      args.push_back(leafValues[leafIndex.at(statsLeaf(plan_.statsGroup[v], true))]);
    }
    return done[v] = applyElementwise(g_[v], args);
  };
  return eval(root);
}

Value *GraphLowering::evalRowVector(ValueId root, Value *row, Value *column, unsigned lanes,
                                    Value *acc) {
  std::vector<ValueId> leaves;
  std::map<ValueId, size_t> leafIndex;
  std::optional<ValueId> matmul;
  collectExpression(root, leaves, leafIndex, matmul);
  // The root's shape as [rows, columns] (a vector is one row): each leaf is
  // a vector load at its (row, column) or, broadcast along the row, a splat.
  Shape shape = g_[root].type.shape;
  if (shape.size() == 1)
    shape.insert(shape.begin(), 1);
  std::vector<Value *> values;
  for (ValueId l : leaves) {
    std::vector<int64_t> strides = broadcastStrides(leafShape(l), shape);
    Value *rowStart = k_->mul(row, strides[0]);
    Buf lb = leafBuf(l);
    values.push_back(strides[1] ? k_->loadVec(lb, k_->add(rowStart, column), lanes)
                                : k_->splat(k_->load(lb, rowStart)));
  }
  return evalExpression(root, leafIndex, values, acc);
}

// How many vectors the loop of `root`'s tree evaluates at once (as one wide
// vector, see evalChunks). The transcendental functions are long dependency
// chains (tanh: ~40 instructions, ~90 cycles deep) whose loop is limited by
// how many iterations the out-of-order window holds, not by the FP ports:
// one vector per iteration ran tanh at ~20 cycles per vector on Zen 5,
// against ~10 for its port pressure. Four independent vectors interleaved
// in one iteration: tanh of the makemore hidden layer 2.9 -> 2.4 us per step
// (with the BatchNorm it fuses), 35 -> 29 us per 512-row eval block; exp
// 1.2 -> 0.9 us on [32, 200]. Cheap trees are bound by loads and stores and
// stay one vector wide (less code).
// Eight for loops of kWideInterleaveElements elements and more where there
// are 32 vector registers (AVX-512): four still left tanh at ~10 cycles per
// vector on Zen 5 against ~8 for its FMA-port work. makemore at B = 256, one
// thread, per-node profile (2 rounds each, old / new alternated): tanh
// (with its BatchNorm) at H = 200 8.7-9.7 -> 7.7-7.8 us, at H = 1024 45.7-46.0
// -> 42.7-44.1; steps, 4 / 3 alternated rounds: H = 200 115.3-116.9 ->
// 114.3-115.5 us, H = 1024 583-614 -> 573-603. At 16K elements (H = 64)
// no change, so smaller loops keep four (the JIT's short steps: less code to
// compile; a previous session measured the same trade at -0.7 / -1.6%). With
// 16 registers (AVX2) eight chains would spill.
constexpr int64_t kWideInterleaveElements = 32 * 1024;
unsigned GraphLowering::interleave(ValueId root) {
  bool expensive = false;
  std::function<void(ValueId)> visit = [&](ValueId v) {
    const OpInfo &info = opInfo(g_[v].op);
    expensive |= info.costly && info.costly(g_[v].scalar); // the records' `costly`
    for (ValueId o : g_[v].operands)
      if (plan_.storage[o] == Storage::Inlined)
        visit(o);
  };
  visit(root);
  if (!expensive)
    return 1;
  return k_->VectorRegs >= 32 && g_[root].type.numel() >= kWideInterleaveElements ? 8 : 4;
}

void GraphLowering::lowerElementwise(ValueId root) {
  const Shape &shape = g_[root].type.shape;
  std::vector<ValueId> leaves;
  std::map<ValueId, size_t> leafIndex;
  std::optional<ValueId> matmul;
  collectExpression(root, leaves, leafIndex, matmul);
  const Buf &out = buf(root);
  if (matmul) {
    // Epilogue of a matmul tile: the shape is the matmul's [M, N]; leaves
    // are loaded at (row, column chunk) with their broadcast strides.
    const int64_t cols = shape[1];
    const bool middle =
        emitMatMul(*matmul, [&](Value *row, Value *column, unsigned lanes, Value *acc) {
          k_->storeVec(out, k_->add(k_->mul(row, cols), column),
                       evalRowVector(root, row, column, lanes, acc), lanes);
        });
    if (middle)
      splitsAtMiddleWithLeaves(root, leaves);
    return;
  }

  std::vector<std::vector<int64_t>> leafStrides;
  for (ValueId l : leaves)
    leafStrides.push_back(broadcastStrides(leafShape(l), shape));
  const std::vector<LoopDim> dims = loopDims(shape, leafStrides);
  std::vector<int64_t> outStride(dims.size(), 1);
  for (size_t d = dims.size() - 1; d-- > 0;)
    outStride[d] = outStride[d + 1] * dims[d + 1].size;
  const unsigned width = interleave(root);
  // Two threads with equal parts cut the outer loop at its middle trip: the
  // middle element when the trips are whole rows of an even count, or
  // groups of width * VW elements with none left over for the tail.
  const int64_t trips = dims.empty() ? 0 : dims[0].size;
  if (trips > 0 && (dims.size() == 1 ? trips % (2 * int64_t(width) * k_->VW) == 0 : trips % 2 == 0))
    splitsAtMiddleWithLeaves(root, leaves);

  std::function<void(size_t, std::vector<Value *>, Value *)> nest =
      [&](size_t d, std::vector<Value *> offsets, Value *outOffset) {
        // Threads split the outermost loop (CompileOptions::parallel).
        const bool shared = d == 0;
        if (d + 1 == dims.size()) {
          k_->chunkGroups(
              dims[d].size, width,
              [&](Value *chunk, ArrayRef<unsigned> lanes) {
                storeChunks(root, leaves, leafIndex, dims.back().stride, offsets, outOffset, chunk,
                            lanes);
              },
              shared);
          return;
        }
        auto row = [&](Value *i) {
          std::vector<Value *> inner;
          for (size_t l = 0; l < leaves.size(); ++l)
            inner.push_back(k_->add(offsets[l], k_->mul(i, dims[d].stride[l])));
          nest(d + 1, inner, k_->add(outOffset, k_->mul(i, outStride[d])));
        };
        if (shared)
          k_->loopShared(0, dims[d].size, 1, row);
        else
          k_->loop(0, dims[d].size, 1, row);
      };
  nest(0, std::vector<Value *>(leaves.size(), k_->idx(0)), k_->idx(0));
}

// Evaluates the tree for the chunk at `chunk` (innermost index) given the
// outer part of every leaf's element offset.
// `width` chunks at once: each leaf's chunks are concatenated into one
// <width * VW x float> value and the tree is evaluated once on that.
void GraphLowering::storeChunks(ValueId root, ArrayRef<ValueId> leaves,
                                const std::map<ValueId, size_t> &leafIndex,
                                ArrayRef<int64_t> innerStride, ArrayRef<Value *> leafOffsets,
                                Value *outOffset, Value *chunk, ArrayRef<unsigned> lanes) {
  const Buf &out = buf(root);
  std::vector<Value *> leafValues;
  for (size_t l = 0; l < leaves.size(); ++l) {
    const Buf lb = leafBuf(leaves[l]);
    Values parts;
    for (size_t c = 0; c < lanes.size(); ++c) {
      Value *at = k_->add(chunk, int64_t(c) * k_->VW);
      if (innerStride[l] == 1)
        parts.push_back(k_->loadVec(lb, k_->add(leafOffsets[l], at), lanes[c]));
      else
        parts.push_back(c ? parts[0] : k_->splat(k_->load(lb, leafOffsets[l])));
    }
    leafValues.push_back(k_->concat(parts));
  }
  unsigned lanesTotal = leafValues.empty()
                            ? k_->VW
                            : cast<FixedVectorType>(leafValues[0]->getType())->getNumElements();
  Value *result = evalExpression(root, leafIndex, leafValues, nullptr, lanesTotal);
  if (leafValues.empty()) // a tree of constants: the same value for every chunk
    result = k_->concat(Values(lanes.size(), result));
  Values results = k_->split(result, lanes.size());
  for (size_t c = 0; c < lanes.size(); ++c)
    k_->storeVec(out, k_->add(outOffset, k_->add(chunk, int64_t(c) * k_->VW)), results[c],
                 lanes[c]);
}

} // namespace mlpc::codegen
