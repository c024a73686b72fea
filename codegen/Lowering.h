// Graph -> LLVM IR. One GraphLowering emits one graph as two functions:
//
//   internal void <name>.body(ptr noalias leaf0, ..., ptr noalias out0, ...,
//                             float lr, ptr noalias align 64 workspace)
//   void <name>(ptr bindings, float lr, ptr workspace)   ; the public ABI
//
// The exported wrapper only loads the binding pointers and calls the body:
// as function arguments they can carry `noalias` (leaves, outputs and the
// workspace never overlap, see Compiler.h), which is what lets LLVM keep
// values in registers across stores and schedule loads freely. Within the
// workspace, accesses carry !alias.scope/!noalias metadata: one scope per
// planned buffer, declared noalias against every buffer whose bytes do not
// overlap it (buffers that reuse dead bytes stay ordered).
//
// Each op's kernel is a member function; they are spread over
// LowerElementwise.cpp, LowerMatMul.cpp, LowerReduce.cpp, LowerIndex.cpp and
// LowerFused.cpp, with the driver in LowerGraph.cpp.
#pragma once

#include "codegen/BufferPlan.h"
#include "codegen/Compiler.h"
#include "codegen/KernelBuilder.h"
#include "codegen/ThreadPages.h"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Module.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Target/TargetMachine.h>

#include <map>
#include <memory>
#include <optional>

