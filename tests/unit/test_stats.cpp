// Training diagnostics (runtime/Stats.*): the statistics of the JIT stats
// step against the f64 interpreter, the zero-init claim of
// examples/zero_init.md, and that --stats does not change training.
#include "TestUtil.h"

#include "frontend/Parser.h"
#include "ir/Interpreter.h"
#include "runtime/Stats.h"
#include "runtime/Trainer.h"

#include <catch2/catch.hpp>
#include <llvm/Support/FileSystem.h>
#include <llvm/Support/MemoryBuffer.h>

#include <algorithm>
#include <cmath>
#include <memory>

using namespace mlpc;

namespace {

const char *kSmallModel = R"(
model small
dim V = vocab
dim T = 3
dim E = 4
dim H = 8
dim N = batch
input  X : i32[N, T]
target Y : i32[N]
param C   : [V, E]   = randn
param W1  : [T*E, H] = randn * (5/3) / sqrt(T*E)
param b1  : [H]      = randn * 0.1
param g1  : [H]      = 1 + randn * 0.1
param be1 : [H]      = randn * 0.1
param W2  : [H, H]   = randn * (5/3) / sqrt(H)
param b2  : [H]      = randn * 0.1
param W3  : [H, V]   = randn * 0.5
param b3  : [V]      = randn * 0.1
forward {
  emb    = reshape(C[X], [N, T*E])
  hpre   = emb @ W1 + b1
  h1     = tanh(batchnorm(hpre, g1, be1))
  h2     = relu(h1 @ W2 + b2)
  logits = h2 @ W3 + b3
  loss   = cross_entropy(logits, Y)
}
train {
  steps 10
  batch 16
  sgd lr 0.1
}
)";

// A model file and its runtime (the runtime keeps pointers to the AST and diagnostics).
struct Loaded {
  std::string source;
  std::unique_ptr<DiagnosticEngine> diags;
  ModelAST ast;
  std::unique_ptr<ModelRuntime> rt;
};

std::unique_ptr<Loaded> load(std::string source, const std::string &itos, uint64_t seed = 7) {
  auto l = std::make_unique<Loaded>();
  l->source = std::move(source);
  l->diags = std::make_unique<DiagnosticEngine>("t.mlp", l->source);
  l->ast = parseModel(l->source, *l->diags);
  REQUIRE(!l->diags->hasErrors());
  Vocabulary vocab;
  vocab.itos = itos;
  auto rt = ModelRuntime::create(l->ast, vocab, *l->diags);
  if (!rt)
    FAIL(llvm::toString(rt.takeError()) << "\n" << l->diags->render());
  l->rt = std::move(*rt);
  l->rt->initParams(seed);
  return l;
}

// The value of an Expected, or the test fails with its message.
template <typename T> T take(llvm::Expected<T> e) {
  if (!e)
    FAIL(llvm::toString(e.takeError()));
  return std::move(*e);
}

const std::string kLetters = ".abcdefghijklmnopqrstuvwxyz";

// A fixed pseudo-random batch (a simple LCG: the test needs no distribution).
void makeBatch(ModelRuntime &rt, uint32_t seed, std::vector<int32_t> &X, std::vector<int32_t> &Y) {
  int32_t vocab = static_cast<int32_t>(rt.vocab().size());
  X.resize(rt.batch() * rt.context());
  Y.resize(rt.batch());
  uint32_t s = seed * 2654435761u + 1;
  auto next = [&] { return static_cast<int32_t>(((s = s * 1664525u + 1013904223u) >> 8) % vocab); };
  for (int32_t &x : X)
    x = next();
  for (int32_t &y : Y)
    y = next();
}

// Leaves for the interpreter: the batch, the model's params and state.
std::map<std::string, std::vector<double>> leavesOf(const Graph &g, ModelRuntime &rt,
                                                    const std::vector<int32_t> &X,
                                                    const std::vector<int32_t> &Y) {
  std::map<std::string, std::vector<double>> leaves;
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node &n = g[v];
    if (n.op == Op::Input)
      leaves[n.name] = n.isTarget ? std::vector<double>(Y.begin(), Y.end())
                                  : std::vector<double>(X.begin(), X.end());
    else if (n.op == Op::Param || n.op == Op::State)
      leaves[n.name] =
          std::vector<double>(rt.params().at(n.name).begin(), rt.params().at(n.name).end());
  }
  return leaves;
}

