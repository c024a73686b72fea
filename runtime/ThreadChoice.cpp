// runtime/ThreadChoice.h.
#include "runtime/ThreadChoice.h"

#include <algorithm>

namespace mlpc {
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
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
  (windowOnTeam() ? perCallTeam_ : perCallAlone_).push_back(windowSeconds_ / (kWindowCalls - 1));
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
  perCallTeam_.clear();
  perCallAlone_.clear();
  phase_ = Phase::Steady;
  steadyCalls_ = 0;
}

} // namespace mlpc
