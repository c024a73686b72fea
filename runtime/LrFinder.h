// The learning-rate search of makemore part 2 (seed 004): one run of K
// minibatch steps with the rate rising exponentially from `lo` to `hi`
//   lre_k = log10(lo) + k * (log10(hi) - log10(lo)) / (K - 1),  lr_k = 10^lre_k
// (the seed's `lre = torch.linspace(-3, 0, 1000); lrs = 10**lre`), recording
// each step's minibatch loss. The parameters keep training across the steps,
// exactly as in the seed: the curve mixes "how good is this rate" with "how
// far has training got", which is why the seed reads it by eye.
//
// The suggestion (a rule, so scripts can use it): smooth the losses with a
// bias-corrected exponential moving average (beta 0.98, a window of ~50 steps,
// so one noisy minibatch of 32 rows does not decide), find the step where the
// smoothed loss is lowest, and suggest the rate one third of a decade (a
// factor ~2.15) below it. At the minimum, the rate is already as high as
// training tolerates at that point of the run: any higher and the loss rises.
// Backing off a little keeps the suggestion inside the stable region for a
// whole run, in which the loss landscape sharpens as training progresses.
// The moving average also lags the raw curve by about its window, which puts
// the smoothed minimum a little to the right of the true one: one more reason
// to back off. On makemore (seed 42) the smoothed minimum is at 0.354 and the
// suggestion 0.165; the seed picks 0.1 by eye from the same plot.
#pragma once

#include "runtime/ModelRuntime.h"

#include <llvm/Support/Error.h>

#include <vector>

namespace mlpc {

struct LrFindOptions {
  int64_t steps = 1000;
  double lo = 1e-3, hi = 1.0;
  uint64_t seed = 42; // parameter initialisation and minibatch sampling
  double beta = 0.98; // smoothing of the suggestion rule
};

struct LrFindResult {
  std::vector<double> lr;       // per step taken
  std::vector<float> loss;      // minibatch loss at that step (before its update)
  std::vector<double> smoothed; // bias-corrected EMA of `loss`
  double suggested = 0;
  double minSmoothedLr = 0;  // the rate at the smoothed minimum
  bool stoppedEarly = false; // the loss became non-finite or exploded (> 4x its minimum)
};

// The rate of step k of K (the closed form above).
double lrFindRate(int64_t k, const LrFindOptions &options);

// Checks lo < hi, both positive, steps >= 2.
llvm::Error validate(const LrFindOptions &options);

// Runs the search on freshly initialised parameters (the model is left
// trained to wherever the search got).
llvm::Expected<LrFindResult> findLearningRate(ModelRuntime &model, const Split &train,
                                              const LrFindOptions &options);

} // namespace mlpc
