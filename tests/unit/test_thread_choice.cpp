// `--threads auto` (runtime/ThreadChoice.h): the choice between the team and
// one thread, driven with made-up call durations. The oracle is the
// schedule the header states: alternate windows of kWindowCalls calls
// (team first), kTrialWindows each, the first call of a window not counted,
// the lower median wins, ties go to one thread, the next trial after
// kFirstSteadyCalls calls, twice as many after a trial that kept the choice.
#include "runtime/ThreadChoice.h"

#include <catch2/catch.hpp>

#include <functional>

using namespace mlpc;

namespace {

constexpr unsigned kTrialCalls = 2 * ThreadChoice::kTrialWindows * ThreadChoice::kWindowCalls;

// Makes `calls` calls; `duration(onTeam, callIndex)` is what each one takes.
void drive(ThreadChoice &choice, uint64_t calls,
           const std::function<double(bool, uint64_t)> &duration) {
  for (uint64_t i = 0; i < calls; ++i) {
    const bool onTeam = choice.useTeam();
    choice.record(duration(onTeam, i));
  }
}

} // namespace

TEST_CASE("auto threads: the trial alternates windows, team first", "[threads]") {
  ThreadChoice choice;
  std::vector<bool> seen;
  for (unsigned i = 0; i < kTrialCalls; ++i) {
    seen.push_back(choice.useTeam());
    choice.record(1.0);
  }
  for (unsigned i = 0; i < kTrialCalls; ++i)
    CHECK(seen[i] == ((i / ThreadChoice::kWindowCalls) % 2 == 0));
  CHECK(choice.callsOnTeam() == kTrialCalls / 2);
  CHECK(choice.callsAlone() == kTrialCalls / 2);
  // Equal times: one thread, which leaves the other cores free.
  CHECK_FALSE(choice.teamChosen());
  CHECK_FALSE(choice.useTeam());
}

TEST_CASE("auto threads: the faster option runs until the next trial", "[threads]") {
  auto teamFaster = [](bool team, uint64_t) { return team ? 1.0 : 1.6; };
  ThreadChoice choice;
  drive(choice, kTrialCalls, teamFaster);
  CHECK(choice.teamChosen());
  drive(choice, ThreadChoice::kFirstSteadyCalls, teamFaster);
  CHECK(choice.callsOnTeam() == kTrialCalls / 2 + ThreadChoice::kFirstSteadyCalls);
  // The second trial keeps the choice: the steady phase doubles.
  drive(choice, kTrialCalls, teamFaster);
  const uint64_t onTeam = choice.callsOnTeam();
  drive(choice, 2 * ThreadChoice::kFirstSteadyCalls, teamFaster);
  CHECK(choice.callsOnTeam() == onTeam + 2 * ThreadChoice::kFirstSteadyCalls);
  // ... and then a trial: its second window runs on one thread.
  drive(choice, ThreadChoice::kWindowCalls, teamFaster);
  CHECK_FALSE(choice.useTeam());
  drive(choice, kTrialCalls - ThreadChoice::kWindowCalls, teamFaster);
  // 1024, 2048, then kMaxSteadyCalls (4096) after every further trial.
  static_assert(ThreadChoice::kMaxSteadyCalls == 16 * ThreadChoice::kFirstSteadyCalls);
  for (uint64_t steady : {1024, 2048, 4096})
    drive(choice, steady + kTrialCalls, teamFaster);
  drive(choice, ThreadChoice::kMaxSteadyCalls + ThreadChoice::kWindowCalls, teamFaster);
  CHECK_FALSE(choice.useTeam()); // a trial after 4096, not 8192
  drive(choice, kTrialCalls - ThreadChoice::kWindowCalls, teamFaster);
  drive(choice, ThreadChoice::kMaxSteadyCalls, teamFaster);
  auto aloneFaster = [](bool team, uint64_t) { return team ? 2.0 : 1.6; };
  drive(choice, kTrialCalls, aloneFaster);
  CHECK_FALSE(choice.teamChosen());
  const uint64_t alone = choice.callsAlone();
  drive(choice, ThreadChoice::kFirstSteadyCalls, aloneFaster);
  CHECK(choice.callsAlone() == alone + ThreadChoice::kFirstSteadyCalls);
  CHECK(choice.useTeam()); // the next trial's first window
}

TEST_CASE("auto threads: a window's first call and one outlier do not decide", "[threads]") {
  ThreadChoice choice;
  // The team is faster, but the first call of each of its windows (a worker
  // waking up) takes 100x, and one whole team window is slow (the host
  // stole the core): the median of the windows still picks the team.
  unsigned teamWindow = 0;
  drive(choice, kTrialCalls, [&](bool team, uint64_t i) {
    const bool first = i % ThreadChoice::kWindowCalls == 0;
    if (team && first)
      ++teamWindow;
    if (!team)
      return 1.5;
    if (first)
      return 100.0;
    return teamWindow == 2 ? 5.0 : 1.0;
  });
  CHECK(choice.teamChosen());
}
