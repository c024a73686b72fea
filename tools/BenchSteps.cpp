// tools/BenchSteps.h.
#include "tools/BenchSteps.h"

#include <algorithm>

namespace mlpc {

llvm::Error runTrainSteps(ModelRuntime &model, const BatchSampler &sampler, Rng &rng,
                          int64_t steps) {
  const int64_t batch = model.batch();
  std::vector<int32_t> X(batch * model.context()), Y(batch);
  for (int64_t s = 0; s < steps; ++s) {
    sampler.sample(rng, batch, X.data(), Y.data());
    if (auto loss = model.trainStep(X.data(), Y.data(), 0.01f); !loss)
      return loss.takeError();
  }
  return llvm::Error::success();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n == 0 ? 0 : n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

} // namespace mlpc
