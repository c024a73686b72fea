// `mlpc train --no-fuse`: the training step differentiates the atomic ops, but
// calibration, evaluation and sampling (inference, which always fuses) must
// work as for the fused model. Oracle: the fused run of the same model, whose
// gradients are the same closed forms up to f32 rounding.
#include "TrainingFixture.h"
#include "runtime/Trainer.h"

#include <catch2/catch.hpp>

#include <filesystem>

using namespace mlpc;

TEST_CASE("an unfused model trains, evaluates and samples like the fused one",
          "[training][pipeline][names]") {
  test::TrainingFixture f("makemore_atomic.mlp");
  if (!f.ready())
    return;
  const Dataset *data = &*f.data;

  struct Result {
    SplitLosses losses;
    std::vector<std::string> names;
  };
  auto run = [&](bool fuse) {
    PipelineOptions pipeline;
    pipeline.fuse = fuse;
    auto model = f.runtime(pipeline);
    // Unfused, the step does not update the running statistics (the driver
    // then calibrates before every checkpoint).
    CHECK(model->tracksRunningStats() == fuse);
    model->initParams(42);
    TrainOptions options;
    options.steps = 300;
    options.reportEvery = 1000000;
    std::string out;
    llvm::raw_string_ostream progress(out);
    REQUIRE(bool(trainModel(*model, data->train, options, progress)));
    REQUIRE_FALSE(bool(model->calibrate(data->train)));
    auto losses = model->losses(*data);
    REQUIRE(bool(losses));
    auto names = model->sample(5, 7);
    REQUIRE(bool(names));
    return Result{*losses, *names};
  };
  Result fused = run(true), unfused = run(false);
  CHECK(unfused.losses.val == Approx(fused.losses.val).epsilon(1e-3));
  CHECK(unfused.losses.train == Approx(fused.losses.train).epsilon(1e-3));
  CHECK(fused.losses.val < 2.7); // it learned something in 300 steps
  // Names, not one letter repeated to the length cap (what one-row inference
  // gave when it normalised the row by its own statistics).
  for (const Result *r : {&fused, &unfused})
    for (const std::string &name : r->names)
      CHECK(name.size() < 20);
}
