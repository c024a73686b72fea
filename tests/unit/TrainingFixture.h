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

namespace mlpc::test {

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
