// runtime/ThreadTeam.h.
#include "runtime/ThreadTeam.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <sched.h>

#include <llvm/Support/MathExtras.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MLPC_PAUSE() _mm_pause()
#else
#define MLPC_PAUSE() std::this_thread::yield()
#endif

namespace mlpc {
namespace {

// Work per thread below which a team is not even tried (`--threads auto`
// then compiles the serial step): under ~8 MFLOP (~70 us on one Zen 4
// core) a step's ~40 barriers and the cache lines its nodes hand between
// cores cost more than a second core gains, whatever the host. Above it,
// whether the team is faster is measured call by call
// (runtime/ThreadChoice.h): on the 2-core hosts of bench/PERFORMANCE.md the answer
// for wavenet (24 MFLOP) and H=512 / B=128 (22 MFLOP) changed with where
// the hypervisor put the two vCPUs (1.3x or 0.55x), and makemore at B = 256
// (18 MFLOP) ran 1.3x faster on two threads.
constexpr double kFlopsPerThread = 8e6;
// Spins (pause instructions, ~40 ns each on x86) before an idle worker sleeps.
constexpr int kIdleSpins = 2000;
// Steps between two moves of the cuts (ThreadTeam.h: Balancing), and the
// least part a thread keeps, as a fraction of an equal part (a thread that
// was slow for a while must still be measured to get its part back).
constexpr unsigned kBalanceSteps = 16;
constexpr double kMinShareOfEqual = 0.25;
// Spins in a barrier before yielding the core (~10 us).
constexpr int kBarrierSpins = 250;

} // namespace

unsigned availableCores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

unsigned autoThreads(double flops) {
  // Not the load average: it lags by a minute and counts this user's own
  // runs just finished, and a team sharing its cores with other work is
  // measured slower and not used (runtime/ThreadChoice.h).
  unsigned byWork = static_cast<unsigned>(std::max(1.0, std::floor(flops / kFlopsPerThread)));
  return std::max(1u, std::min(availableCores(), byWork));
}

ThreadTeam::ThreadTeam(unsigned threads)
    : size_(std::max(1u, threads)), rounds_(llvm::Log2_32_Ceil(size_)), slots_(size_),
      flags_(size_ * rounds_), cycles_(size_) {
  oversubscribed_ = size_ > availableCores();
  for (unsigned i = 0; i < size_; ++i)
    slots_[i] = BarrierSlot{this, i, 0};
  setShares(std::vector<double>(size_, 1.0));
  for (unsigned i = 1; i < size_; ++i)
    workers_.emplace_back([this, i] { workerLoop(i); });
}

ThreadTeam::~ThreadTeam() {
  {
    std::lock_guard<std::mutex> lock(sleepMutex_);
    stopping_.store(true, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  wake_.notify_all();
  for (std::thread &t : workers_)
    t.join();
}

ThreadContext ThreadTeam::context(unsigned index) {
  return ThreadContext{int64_t(index),         int64_t(size_), &ThreadTeam::barrier,
                       &slots_[index],         cuts_[index],   cuts_[index + 1],
                       &cycles_[index].shared, trace_,         tracer_};
}

std::vector<double> ThreadTeam::shares() const {
  std::vector<double> out;
  for (unsigned i = 0; i < size_; ++i)
    out.push_back(double(cuts_[i + 1] - cuts_[i]) / ThreadContext::kShareUnit);
  return out;
}

void ThreadTeam::fixShares(llvm::ArrayRef<double> shares) {
  setShares(shares);
  balancing_ = false;
}

bool ThreadTeam::keepEqualParts() {
  if (balancing_)
    fixShares(std::vector<double>(size_, 1.0));
  return equalFixedParts();
}

bool ThreadTeam::equalFixedParts() const {
  if (balancing_)
    return false;
  for (unsigned i = 0; i < size_; ++i)
    if (cuts_[i + 1] - cuts_[i] != cuts_[1] - cuts_[0])
      return false;
  return true;
}

void ThreadTeam::setShares(llvm::ArrayRef<double> shares) {
  // Equal parts unless `shares` gives one per thread with a positive sum.
  std::vector<double> part(size_, 1.0);
  double total = 0;
  if (shares.size() == size_)
    for (unsigned i = 0; i < size_; ++i)
      total += part[i] = std::max(shares[i], 0.0);
  if (!(total > 0)) {
    part.assign(size_, 1.0);
    total = size_;
  }
  cuts_.assign(size_ + 1, 0);
  double sum = 0;
  for (unsigned i = 0; i + 1 < size_; ++i) {
    sum += part[i] / total;
    cuts_[i + 1] = std::clamp<int64_t>(std::llround(sum * ThreadContext::kShareUnit), cuts_[i],
                                       ThreadContext::kShareUnit);
  }
  cuts_[size_] = ThreadContext::kShareUnit; // exact, whatever the rounding
}

// Each thread's part moves halfway towards its share of the team's rate of
// shared work (part / cycles it took), so that equal cycles would follow.
void ThreadTeam::rebalance() {
  std::vector<double> part = shares(), rate(size_);
  double total = 0;
  bool measured = true;
  for (unsigned i = 0; i < size_; ++i) {
    measured &= cycles_[i].shared > 0;
    rate[i] = part[i] / std::max<double>(1, double(cycles_[i].shared));
    total += rate[i];
    cycles_[i].shared = 0;
  }
  if (!measured || !(total > 0)) // no shared work, or no cycle counter (not x86)
    return;
  // Halfway (both sum to 1), then every part raised to the least, what that
  // adds taken from the others in proportion to what they have above it.
  const double least = kMinShareOfEqual / size_;
  double missing = 0, surplus = 0;
  for (unsigned i = 0; i < size_; ++i) {
    part[i] = 0.5 * (part[i] + rate[i] / total);
    missing += std::max(0.0, least - part[i]);
    surplus += std::max(0.0, part[i] - least);
  }
  for (unsigned i = 0; i < size_; ++i)
    part[i] = part[i] <= least ? least : part[i] - missing * (part[i] - least) / surplus;
  setShares(part);
}

void ThreadTeam::run(llvm::function_ref<void(const ThreadContext &)> job) {
  if (size_ == 1) {
    ThreadContext ctx = context(0); // the whole of every loop
    ctx.sharedCycles = nullptr;     // nothing to balance
    job(ctx);
    return;
  }
  job_ = job;
  busy_.store(size_ - 1, std::memory_order_relaxed);
  {
    // Under the lock, so a worker about to sleep cannot miss it (uncontended: ~20 ns).
    std::lock_guard<std::mutex> lock(sleepMutex_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  if (sleepers_.load(std::memory_order_acquire) > 0)
    wake_.notify_all();
  job(context(0));
  // The count stops at kBarrierSpins: a wait of billions of yields (behind a
  // long serial node) must not overflow it back into the spinning range.
  for (int spins = 0; busy_.load(std::memory_order_acquire) != 0;)
    if (spins < kBarrierSpins) {
      ++spins;
      MLPC_PAUSE();
    } else {
      std::this_thread::yield();
    }
  // Every worker is done with this step's contexts: the cuts may move.
  if (balancing_ && ++stepsSinceBalance_ >= kBalanceSteps) {
    stepsSinceBalance_ = 0;
    rebalance();
  }
}

void ThreadTeam::workerLoop(unsigned index) {
  uint64_t seen = 0;
  for (;;) {
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen) {
      if (++spins < kIdleSpins) {
        MLPC_PAUSE();
        continue;
      }
      std::unique_lock<std::mutex> lock(sleepMutex_);
      sleepers_.fetch_add(1, std::memory_order_acq_rel);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      sleepers_.fetch_sub(1, std::memory_order_acq_rel);
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stopping_.load(std::memory_order_acquire))
      return;
    job_(context(index));
    busy_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadTeam::barrier(void *slot) {
  auto *own = static_cast<BarrierSlot *>(slot);
  own->team->waitBarrier(*own);
}

// A dissemination barrier: in round r, thread i marks its flag for the round
// with the number of this barrier and waits until thread i - 2^r (mod n) has
// marked its own; after ceil(log2 n) rounds every thread has heard, through a
// chain of release stores and acquire loads, from every other, so whatever
// any thread wrote before the barrier is visible to all after it. Each flag
// has one writer and one reader, so a round costs one cache line moving one
// way. The counter barrier it replaced (every thread adding to one counter,
// the last one then advancing a phase the others spin on) moved that line
// to the last thread and then the phase to each waiter: two crossings. On
// the 2-core Zen 5 guest with the vCPUs ~220 ns apart, two threads passing
// barriers back to back (bench/peak/barrier_cost.c): 336-625 ns a barrier
// before, 287-318 after; with one thread always last, 496-529 -> 343-416.
// Whole steps did not measurably change on those 2 cores (bench/
// PERFORMANCE.md, the session of 2026-12-03 09:16); with more threads the
// arrivals no longer queue on one line (8 threads: 3 rounds instead of 8
// additions in turn).
// The numbers only grow, and a thread can be at most one barrier ahead of
// any other (it cannot pass the next before all have reached it), so a flag
// at or past this barrier's number means its thread has arrived.
void ThreadTeam::waitBarrier(BarrierSlot &slot) {
  const uint64_t number = ++slot.passed;
  for (unsigned round = 0; round < rounds_; ++round) {
    flags_[slot.index * rounds_ + round].reached.store(number, std::memory_order_release);
    const unsigned from = (slot.index + size_ - (1u << round) % size_) % size_;
    const std::atomic<uint64_t> &theirs = flags_[from * rounds_ + round].reached;
    // Spin while the others are likely running; yield once they seem not to
    // be (more threads than cores, or other processes on ours).
    // (The count stops at kBarrierSpins, as in run().)
    for (int spins = oversubscribed_ ? kBarrierSpins : 0;
         theirs.load(std::memory_order_acquire) < number;)
      if (spins < kBarrierSpins) {
        ++spins;
        MLPC_PAUSE();
      } else {
        std::this_thread::yield();
      }
  }
}

} // namespace mlpc
