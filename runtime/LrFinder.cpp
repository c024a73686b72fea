#include "runtime/LrFinder.h"

#include "runtime/Trainer.h"

#include <fmt/format.h>

#include <cmath>

namespace mlpc {
namespace {

llvm::Error fail(const std::string &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s", message.c_str());
}

// Beyond this multiple of the best smoothed loss the run has diverged: the
// rest of the curve says nothing more (the seed's plot ends in such a rise).
constexpr double kExplodeFactor = 4.0;
// The suggestion backs off from the smoothed minimum by this many decades.
constexpr double kBackOffDecades = 1.0 / 3.0;

} // namespace

double lrFindRate(int64_t k, const LrFindOptions &options) {
  double lo = std::log10(options.lo), hi = std::log10(options.hi);
  double exponent =
      lo + static_cast<double>(k) * (hi - lo) / static_cast<double>(options.steps - 1);
  return std::pow(10.0, exponent);
}

llvm::Error validate(const LrFindOptions &options) {
  if (options.steps < 2)
    return fail(
        fmt::format("the learning-rate search needs at least 2 steps, got {}", options.steps));
  if (!(options.lo > 0) || !(options.hi > options.lo) || !std::isfinite(options.hi))
    return fail(fmt::format("the learning-rate range needs 0 < lo < hi, got lo {} and hi {}",
                            options.lo, options.hi));
  return llvm::Error::success();
}

llvm::Expected<LrFindResult> findLearningRate(ModelRuntime &model, const Split &train,
                                              const LrFindOptions &options) {
  if (llvm::Error e = validate(options))
    return e;
  if (train.rows() == 0)
    return fail("the training split is empty");
  model.initParams(options.seed);
  Rng rng(options.seed);
  const int64_t batch = model.batch(), context = model.context();
  std::vector<int32_t> X(batch * context), Y(batch);
  const BatchSampler sampler(train, context);
  LrFindResult r;
  double average = 0, best = INFINITY, bestLr = options.lo;
  for (int64_t k = 0; k < options.steps; ++k) {
    double lr = lrFindRate(k, options);
    sampler.sample(rng, batch, X.data(), Y.data());
    auto loss = model.trainStep(X.data(), Y.data(), static_cast<float>(lr));
    if (!loss)
      return loss.takeError();
    if (!std::isfinite(*loss)) {
      r.stoppedEarly = true;
      break;
    }
    average = options.beta * average + (1 - options.beta) * *loss;
    double smoothed = average / (1 - std::pow(options.beta, static_cast<double>(k + 1)));
    r.lr.push_back(lr);
    r.loss.push_back(*loss);
    r.smoothed.push_back(smoothed);
    if (smoothed < best) {
      best = smoothed;
      bestLr = lr;
    }
    if (smoothed > kExplodeFactor * best) {
      r.stoppedEarly = true;
      break;
    }
  }
  if (r.lr.empty())
    return fail("the loss was not finite at the first step");
  r.minSmoothedLr = bestLr;
  r.suggested = std::max(options.lo, bestLr * std::pow(10.0, -kBackOffDecades));
  return r;
}

} // namespace mlpc
