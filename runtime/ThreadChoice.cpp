// runtime/ThreadChoice.h.
#include "runtime/ThreadChoice.h"

#include <algorithm>

namespace mlpc {
namespace {

template <size_t N> double median(std::array<double, N> v) {
  std::sort(v.begin(), v.end());
  return N % 2 ? v[N / 2] : 0.5 * (v[N / 2 - 1] + v[N / 2]);
}

} // namespace

void ThreadChoice::record(double seconds) {
  (useTeam() ? callsOnTeam_ : callsAlone_) += 1;
  if (phase_ == Phase::Steady) {
    if (++steadyCalls_ >= steadyLength_) {
      phase_ = Phase::Trial;
      window_ = 0;
      callInWindow_ = 0;
      windowSeconds_ = 0;
    }
    return;
  }
  // The window's first call pays for the switch and is not counted.
  if (callInWindow_++ > 0)
    windowSeconds_ += seconds;
  if (callInWindow_ == kWindowCalls)
    endWindow();
}

void ThreadChoice::endWindow() {
  // Windows alternate team, alone, team, ...: window w is the (w / 2)th of its kind.
  (windowOnTeam() ? perCallTeam_ : perCallAlone_)[window_ / 2] =
      windowSeconds_ / (kWindowCalls - 1);
  callInWindow_ = 0;
  windowSeconds_ = 0;
  if (++window_ == 2 * kTrialWindows)
    endTrial();
}

void ThreadChoice::endTrial() {
  // Ties go to one thread: it leaves the other cores free.
  const bool team = median(perCallTeam_) < median(perCallAlone_);
  steadyLength_ = steadyLength_ == 0 || team != teamChosen_
                      ? kFirstSteadyCalls
                      : std::min(2 * steadyLength_, kMaxSteadyCalls);
  teamChosen_ = team;
  phase_ = Phase::Steady;
  steadyCalls_ = 0;
}

} // namespace mlpc
