// The optimizer pass (passes/Optimizer.cpp) against PyTorch's documented
// update rules, written out here in closed form: the training graph with the
// optimizer and the one without it are both run by the f64 interpreter on the
// same parameters, optimizer state, learning rate and step number; the
// write-back outputs must equal the closed form applied to the gradients.
// And the learning-rate schedules against their formulas.
#include "TestUtil.h"
#include "ir/Interpreter.h"

#include <catch2/catch.hpp>

#include <cmath>

using namespace mlpc;
using mlpc::test::lowerSource;

namespace {

const char *kModel = R"(model m
dim V = vocab
dim N = batch
input X : i32[N, 2]
target Y : i32[N]
param C : [V, 3] = randn
param W : [6, 5] = randn
forward {
  loss = cross_entropy(tanh(reshape(C[X], [N, 6])) @ W, Y)
}
train {
  steps 100
  batch 4
  %OPTIMIZER%
}
)";

using Leaves = std::map<std::string, std::vector<double>>;

std::vector<double> filled(size_t n, double start, double step) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = start + step * std::sin(1.0 + 3.7 * static_cast<double>(i)); // varied signs
  return v;
}

struct Step {
  Leaves leaves;
  std::map<std::string, std::vector<double>> grad; // without the optimizer
  Graph training;
  std::vector<std::vector<double>> values;

  std::vector<double> out(const std::string &name) const {
    auto id = training.output(name);
    REQUIRE(id);
    return values[*id];
  }
};

// Runs both graphs for `optimizer` with lr and t, states as given.
Step run(const std::string &optimizer, double lr, double t, const Leaves &state) {
  std::string source = kModel;
  source.replace(source.find("%OPTIMIZER%"), 11, optimizer);
  std::string errors;
  auto m = lowerSource(source, &errors, LoweringOptions{});
  INFO(errors);
  REQUIRE(m);
  Step s;
  s.leaves = {{"X", {1, 2, 3, 4, 5, 6, 7, 8}},
              {"Y", {0, 2, 4, 1}},
              {"C", filled(27 * 3, 0.0, 0.8)},
              {"W", filled(30, 0.1, 0.5)}};
  DiagnosticEngine diags("m.mlp", source);
  auto plain = runPipeline(m->graph, Stage::Grad, PipelineOptions{}, diags);
  REQUIRE(plain);
  auto gradValues = interpret(*plain, s.leaves);
  if (!gradValues)
    FAIL(llvm::toString(gradValues.takeError()));
  for (const char *p : {"C", "W"})
    s.grad[p] = (*gradValues)[*plain->output(std::string("grad.") + p)];
  PipelineOptions withOptimizer;
  withOptimizer.optimizer = &m->train;
  auto training = runPipeline(m->graph, Stage::Grad, withOptimizer, diags);
  REQUIRE(training);
  s.training = *training;
  Leaves all = s.leaves;
  all["optimizer.lr"] = {lr};
  all["optimizer.step"] = {t};
  for (ValueId v : training->leaves(Op::State)) {
    const std::string &name = (*training)[v].name;
    if (!all.count(name))
      all[name] = state.count(name) ? state.at(name)
                                    : std::vector<double>((*training)[v].type.numel(), 0.0);
  }
  auto values = interpret(*training, all);
  if (!values)
    FAIL(llvm::toString(values.takeError()));
  s.values = std::move(*values);
  return s;
}

void checkClose(const std::vector<double> &actual, const std::vector<double> &expected) {
  REQUIRE(actual.size() == expected.size());
  for (size_t i = 0; i < actual.size(); ++i)
    CHECK(actual[i] == Approx(expected[i]).epsilon(1e-12).margin(1e-15));
}

} // namespace

TEST_CASE("plain sgd: p - lr g", "[optimizer]") {
  Step s = run("sgd lr 0.1", 0.3, 7, {});
  for (const char *p : {"C", "W"}) {
    std::vector<double> want = s.leaves[p];
    for (size_t i = 0; i < want.size(); ++i)
      want[i] -= 0.3 * s.grad[p][i];
    checkClose(s.out(std::string("state.") + p), want);
  }
}