const std::vector<double> &outputValue(const Graph &g, const Values &values,
                                       const std::string &name) {
  std::optional<ValueId> v = g.output(name);
  REQUIRE(v);
  return values[*v];
}

// |a - b| within `rel` of the tensor's scale (a mean near 0 has no relative accuracy of its own).
void checkClose(double jit, double oracle, double scale, const std::string &what) {
  INFO(what << ": jit " << jit << " vs interpreter " << oracle);
  CHECK(std::abs(jit - oracle) <= 1e-4 * std::max({std::abs(oracle), scale, 1e-12}));
}

void checkSummary(const TensorSummary &jit, const TensorSummary &oracle, const std::string &what) {
  double scale = std::max(oracle.std, std::max(std::abs(oracle.min), std::abs(oracle.max)));
  REQUIRE(jit.numel == oracle.numel);
  CHECK(jit.nonFinite == 0);
  checkClose(jit.mean, oracle.mean, scale, what + " mean");
  checkClose(jit.std, oracle.std, 0, what + " std");
  checkClose(jit.min, oracle.min, scale, what + " min");
  checkClose(jit.max, oracle.max, scale, what + " max");
  checkClose(jit.norm, oracle.norm, 0, what + " norm");
  CHECK(jit.zeroFraction == oracle.zeroFraction);
  CHECK(jit.saturated.has_value() == oracle.saturated.has_value());
  if (jit.saturated && oracle.saturated)
    CHECK(std::abs(*jit.saturated - *oracle.saturated) <=
          1.0 / jit.numel); // one entry at |x| ~ 0.97
  // Bin edges move with min/max by ~1e-7: an entry may fall into a neighbour.
  int64_t total = 0, moved = 0;
  for (size_t i = 0; i < jit.hist.counts.size(); ++i) {
    total += jit.hist.counts[i];
    moved += std::abs(jit.hist.counts[i] - oracle.hist.counts[i]);
  }
  CHECK(total == jit.numel);
  CHECK(moved <= 4);
}

} // namespace

TEST_CASE("summarize: moments, zeros, saturation, histogram", "[stats]") {
  std::vector<float> x = {0.0f, -0.0f, 0.5f, -0.98f, 0.99f, 2.0f, NAN};
  TensorSummary s = summarize(x.data(), x.size(), /*tanhOutput=*/true);
  CHECK(s.numel == 7);
  CHECK(s.nonFinite == 1);
  double mean = (0.5 - 0.98 + 0.99 + 2.0) / 6;
  CHECK(s.mean == Approx(mean));
  double var = 0;
  for (double v : {0.0, 0.0, 0.5, -0.98, 0.99, 2.0})
    var += (v - mean) * (v - mean);
  CHECK(s.std == Approx(std::sqrt(var / 5)));
  CHECK(s.zeroFraction == Approx(2.0 / 6));
  REQUIRE(s.saturated);
  CHECK(*s.saturated == Approx(3.0 / 6));
  CHECK(s.min == Approx(-0.98));
  CHECK(s.max == Approx(2.0));
  REQUIRE(s.hist.counts.size() == size_t(kStatsHistogramBins));
  CHECK(s.hist.counts.front() == 1); // -0.98
  CHECK(s.hist.counts.back() == 1);  // 2.0, the closed upper edge
  CHECK(!summarize(x.data(), 3).saturated);

  // A constant tensor: a spike at the centre of the middle bin.
  std::vector<double> zeros(10, 0.0);
  TensorSummary z = summarize(zeros.data(), zeros.size());
  double width = (z.hist.hi - z.hist.lo) / kStatsHistogramBins;
  CHECK(z.zeroFraction == 1.0);
  CHECK(z.std == 0.0);
  CHECK(z.hist.counts[kStatsHistogramBins / 2] == 10);
  CHECK(z.hist.lo + (kStatsHistogramBins / 2 + 0.5) * width == Approx(0.0).margin(1e-12));
}

