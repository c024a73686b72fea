// The training loop: seeded minibatches, the learning-rate schedule, progress
// reporting and the CSV loss log. The step itself is the JIT-compiled
// train_step of a ModelRuntime.
#pragma once

#include "runtime/ModelRuntime.h"
#include "runtime/Stats.h"

#include <llvm/Support/raw_ostream.h>

#include <optional>
#include <string>

namespace mlpc {

struct TrainOptions {
  int64_t steps = 0;             // 0: the model's train block
  uint64_t seed = 42;            // minibatch sampling stream (params use their own)
  std::optional<double> lr;      // constant learning rate instead of the schedule
  int64_t reportEvery = 10000;   // plain progress lines when not on a terminal
  std::string logCsvPath;        // "step,loss,lr" for every step when non-empty
  bool terminal = false;         // draw a live progress bar instead of lines
  StatsRecorder *stats = nullptr; // when set, a stats step on the steps it says are due
};

struct TrainSummary {
  int64_t steps = 0;
  double seconds = 0;      // wall time of the step loop (sampling + step)
  double usPerStep = 0;
  float lastLoss = 0;
  double lastWindowMeanLoss = 0; // mean minibatch loss over the last report window
};

llvm::Expected<TrainSummary> trainModel(ModelRuntime &model, const Split &train,
                                        const TrainOptions &options, llvm::raw_ostream &progress);

} // namespace mlpc
