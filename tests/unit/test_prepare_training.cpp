// ModelRuntime::prepareTraining: the training step compiled on a background
// thread while the caller initialises or loads the parameters, evaluates, or
// re-initialises after a step, trains bit-identically to the step compiled
// on first use. The oracle is the runtime without prepareTraining, whose
// step test_jit_examples.cpp checks against the f64 interpreter. A step that
// kept the bindings of the parameters it was compiled next to (initParams
// replaces them) would train stale buffers and fail every comparison.
#include "TestUtil.h"
#include "runtime/ModelRuntime.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <random>

using namespace mlpc;

namespace {

enum class Order { Lazy, Prepared, PreparedEvalFirst, PreparedStepThenReinit };

struct Run {
  std::vector<float> losses;
  TensorMap params;
  std::vector<float> logits;
};

std::vector<int32_t> randomIds(std::mt19937 &rng, size_t count) {
  std::vector<int32_t> ids(count);
  for (auto &x : ids)
    x = static_cast<int32_t>(rng() % 27);
  return ids;
}

Run train(const ModelAST &ast, DiagnosticEngine &diags, Order order) {
  Vocabulary vocab = buildVocabulary({"abcdefghijklmnopqrstuvwxyz"});
  ExecutionOptions execution;
  execution.threads = 1;
  auto created = ModelRuntime::create(ast, vocab, diags, {}, execution);
  REQUIRE(bool(created));
  ModelRuntime &rt = **created;
  const int64_t batch = rt.batch(), context = rt.context();
  if (order != Order::Lazy)
    rt.prepareTraining();
  std::mt19937 rng(11);
  std::vector<int32_t> evalRows = randomIds(rng, ModelRuntime::kEvalRows * context);
  if (order == Order::PreparedEvalFirst) { // compiles eval while the step may still compile
    rt.initParams(5);
    REQUIRE(bool(rt.logits(evalRows.data(), ModelRuntime::kEvalRows)));
  }
  if (order == Order::PreparedStepThenReinit) { // a step on other parameters first
    rt.initParams(99);
    std::vector<int32_t> X = randomIds(rng, batch * context), Y = randomIds(rng, batch);
    REQUIRE(bool(rt.trainStep(X.data(), Y.data(), 0.05f)));
  }
  rt.initParams(5);
  std::mt19937 data(7);
  Run run;
  for (int step = 0; step < 4; ++step) {
    std::vector<int32_t> X = randomIds(data, batch * context), Y = randomIds(data, batch);
    auto loss = rt.trainStep(X.data(), Y.data(), 0.05f);
    REQUIRE(bool(loss));
    run.losses.push_back(*loss);
  }
  run.params = rt.params();
  auto logits = rt.logits(evalRows.data(), ModelRuntime::kEvalRows);
  if (!logits)
    FAIL(llvm::toString(logits.takeError()));
  run.logits.assign(*logits, *logits + ModelRuntime::kEvalRows * 27);
  return run;
}

} // namespace

TEST_CASE("a step compiled in the background trains the same bits", "[runtime][jit]") {
  std::string source = test::readFile(test::examplePath("makemore.mlp"));
  DiagnosticEngine diags{"makemore.mlp", source};
  ModelAST ast = parseModel(source, diags);
  REQUIRE_FALSE(diags.hasErrors());
  Run lazy = train(ast, diags, Order::Lazy);
  for (Order order : {Order::Prepared, Order::PreparedEvalFirst, Order::PreparedStepThenReinit}) {
    INFO("order " << static_cast<int>(order));
    Run run = train(ast, diags, order);
    CHECK(run.losses == lazy.losses);
    CHECK(run.logits == lazy.logits);
    for (auto &[name, values] : lazy.params) {
      INFO(name);
      CHECK(run.params.at(name) == values);
    }
  }
}

TEST_CASE("prepareTraining after the step compiled, or twice, does nothing", "[runtime][jit]") {
  std::string source = test::readFile(test::examplePath("makemore.mlp"));
  DiagnosticEngine diags{"makemore.mlp", source};
  ModelAST ast = parseModel(source, diags);
  REQUIRE_FALSE(diags.hasErrors());
  Vocabulary vocab = buildVocabulary({"abcdefghijklmnopqrstuvwxyz"});
  auto created = ModelRuntime::create(ast, vocab, diags);
  REQUIRE(bool(created));
  ModelRuntime &rt = **created;
  rt.prepareTraining();
  rt.prepareTraining();
  rt.initParams(5);
  std::vector<int32_t> X(rt.batch() * rt.context(), 1), Y(rt.batch(), 2);
  auto first = rt.trainStep(X.data(), Y.data(), 0.0f);
  REQUIRE(bool(first));
  rt.prepareTraining();
  auto second = rt.trainStep(X.data(), Y.data(), 0.0f); // lr 0: the same parameters
  REQUIRE(bool(second));
  CHECK(*second == *first);
  CHECK(std::isfinite(*first));
}