TEST_CASE("stats step statistics match the f64 interpreter", "[stats]") {
  auto l = load(kSmallModel, kLetters.substr(0, 9));
  ModelRuntime &rt = *l->rt;
  std::vector<int32_t> X, Y;
  makeBatch(rt, 1, X, Y);
  DiagnosticEngine diags("t.mlp", "");
  std::optional<Graph> statsGraph = buildStatsGraph(rt.module().graph, {}, diags);
  REQUIRE(statsGraph);
  // The oracle: the stats graph and the gradient graph (the training graph
  // before the optimizer pass), in double, before the update.
  const Graph gradients = test::stage(rt.module().graph, Stage::Grad);
  Values statsValues = take(interpret(*statsGraph, leavesOf(*statsGraph, rt, X, Y)));
  Values trainValues = take(interpret(gradients, leavesOf(gradients, rt, X, Y)));
  TensorMap before = rt.params();

  const float lr = 0.1f;
  StatsRecorder recorder("small", 10, 1);
  float loss = take(recorder.step(rt, X.data(), Y.data(), lr, 0));
  CHECK(loss == Approx(outputValue(*statsGraph, statsValues, "loss")[0]).epsilon(1e-5));
  REQUIRE(recorder.records().size() == 1);
  const StatsRecord &r = recorder.records()[0];

  // Every named forward value, with dloss/dv for the nonlinearities.
  std::vector<std::string> layers;
  for (const LayerStats &layer : r.layers) {
    layers.push_back(layer.name);
    const std::vector<double> &value = outputValue(*statsGraph, statsValues, "act." + layer.name);
    checkSummary(layer.value, summarize(value.data(), value.size(), layer.op == "tanh"),
                 layer.name);
    CHECK(layer.grad.has_value() == (layer.op == "tanh" || layer.op == "relu"));
    if (layer.grad) {
      const std::vector<double> &grad =
          outputValue(*statsGraph, statsValues, "actgrad." + layer.name);
      checkSummary(*layer.grad, summarize(grad.data(), grad.size()), "d" + layer.name);
    }
  }
  CHECK(layers == std::vector<std::string>{"emb", "hpre", "h1", "h2", "logits"});
  REQUIRE(r.layers[2].value.saturated);

  // Parameter gradients: the stats graph's are the training graph's.
  REQUIRE(r.params.size() == 9);
  for (const ParamStats &p : r.params) {
    const std::vector<double> &grad = outputValue(gradients, trainValues, "grad." + p.name);
    const std::vector<double> &same = outputValue(*statsGraph, statsValues, "grad." + p.name);
    for (size_t i = 0; i < grad.size(); ++i)
      REQUIRE(same[i] == Approx(grad[i]).margin(1e-12));
    if (p.name == "b1") // it feeds a batchnorm, which removes the batch mean: a zero
      CHECK(p.grad.norm <
            1e-6); // gradient up to rounding (f64 ~1e-17, f32 ~1e-8), no scale to compare
    else
      checkSummary(p.grad, summarize(grad.data(), grad.size()), "grad." + p.name);
    const std::vector<float> &value = before.at(p.name);
    TensorSummary v = summarize(value.data(), value.size());
    CHECK(p.value.std == v.std);
    REQUIRE(p.updateToData);
    checkClose(*p.updateToData, lr * p.grad.std / v.std, 0, p.name + " update:data");
    // The update itself is train_step's: p -= lr * g.
    for (size_t i = 0; i < grad.size(); ++i)
      REQUIRE(rt.params().at(p.name)[i] == Approx(value[i] - lr * grad[i]).margin(1e-5));
  }
}

// examples/zero_init.md: with every W and b at zero (C random), only the
// output bias b6 ever receives a gradient; everything else is exactly zero,
// in the JIT (f32) and in the interpreter (f64) alike, at step 0 and later.
TEST_CASE("zero init: only the output bias gets a gradient", "[stats]") {
  std::string source = test::readFile(test::examplePath("deep_tanh_zero.mlp"));
  REQUIRE(!source.empty());
  auto l = load(source, kLetters, 42);
  ModelRuntime &rt = *l->rt;
  StatsRecorder recorder("deep_tanh_zero", 20, 1);
  const Graph gradients = test::stage(rt.module().graph, Stage::Grad); // no optimizer
  std::vector<int32_t> X, Y;
  for (int step = 0; step < 20; ++step) {
    makeBatch(rt, 100 + step, X, Y);
    if (step == 0 || step == 19) { // the f64 oracle at the first and the last step
      Values values = take(interpret(gradients, leavesOf(gradients, rt, X, Y)));
      for (ValueId p : gradients.leaves(Op::Param)) {
        const std::string &name = gradients[p].name;
        const std::vector<double> &grad = outputValue(gradients, values, "grad." + name);
        int64_t zeros = std::count(grad.begin(), grad.end(), 0.0);
        INFO("interpreter, step " << step << ", grad." << name);
        CHECK(zeros == (name == "b6" ? 0 : static_cast<int64_t>(grad.size())));
      }
    }
    float loss = take(recorder.step(rt, X.data(), Y.data(), 0.1f, step));
    if (step == 0)
      CHECK(loss == Approx(std::log(27.0)).epsilon(1e-6)); // uniform logits
    const StatsRecord &r = recorder.records().back();
    for (const ParamStats &p : r.params) {
      INFO("step " << step << ", grad." << p.name);
      if (p.name == "b6") {
        CHECK(p.grad.zeroFraction == 0.0);
        CHECK(p.grad.norm > 0.05);
      } else {
        CHECK(p.grad.zeroFraction == 1.0);
        CHECK(p.grad.norm == 0.0);
      }
    }
    for (const LayerStats &layer : r.layers) {
      INFO("step " << step << ", " << layer.name);
      if (layer.op != "tanh")
        continue;
      CHECK(layer.value.zeroFraction == 1.0); // tanh(0 @ W + 0) = 0 in every layer
      REQUIRE(layer.grad);
      CHECK(layer.grad->zeroFraction == 1.0); // dh = dnext @ W^T with W = 0
    }
  }
  for (ValueId p : rt.trainingGraph().leaves(Op::Param)) {
    const std::string &name = rt.trainingGraph()[p].name;
    const std::vector<float> &value = rt.params().at(name);
    if (name != "C" && name != "b6")
      CHECK(std::count(value.begin(), value.end(), 0.0f) == static_cast<int64_t>(value.size()));
  }
}

