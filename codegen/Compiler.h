// The codegen layer's public API: a Graph becomes one native function.
//
//   void fn(void *const *bindings, float lr, void *workspace, const ThreadContext *thread)
//
// bindings: one pointer per leaf (Op::Input: const int32_t*, Op::Param /
// Op::State: float*) in graph node order (Const nodes are not leaves here:
// they are compiled in), then one float* per graph output in output order.
// Outputs of role WriteBack are ALSO stored into their subject leaf S (State
// or Param; after every read of S); for those the output binding may be null.
// With CompileOptions::sgdUpdate, outputs of role Gradient update their Param
// leaf P in place (P -= lr * grad, after every read of P); their binding may
// be null too. Every other output binding must be non-null.
//
// workspace: caller-allocated, workspaceBytes() long, 64-byte aligned; every
// temporary lives there (a planned arena: fn allocates nothing). Leaf, output
// and workspace buffers must not overlap one another (the generated code marks
// them noalias); inputs may share memory with each other since they are only read.
//
// thread: null for one thread; see ThreadContext and CompileOptions::parallel.
//
// i32 indices (Gather, ScatterAdd, Pick, Unpick, cross-entropy labels) are
// trusted to be in range: the generated code does not check them (the
// interpreter does, and the trainer validates its data).
#pragma once

#include "codegen/ObjectCache.h"
#include "ir/Graph.h"

#include <llvm/Support/Error.h>

#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace llvm {
class TargetMachine;
namespace orc {
class LLJIT;
}
} // namespace llvm

