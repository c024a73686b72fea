// `--threads auto`: whether a compiled function's next call runs on the
// whole thread team or on the caller's thread alone, decided by timing the
// calls themselves.
//
// Why measured and not a rule: what two threads gain on a step depends less
// on its size than on how fast the cores hand each other cache lines, and on
// a VM that changes while the process runs. On the 2-core AMD EPYC (Zen 4)
// guest of bench/PERFORMANCE.md a cache line moved between the two vCPUs in ~30 ns for
// minutes, then in ~170 ns (the host had put them on different CCDs), and
// back: wavenet on two threads ran 1.3-1.4x one thread in the first state
// and 0.55x in the second, with the same code, in the same process. A FLOP
// threshold picks one answer for both.
//
// The schedule: a trial runs alternate windows of kWindowCalls calls on the
// team and on one thread, kTrialWindows windows each, the first call of a
// window not counted (it pays for the switch: a sleeping worker's wake-up,
// the other core's cold cache). The option with the lower median
// time per call wins and runs until the next trial: kFirstSteadyCalls calls
// after a trial that changed the choice, twice as many as last time after
// one that kept it, up to kMaxSteadyCalls. A trial costs
// kTrialWindows * kWindowCalls calls on the slower option: ~16% of the calls
// between trials while the choice settles, ~1% once it has (a decision made
// while something else held a core, such as the JIT compiling the
// evaluation at the start of a run, is revisited within ~300 calls).
// Results do not depend on the choice: the compiled code gives the same
// bits for any thread count (codegen/LowerParallel.cpp).
//
// Pure logic, no clock: the caller times each call and reports it (tested
// with made-up durations in test_thread_choice.cpp).
#pragma once

#include <array>
#include <cstdint>

namespace mlpc {

class ThreadChoice {
public:
  static constexpr unsigned kWindowCalls = 16;
  static constexpr unsigned kTrialWindows = 3;
  static constexpr uint64_t kFirstSteadyCalls = 256;
  static constexpr uint64_t kMaxSteadyCalls = 4096;

  // Whether the next call should run on the whole team (else on one thread).
  bool useTeam() const { return phase_ == Phase::Trial ? windowOnTeam() : teamChosen_; }
  // The duration of the call just made, with the option useTeam() gave.
  void record(double seconds);

  // Calls made on the team and on one thread so far.
  uint64_t callsOnTeam() const { return callsOnTeam_; }
  uint64_t callsAlone() const { return callsAlone_; }
  // The latest trial's choice (the team until the first trial ends).
  bool teamChosen() const { return teamChosen_; }

private:
  enum class Phase { Trial, Steady };
  bool windowOnTeam() const { return window_ % 2 == 0; }
  void endWindow();
  void endTrial();

  Phase phase_ = Phase::Trial;
  bool teamChosen_ = true;
  unsigned window_ = 0; // windows of the current trial so far
  unsigned callInWindow_ = 0;
  double windowSeconds_ = 0; // the window's counted calls
  // Each window's mean time per call, team windows then alone ones (no
  // allocation in the step loop: test_no_alloc.cpp).
  std::array<double, kTrialWindows> perCallTeam_{}, perCallAlone_{};
  uint64_t steadyCalls_ = 0;
  uint64_t steadyLength_ = 0; // this steady phase's calls
  uint64_t callsOnTeam_ = 0, callsAlone_ = 0;
};

} // namespace mlpc