namespace mlpc::codegen {

// Column vectors per group in the column-wise BatchNorm kernels (the batch
// statistics, BatchNormGrad): a group's rows stay in L1 between passes.
constexpr unsigned kColumnGroup = 4;

// The module for one graph, ready for the optimiser.
struct LoweredModule {
  std::unique_ptr<llvm::LLVMContext> context;
  std::unique_ptr<llvm::Module> module;
  size_t workspaceBytes = 0;
  std::vector<BindingInfo> bindings;
  std::optional<size_t> profileOffset; // CompileOptions::profileNodes
  // Parallel code: how its nodes touch the workspace's values (ThreadPages.h).
  RowUses rowUses;
};

// The leaves that get a binding (Compiler.h): inputs, parameters, state.
inline bool isBindingLeaf(Op op) {
  return op == Op::Input || op == Op::Param || op == Op::State;
}
// Names that can be C function names (the JIT's and the object file's symbols).
bool isCIdentifier(const std::string &s);

// Verifies the graph, plans its buffers and emits `name` for the target of
// `tm` (whose CPU and features are also attached to the functions).
llvm::Expected<LoweredModule> lowerGraph(const Graph &g, const std::string &name,
                                         const CompileOptions &options, llvm::TargetMachine &tm);

// How a big graph is compiled concurrently: cut into contiguous node ranges,
// each its own function, spread over `modules()` modules (each in its own
// context, so that they can be lowered, optimised and compiled on threads of
// their own). Module 0 holds `name` and `name.body`, which runs range 0
// itself when module 0 defines it and calls the other ranges' functions
// (`name.part<r>`: external, the body's signature) in node order.
struct GraphSplit {
  BufferPlan plan;
  std::vector<size_t> bounds;     // range r is nodes [bounds[r], bounds[r + 1])
  std::vector<unsigned> moduleOf; // per range: the module that defines it
  std::vector<size_t> moduleCost; // per module: estimated IR instructions
  // The ABI of the compiled function (Compiler.h), as LoweredModule has it.
  size_t workspaceBytes = 0;
  std::vector<BindingInfo> bindings;
  std::optional<size_t> profileOffset;
  unsigned modules() const { return static_cast<unsigned>(moduleCost.size()); }
};

// Plans the split (LowerModule.cpp says how): at most `maxModules` modules,
// and only as many as give each at least `minModuleWeight` of backend weight
// (LowerGraph.cpp: backendWeight; one module: the whole graph in one
// function, as lowerGraph).
llvm::Expected<GraphSplit> splitGraph(const Graph &g, const std::string &name,
                                      const CompileOptions &options, llvm::TargetMachine &tm,
                                      unsigned maxModules, size_t minModuleWeight);
// Lowers module `index` of `split` for the target of `tm`. Safe to call
// concurrently for different modules, each with its own target machine.
llvm::Expected<LoweredModule> lowerSplitModule(const Graph &g, const std::string &name,
                                               const CompileOptions &options,
                                               const GraphSplit &split, unsigned index,
                                               llvm::TargetMachine &tm);

// Runs the pipeline `buildPipeline` makes on `m`, with analyses for `tm`.
void runModulePipeline(
    llvm::Module &m, llvm::TargetMachine &tm,
    llvm::function_ref<llvm::ModulePassManager(llvm::PassBuilder &)> buildPipeline);
// PassSchedule.cpp: the IR passes run on every lowered module (optLevel 0: none).
void runPassSchedule(llvm::Module &m, llvm::TargetMachine &tm, unsigned optLevel);
class ObjectCache;
// Lowers (with `lower`), optimises and compiles one module per entry of
// `cost` (its estimated machine-code cost) to relocatable objects, in module
// order, on `threads` threads at once: the calling thread is thread 0, and
// each thread t takes the next module, costliest first, until none is left,
// using the target machine `machineFor(t)` (called on that thread; a target
// machine is not thread-safe, so each thread's must be a different one).
// With a `cache`, a module whose lowered IR was compiled before (same
// target) is loaded from it instead (codegen/ObjectCache.h). `traceLines`:
// instrumentLineTrace after the IR passes (LineTrace.h; give no cache).
llvm::Expected<std::vector<std::unique_ptr<llvm::MemoryBuffer>>> compileModules(
    llvm::ArrayRef<size_t> cost, unsigned threads, unsigned optLevel,
    llvm::function_ref<llvm::Expected<llvm::TargetMachine *>(unsigned thread)> machineFor,
    llvm::function_ref<llvm::Expected<LoweredModule>(unsigned index, llvm::TargetMachine &tm)>
        lower,
    ObjectCache *cache = nullptr, bool traceLines = false);

class GraphLowering {
public:
  // vectorBits: CompileOptions::vectorBits (0: the target's widest, codegen/VectorShape.h).
  GraphLowering(const Graph &g, const BufferPlan &plan, llvm::Module &m, llvm::TargetMachine &tm,
                unsigned vectorBits);
  // Instruments every node with cycle counters at this workspace offset
  // (CompileOptions::profileNodes).
  void setProfileOffset(std::optional<size_t> offset) { profileOffset_ = offset; }
  // CompileOptions::parallel: the body takes a trailing ThreadContext pointer
  // and splits its work between threads (LowerParallel.cpp).
  // Parallel code needs a parallel plan (its thread slots); a parallel plan
  // may be lowered as serial code (splitGraph's trial lowering).
  void setParallel(bool parallel) {
    if (parallel && !plan_.parallel)
      llvm::report_fatal_error("internal error: parallel code lowered from a serial buffer plan");
    parallel_ = parallel;
  }
  // CompileOptions::traceLines (with parallel): node marks and the function
  // tag that codegen/LineTrace.h's instrumentation looks for.
  void setTraceLines(bool trace) { traceLines_ = trace; }
  // The whole graph: `name` (the bindings-array ABI) and `name.body`.
  void emit(const std::string &name);
  // The split form (GraphSplit): `name` and `name.body`, which runs nodes
  // [0, end) and then calls each continuation (with the body's signature
  // and arguments; declared here unless the module already defines it) in order.
  void emitHead(const std::string &name, size_t end, llvm::ArrayRef<std::string> continuations);
  // `fnName`: external, the body's signature, runs nodes [begin, end).
  void emitPart(const std::string &fnName, size_t begin, size_t end);
  // Lowers the whole graph into `name` and returns what each node's code
  // (with its output actions) will cost the backend: IR instructions, each
  // weighted by the vector registers it spans (LowerGraph.cpp).
  std::vector<size_t> emitMeasured(const std::string &name);
  // Parallel code: which nodes touched each workspace value and which
  // declared splitting it at the middle (LoweredModule::rowUses).
  const RowUses &rowUses() const { return rowUses_; }

private:
  // LowerGraph.cpp
  llvm::Function *createBodyFunction(const std::string &fnName,
                                     llvm::GlobalValue::LinkageTypes linkage);
  void addCommonAttributes(llvm::Function *f);
  void emitWrapper(const std::string &name, llvm::Function *body);
  void lowerRange(llvm::Function *f, size_t begin, size_t end,
                  llvm::ArrayRef<llvm::Function *> calls, std::vector<size_t> *cost);
  void createBuffers();
  size_t weightSince(llvm::BasicBlock *block, size_t count, llvm::BasicBlock *last) const;
  // Every kernel reaches a value's bytes through buf(v): parallel code
  // records which node did (RowUses::touched), for ThreadPages.h.
  const Buf &buf(ValueId v) const {
    if (parallel_ && v < g_.size())
      rowUses_.touched.insert({plan_.root[v], loweringNode_});
    return bufs_[v];
  }
  // The node being lowered (a shared one, in parallel code) splits value
  // v's elements between two threads at the middle: thread 0 touches only
  // the first half and thread 1 only the second when the team has two
  // threads with equal parts (RowUses::halved). A kernel says so only where
  // that holds for every access it makes to v.
  void splitsAtMiddle(ValueId v) const {
    if (parallel_ && k_ && k_->share.index && v < g_.size())
      rowUses_.halved.insert({plan_.root[v], loweringNode_});
  }

