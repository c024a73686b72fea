// Any scalar loss trains (issue 13): a loss that is not a cross-entropy of
// logits trains, evaluates its splits and calibrates; sampling says it needs
// logits. The split loss is checked against the f64 interpreter running the
// inference graph over the same rows in one block.
#include "Skip.h"
#include "TestUtil.h"
#include "ir/Interpreter.h"
#include "runtime/ModelRuntime.h"
#include "runtime/Trainer.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>

using namespace mlpc;

namespace {

// makemore with a BatchNorm, and as loss the log-sum-exp cross-entropy plus
// an activation penalty: fusion turns the cross-entropy part into
// cross_entropy, but the loss itself has no logits.
const char *kPenalised = R"(model penalised
dim V = vocab
dim T = 3
dim E = 10
dim H = 64
dim N = batch
input  X : i32[N, T]
target Y : i32[N]
param C  : [V, E]   = randn
param W1 : [T*E, H] = randn * (5/3) / sqrt(T*E)
param g  : [H]      = ones
param b  : [H]      = zeros
param W2 : [H, V]   = randn * 0.1
param b2 : [V]      = zeros
forward {
  h      = tanh(batchnorm(reshape(C[X], [N, T*E]) @ W1, g, b))
  logits = h @ W2 + b2
  ce     = mean(reshape(logsumexp(logits, 1), [N]) - pick(logits, Y))
  loss   = ce + 0.01 * mean(h * h)
}
train {
  batch 32
}
)";

} // namespace

TEST_CASE("a scalar loss without logits trains, evaluates and calibrates",
          "[runtime][loss][names]") {
  std::optional<std::string> namesPath = test::namesFileOrSkip();
  if (!namesPath)
    return;
  std::string source = kPenalised;
  DiagnosticEngine diags("penalised.mlp", source);
  ModelAST ast = parseModel(source, diags);
  auto words = readWords(*namesPath);
  REQUIRE(bool(words));
  auto data = buildDataset(*words, 3);
  REQUIRE(bool(data));
  auto rt = ModelRuntime::create(ast, data->vocab, diags);
  INFO(diags.render());
  REQUIRE(bool(rt));
  ModelRuntime &model = **rt;
  CHECK_FALSE(model.hasLogits());

  Rng rng(7);
  std::vector<int32_t> X(32 * 3), Y(32);
  const BatchSampler sampler(data->train, 3);
  double first = 0, last = 0;
  for (int step = 0; step < 400; ++step) {
    sampler.sample(rng, 32, X.data(), Y.data());
    auto loss = model.trainStep(X.data(), Y.data(), 0.1f);
    if (!loss)
      FAIL(llvm::toString(loss.takeError()));
    if (step < 50)
      first += *loss / 50;
    else if (step >= 350)
      last += *loss / 50;
  }
  CHECK(last < first - 0.3);

  // Split loss of 1000 rows (a 512-row block and a 488-row tail) against the
  // interpreter on the inference graph at 1000 rows.
  Split part;
  part.X.assign(data->val.X.begin(), data->val.X.begin() + 1000 * 3);
  part.Y.assign(data->val.Y.begin(), data->val.Y.begin() + 1000);
  if (llvm::Error e = model.calibrate(part))
    FAIL(llvm::toString(std::move(e)));
  auto loss = model.loss(part);
  if (!loss)
    FAIL(llvm::toString(loss.takeError()));
  LoweringOptions options;
  options.vocab = 27;
  options.dimOverrides["N"] = 1000;
  options.inferenceOnly = true;
  std::optional<Module> m = lowerModel(ast, options, diags);
  REQUIRE(m);
  Graph infer = test::stage(m->graph, Stage::Infer);
  REQUIRE(infer.output(OutputRole::Loss));
  std::map<std::string, std::vector<double>> leaves;
  for (const Node &n : infer.nodes) {
    if (n.op == Op::Input) {
      const std::vector<int32_t> &src = n.isTarget ? part.Y : part.X;
      leaves[n.name].assign(src.begin(), src.end());
    } else if (n.op == Op::Param || n.op == Op::State) {
      const std::vector<float> &p = model.params().at(n.name);
      leaves[n.name].assign(p.begin(), p.end());
    }
  }
  auto values = interpret(infer, leaves);
  REQUIRE(bool(values));
  double expected = (*values)[*infer.output(OutputRole::Loss)][0];
  CHECK(*loss == Approx(expected).epsilon(1e-4));

  // Every split (three tails of different sizes, one function each).
  auto all = model.losses(*data);
  if (!all)
    FAIL(llvm::toString(all.takeError()));
  CHECK(std::isfinite(all->train));
  CHECK(all->val == Approx(all->train).epsilon(0.1));

  auto names = model.sample(3, 1);
  REQUIRE_FALSE(bool(names));
  CHECK(llvm::toString(names.takeError()).find("needs the model's logits") != std::string::npos);
}
