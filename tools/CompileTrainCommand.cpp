// mlpc compile MODEL --train -o OUT.o [--weights CKPT]: a training object and
// its header (codegen/TrainingObject.h, runtime/TrainingBuild.h). The graphs
// are the ones `mlpc train` compiles: ModelRuntime's training graph (with
// --no-fuse, the same atomic graph) and its Stage::Infer graphs. The vocabulary comes from --data
// (or the default names file), or from the checkpoint's metadata with --weights.
#include "tools/CompileCommand.h"
#include "tools/OutputFlags.h"

#include "runtime/Safetensors.h"
#include "runtime/TrainingBuild.h"

#include <fmt/format.h>

namespace mlpc {
namespace {

// The model, its runtime, and the graphs of the object (runtime/TrainingBuild.h).
struct PreparedTraining {
  std::unique_ptr<ModelFile> file;
  std::unique_ptr<ModelRuntime> runtime;
  std::unique_ptr<TrainingBuild> build;
};

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
  auto words = readNamesFile(args);
  if (!words)
    return words.takeError();
  return buildVocabulary(*words);
}

std::optional<PreparedTraining> prepareTraining(const ParsedArgs &args) {
  PreparedTraining p;
  std::string weightsPath = args.getOr("--weights", "");
  auto file = openModel(args, weightsPath);
  if (!file) {
    reportError(file.takeError());
    return std::nullopt;
  }
  p.file = std::move(*file);
  if (!p.file->parsedCleanly()) {
    p.file->flushDiagnostics();
    return std::nullopt;
  }
  auto vocab = trainingVocabulary(args);
  if (!vocab) {
    reportError(vocab.takeError());
    return std::nullopt;
  }
  PipelineOptions pipe;
  pipe.fuse = !args.has("--no-fuse");
  auto runtime = ModelRuntime::create(p.file->ast(), *vocab, p.file->diags(), pipe);
  p.file->flushDiagnostics();
  if (!runtime) {
    reportError(runtime.takeError());
    return std::nullopt;
  }
  p.runtime = std::move(*runtime);
  if (!weightsPath.empty()) {
    if (llvm::Error e = p.runtime->loadParams(weightsPath)) {
      reportError(std::move(e));
      return std::nullopt;
    }
  }
  auto build = buildTraining(*p.file, *p.runtime, pipe, !weightsPath.empty());
  p.file->flushDiagnostics();
  if (!build) {
    if (p.file->diags().hasErrors())
      llvm::consumeError(build.takeError()); // printed above
    else
      reportError(build.takeError());
    return std::nullopt;
  }
  p.build = std::move(*build);
  return p;
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
  std::optional<PreparedTraining> prepared = prepareTraining(args);
  if (!prepared)
    return kExitUserError;
  CompileOptions options;
  options.triple = args.getOr("--target", "");
  options.cpu = args.getOr("--cpu", "");
  TrainingHeaderInfo info;
  info.modelPath = args.positional[0];
  info.weightsPath = args.getOr("--weights", "");
  if (llvm::Error e = writeTrainingFiles(*prepared->build, *prepared->file, *prepared->runtime,
                                         *out, options, std::move(info)))
    return reportError(std::move(e));
  return kExitOk;
}

} // namespace mlpc
