// Crash-safe training: a run resumed from its checkpoint takes exactly the
// same steps as an uninterrupted one, and a diverging run stops with the step
// and the first non-finite tensor while the last checkpoint stays intact.
#include "TrainingFixture.h"
#include "frontend/Overrides.h"
#include "runtime/Checkpoint.h"
#include "runtime/Trainer.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>

using namespace mlpc;

namespace {

std::string tempPath(const char *name) {
  return (std::filesystem::temp_directory_path() / (std::string("mlpc_test_") + name)).string();
}

} // namespace

TEST_CASE("a resumed run equals an uninterrupted one", "[training][resume][names]") {
  // Every optimizer: the seed's SGD, SGD with momentum, and AdamW with
  // warmup, cosine decay and clipping (its state must be saved and restored).
  auto [example, setting] = GENERATE(table<const char *, const char *>(
      {{"makemore.mlp", ""},
       {"makemore.mlp", "sgd=lr 0.1 momentum 0.9 nesterov weight_decay 1e-4"},
       {"makemore_adamw.mlp", ""}}));
  INFO(example << " " << setting);
  test::TrainingFixture f(example);
  if (!f.ready())
    return;
  if (*setting) {
    auto o = parseOverride(setting);
    REQUIRE(bool(o));
    REQUIRE_FALSE(bool(applyOverrides(f.ast, {*o})));
  }
  TrainOptions options;
  options.steps = 400;
  options.seed = 7;
  options.reportEvery = 1000000;
  std::string out;
  llvm::raw_string_ostream progress(out);

  auto straight = f.runtime();
  straight->initParams(options.seed);
  REQUIRE(bool(trainModel(*straight, f.data->train, options, progress)));

  // First half, checkpointed through the same metadata path the driver uses.
  const std::string path = tempPath("resume.safetensors");
  auto first = f.runtime();
  first->initParams(options.seed);
  TrainOptions half = options;
  half.steps = 150;
  auto summary = trainModel(*first, f.data->train, half, progress);
  REQUIRE(bool(summary));
  REQUIRE_FALSE(bool(
      first->saveParams(path, encodeRunPosition({summary->nextStep, options.seed, summary->rng}))));

  auto resumed = f.runtime();
  std::map<std::string, std::string> metadata;
  REQUIRE_FALSE(bool(resumed->loadParams(path, &metadata, CheckpointUse::Resume)));
  auto position = decodeRunPosition(metadata, path);
  REQUIRE(bool(position));
  CHECK(position->nextStep == 150);
  TrainOptions rest = options;
  rest.startStep = position->nextStep;
  rest.rngState = position->rng;
  REQUIRE(bool(trainModel(*resumed, f.data->train, rest, progress)));

  for (auto &[name, values] : straight->params()) {
    INFO(name);
    CHECK(values == resumed->params()[name]); // bit for bit
  }
  std::remove(path.c_str());
}

TEST_CASE("a diverging run names the step and the first non-finite tensor",
          "[training][divergence][names]") {
  test::TrainingFixture f("makemore.mlp");
  if (!f.ready())
    return;
  const std::string path = tempPath("diverge.safetensors");
  auto model = f.runtime();
  model->initParams(1);
  TrainOptions options;
  options.steps = 1000;
  options.reportEvery = 1000000;
  options.checkpointEvery = 1;
  int written = 0;
  options.checkpoint = [&](int64_t nextStep, const Rng::Snapshot &rng) {
    ++written;
    return model->saveParams(path, encodeRunPosition({nextStep, 1, rng}));
  };
  std::string out;
  llvm::raw_string_ostream progress(out);
  // A sane first step (so a checkpoint exists), then an absurd learning rate.
  options.steps = 1;
  REQUIRE(bool(trainModel(*model, f.data->train, options, progress)));
  REQUIRE(written == 0); // a checkpoint is only written *between* steps of a run...
  REQUIRE_FALSE(bool(options.checkpoint(1, Rng(1).snapshot()))); // ...so write one by hand
  options.steps = 1000;
  options.startStep = 1;
  options.lr = 1e30;
  auto result = trainModel(*model, f.data->train, options, progress);
  REQUIRE_FALSE(bool(result));
  std::string message = llvm::toString(result.takeError());
  CHECK(message.find(
            "training diverged: at step 2 the first non-finite tensor is the activation 'hprebn' "
            "f32[32, 200]") != std::string::npos);
  // The checkpoint on disk is the last good one: finite, from step 2.
  std::map<std::string, std::string> metadata;
  auto reloaded = f.runtime();
  REQUIRE_FALSE(bool(reloaded->loadParams(path, &metadata)));
  CHECK(metadata["step"] == "2");
  for (auto &[name, values] : reloaded->params())
    for (float v : values)
      REQUIRE(std::isfinite(v));
  std::remove(path.c_str());
}
