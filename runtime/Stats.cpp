#include "runtime/Stats.h"

#include <llvm/Support/FormatVariadic.h>
#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace mlpc {
namespace {

bool isNonlinearity(Op op) {
  return opInfo(op).has(opflag::Nonlinearity);
}

// Every value the loss depends on (the forward pass), as a mask over nodes.
std::vector<bool> forwardValues(const Graph &g) {
  std::vector<bool> seen(g.size(), false);
  std::vector<ValueId> stack;
  if (std::optional<ValueId> loss = g.output(OutputRole::Loss))
    stack.push_back(*loss);
  while (!stack.empty()) {
    ValueId v = stack.back();
    stack.pop_back();
    if (seen[v])
      continue;
    seen[v] = true;
    for (ValueId o : g[v].operands)
      stack.push_back(o);
  }
  return seen;
}

template <typename T> TensorSummary summarizeImpl(const T *data, int64_t n, bool tanhOutput) {
  TensorSummary s;
  s.numel = n;
  int64_t finite = 0, zeros = 0, saturated = 0;
  double sum = 0, sumSq = 0;
  s.min = std::numeric_limits<double>::infinity();
  s.max = -s.min;
  for (int64_t i = 0; i < n; ++i) {
    double x = data[i];
    if (!std::isfinite(x)) {
      ++s.nonFinite;
      continue;
    }
    ++finite;
    sum += x;
    sumSq += x * x;
    s.min = std::min(s.min, x);
    s.max = std::max(s.max, x);
    zeros += x == 0;
    saturated += std::abs(x) > kTanhSaturation;
  }
  s.hist.counts.assign(kStatsHistogramBins, 0);
  if (finite == 0) {
    s.min = s.max = 0;
    return s;
  }
  s.mean = sum / finite;
  // Second pass for the variance: sumSq - n*mean^2 cancels badly when |mean| >> std.
  double var = 0;
  for (int64_t i = 0; i < n; ++i) {
    double x = data[i];
    if (std::isfinite(x))
      var += (x - s.mean) * (x - s.mean);
  }
  s.std = finite > 1 ? std::sqrt(var / (finite - 1)) : 0.0;
  s.norm = std::sqrt(sumSq);
  s.zeroFraction = double(zeros) / finite;
  if (tanhOutput)
    s.saturated = double(saturated) / finite;
  // Bins over [min, max]. A constant tensor (all zeros, under zero init) gets
  // a range with its value at the centre of the middle bin, so that the plot
  // shows a spike exactly there.
  s.hist.lo = s.min;
  s.hist.hi = s.max;
  if (s.min == s.max) {
    double width = std::max(1.0, std::abs(s.min)), bin = width / kStatsHistogramBins;
    s.hist.lo = s.min - bin * (kStatsHistogramBins / 2) - bin / 2;
    s.hist.hi = s.hist.lo + width;
  }
  double scale = kStatsHistogramBins / (s.hist.hi - s.hist.lo);
  for (int64_t i = 0; i < n; ++i) {
    double x = data[i];
    if (!std::isfinite(x))
      continue;
    int64_t bin = static_cast<int64_t>((x - s.hist.lo) * scale);
    ++s.hist.counts[std::clamp<int64_t>(bin, 0, kStatsHistogramBins - 1)];
  }
  return s;
}

// JSON has no NaN or infinity: write null.
llvm::json::Value number(double x) {
  return std::isfinite(x) ? llvm::json::Value(x) : llvm::json::Value(nullptr);
}
llvm::json::Value number(std::optional<double> x) {
  return x ? number(*x) : llvm::json::Value(nullptr);
}

llvm::json::Value toJSON(const Shape &shape) {
  llvm::json::Array a;
  for (int64_t d : shape)
    a.push_back(d);
  return a;
}

llvm::json::Value toJSON(const TensorSummary &s) {
  llvm::json::Array counts;
  for (int64_t c : s.hist.counts)
    counts.push_back(c);
  llvm::json::Object o{{"numel", s.numel},
                       {"nonfinite", s.nonFinite},
                       {"mean", number(s.mean)},
                       {"std", number(s.std)},
                       {"min", number(s.min)},
                       {"max", number(s.max)},
                       {"norm", number(s.norm)},
                       {"zero_fraction", number(s.zeroFraction)},
                       {"hist", llvm::json::Object{{"lo", number(s.hist.lo)},
                                                   {"hi", number(s.hist.hi)},
                                                   {"counts", std::move(counts)}}}};
  if (s.saturated)
    o["saturated"] = number(*s.saturated);
  return o;
}

llvm::json::Value toJSON(const StatsRecord &r) {
  llvm::json::Array layers, params;
  for (const LayerStats &l : r.layers) {
    llvm::json::Object o{
        {"name", l.name}, {"op", l.op}, {"shape", toJSON(l.shape)}, {"value", toJSON(l.value)}};
    if (l.grad)
      o["grad"] = toJSON(*l.grad);
    layers.push_back(std::move(o));
  }
  for (const ParamStats &p : r.params) {
    std::optional<double> log10Ratio;
    if (p.updateToData && *p.updateToData > 0)
      log10Ratio = std::log10(*p.updateToData);
    params.push_back(llvm::json::Object{{"name", p.name},
                                        {"shape", toJSON(p.shape)},
                                        {"value", toJSON(p.value)},
                                        {"grad", toJSON(p.grad)},
                                        {"update_to_data", number(p.updateToData)},
                                        {"log10_update_to_data", number(log10Ratio)}});
  }
  return llvm::json::Object{{"step", r.step},
                            {"lr", number(r.lr)},
                            {"loss", number(r.loss)},
                            {"layers", std::move(layers)},
                            {"params", std::move(params)}};
}

llvm::json::Value curve(const std::vector<std::pair<int64_t, double>> &points,
                        const char *valueKey) {
  llvm::json::Array steps, values;
  for (auto [step, value] : points) {
    steps.push_back(step);
    values.push_back(number(value));
  }
  return llvm::json::Object{{"step", std::move(steps)}, {valueKey, std::move(values)}};
}

} // namespace