  Buf outputBuf(size_t output) const;
  const Buf &scratch(ValueId v) const { return scratch_[v]; }
  // False for nodes with no loop of their own: leaves, views, fused values,
  // sums a BatchNormGrad kernel fills (their statistics and output actions aside).
  bool runsOwnKernel(ValueId v) const;
  // An output copied / written back after the loop at `position`.
  static bool isPostAction(const OutputPlan &op, size_t position);
  void lowerNode(ValueId v);
  void emitPostActions(size_t position);
  void copy(const Buf &from, const Buf &to, int64_t numel);
  void ifNonNull(llvm::Value *ptr, llvm::function_ref<void()> then);

  // LowerElementwise.cpp: fused elementwise expressions and Broadcast.
  void lowerElementwise(ValueId v);
  llvm::Value *applyElementwise(const Node &n, llvm::ArrayRef<llvm::Value *> args);
  // The fused tree of `root`: its leaves (operands with bytes of their own,
  // in first-use order) and its Epilogue matmul, if any.
  void collectExpression(ValueId root, std::vector<ValueId> &leaves,
                         std::map<ValueId, size_t> &leafIndex,
                         std::optional<ValueId> &matmul) const;
  // The tree's value given each leaf's vector (and the matmul's accumulator).
  // `width`: the lanes of the leaf values (0: VW).
  llvm::Value *evalExpression(ValueId root, const std::map<ValueId, size_t> &leafIndex,
                              llvm::ArrayRef<llvm::Value *> leafValues, llvm::Value *acc,
                              unsigned width = 0);
  unsigned interleave(ValueId root);
  // Stores root's tree for lanes.size() chunks at `chunk` of the innermost
  // loop (lowerElementwise): leaves at leafOffsets + chunk (innerStride 1)
  // or splats of one element (0), the root at outOffset + chunk.
  void storeChunks(ValueId root, llvm::ArrayRef<ValueId> leaves,
                   const std::map<ValueId, size_t> &leafIndex, llvm::ArrayRef<int64_t> innerStride,
                   llvm::ArrayRef<llvm::Value *> leafOffsets, llvm::Value *outOffset,
                   llvm::Value *chunk, llvm::ArrayRef<unsigned> lanes);
  // The tree of `root` at row `row`, columns [column, column + lanes) of its
  // shape viewed as [rows, columns] (rank 1: one row), loading each leaf
  // with its broadcast strides; `acc` stands for the Epilogue matmul.
  llvm::Value *evalRowVector(ValueId root, llvm::Value *row, llvm::Value *column, unsigned lanes,
                             llvm::Value *acc = nullptr);
  // LowerReduce.cpp
  void lowerReduction(ValueId v);
  void lowerMaxMask(ValueId v);
  // LowerMatMul.cpp
  void lowerMatMul(ValueId v);
  // Runs matmul v's kernel, handing each finished accumulator vector (row,
  // first column, active lanes) to `epilogue` instead of storing it.
  using MatMulEpilogue = llvm::function_ref<void(llvm::Value *row, llvm::Value *column,
                                                 unsigned lanes, llvm::Value *acc)>;
  // True when two threads with equal parts split C's rows at the middle
  // (and it has declared so for C and A: splitsAtMiddle).
  bool emitMatMul(ValueId v, MatMulEpilogue epilogue);
  // C[m, n] = op(a) @ op(b) on buffers (a and b stored as transA / transB
  // say), by the register-blocked kernel. scratch: room for transB's
  // transposed b at its start; partialAt: offset in floats of [m, n]
  // partial sums within it (-1: none, no K blocking). blockRows > 0: K in
  // an even number of blocks of that many rows, each block's sums from
  // zero, added in pairs and the pairs in order ((P0 + P1) + (P2 + P3):
  // LowerMatMulBatchBlocks.cpp) through the partial sums, [pairs, m, n].
  struct MatMulArgs {
    Buf a, b;
    int64_t m, n, k;
    bool transA, transB;
    Buf scratch;
    int64_t partialAt;
    int64_t blockRows = 0;
  };
  // True when the rows are split at the middle (TiledMatMul::rowsAtMiddle).
  bool emitTiledMatMul(const MatMulArgs &args, MatMulEpilogue epilogue);
  void transposeOwnOrShared(const MatMulArgs &args, int64_t stride, Buf &transposed);
  // LowerMatMulTransposed.cpp: MatMulKernel::Transposed. The epilogue half
  // reads C^T ([N, M]) through `loadCt` (offset, lanes).
  void emitTransposedMatMul(ValueId v, MatMulEpilogue epilogue);
  using TransposedLoad = llvm::function_ref<llvm::Value *(llvm::Value *at, unsigned lanes)>;
  void emitTransposedEpilogue(ValueId v, TransposedLoad loadCt, MatMulEpilogue epilogue);
  // LowerMatMulBatchBlocks.cpp: a weight gradient by batch row blocks
  // (BufferPlan.h: matMulBatchBlocks).
  void emitBatchBlockedMatMul(ValueId v, MatMulEpilogue epilogue);
  void emitBatchBlockPairs(ValueId v); // its phase 1 in parallel code
  void transposeInto(const Buf &src, int64_t rows, int64_t cols, const Buf &dst, int64_t dstStride);
  // LowerIndex.cpp
  void lowerGather(ValueId v);
  void lowerScatterAdd(ValueId v);
  void lowerScatterAddBlocks(ValueId v);
  KernelBuilder narrowRowUpdates();
  void lowerPick(ValueId v);
  void lowerUnpick(ValueId v);
  // LowerFused.cpp
  void emitBatchStats(ValueId leader);       // a StatsPlan's mean and 1/std (Infer: scale)
  void emitBatchStatsByRows(ValueId leader); // the same by row blocks (batches of 64+)
  void lowerColumnSumShared(ValueId v);      // LowerReduce.cpp
  void storeMean(ValueId leader, llvm::Value *base, llvm::ArrayRef<unsigned> lanes,
                 llvm::ArrayRef<llvm::Value *> mean);
  void storeInvStd(ValueId leader, llvm::Value *base, llvm::ArrayRef<unsigned> lanes,
                   llvm::ArrayRef<llvm::Value *> squares);
  void lowerBatchNormGrad(ValueId v);
  void lowerCrossEntropy(ValueId v); // CrossEntropy, CrossEntropyGrad
  void zeroFill(const Buf &b, int64_t numel);
  // LowerParallel.cpp (CompileOptions::parallel)
  enum class NodeMode { NoCode, Serial, Shared };
  NodeMode nodeMode(ValueId v) const;
  bool hasPostActions(size_t position) const;
  void loadThreadContext(llvm::Value *context);
  // CompileOptions::traceLines: a kTraceNode call before node v's code.
  void emitTraceNodeMark(ValueId v);
  // Adds `cycles` to node v's profile counter of this thread: its time, or
  // (`waits`) its barrier waits (CompileOptions::profileNodes).
  void addToProfileCounter(bool waits, ValueId v, llvm::Value *cycles);
  // Node v (and its output actions) in parallel code; `sharedBefore`: the
  // previous node with code was split between threads (updated).
  void lowerNodeParallel(ValueId v, bool &sharedBefore);
  // A barrier; `endsSharedWork`: the code before it since the last barrier
  // was a shared loop's, whose cycles go to ThreadContext::sharedCycles.
  void emitBarrier(bool endsSharedWork = true);
  void countSharedWork();
  void shareBarrier(); // a barrier inside a shared node; nothing otherwise
  void onThreadZero(llvm::function_ref<void()> body);
  // A Reduction over an axis with contiguous elements after it (its kernel
  // vectorises across columns, which threads can split).
  bool isColumnReduction(ValueId v) const;
  // A Reduction along the last axis of more than one row (each row its own
  // contiguous fold; threads split the blocks of rows).
  bool isRowReduction(ValueId v) const;
  // An elementwise node whose loop runs a matmul's tiles (its Epilogue).
  bool hasEpilogueMatMul(ValueId v) const;
  // body() on threads 0 .. count-1 only.
  void onThreadBelow(unsigned count, llvm::function_ref<void()> body);

