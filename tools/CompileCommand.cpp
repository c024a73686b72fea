// mlpc compile MODEL --weights CKPT -o OUT.o: see tools/CompileCommand.h,
// runtime/InferenceBuild.h (folding, atomic writes) and
// codegen/InferenceObject.h. This file reads the checkpoint and the flags.
#include "tools/CompileCommand.h"

#include "runtime/Safetensors.h"
#include "tools/OutputFlags.h"

#include <fmt/format.h>

namespace mlpc {
namespace {

// The vocabulary: the checkpoint's metadata (written by `mlpc train`) or the
// names file given with --data; both must agree when both exist.
std::optional<std::string> vocabulary(const ParsedArgs &args, const std::string &weightsPath,
                                      const TensorFile &checkpoint) {
  auto it = checkpoint.metadata.find("vocab");
  std::optional<std::string> fromCheckpoint;
  if (it != checkpoint.metadata.end() && !it->second.empty() && it->second[0] == '.')
    fromCheckpoint = it->second;
  if (auto data = args.get("--data")) {
    auto words = readWords(*data);
    if (!words) {
      reportError(words.takeError());
      return std::nullopt;
    }
    std::string fromData = buildVocabulary(*words).itos;
    if (fromCheckpoint && *fromCheckpoint != fromData) {
      reportError(fmt::format("the vocabulary of {} (\"{}\") differs from the one {} was trained "
                              "with (\"{}\")",
                              *data, fromData, weightsPath, *fromCheckpoint));
      return std::nullopt;
    }
    return fromData;
  }
  if (!fromCheckpoint)
    reportError(fmt::format("{} has no vocabulary metadata; pass --data FILE", weightsPath));
  return fromCheckpoint;
}

} // namespace

std::optional<PreparedInference> prepareInference(const ParsedArgs &args, bool externalWeights) {
  auto weightsPath = args.get("--weights");
  if (!weightsPath) {
    reportError("mlpc compile needs --weights CKPT");
    return std::nullopt;
  }
  PreparedInference p;
  auto file = openModel(args, *weightsPath);
  if (!file) {
    reportError(file.takeError());
    return std::nullopt;
  }
  p.file = std::move(*file);
  ModelFile &model = *p.file;
  if (!model.parsedCleanly()) {
    model.flushDiagnostics();
    return std::nullopt;
  }
  auto checkpoint = readSafetensors(*weightsPath);
  if (!checkpoint) {
    reportError(checkpoint.takeError());
    return std::nullopt;
  }
  std::optional<std::string> vocab = vocabulary(args, *weightsPath, *checkpoint);
  if (!vocab)
    return std::nullopt;
  Vocabulary v;
  v.itos = *vocab;
  // The runtime validates the checkpoint against the model (every tensor
  // present, with its shape) exactly as `mlpc sample` and `mlpc eval` do.
  auto runtime = ModelRuntime::create(model.ast(), v, model.diags());
  model.flushDiagnostics();
  if (!runtime) {
    reportError(runtime.takeError());
    return std::nullopt;
  }
  if (llvm::Error e = (*runtime)->loadParams(*weightsPath)) {
    reportError(std::move(e));
    return std::nullopt;
  }
  auto context = checkpoint->metadata.find("context");
  if (context != checkpoint->metadata.end() &&
      context->second != std::to_string((*runtime)->context())) {
    reportError(fmt::format("{} was trained with a context of {}, but the model reads {}",
                            *weightsPath, context->second, (*runtime)->context()));
    return std::nullopt;
  }
  auto folded = foldInference(model, **runtime, externalWeights);
  model.flushDiagnostics();
  if (!folded) {
    if (model.diags().hasErrors())
      llvm::consumeError(folded.takeError()); // printed above
    else
      reportError(folded.takeError());
    return std::nullopt;
  }
  p.folded = std::move(*folded);
  return p;
}

std::optional<std::string> inferenceModuleText(const ParsedArgs &args, InferenceEmit kind) {
  std::optional<PreparedInference> prepared = prepareInference(args, /*externalWeights=*/false);
  if (!prepared)
    return std::nullopt;
  auto text = emitInferenceModule(prepared->model(), CompileOptions{}, kind);
  if (!text) {
    reportError(text.takeError());
    return std::nullopt;
  }
  return std::move(*text);
}

int runCompile(const ParsedArgs &args) {
  if (args.has("--train")) {
    if (args.has("--vector-bits"))
      return reportError("--vector-bits applies to inference objects (training objects use the "
                         "widest vectors of --cpu)");
    return runCompileTrain(args);
  }
  if (args.has("--no-fuse"))
    return reportError("--no-fuse applies to --train only (inference objects always fold)");
  auto out = args.get("-o");
  if (!out)
    return reportError("mlpc compile needs -o OUT.o");
  if (llvm::Error e = checkOutputFlags(args, {"-o"}))
    return reportError(std::move(e));
  std::optional<PreparedInference> prepared =
      prepareInference(args, args.has("--weights-external"));
  if (!prepared)
    return kExitUserError;
  std::optional<ExecutionOptions> execution = executionOptions(args);
  if (!execution)
    return kExitUserError;
  CompileOptions options;
  options.triple = args.getOr("--target", "");
  options.cpu = args.getOr("--cpu", "");
  options.vectorBits = execution->vectorBits;
  HeaderInfo info;
  info.modelPath = args.positional[0];
  info.weightsPath = *args.get("--weights");
  if (llvm::Error e = writeInferenceFiles(prepared->folded, *out, options, std::move(info)))
    return reportError(std::move(e));
  return kExitOk;
}

} // namespace mlpc