namespace mlpc {
namespace codegen {
class TargetPool;
}

// The thread a function compiled with CompileOptions::parallel runs on:
// thread `index` of `count`; `barrier(team)` returns once every thread of the
// team has called it (runtime/ThreadTeam.h provides one). A null context
// means one thread.
//
// [shareBegin, shareEnd) is this thread's part of every shared loop, in
// units of 1/kShareUnit of its trips: trips [T * shareBegin / kShareUnit,
// T * shareEnd / kShareUnit), each cut rounded to the nearest trip
// (codegen/KernelShare.cpp, loopShared). The parts of a team's threads must tile
// [0, kShareUnit) in thread order. Which thread runs a trip never changes
// what it computes, so the team may move the cuts between steps (to give a
// faster core more trips) without changing a bit of the results.
// `sharedCycles`, when not null, is this thread's counter of the time-stamp
// cycles it spent working in shared loops (from the end of one barrier to
// the next, not waiting): what the team balances the cuts by.
//
// `traceAccess` is only read by code compiled with CompileOptions::traceLines
// (which must then be given a context with it set): every load and store of
// the function calls traceAccess(tracer, index, address, bytes, kTraceLoad or
// kTraceStore), and each graph node's code starts with a call of kind
// kTraceNode (address null, `bytes` the node's value id).
struct ThreadContext {
  static constexpr int64_t kShareUnit = int64_t(1) << 16;
  static constexpr int64_t kTraceLoad = 0, kTraceStore = 1, kTraceNode = 2;
  using TraceFn = void (*)(void *tracer, int64_t thread, const void *address, int64_t bytes,
                           int64_t kind);
  int64_t index;
  int64_t count;
  void (*barrier)(void *team);
  void *team;
  int64_t shareBegin;
  int64_t shareEnd;
  uint64_t *sharedCycles;
  TraceFn traceAccess = nullptr;
  void *tracer = nullptr;
};

struct CompileOptions {
  // Gradient outputs update their Param leaf P in place: P -= lr * grad
  // (no gradient buffer needed; the binding for that output may be null).
  bool sgdUpdate = false;
  // Per-node timing (`mlpc bench --profile`): the generated code reads the
  // cycle counter around every node's code and adds the difference to a u64
  // counter per graph node, placed at CompiledFunction::profileOffset() in
  // the workspace (the caller zeroes them). Costs ~2 counter reads per node.
  // With `parallel`, threads 0 .. kProfileThreads-1 each have their own row
  // of counters (thread i's at profileOffset() + 8 * i * graph size); a
  // node's time includes the thread's wait at the barriers around it, which
  // a second block of kProfileThreads rows right after the first counts
  // apart (kProfileCounters rows in all).
  bool profileNodes = false;
  static constexpr unsigned kProfileThreads = 4;
  static constexpr unsigned kProfileCounters = 2 * kProfileThreads;
  // The function may run on several threads at once, each called with its
  // ThreadContext: the matmuls and elementwise loops split their outer loop
  // by thread (same tiles, same order: bit-identical results for any count),
  // every other node runs on thread 0, with barriers between (LowerGraph.cpp).
  bool parallel = false;
  // With `parallel`: every load and store of the generated code (after
  // optimisation) calls ThreadContext::traceAccess, and each node's code
  // starts with a node mark (`mlpc bench --line-census`, runtime/
  // LineCensus.h). A diagnostic: the code runs tens of times slower. The
  // JIT's object cache is not used for it.
  bool traceLines = false;
  // Vector width of the kernels in bits, a cap: 0 = the widest the target
  // has (codegen/VectorShape.h says why); 128 / 256 / 512 for comparisons.
  unsigned vectorBits = 0;
  std::string cpu;    // empty: host CPU and features
  std::string triple; // empty: host triple
  unsigned optLevel = 3;
};

// Bytes [begin, end) of a workspace.
struct ByteRange {
  int64_t begin = 0, end = 0;
};

// Workspace bytes [offset, offset + bytes) that one node's code reads or
// writes, and what they hold: "%16 hprebn" (a value), "scratch of %40", "batch
// statistics of %17". A node's regions are its result, the values its
// fused code reads, its scratch and its statistics; other nodes' values may
// have used the same bytes at other times (the workspace is reused).
struct WorkspaceRegion {
  std::string label;
  int64_t offset = 0, bytes = 0;
};

// One entry of a compiled function's bindings array, in order.
struct BindingInfo {
  enum class Kind { Input, Param, State, Output };
  Kind kind;
  std::string name; // leaf name or output label
  TensorType type;
  bool optional = false; // an output binding that may be null (write-back / sgd outputs)
  // Output bindings: the output's role and the names of its subjects (the
  // leaf a Gradient / WriteBack refers to, the value of an Adjoint, the
  // running mean and variance of a BatchNormInput).
  OutputRole role = OutputRole::Value;
  std::vector<std::string> subjects;
};

// A graph compiled to a native function (see the ABI above). Cheap to copy;
// the code it points to lives as long as the JitEngine that compiled it.
class CompiledFunction {
public:
  using Fn = void (*)(void *const *bindings, float lr, void *workspace,
                      const ThreadContext *thread);

  CompiledFunction() = default;
  CompiledFunction(Fn fn, size_t workspaceBytes, double compileMillis,
                   std::vector<BindingInfo> bindings, std::optional<size_t> profileOffset = {},
                   std::vector<std::vector<WorkspaceRegion>> nodeRegions = {},
                   std::vector<ByteRange> secondThreadPages = {})
      : fn_(fn), workspaceBytes_(workspaceBytes), compileMillis_(compileMillis),
        bindings_(std::move(bindings)), profileOffset_(profileOffset),
        nodeRegions_(std::move(nodeRegions)), secondThreadPages_(std::move(secondThreadPages)) {}