std::optional<Graph> buildStatsGraph(const Graph &forward, const PipelineOptions &options,
                                     DiagnosticEngine &diags) {
  Graph g = forward;
  const std::vector<bool> live = forwardValues(g); // a probe on a dead value would have no act.<v>
  for (ValueId v = 0; v < g.size(); ++v)
    g[v].probe = live[v] && !g[v].name.empty() && isNonlinearity(g[v].op);
  PipelineOptions withGradients = options;
  withGradients.keepGradients = true; // the statistics read them beside the updates
  std::optional<Graph> training = runPipeline(g, Stage::Grad, withGradients, diags);
  if (!training)
    return std::nullopt;
  std::vector<bool> inForward = forwardValues(*training);
  std::optional<ValueId> loss = training->output(OutputRole::Loss);
  for (ValueId v = 0; v < training->size(); ++v) {
    const Node &node = (*training)[v];
    if (inForward[v] && v != *loss && !node.name.empty() && opInfo(node.op).kind != OpKind::Leaf)
      training->setOutput("act." + node.name, v);
  }
  return training;
}

TensorSummary summarize(const float *data, int64_t n, bool tanhOutput) {
  return summarizeImpl(data, n, tanhOutput);
}
TensorSummary summarize(const double *data, int64_t n, bool tanhOutput) {
  return summarizeImpl(data, n, tanhOutput);
}

StatsRecorder::StatsRecorder(std::string model, int64_t steps, int64_t every, const Split *val,
                             int64_t lossEvery)
    : model_(std::move(model)), steps_(steps), every_(std::max<int64_t>(every, 1)),
      valEvery_(every_ * std::max<int64_t>(1, 10000 / every_)),
      lossEvery_(std::max<int64_t>(lossEvery, 1)), val_(val) {}

