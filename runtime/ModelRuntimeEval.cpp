// Evaluation and sampling with a ModelRuntime: the loss of a split (by the
// compiled eval function, or by the inference graph's logits), BatchNorm
// calibration over a split, and sampling names (runtime/ModelRuntime.h).
#include "runtime/ModelRuntime.h"

#include "passes/BatchNormState.h"

#include <cmath>
#include <cstring>
#include <fmt/format.h>

namespace mlpc {
namespace {

llvm::Error fail(std::string message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

} // namespace

double crossEntropy(const float *logits, const int32_t *Y, int64_t rows, int64_t classes) {
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float *row = logits + r * classes;
    double mx = row[0];
    for (int64_t k = 1; k < classes; ++k)
      mx = std::max(mx, double(row[k]));
    double sum = 0;
    for (int64_t k = 0; k < classes; ++k)
      sum += std::exp(double(row[k]) - mx);
    total += std::log(sum) + mx - row[Y[r]];
  }
  return rows ? total / rows : 0.0;
}

llvm::Error ModelRuntime::bindEval(BoundFunction &fn, std::vector<int32_t> &X,
                                   std::vector<int32_t> &Y, int64_t rows) {
  X.assign(rows * context(), 0);
  Y.assign(rows, 0);
  for (const BindingInfo &b : fn.function().bindings())
    if (b.kind == BindingInfo::Kind::Input) {
      std::optional<ValueId> leaf = training_.findLeaf(Op::Input, b.name);
      bool target = leaf && training_[*leaf].isTarget;
      if (llvm::Error e = fn.bind(b.name, target ? Y.data() : X.data()))
        return e;
    }
  return fn.ready();
}

llvm::Error ModelRuntime::runEval(const int32_t *X, const int32_t *Y, int64_t rows) {
  if (!eval_) {
    auto fn = compiled(eval_, Stage::Infer, kEvalRows, false, "eval");
    if (!fn)
      return fn.takeError();
    if (llvm::Error e = bindEval(**fn, evalX_, evalY_, kEvalRows))
      return e;
  }
  std::memcpy(evalX_.data(), X, rows * context() * sizeof(int32_t));
  std::fill(evalX_.begin() + rows * context(), evalX_.end(), 0);
  if (Y)
    std::memcpy(evalY_.data(), Y, rows * sizeof(int32_t));
  std::fill(evalY_.begin() + (Y ? rows : 0), evalY_.end(), 0);
  eval_->run();
  return llvm::Error::success();
}

llvm::Error ModelRuntime::needLogits(const char *what) const {
  if (hasLogits_)
    return llvm::Error::success();
  return fail(fmt::format("{} needs the model's logits, and it has none: {}", what, kLogitsHelp));
}

llvm::Expected<const float *> ModelRuntime::logits(const int32_t *X, int64_t rows) {
  if (llvm::Error e = needLogits("computing logits"))
    return e;
  if (llvm::Error e = runEval(X, nullptr, rows))
    return e;
  return eval_->output(OutputRole::Logits);
}

// A loss that is not a cross-entropy of logits: the inference graph computes
// the loss itself, at kEvalRows rows and, for the split's tail, at its exact
// row count (no padding inside a mean). The split loss is the row-weighted
// mean of the block losses: exact for any loss that is a mean over rows.
llvm::Expected<double> ModelRuntime::graphLoss(const Split &split) {
  double total = 0;
  for (int64_t row = 0; row < split.rows(); row += kEvalRows) {
    int64_t n = std::min(kEvalRows, split.rows() - row);
    const int32_t *X = split.X.data() + row * context(), *Y = split.Y.data() + row;
    float loss = 0;
    if (n == kEvalRows) {
      if (llvm::Error e = runEval(X, Y, n))
        return e;
      loss = eval_->output(OutputRole::Loss)[0];
    } else {
      std::unique_ptr<BoundFunction> &tail = tailEval_[n];
      if (!tail) {
        // One function per row count, each under a JIT symbol of its own
        // (compiled() keeps it across initParams / loadParams).
        const std::string name = fmt::format("eval_tail_{}", n);
        auto fn = compiled(tail, Stage::Infer, n, false, name.c_str());
        if (!fn)
          return fn.takeError();
        if (llvm::Error e = bindEval(**fn, tailX_[n], tailY_[n], n))
          return e;
      }
      std::memcpy(tailX_[n].data(), X, n * context() * sizeof(int32_t));
      std::memcpy(tailY_[n].data(), Y, n * sizeof(int32_t));
      tail->run();
      loss = tail->output(OutputRole::Loss)[0];
    }
    total += double(loss) * n;
  }
  return split.rows() ? total / split.rows() : 0.0;
}

// On both cores, with the cross-entropy compiled too: see runtime/EvalLoss.h.
llvm::Expected<double> ModelRuntime::loss(const Split &split) {
  if (split.rows() == 0)
    return 0.0;
  if (!hasLogits_)
    return graphLoss(split);
  if (!eval_) // compiles and binds the eval function
    if (auto out = logits(split.X.data(), std::min(kEvalRows, split.rows())); !out)
      return out.takeError();
  if (!splitLoss_) {
    settleTrainCompile(); // the engine compiles one function at a time
    auto s = SplitLoss::create(*jit_, kEvalRows, static_cast<int64_t>(vocab_.size()));
    if (!s)
      return s.takeError();
    splitLoss_ = std::move(*s);
  }
  return splitLoss_->run(eval_->function(), params_, split, context());
}

llvm::Expected<SplitLosses> ModelRuntime::losses(const Dataset &data) {
  SplitLosses result;
  for (auto [split, out] :
       {std::pair{&data.train, &result.train}, std::pair{&data.val, &result.val},
        std::pair{&data.test, &result.test}}) {
    auto l = loss(*split);
    if (!l)
      return l.takeError();
    *out = *l;
  }
  return result;
}

llvm::Error ModelRuntime::calibrate(const Split &split) {
  if (split.rows() < 2)
    return llvm::Error::success();
  if (llvm::Error e = runEval(split.X.data(), split.Y.data(), 1))
    return e;
  // Layers in graph order: layer k's input depends on the statistics of layers
  // before it, so each pass over the split calibrates one more layer.
  std::vector<const BindingInfo *> layers;
  for (const BindingInfo &b : eval_->function().bindings())
    if (b.kind == BindingInfo::Kind::Output && b.role == OutputRole::BatchNormInput)
      layers.push_back(&b);
  for (const BindingInfo *layer : layers) {
    int64_t h = layer->type.shape[1];
    std::vector<double> sum(h, 0), sumSq(h, 0), shift(h, 0);
    int64_t count = 0;
    for (int64_t row = 0; row < split.rows(); row += kEvalRows) {
      int64_t n = std::min(kEvalRows, split.rows() - row);
      if (llvm::Error e = runEval(split.X.data() + row * context(), split.Y.data() + row, n))
        return e;
      const float *x = eval_->output(layer->name);
      // Shifted sums (by the first row) keep the variance accurate in double.
      if (row == 0)
        for (int64_t j = 0; j < h; ++j)
          shift[j] = x[j];
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < h; ++j) {
          double d = x[i * h + j] - shift[j];
          sum[j] += d;
          sumSq[j] += d * d;
        }
      count += n;
    }
    std::vector<float> &mean = params_[layer->subjects.at(0)];
    std::vector<float> &var = params_[layer->subjects.at(1)];
    for (int64_t j = 0; j < h; ++j) {
      double m = sum[j] / count;
      mean[j] = static_cast<float>(shift[j] + m);
      var[j] = static_cast<float>((sumSq[j] - count * m * m) / (count - 1));
    }
  }
  return llvm::Error::success();
}

