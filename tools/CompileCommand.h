// mlpc compile: a checkpoint -> an inference object file + C header (and,
// with --weights-external, a weights file). Also used by `mlpc emit
// --emit=llvm|asm --weights CKPT` to print the same module.
#pragma once

#include "runtime/InferenceBuild.h"
#include "tools/Driver.h"

#include <memory>
#include <optional>

namespace mlpc {

// The folded graphs and weights of a checkpoint, ready for emitInferenceModule.
struct PreparedInference {
  std::unique_ptr<ModelFile> file; // owns the AST the graphs came from
  FoldedInference folded;

  InferenceModel model() const { return folded.model(); }
};

// Reads MODEL (args.positional[0]), --weights, --data; reports errors (to
// stderr) and returns nullopt on any.
std::optional<PreparedInference> prepareInference(const ParsedArgs &args, bool externalWeights);

// `mlpc emit --emit=llvm|asm --weights CKPT`: the optimised module of `mlpc
// compile` (host target, embedded weights) as LLVM IR or assembly text.
std::optional<std::string> inferenceModuleText(const ParsedArgs &args, InferenceEmit kind);

// `mlpc compile --train` (tools/CompileTrainCommand.cpp): a training object
// and header (codegen/TrainingObject.h).
int runCompileTrain(const ParsedArgs &args);

} // namespace mlpc
