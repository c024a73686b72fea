// The training object of `mlpc compile --train` (codegen/TrainingObject.h),
// from a model runtime: the graphs are the ones `mlpc train` compiles, the
// runtime's training graph and its Stage::Infer graphs (a block, one row,
// and the block with every BatchNorm input exposed for calibration). The
// driver (tools/CompileTrainCommand.cpp) and the Python module use it.
#pragma once

#include "codegen/TrainingObject.h"
#include "runtime/ModelFile.h"
#include "runtime/ModelRuntime.h"

#include <llvm/Support/Error.h>

#include <memory>

namespace mlpc {

// Everything emitTrainingModule needs beside the runtime's training graph.
// Heap-allocated: `model` points into it (and into the runtime).
struct TrainingBuild {
  Graph block, row, calibrate;
  TensorMap weights; // the initial values, when the object starts from weights
  TrainingModel model;
};

// `runtime` was created from `file` with `pipeline`. With `withWeights`,
// M_init copies the runtime's current parameters and statistics; without,
// it evaluates the init expressions. Model errors go to file.diags() (the
// error then says "the model has errors").
llvm::Expected<std::unique_ptr<TrainingBuild>> buildTraining(ModelFile &file, ModelRuntime &runtime,
                                                             const PipelineOptions &pipeline,
                                                             bool withWeights);

// Emits the object `out` and its header (`out` with extension .h), written
// atomically (runtime/InferenceBuild.h). `info` gives the comments' model
// and weights paths; vocabulary, dims, overrides, file names and target are
// filled in here.
llvm::Error writeTrainingFiles(const TrainingBuild &build, const ModelFile &file,
                               const ModelRuntime &runtime, const std::string &out,
                               const CompileOptions &options, TrainingHeaderInfo info);

} // namespace mlpc
