// A lowered model: the forward graph plus everything the trainer needs.
#pragma once

#include "ir/Graph.h"

#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mlpc {

// From `sgd lr 0.1, 0.01 after 100000`: lr from step fromStep on.
struct LearningRatePhase {
  int64_t fromStep = 0;
  double lr = 0.1;
};

enum class OptimizerAlgorithm { SGD, Adam, AdamW };

// The optimizer of the train block (`sgd` / `adam` / `adamw` and options),
// with PyTorch's defaults; passes/Optimizer.cpp applies it.
struct OptimizerConfig {
  OptimizerAlgorithm algorithm = OptimizerAlgorithm::SGD;
  double momentum = 0, dampening = 0; // sgd
  bool nesterov = false;              // sgd
  double weightDecay = 0;             // sgd, adam: coupled (L2); adamw: decoupled
  double beta1 = 0.9, beta2 = 0.999;  // adam, adamw
  double eps = 1e-8;                  // adam, adamw
};

struct TrainConfig {
  int64_t steps = 10000;
  int64_t batch = 0;                       // leading dimension of the inputs
  std::vector<LearningRatePhase> schedule; // sorted by fromStep, first starts at 0
  OptimizerConfig optimizer; // SGD without momentum unless the train block says otherwise
  std::optional<double> clipGradNorm;
  int64_t warmup = 0;
  std::optional<double> cosineMinLr; // cosine decay after the warmup, to this rate

  // The rate of step t (0-based):
  //   base(t)  the step list's rate at t (`lr A, B after K`), 0.1 without one;
  //   warmup W: t < W            lr = base(t) * (t + 1) / W
  //   cosine:   t >= W           lr = min + (base(t) - min) * (1 + cos(pi t' / T')) / 2,
  //                              t' = t - W, T' = steps - W
  double learningRate(int64_t step) const {
    double lr = schedule.empty() ? 0.1 : schedule.front().lr;
    for (const LearningRatePhase &p : schedule)
      if (step >= p.fromStep)
        lr = p.lr;
    if (step < warmup)
      return lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
    if (cosineMinLr) {
      double progress = static_cast<double>(step - warmup) / static_cast<double>(steps - warmup);
      return *cosineMinLr + (lr - *cosineMinLr) * (1 + std::cos(M_PI * progress)) / 2;
    }
    return lr;
  }
};

struct Module {
  std::string name;
  // Forward graph: leaves (inputs, targets, params) and the output "loss".
  Graph graph;
  TrainConfig train;
  std::vector<std::pair<std::string, int64_t>> dims; // in declaration order
  std::string batchDim;                              // name of the inputs' leading dim
  int64_t contextLength = 0;                         // second dim of the first input (0 if none)

  std::optional<int64_t> dim(const std::string &dimName) const {
    for (auto &[n, v] : dims)
      if (n == dimName)
        return v;
    return std::nullopt;
  }
};

} // namespace mlpc
