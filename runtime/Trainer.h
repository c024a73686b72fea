// The training loop: seeded minibatches, the learning-rate schedule, progress
// reporting and the CSV loss log. The step itself is the JIT-compiled
// train_step of a ModelRuntime.
#pragma once

#include "runtime/BatchSampler.h"
#include "runtime/BatchSequence.h"
#include "runtime/ModelRuntime.h"
#include "runtime/Stats.h"

#include <llvm/Support/raw_ostream.h>

#include <csignal>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace mlpc {

struct TrainOptions {
  int64_t steps = 0;              // 0: the model's train block
  uint64_t seed = 42;             // minibatch sampling stream (params use their own)
  std::optional<double> lr;       // constant learning rate instead of the schedule
  int64_t reportEvery = 10000;    // plain progress lines when not on a terminal
  std::string logCsvPath;         // "step,loss,lr" for every step when non-empty
  bool terminal = false;          // draw a live progress bar instead of lines
  StatsRecorder *stats = nullptr; // when set, a stats step on the steps it says are due

  // Crash safety. `checkpoint` writes the model (atomically) together with the
  // position in the run: `nextStep`, the first step not yet taken, and the
  // sampling stream's state, so a resumed run takes exactly the same batches.
  // It is called every `checkpointEvery` steps (0: never periodically) and
  // when `*stopRequested` becomes non-zero (SIGINT / SIGTERM), and never with
  // non-finite parameters, so the last checkpoint written is always good.
  std::function<llvm::Error(int64_t nextStep, const Rng::Snapshot &rng)> checkpoint;
  int64_t checkpointEvery = 0;
  const volatile std::sig_atomic_t *stopRequested = nullptr;
  // Called after every finished step with its minibatch loss (the Python
  // module's callbacks and Ctrl-C polling); it may set *stopRequested.
  std::function<void(int64_t step, float loss)> onStep;
  // Replay these minibatches (step t takes batch t) instead of sampling.
  const BatchSequence *batches = nullptr;
  // Resume: start at this step with this sampling stream (from a checkpoint).
  int64_t startStep = 0;
  std::optional<Rng::Snapshot> rngState;
};

struct TrainSummary {
  int64_t steps = 0;
  double seconds = 0; // wall time of the step loop (sampling + step)
  double usPerStep = 0;
  float lastLoss = 0;
  double lastWindowMeanLoss = 0; // mean minibatch loss over the last report window
  int64_t nextStep = 0;          // == the total steps unless interrupted
  bool interrupted = false;      // stopped by *stopRequested (a checkpoint was written)
  Rng::Snapshot rng;             // the sampling stream at nextStep
  std::string logError;          // why the --log CSV is incomplete; "" if written
};

// A diverged run (a non-finite loss, gradient or parameter) fails with an
// error that names the step and the first tensor that went non-finite, found
// by replaying the steps since the last in-memory snapshot with every
// activation and gradient exposed.

// Where a run stands, as stored in a checkpoint's metadata ("step", "seed",
// "rng"), so `--resume` continues with the same batches and schedule.
struct RunPosition {
  int64_t nextStep = 0;
  uint64_t seed = 0;
  Rng::Snapshot rng;
};
std::map<std::string, std::string> encodeRunPosition(const RunPosition &position);
llvm::Expected<RunPosition> decodeRunPosition(const std::map<std::string, std::string> &metadata,
                                              const std::string &path);

llvm::Expected<TrainSummary> trainModel(ModelRuntime &model, const Split &train,
                                        const TrainOptions &options, llvm::raw_ostream &progress);

} // namespace mlpc
