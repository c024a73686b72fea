// A persistent team of threads that runs one compiled step at a time
// (`--threads N`, CompileOptions::parallel).
//
// Why a team of our own and not OpenMP: a makemore-sized step is 10-60 us
// with one barrier per parallel node (~20 per step), so what matters is the
// cost of waking the team once per step and of each barrier. The workers
// spin on a generation counter between steps (the trainer calls the step
// back to back, with only batch sampling in between) and fall back to
// sleeping on a condition variable after ~50 us idle, so an idle team costs
// nothing; the barrier is a dissemination barrier (ThreadTeam.cpp:
// waitBarrier) that spins, then yields when the team has more threads than
// the process has cores. Measured on the 2-core hosts
// (bench/PERFORMANCE.md): a barrier costs ~0.1-0.2 us when both threads arrive
// together and the vCPUs are near each other, ~0.3 us when they are ~215
// ns apart.
//
// Work split: thread i of n gets ThreadContext{i, n, ..., its part of every
// shared loop}; the generated code splits each parallel node's outer loop by
// it (codegen/LowerParallel.cpp) so the same elements are computed by the
// same instructions whatever n is: results are bit-identical for every
// thread count and every split.
//
// Balancing: the parts start equal; every kBalanceSteps steps the team
// moves them towards what each thread got done per cycle of shared work
// (ThreadContext::sharedCycles, counted by the generated code between
// barriers, waits excluded), halfway each time. Cores of one machine are
// not equally fast: a hybrid CPU's efficiency cores, a core shared with
// another process, or, on the 2-core VM this was measured on, one vCPU
// running 1.3-1.45x slower than the other for seconds at a time (per-node
// profile with the barrier waits apart: `mlpc bench --profile --threads 2`).
// With equal parts the step runs at the slower core's pace. Serial nodes
// (thread 0) are not counted: their time is not shared work, and giving
// thread 0 less shared work for them would only make it wait at the next
// barrier.
//
// Locality: a share is one fraction of every shared loop, and every node
// over the batch splits its rows (matmuls by row tiles, elementwise loops by
// rows, the batch statistics, BatchNormGrad and the weight gradients by the
// same four row blocks: codegen/LowerMatMulBatchBlocks.cpp), each loop
// cutting at the trip boundary nearest the share (KernelBuilder::
// loopShared). So a thread reads and writes the rows it wrote itself, in its
// own core's caches: a line the other core holds costs a transfer, and
// writing a line the other core has read waits for its copy to be dropped
// (8x the time of a local write on the 2-core VM, vCPUs ~250 ns apart).
// What the threads still share each step: the weights (read by all, updated
// in parts; each thread of a team of up to 4 transposes a transB matmul's
// weight for itself, LowerMatMul.cpp), the weight gradients'
// partial sums, the batch statistics' column sums, and the rows the serial
// nodes (cross-entropy, scatter_add) read and write.
#pragma once

#include "codegen/Compiler.h"

#include <llvm/ADT/ArrayRef.h>
#include <llvm/ADT/STLFunctionalExtras.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace mlpc {

class ThreadTeam {
public:
  // `threads` >= 1 (the caller's thread is one of them).
  explicit ThreadTeam(unsigned threads);
  ~ThreadTeam();
  ThreadTeam(const ThreadTeam &) = delete;
  ThreadTeam &operator=(const ThreadTeam &) = delete;

  unsigned size() const { return size_; }
  // Runs job(context of thread i) on every thread, the caller being thread 0,
  // and returns when all have finished. Not reentrant.
  void run(llvm::function_ref<void(const ThreadContext &)> job);
  // Each thread's part of the shared loops (fractions summing to 1).
  std::vector<double> shares() const;
  // Fixed parts instead of balancing (tests: any split gives the same bits):
  // one share per thread, normalised to sum to 1 (equal parts otherwise).
  void fixShares(llvm::ArrayRef<double> shares);
  // Equal parts from now on, no balancing (codegen/ThreadPages.h), unless
  // fixShares gave unequal ones; true when the parts are equal and fixed.
  bool keepEqualParts();
  // The parts are equal and stay so until fixShares changes them.
  bool equalFixedParts() const;
  // Every thread's ThreadContext carries this trace hook from the next run
  // on (CompileOptions::traceLines; runtime/LineCensus.h); null: none.
  void setTracer(ThreadContext::TraceFn trace, void *tracer) {
    trace_ = trace;
    tracer_ = tracer;
  }

private:
  // What ThreadContext::team points to: thread `index`'s barrier state.
  struct alignas(64) BarrierSlot {
    ThreadTeam *team = nullptr;
    unsigned index = 0;
    uint64_t passed = 0; // barriers this thread has passed (its own count)
  };
  // One per thread and round: written by its thread only, read by one other.
  struct alignas(64) BarrierFlag {
    std::atomic<uint64_t> reached{0};
  };
  static void barrier(void *slot);
  void workerLoop(unsigned index);
  void waitBarrier(BarrierSlot &slot);
  ThreadContext context(unsigned index);
  void setShares(llvm::ArrayRef<double> shares);
  void rebalance();

  unsigned size_;
  std::vector<std::thread> workers_;
  llvm::function_ref<void(const ThreadContext &)> job_;
  // Steps started (workers run a step when it moves) and workers still busy.
  std::atomic<uint64_t> generation_{0};
  std::atomic<unsigned> busy_{0};
  std::atomic<bool> stopping_{false};
  // The barrier (a dissemination barrier: see waitBarrier): rounds of it,
  // each thread's slot, and flags_[thread * rounds_ + round].
  unsigned rounds_ = 0;
  std::vector<BarrierSlot> slots_;
  std::vector<BarrierFlag> flags_;
  bool oversubscribed_ = false;
  // The cuts between the threads' parts (ThreadContext::shareBegin / End):
  // cuts_[i] .. cuts_[i + 1] is thread i's, in 1/kShareUnit. Written by
  // thread 0 between steps only (workers read them after the generation
  // moves, which orders the write before).
  std::vector<int64_t> cuts_;
  ThreadContext::TraceFn trace_ = nullptr;
  void *tracer_ = nullptr;
  bool balancing_ = true;
  unsigned stepsSinceBalance_ = 0;
  // ThreadContext::sharedCycles of each thread, a cache line each (the
  // threads add to them at every barrier).
  struct alignas(64) Cycles {
    uint64_t shared = 0;
  };
  std::vector<Cycles> cycles_;
  // Sleeping workers (after spinning idle) wait here for the next generation.
  std::mutex sleepMutex_;
  std::condition_variable wake_;
  std::atomic<unsigned> sleepers_{0};
};

// The team `--threads auto` starts for a step of `flops` (multiply-adds
// count 2): one thread per kFlopsPerThread of work, at most the cores this
// process may run on, at least 1. Whether a call then runs on the team or on one
// thread is measured (runtime/ThreadChoice.h).
unsigned autoThreads(double flops);
// The most threads `--threads N` (and Python's threads=N) accepts.
constexpr unsigned kMaxThreads = 256;
// Cores this process may run on (sched_getaffinity).
unsigned availableCores();

} // namespace mlpc
