// Pieces shared by the timing commands: `mlpc bench`, its --profile
// (StepProfile) and --compare-threads (BenchThreads).
#pragma once

#include "runtime/BatchSampler.h"
#include "runtime/ModelRuntime.h"
#include "runtime/Rng.h"

#include <llvm/Support/Error.h>

#include <vector>

namespace mlpc {

// `steps` training steps exactly as `mlpc train` runs them: a minibatch
// drawn with `rng`, then the step (learning rate 0.01).
llvm::Error runTrainSteps(ModelRuntime &model, const BatchSampler &sampler, Rng &rng,
                          int64_t steps);

// The median (mean of the middle two for an even count; 0 for none).
double median(std::vector<double> values);

} // namespace mlpc