  const Graph &g_;
  const BufferPlan &plan_;
  llvm::Module &m_;
  llvm::LLVMContext &ctx_;
  llvm::TargetMachine &tm_;
  unsigned vectorBits_;
  llvm::IRBuilder<> b_;
  std::unique_ptr<KernelBuilder> k_;

  std::vector<ValueId> leaves_;    // binding leaves in graph order (the leading pointer arguments)
  llvm::Function *body_ = nullptr; // the function being filled
  std::vector<llvm::Value *> leafArg_;   // per value id (leaves only)
  std::vector<llvm::Value *> outputArg_; // per graph output
  llvm::Value *lr_ = nullptr, *workspace_ = nullptr;
  std::optional<size_t> profileOffset_;
  // The node whose code is being emitted: its barrier-wait counter, its
  // touches of the workspace (RowUses).
  ValueId loweringNode_ = 0;
  mutable RowUses rowUses_;
  bool parallel_ = false, traceLines_ = false;
  llvm::Value *traceFn_ = nullptr, *tracer_ = nullptr; // ThreadContext::traceAccess, tracer
  llvm::Value *threadIndex_ = nullptr, *threadCount_ = nullptr, *barrierFn_ = nullptr,
              *team_ = nullptr, *shareBegin_ = nullptr, *shareEnd_ = nullptr,
              *sharedCycles_ = nullptr, *sectionStart_ = nullptr;
  std::vector<Buf> bufs_;    // per value id
  std::vector<Buf> scratch_; // per node (only nodes with scratch bytes)
  Buf threadSlots_;          // parallel code: BufferPlan::threadSlotsOffset
  std::vector<Buf> stats_;   // per StatsPlan: its means [H], then its 1/std [H]
  // Expression leaves are value ids; ids from g_.size() on name the
  // statistics of BatchNorm groups (statsLeaf: mean, then 1/std).
  ValueId statsLeaf(int group, bool invStd) const {
    return static_cast<ValueId>(g_.size() + 2 * group + (invStd ? 1 : 0));
  }
  Buf leafBuf(ValueId leaf) const;
  // splitsAtMiddle for an elementwise root and its leaves of the same shape.
  void splitsAtMiddleWithLeaves(ValueId root, llvm::ArrayRef<ValueId> leaves) const;
  Shape leafShape(ValueId leaf) const;
  int64_t statsColumns(size_t group) const { return g_[plan_.stats[group].leader].type.shape[1]; }
  std::vector<llvm::MDNode *> regionScope_, regionNoAlias_;
};

} // namespace mlpc::codegen
