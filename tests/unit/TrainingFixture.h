// An example model with the names dataset, for tests that train it. Where
// names.txt is not available the test case is reported as skipped (Skip.h);
// such tests are tagged [names].
#pragma once

#include "Skip.h"
#include "TestUtil.h"
#include "runtime/ModelRuntime.h"

#include <catch2/catch.hpp>

#include <memory>
#include <optional>
#include <random>
#include <vector>

namespace mlpc::test {

// `steps` training steps at lr 0.05 on random batches (ids below 27) drawn
// from `rng`; their losses. For comparing runtimes without names.txt.
inline std::vector<float> trainRandomSteps(ModelRuntime &rt, int steps, std::mt19937 &rng) {
  std::vector<int32_t> X(rt.batch() * rt.context()), Y(rt.batch());
  std::vector<float> losses;
  for (int step = 0; step < steps; ++step) {
    for (auto &x : X)
      x = static_cast<int32_t>(rng() % 27);
    for (auto &y : Y)
      y = static_cast<int32_t>(rng() % 27);
    auto loss = rt.trainStep(X.data(), Y.data(), 0.05f);
    REQUIRE(bool(loss));
    losses.push_back(*loss);
  }
  return losses;
}

// A runtime of `ast` on `threads` threads (0: auto) with the 26 letters'
// vocabulary and parameters from seed 5. For comparing thread counts
// without names.txt.
inline std::unique_ptr<ModelRuntime> threadedRuntime(const ModelAST &ast, DiagnosticEngine &diags,
                                                     unsigned threads) {
  ExecutionOptions execution;
  execution.threads = threads;
  auto rt = ModelRuntime::create(ast, buildVocabulary({"abcdefghijklmnopqrstuvwxyz"}), diags, {},
                                 execution);
  REQUIRE(bool(rt));
  (*rt)->initParams(5);
  return std::move(*rt);
}

struct TrainingFixture {
  std::string source;
  DiagnosticEngine diags; // refers to `source`: the fixture is neither copied nor moved
  ModelAST ast;
  std::optional<Dataset> data;

  explicit TrainingFixture(const std::string &example)
      : source(readFile(examplePath(example))), diags(example, source) {}
  TrainingFixture(const TrainingFixture &) = delete;
  TrainingFixture &operator=(const TrainingFixture &) = delete;

  // Parses the model and builds the dataset; false (the test is skipped)
  // when names.txt is missing.
  bool ready() {
    std::optional<std::string> names = namesFileOrSkip();
    if (!names)
      return false;
    ast = parseModel(source, diags);
    auto words = readWords(*names);
    REQUIRE(bool(words));
    auto built = buildDataset(*words, 3);
    REQUIRE(bool(built));
    data = std::move(*built);
    return true;
  }

  std::unique_ptr<ModelRuntime> runtime(const PipelineOptions &pipeline = {}) {
    auto rt = ModelRuntime::create(ast, data->vocab, diags, pipeline);
    REQUIRE(bool(rt));
    return std::move(*rt);
  }
};

} // namespace mlpc::test
