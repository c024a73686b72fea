// Training diagnostics (`mlpc train --stats`): activation and gradient
// statistics of the seed notebooks, recorded every K steps.
//
// Plain training never pays for them: the train_step is unchanged. On a stats
// step the runtime runs a second function (ModelRuntime::statsStep) compiled
// from the graph buildStatsGraph() returns: the training graph plus outputs
//   of role Value (labelled act.<v>) for every named forward value v (layer
//                outputs: h1, hpreact, ...),
//   of role Adjoint (actgrad.<v>): dloss/dv for each named nonlinearity
//                output (tanh, sigmoid, relu): the "gradient distribution"
//                plot of the lectures,
// with each Gradient output also copied to a buffer. It is compiled with
// the SGD update, so the update is the very code train_step runs and the
// parameter trajectory is the same with or without --stats.
//
// The statistics are computed here in double from those buffers and written
// as JSON ("format": "mlpc-stats/1"):
//   model, steps, stats_every, val_every, histogram_bins, tanh_saturation
//   train_loss {step[], mean[]}: mean minibatch loss of each train_loss_window steps
//   val_loss   {step[], loss[]}: val split, inference mode, after that step's update
//   records[]  {step, lr, loss,
//     layers[] {name, op, shape, value: S, grad: S (nonlinearity outputs)},
//     params[] {name, shape, value: S (before the update), grad: S,
//               update_to_data, log10_update_to_data (null where value.std = 0)}}
//   S = {numel, nonfinite, mean, std, min, max, norm, zero_fraction,
//        saturated (tanh outputs), hist {lo, hi, counts[histogram_bins]}}
// Non-finite numbers are written as null.
#pragma once

#include "runtime/ModelRuntime.h"

#include <llvm/Support/Error.h>
#include <llvm/Support/JSON.h>

#include <optional>
#include <string>
#include <vector>

namespace mlpc {

constexpr int kStatsHistogramBins = 50;
constexpr double kTanhSaturation = 0.97; // |tanh| above this: a saturated unit (lecture 4)

// The stats graph of a lowered forward graph (see the top of this file).
// dloss/dv comes from autodiff itself: v is marked Node::probe, and autodiff
// outputs its adjoint (role Adjoint, subject v). The training part of the
// graph is exactly train_step's. Errors go to `diags`.
std::optional<Graph> buildStatsGraph(const Graph &forward, const PipelineOptions &options,
                                     DiagnosticEngine &diags);

struct Histogram {
  double lo = 0, hi = 0;       // bins split [lo, hi] evenly
  std::vector<int64_t> counts; // kStatsHistogramBins
};

// Statistics of one tensor, over its finite entries.
struct TensorSummary {
  int64_t numel = 0;
  int64_t nonFinite = 0;    // NaN / inf entries (left out of everything else)
  double mean = 0, std = 0; // std is Bessel-corrected, like torch.std
  double min = 0, max = 0;
  double norm = 0;                 // L2 norm
  double zeroFraction = 0;         // entries exactly 0 (either sign)
  std::optional<double> saturated; // tanh outputs: fraction with |x| > kTanhSaturation
  Histogram hist;
};

TensorSummary summarize(const float *data, int64_t n, bool tanhOutput = false);
TensorSummary summarize(const double *data, int64_t n, bool tanhOutput = false);

struct LayerStats {
  std::string name, op; // forward value and the op computing it ("tanh", "batchnorm", ...)
  Shape shape;
  TensorSummary value;
  std::optional<TensorSummary> grad; // nonlinearity outputs only
};

struct ParamStats {
  std::string name;
  Shape shape;
  TensorSummary value; // before this step's update: the point the gradient is taken at
  TensorSummary grad;
  // lr * grad.std / value.std (the lecture's update:data ratio); nullopt when
  // value.std is 0, e.g. a zero-initialised parameter.
  std::optional<double> updateToData;
};

struct StatsRecord {
  int64_t step = 0; // 0-based: step 0 is the first update
  double lr = 0;
  float loss = 0; // this step's minibatch loss
  std::vector<LayerStats> layers;
  std::vector<ParamStats> params;
};

// Collects the records, the train-loss curve and the val-loss points of one
// run, and writes them as JSON.
class StatsRecorder {
public:
  // A record every `every` steps (and at the last step); the val loss (if
  // `val` is given) every max(every, 10000) steps rounded to a record, and at
  // the last step; the train loss as means of `lossEvery`-step windows.
  // `val` is not copied: it must outlive the recorder.
  StatsRecorder(std::string model, int64_t steps, int64_t every, const Split *val = nullptr,
                int64_t lossEvery = 100);

  bool due(int64_t step) const { return step % every_ == 0 || step + 1 == steps_; }
  // Runs the stats step in place of the train step and records it; returns the loss.
  llvm::Expected<float> step(ModelRuntime &model, const int32_t *X, const int32_t *Y, float lr,
                             int64_t step);
  // Every step's minibatch loss (stats step or not), for the loss curve.
  void addLoss(int64_t step, float loss);

  const std::vector<StatsRecord> &records() const { return records_; }
  llvm::json::Value toJSON() const;
  llvm::Error write(const std::string &path) const;

private:
  std::string model_;
  int64_t steps_, every_, valEvery_, lossEvery_;
  const Split *val_;
  std::vector<StatsRecord> records_;
  std::vector<std::pair<int64_t, double>> trainLoss_, valLoss_; // (last step of window, mean)
  double windowSum_ = 0;
  int64_t windowCount_ = 0;
};

} // namespace mlpc
