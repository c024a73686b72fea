// mlpc compile MODEL --train -o OUT.o [--weights CKPT]: a training object and
// its header (codegen/TrainingObject.h). The graphs are the ones `mlpc train`
// compiles: ModelRuntime's training graph (with --no-fuse, the same atomic
// graph) and its Stage::Infer graphs. The vocabulary comes from --data (or
// the default names file), or from the checkpoint's metadata with --weights.
#include "tools/CompileCommand.h"
#include "tools/OutputFlags.h"

#include "codegen/TrainingObject.h"
#include "frontend/Overrides.h"
#include "passes/BatchNormState.h"
#include "runtime/Safetensors.h"

#include <llvm/Support/Path.h>
#include <llvm/TargetParser/Host.h>

#include <fmt/format.h>

namespace mlpc {
namespace {

// Everything emitTrainingModule needs, owning what TrainingModel points to.
struct PreparedTraining {
  std::unique_ptr<ModelFile> file;
  std::unique_ptr<ModelRuntime> runtime;
  Graph block, row, calibrate;
  TensorMap weights;
  bool hasWeights = false;
  TrainingModel model;
};

std::optional<Graph> inferenceGraph(PreparedTraining &p, int64_t rows,
                                    const PipelineOptions &pipe) {
  LoweringOptions options;
  options.vocab = static_cast<int64_t>(p.runtime->vocab().size());
  options.dimOverrides[p.runtime->module().batchDim] = rows;
  options.inferenceOnly = true;
  std::optional<Module> lowered = p.file->lower(options);
  if (!lowered)
    return std::nullopt;
  return runPipeline(lowered->graph, Stage::Infer, pipe, p.file->diags());
}

llvm::Expected<Vocabulary> trainingVocabulary(const ParsedArgs &args) {
  auto weights = args.get("--weights");
  if (weights && !args.get("--data")) {
    auto file = readSafetensors(*weights);
    if (!file)
      return file.takeError();
    auto it = file->metadata.find("vocab");
    if (it != file->metadata.end() && !it->second.empty() && it->second[0] == '.') {
      Vocabulary v;
      v.itos = it->second;
      return v;
    }
  }
  auto path = namesFilePath(args);
  if (!path)
    return path.takeError();
  auto words = readWords(*path);
  if (!words)
    return words.takeError();
  return buildVocabulary(*words);
}

// Heap-allocated: `model` points into it.
std::unique_ptr<PreparedTraining> prepareTraining(const ParsedArgs &args) {
  auto owner = std::make_unique<PreparedTraining>();
  PreparedTraining &p = *owner;
  std::string weightsPath = args.getOr("--weights", "");
  auto file = openModel(args, weightsPath);
  if (!file) {
    reportError(file.takeError());
    return nullptr;
  }
  p.file = std::move(*file);
  if (!p.file->parsedCleanly()) {
    p.file->flushDiagnostics();
    return nullptr;
  }
  auto vocab = trainingVocabulary(args);
  if (!vocab) {
    reportError(vocab.takeError());
    return nullptr;
  }
  PipelineOptions pipe;
  pipe.fuse = !args.has("--no-fuse");
  auto runtime = ModelRuntime::create(p.file->ast(), *vocab, p.file->diags(), pipe);
  p.file->flushDiagnostics();
  if (!runtime) {
    reportError(runtime.takeError());
    return nullptr;
  }
  p.runtime = std::move(*runtime);
  if (!weightsPath.empty()) {
    if (llvm::Error e = p.runtime->loadParams(weightsPath)) {
      reportError(std::move(e));
      return nullptr;
    }
    p.weights = p.runtime->params();
    p.hasWeights = true;
  }
  const int64_t blockRows = kInferenceBlockRows;
  auto block = inferenceGraph(p, blockRows, pipe);
  auto row = block ? inferenceGraph(p, 1, pipe) : std::optional<Graph>();
  p.file->flushDiagnostics();
  if (!block || !row)
    return nullptr;
  p.block = std::move(*block);
  p.row = std::move(*row);
  p.calibrate = p.block;
  TrainingModel &m = p.model;
  for (ValueId v = 0; v < p.calibrate.size(); ++v)
    if (p.calibrate[v].op == Op::BatchNormInfer) {
      std::string layer = batchNormStateName(p.calibrate, v);
      m.bnLayers.push_back(layer);
      p.calibrate.setOutput({"bn_input." + layer, p.calibrate[v].operands[0],
                             OutputRole::BatchNormInput, p.calibrate[v].operands[3],
                             p.calibrate[v].operands[4]});
    }
  const Module &module = p.runtime->module();
  m.name = module.name;
  m.train = &p.runtime->trainingGraph();
  m.block = &p.block;
  m.row = &p.row;
  m.calibrate = &p.calibrate;
  m.blockRows = blockRows;
  m.schedule = module.train.schedule;
  m.warmup = module.train.warmup;
  m.steps = module.train.steps;
  m.weights = p.hasWeights ? &p.weights : nullptr;
  return owner;
}

} // namespace

int runCompileTrain(const ParsedArgs &args) {
  auto out = args.get("-o");
  if (!out)
    return reportError("mlpc compile needs -o OUT.o");
  if (llvm::Error e = checkOutputFlags(args, {"-o"}))
    return reportError(std::move(e));
  if (args.has("--weights-external"))
    return reportError("--weights-external is for inference objects; a training object keeps "
                       "its parameters in the caller's state");
  std::string headerPath = replaceExtension(*out, "h");
  if (headerPath == *out)
    return reportError(fmt::format("-o {} would be overwritten by the header; name the object "
                                   "OUT.o",
                                   *out));
  std::unique_ptr<PreparedTraining> prepared = prepareTraining(args);
  if (!prepared)
    return kExitUserError;
  // Every optimizer is graph code, hence in the object; the cosine decay
  // would need cos() in the object, which takes no library calls.
  if (prepared->runtime->module().train.cosineMinLr)
    return reportError("a training object does not compute the cosine decay (it calls no libm): "
                       "drive the rate with M_set_lr from the program instead");
  auto layout = checkTrainingModel(prepared->model);
  if (!layout)
    return reportError(layout.takeError());
  CompileOptions options;
  options.triple = args.getOr("--target", "");
  options.cpu = args.getOr("--cpu", "");
  auto object = emitTrainingModule(prepared->model, options, TrainingEmit::Object);
  if (!object)
    return reportError(object.takeError());
  TrainingHeaderInfo info;
  info.vocab = prepared->runtime->vocab().itos;
  info.modelPath = args.positional[0];
  info.weightsPath = args.getOr("--weights", "");
  info.dims = prepared->runtime->shapeDims();
  if (!prepared->file->ast().overrides.empty())
    info.overrides = encodeOverrides(prepared->file->ast().overrides);
  info.headerFile = llvm::sys::path::filename(headerPath).str();
  info.objectFile = llvm::sys::path::filename(*out).str();
  info.target = fmt::format(
      "{}, cpu {}", options.triple.empty() ? llvm::sys::getProcessTriple() : options.triple,
      !options.cpu.empty()     ? options.cpu
      : options.triple.empty() ? llvm::sys::getHostCPUName().str() + " (and the host's features)"
                               : std::string("generic"));
  std::string header = trainingHeader(prepared->model, *layout, info);
  if (llvm::Error e = writeFilesAtomically({{*out, std::move(*object)}, {headerPath, header}}))
    return reportError(std::move(e));
  return kExitOk;
}

} // namespace mlpc
