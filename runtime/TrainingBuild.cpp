#include "runtime/TrainingBuild.h"

#include "frontend/Overrides.h"
#include "passes/BatchNormState.h"
#include "runtime/InferenceBuild.h"

#include <llvm/Support/Path.h>
#include <llvm/TargetParser/Host.h>

#include <fmt/format.h>

namespace mlpc {
namespace {

std::optional<Graph> inferenceGraph(ModelFile &file, const ModelRuntime &runtime, int64_t rows,
                                    const PipelineOptions &pipeline) {
  LoweringOptions options;
  options.vocab = static_cast<int64_t>(runtime.vocab().size());
  options.dimOverrides[runtime.module().batchDim] = rows;
  options.inferenceOnly = true;
  std::optional<Module> lowered = file.lower(options);
  if (!lowered)
    return std::nullopt;
  return runPipeline(lowered->graph, Stage::Infer, pipeline, file.diags());
}

} // namespace

llvm::Expected<std::unique_ptr<TrainingBuild>> buildTraining(ModelFile &file, ModelRuntime &runtime,
                                                             const PipelineOptions &pipeline,
                                                             bool withWeights) {
  // Every optimizer is graph code, hence in the object; the cosine decay
  // would need cos() in the object, which makes no library calls.
  if (runtime.module().train.cosineMinLr)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "a training object does not compute the cosine decay (it calls no libm): drive the rate "
        "with M_set_lr from the program instead");
  auto owner = std::make_unique<TrainingBuild>();
  TrainingBuild &b = *owner;
  const int64_t blockRows = kInferenceBlockRows;
  auto block = inferenceGraph(file, runtime, blockRows, pipeline);
  auto row = block ? inferenceGraph(file, runtime, 1, pipeline) : std::optional<Graph>();
  if (!block || !row)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "the model has errors");
  b.block = std::move(*block);
  b.row = std::move(*row);
  b.calibrate = b.block;
  TrainingModel &m = b.model;
  for (ValueId v = 0; v < b.calibrate.size(); ++v)
    if (b.calibrate[v].op == Op::BatchNormInfer) {
      std::string layer = batchNormStateName(b.calibrate, v);
      m.bnLayers.push_back(layer);
      b.calibrate.setOutput({"bn_input." + layer, b.calibrate[v].operands[0],
                             OutputRole::BatchNormInput, b.calibrate[v].operands[3],
                             b.calibrate[v].operands[4]});
    }
  if (withWeights)
    b.weights = runtime.params();
  const Module &module = runtime.module();
  m.name = module.name;
  m.train = &runtime.trainingGraph();
  m.block = &b.block;
  m.row = &b.row;
  m.calibrate = &b.calibrate;
  m.blockRows = blockRows;
  m.schedule = module.train.schedule;
  m.warmup = module.train.warmup;
  m.steps = module.train.steps;
  m.weights = withWeights ? &b.weights : nullptr;
  return owner;
}

llvm::Error writeTrainingFiles(const TrainingBuild &build, const ModelFile &file,
                               const ModelRuntime &runtime, const std::string &out,
                               const CompileOptions &options, TrainingHeaderInfo info) {
  std::string headerPath = replaceExtension(out, "h");
  if (headerPath == out)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        fmt::format("-o {} would be overwritten by the header; name the object OUT.o", out));
  auto layout = checkTrainingModel(build.model);
  if (!layout)
    return layout.takeError();
  auto object = emitTrainingModule(build.model, options, TrainingEmit::Object);
  if (!object)
    return object.takeError();
  info.vocab = runtime.vocab().itos;
  info.dims = runtime.shapeDims();
  if (!file.ast().overrides.empty())
    info.overrides = encodeOverrides(file.ast().overrides);
  info.headerFile = llvm::sys::path::filename(headerPath).str();
  info.objectFile = llvm::sys::path::filename(out).str();
  info.target = fmt::format(
      "{}, cpu {}", options.triple.empty() ? llvm::sys::getProcessTriple() : options.triple,
      !options.cpu.empty()     ? options.cpu
      : options.triple.empty() ? llvm::sys::getHostCPUName().str() + " (and the host's features)"
                               : std::string("generic"));
  std::string header = trainingHeader(build.model, *layout, info);
  return writeFilesAtomically({{out, std::move(*object)}, {headerPath, std::move(header)}});
}

} // namespace mlpc