llvm::Expected<float> StatsRecorder::step(ModelRuntime &model, const int32_t *X, const int32_t *Y,
                                          float lr, int64_t step) {
  StatsRecord r;
  r.step = step;
  r.lr = lr;
  const Graph &g = model.trainingGraph();
  for (ValueId p : g.leaves(Op::Param)) {
    const std::vector<float> &value = model.params().at(g[p].name);
    r.params.push_back(
        {g[p].name, g[p].type.shape, summarize(value.data(), value.size()), {}, std::nullopt});
  }
  auto loss = model.statsStep(X, Y, lr);
  if (!loss)
    return loss.takeError();
  r.loss = *loss;
  const std::vector<StepTensor> &tensors = model.statsTensors();
  for (const StepTensor &t : tensors)
    if (t.kind == StepTensor::Kind::Activation)
      r.layers.push_back({t.name, opInfo(t.op).name, t.type.shape,
                          summarize(t.data, t.type.numel(), t.op == Op::Tanh), std::nullopt});
  for (const StepTensor &t : tensors) {
    if (t.kind == StepTensor::Kind::ActivationGrad) {
      for (LayerStats &l : r.layers)
        if (l.name == t.name)
          l.grad = summarize(t.data, t.type.numel());
    } else if (t.kind == StepTensor::Kind::ParamGrad) {
      for (ParamStats &p : r.params)
        if (p.name == t.name) {
          p.grad = summarize(t.data, t.type.numel());
          if (p.value.std > 0)
            p.updateToData = lr * p.grad.std / p.value.std;
        }
    }
  }
  records_.push_back(std::move(r));
  if (val_ && val_->rows() > 0 && (step % valEvery_ == 0 || step + 1 == steps_)) {
    auto valLoss = model.loss(*val_);
    if (!valLoss)
      return valLoss.takeError();
    valLoss_.push_back({step, *valLoss});
  }
  return *loss;
}

void StatsRecorder::addLoss(int64_t step, float loss) {
  windowSum_ += loss;
  if (++windowCount_ == lossEvery_) {
    trainLoss_.push_back({step, windowSum_ / windowCount_});
    windowSum_ = 0;
    windowCount_ = 0;
  }
}

llvm::json::Value StatsRecorder::toJSON() const {
  std::vector<std::pair<int64_t, double>> train = trainLoss_;
  if (windowCount_ > 0) { // the last, partial window
    int64_t last = trainLoss_.empty() ? windowCount_ - 1 : trainLoss_.back().first + windowCount_;
    train.push_back({last, windowSum_ / windowCount_});
  }
  llvm::json::Array records;
  for (const StatsRecord &r : records_)
    records.push_back(mlpc::toJSON(r));
  return llvm::json::Object{{"format", "mlpc-stats/1"},
                            {"model", model_},
                            {"steps", steps_},
                            {"stats_every", every_},
                            {"val_every", valEvery_},
                            {"histogram_bins", kStatsHistogramBins},
                            {"tanh_saturation", kTanhSaturation},
                            {"train_loss", curve(train, "mean")},
                            {"train_loss_window", lossEvery_},
                            {"val_loss", curve(valLoss_, "loss")},
                            {"records", std::move(records)}};
}

llvm::Error StatsRecorder::write(const std::string &path) const {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec)
    return llvm::createStringError(ec, fmt::format("cannot write '{}': {}", path, ec.message()));
  os << toJSON() << "\n";
  os.close();
  if (os.has_error()) {
    std::error_code error = os.error();
    os.clear_error(); // raw_fd_ostream aborts on destruction with an unchecked error
    return llvm::createStringError(error,
                                   fmt::format("cannot write '{}': {}", path, error.message()));
  }
  return llvm::Error::success();
}

} // namespace mlpc