llvm::Expected<std::vector<std::string>> ModelRuntime::sample(int count, uint64_t seed,
                                                              int maxLength) {
  if (llvm::Error e = needLogits("sampling"))
    return e;
  if (!forward_) {
    auto fn = compiled(forward_, Stage::Infer, 1, false, "forward");
    if (!fn)
      return fn.takeError();
    forwardX_.assign(context(), 0);
    for (const BindingInfo &b : (*fn)->function().bindings())
      if (b.kind == BindingInfo::Kind::Input)
        if (llvm::Error e = (*fn)->bind(b.name, forwardX_.data()))
          return e;
    if (llvm::Error e = (*fn)->ready())
      return e;
  }
  Rng rng(seed);
  int64_t classes = static_cast<int64_t>(vocab_.size());
  std::vector<double> probs(classes);
  std::vector<std::string> names;
  for (int i = 0; i < count; ++i) {
    std::fill(forwardX_.begin(), forwardX_.end(), 0);
    std::string name;
    while (static_cast<int>(name.size()) < maxLength) {
      forward_->run();
      const float *logits = forward_->output(OutputRole::Logits);
      double mx = *std::max_element(logits, logits + classes), total = 0;
      for (int64_t k = 0; k < classes; ++k)
        total += probs[k] = std::exp(logits[k] - mx);
      double u = rng.uniform() * total;
      int64_t next = classes - 1;
      for (int64_t k = 0; k < classes; ++k) {
        if (u < probs[k]) {
          next = k;
          break;
        }
        u -= probs[k];
      }
      if (next == 0)
        break;
      name += vocab_.itos[next];
      std::rotate(forwardX_.begin(), forwardX_.begin() + 1, forwardX_.end());
      forwardX_.back() = static_cast<int32_t>(next);
    }
    names.push_back(name);
  }
  return names;
}

} // namespace mlpc