TEST_CASE("training with --stats follows the same trajectory", "[stats]") {
  std::string source = test::readFile(test::examplePath("mlp3_bn.mlp"));
  REQUIRE(!source.empty());
  Split data;
  {
    auto l = load(source, kLetters);
    for (int i = 0; i < 40; ++i) {
      std::vector<int32_t> X, Y;
      makeBatch(*l->rt, 1000 + i, X, Y);
      data.X.insert(data.X.end(), X.begin(), X.end());
      data.Y.insert(data.Y.end(), Y.begin(), Y.end());
    }
  }
  TrainOptions options;
  options.steps = 25;
  options.lr = 0.1;
  auto plain = load(source, kLetters, 3), withStats = load(source, kLetters, 3);
  take(trainModel(*plain->rt, data, options, llvm::nulls()));
  StatsRecorder recorder("mlp3_bn", options.steps, 4, &data, 10);
  options.stats = &recorder;
  take(trainModel(*withStats->rt, data, options, llvm::nulls()));
  CHECK(recorder.records().size() == 7); // steps 0, 4, ..., 24
  for (const auto &[name, value] : plain->rt->params()) {
    const std::vector<float> &other = withStats->rt->params().at(name);
    double worst = 0;
    for (size_t i = 0; i < value.size(); ++i)
      worst = std::max(worst, std::abs(double(value[i]) - other[i]) / (1 + std::abs(value[i])));
    INFO(name << ": largest difference " << worst);
    CHECK(worst <= 1e-6); // bitwise equal today; the bound leaves codegen room
  }

  // The JSON: every record, the loss windows, the val points (step 0 and the last).
  llvm::json::Value json = recorder.toJSON();
  const llvm::json::Object *o = json.getAsObject();
  REQUIRE(o);
  CHECK(o->getString("format") == "mlpc-stats/1");
  CHECK(o->getArray("records")->size() == 7);
  CHECK(o->getObject("train_loss")->getArray("mean")->size() == 3); // 10, 10, and the last 5 steps
  CHECK(o->getObject("val_loss")->getArray("step")->size() == 2);
  const llvm::json::Object *first = (*o->getArray("records"))[0].getAsObject();
  const llvm::json::Object *w1 = (*first->getArray("params"))[1].getAsObject();
  CHECK(w1->getString("name") == "W1");
  CHECK(w1->getObject("grad")->getObject("hist")->getArray("counts")->size() ==
        size_t(kStatsHistogramBins));
  CHECK(w1->getNumber("log10_update_to_data"));
  llvm::SmallString<128> path;
  REQUIRE(!llvm::sys::fs::createTemporaryFile("mlpc-stats", "json", path));
  if (llvm::Error e = recorder.write(path.str().str()))
    FAIL(llvm::toString(std::move(e)));
  auto buffer = llvm::MemoryBuffer::getFile(path);
  REQUIRE(buffer);
  auto parsed = llvm::json::parse((*buffer)->getBuffer());
  if (!parsed)
    FAIL(llvm::toString(parsed.takeError()));
  CHECK(*parsed == json);
  llvm::sys::fs::remove(path);
}