TEST_CASE("sgd momentum, dampening, nesterov, weight decay as torch.optim.SGD", "[optimizer]") {
  const double mu = 0.9, d = 0.2, wd = 0.01, lr = 0.05;
  // t = 1: the buffer is the (decayed) gradient itself, no dampening.
  Step first = run("sgd lr 0.1 momentum 0.9 dampening 0.2 weight_decay 0.01", lr, 1, {});
  // t = 3 from a given buffer: b = mu b + (1 - d) g.
  Leaves buffers = {{"W.momentum_buffer", filled(30, 0.0, 0.3)}};
  Step later = run("sgd lr 0.1 momentum 0.9 dampening 0.2 weight_decay 0.01", lr, 3, buffers);
  Step nesterov = run("sgd lr 0.1 momentum 0.9 nesterov weight_decay 0.01", lr, 3, buffers);
  std::vector<double> p = first.leaves["W"], g = first.grad["W"], b0 = buffers["W.momentum_buffer"];
  std::vector<double> b1(30), p1(30), b3(30), p3(30), bn(30), pn(30);
  for (size_t i = 0; i < 30; ++i) {
    double gd = g[i] + wd * p[i];
    b1[i] = gd;
    p1[i] = p[i] - lr * b1[i];
    b3[i] = mu * b0[i] + (1 - d) * gd;
    p3[i] = p[i] - lr * b3[i];
    bn[i] = mu * b0[i] + gd;
    pn[i] = p[i] - lr * (gd + mu * bn[i]);
  }
  checkClose(first.out("state.W.momentum_buffer"), b1);
  checkClose(first.out("state.W"), p1);
  checkClose(later.out("state.W.momentum_buffer"), b3);
  checkClose(later.out("state.W"), p3);
  checkClose(nesterov.out("state.W.momentum_buffer"), bn);
  checkClose(nesterov.out("state.W"), pn);
}

TEST_CASE("adam and adamw as torch.optim.Adam / AdamW, with bias correction", "[optimizer]") {
  const double b1 = 0.8, b2 = 0.95, eps = 1e-6, lr = 0.01, wd = 0.1, t = 5;
  Leaves moments = {{"W.exp_avg", filled(30, 0.0, 0.2)}, {"W.exp_avg_sq", filled(30, 0.5, 0.3)}};
  for (bool decoupled : {false, true}) {
    std::string line = std::string(decoupled ? "adamw" : "adam") +
                       " lr 0.1 betas 0.8 0.95 eps 1e-6 weight_decay 0.1";
    Step s = run(line, lr, t, moments);
    std::vector<double> p = s.leaves["W"], g = s.grad["W"];
    std::vector<double> m(30), v(30), next(30);
    for (size_t i = 0; i < 30; ++i) {
      double gi = decoupled ? g[i] : g[i] + wd * p[i];
      double base = decoupled ? p[i] * (1 - lr * wd) : p[i];
      m[i] = b1 * moments["W.exp_avg"][i] + (1 - b1) * gi;
      v[i] = b2 * moments["W.exp_avg_sq"][i] + (1 - b2) * gi * gi;
      double mhat = m[i] / (1 - std::pow(b1, t)), vhat = v[i] / (1 - std::pow(b2, t));
      next[i] = base - lr * mhat / (std::sqrt(vhat) + eps);
    }
    INFO(line);
    checkClose(s.out("state.W.exp_avg"), m);
    checkClose(s.out("state.W.exp_avg_sq"), v);
    checkClose(s.out("state.W"), next);
  }
}

TEST_CASE("clip_grad_norm scales every gradient by min(1, max / (norm + 1e-6))", "[optimizer]") {
  for (double maxNorm : {0.05, 1e6}) { // clipped, and far above the norm (unchanged)
    Step s = run("sgd lr 0.1\n  clip_grad_norm " + std::to_string(maxNorm), 1.0, 1, {});
    double total = 0;
    for (const char *p : {"C", "W"})
      for (double g : s.grad[p])
        total += g * g;
    double coef = std::min(1.0, maxNorm / (std::sqrt(total) + 1e-6));
    for (const char *p : {"C", "W"}) {
      std::vector<double> want = s.leaves[p];
      for (size_t i = 0; i < want.size(); ++i)
        want[i] -= coef * s.grad[p][i];
      checkClose(s.out(std::string("state.") + p), want);
    }
  }
}

TEST_CASE("warmup and cosine schedules follow their formulas", "[optimizer][schedule]") {
  TrainConfig c;
  c.steps = 1000;
  c.schedule = {{0, 3e-3}};
  c.warmup = 100;
  c.cosineMinLr = 1e-5;
  CHECK(c.learningRate(0) == Approx(3e-3 * 1 / 100));
  CHECK(c.learningRate(49) == Approx(3e-3 * 50 / 100));
  CHECK(c.learningRate(99) == Approx(3e-3));
  CHECK(c.learningRate(100) == Approx(3e-3));                     // t' = 0: cos 0 = 1
  CHECK(c.learningRate(550) == Approx(1e-5 + (3e-3 - 1e-5) / 2)); // halfway: cos(pi/2) = 0
  CHECK(c.learningRate(1000) == Approx(1e-5));
  double t = 777, progress = (t - 100) / 900;
  CHECK(c.learningRate(777) == Approx(1e-5 + (3e-3 - 1e-5) * (1 + std::cos(M_PI * progress)) / 2));
  TrainConfig steps; // the seed's step list keeps its meaning
  steps.schedule = {{0, 0.1}, {100000, 0.01}};
  CHECK(steps.learningRate(99999) == 0.1);
  CHECK(steps.learningRate(100000) == 0.01);
}
