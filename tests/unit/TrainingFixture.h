// An example model with the names dataset, for tests that train it. Tests
// skip (with a warning) where names.txt is not available.
#pragma once

#include "TestUtil.h"
#include "runtime/ModelRuntime.h"

#include <catch2/catch.hpp>

#include <filesystem>
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

  // Parses the model and builds the dataset; false when names.txt is missing.
  bool ready() {
    if (!std::filesystem::exists(MLPC_DATA_FILE)) {
      WARN("names.txt not found; skipped");
      return false;
    }
    ast = parseModel(source, diags);
    auto words = readWords(MLPC_DATA_FILE);
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