  void run(void *const *bindings, float lr, void *workspace,
           const ThreadContext *thread = nullptr) const {
    fn_(bindings, lr, workspace, thread);
  }
  size_t workspaceBytes() const { return workspaceBytes_; }
  double compileMillis() const { return compileMillis_; } // lowering + optimisation + machine code
  const std::vector<BindingInfo> &bindings() const { return bindings_; }
  Fn function() const { return fn_; }
  // With CompileOptions::profileNodes: the byte offset in the workspace of
  // the per-node cycle counters (uint64_t[graph size], by value id).
  std::optional<size_t> profileOffset() const { return profileOffset_; }
  // With CompileOptions::traceLines: per graph node (by value id), the
  // workspace bytes its code may touch, named (WorkspaceRegion); empty
  // otherwise.
  const std::vector<std::vector<WorkspaceRegion>> &nodeRegions() const { return nodeRegions_; }
  // Parallel code: the workspace byte ranges (whole 4 KB pages from the
  // workspace's start) that thread 1 of a team of two with equal, fixed
  // parts may map privately (codegen/ThreadPages.h); empty otherwise.
  const std::vector<ByteRange> &secondThreadPages() const { return secondThreadPages_; }

private:
  Fn fn_ = nullptr;
  size_t workspaceBytes_ = 0;
  double compileMillis_ = 0;
  std::vector<BindingInfo> bindings_;
  std::optional<size_t> profileOffset_;
  std::vector<std::vector<WorkspaceRegion>> nodeRegions_;
  std::vector<ByteRange> secondThreadPages_;
};

// Owns one ORC LLJIT; several functions (distinct names) can be added.
class JitEngine {
public:
  // The target comes from `options` (cpu/triple); other fields are per
  // compile(). With a cache directory, machine code is kept on disk across
  // processes (codegen/ObjectCache.h).
  static llvm::Expected<std::unique_ptr<JitEngine>> create(const CompileOptions &options,
                                                           JitCacheOptions cache = {});
  ~JitEngine();

  // options.cpu/triple must be empty or equal to the engine's; names must be
  // C identifiers, distinct within one engine. Not safe to call concurrently
  // on one engine (use one engine per thread); the compiled functions are.
  llvm::Expected<CompiledFunction> compile(const Graph &g, const std::string &name,
                                           const CompileOptions &options);
  // Modules loaded from / compiled past the cache (both 0 without one).
  unsigned cacheHits() const { return cache_ ? cache_->hits() : 0; }
  unsigned cacheMisses() const { return cache_ ? cache_->misses() : 0; }

private:
  JitEngine() = default;
  // Waits for the JIT that create() started making in the background (the
  // target machines are waited for one by one, TargetPool::machine).
  llvm::Error jitReady();
  std::future<llvm::Expected<std::unique_ptr<llvm::orc::LLJIT>>> pendingJit_;
  std::unique_ptr<llvm::orc::LLJIT> jit_;
  // One per compile thread; machine 0 also makes the lowering's decisions
  // (made and warmed in the background from create() on, codegen/TargetPool.h).
  std::unique_ptr<codegen::TargetPool> targets_;
  unsigned optLevel_ = 3; // the pool's machines' (create() options)
  std::unique_ptr<codegen::ObjectCache> cache_;
  std::string triple_, cpu_; // as resolved from the create() options
};

// What the kernels are compiled for on options' target (for reports such as
// `mlpc bench`): LLVM's CPU name and the vector shape of codegen/VectorShape.h.
struct TargetDescription {
  std::string cpu;
  unsigned vectorBits = 0, vectorRegisters = 0;
};
llvm::Expected<TargetDescription> describeTarget(const CompileOptions &options);

// The optimised LLVM IR / assembly of a graph's function (for `mlpc emit --emit=llvm|asm`).
llvm::Expected<std::string> emitLLVMText(const Graph &g, const std::string &name,
                                         const CompileOptions &options);
llvm::Expected<std::string> emitAssembly(const Graph &g, const std::string &name,
                                         const CompileOptions &options);
// Writes a relocatable (PIC) object file containing `name` (same ABI) for the target in options.
llvm::Error emitObjectFile(const Graph &g, const std::string &name, const CompileOptions &options,
                           const std::string &path);

} // namespace mlpc
