// mlpc check / mlpc emit: the compiler's front half and its stage printers.
#if __has_include("codegen/Compiler.h")
#include "codegen/Compiler.h"
#include "tools/CompileCommand.h"
#define MLPC_HAVE_CODEGEN 1
#endif
#include "frontend/ASTPrinter.h"
#include "ir/Printer.h"
#include "runtime/OutputFiles.h"
#include "tools/Driver.h"
#include "tools/OutputFlags.h"

#include <llvm/Support/FileSystem.h>
#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

namespace mlpc {

int runCheck(const ParsedArgs &args) {
  auto file = openModel(args);
  if (!file)
    return reportError(file.takeError());
  auto options = loweringOptions(args, 27);
  if (!options)
    return kExitUserError;
  std::optional<Module> module = (*file)->lower(*options);
  if (module) {
    // Also run the training pipeline: an op without a gradient rule is a
    // model error the user should hear about before training.
    PipelineOptions pipeline;
    pipeline.verbose = args.has("--verbose");
    runPipeline(module->graph, Stage::Grad, pipeline, (*file)->diags());
  }
  (*file)->flushDiagnostics();
  return (*file)->diags().hasErrors() ? kExitUserError : kExitOk;
}

static int writeOutput(const ParsedArgs &args, const std::string &text) {
  if (auto path = args.get("-o")) {
    if (llvm::Error e = writeFileAtomically(*path, text))
      return reportError(std::move(e));
    return kExitOk;
  }
  llvm::outs() << text;
  return kExitOk;
}

// The stage and the flags that only some stages take; the -o path.
static llvm::Error checkEmitFlags(const ParsedArgs &args, const std::string &stage) {
  static const std::vector<std::string> stages = {"ast",   "ir",  "fused", "grad",
                                                  "infer", "dot", "llvm",  "asm"};
  if (std::find(stages.begin(), stages.end(), stage) == stages.end())
    return usageError(fmt::format("unknown stage '{}' for --emit (expected one of: {})", stage,
                                  fmt::join(stages, ", ")));
  if ((args.has("--weights") || args.has("--data")) && stage != "llvm" && stage != "asm")
    return usageError("--weights and --data only apply to --emit=llvm and --emit=asm");
  if (args.has("--weights") && args.has("--batch"))
    return usageError("--batch does not apply with --weights: the inference object has a "
                      "block kernel and a 1-row kernel");
  if (args.has("--data") && !args.has("--weights"))
    return usageError("--data needs --weights CKPT");
  return checkOutputFlags(args, {"-o"});
}

// --emit=llvm / asm: the inference object with --weights, else the graph's
// function (the training step with --train-step) as the JIT compiles it.
static int emitCode(const ParsedArgs &args, const std::string &stage, const Module &module,
                    const Graph &graph, bool trainStep) {
#ifdef MLPC_HAVE_CODEGEN
  if (args.has("--weights")) {
    // The whole inference object: entry function, both kernels, weights.
    auto text = inferenceModuleText(args, stage == "llvm" ? InferenceEmit::LLVMText
                                                          : InferenceEmit::Assembly);
    return text ? writeOutput(args, *text) : kExitUserError;
  }
  std::optional<ExecutionOptions> execution = executionOptions(args);
  if (!execution)
    return kExitUserError;
  CompileOptions compile;
  compile.vectorBits = execution->vectorBits;
  const std::string fn = module.name + (trainStep ? "_train_step" : "_forward");
  auto text = stage == "llvm" ? emitLLVMText(graph, fn, compile) : emitAssembly(graph, fn, compile);
  if (!text)
    return reportError(text.takeError());
  return writeOutput(args, *text);
#else
  return reportError("codegen not built");
#endif
}

int runEmit(const ParsedArgs &args) {
  std::string stage = args.getOr("--emit", "ir");
  if (llvm::Error e = checkEmitFlags(args, stage))
    return reportError(std::move(e));
  auto file = openModel(args, args.getOr("--weights", ""));
  if (!file)
    return reportError(file.takeError());
  ModelFile &model = **file;
  if (stage == "ast") {
    model.flushDiagnostics();
    if (!model.parsedCleanly())
      return kExitUserError;
    return writeOutput(args, printAST(model.ast()));
  }
  auto options = loweringOptions(args, 27);
  if (!options)
    return kExitUserError;
  if (args.has("--batch")) {
    std::string error;
    auto batch = args.getInt("--batch", 0, error);
    if (!batch || *batch < 1)
      return reportError(error.empty() ? "--batch must be at least 1" : error);
    options->dimOverrides[model.batchDimName()] = *batch;
    options->inferenceOnly = stage == "infer" || stage == "llvm" || stage == "asm";
  }
  std::optional<Module> module = model.lower(*options);
  if (!module) {
    model.flushDiagnostics();
    return kExitUserError;
  }
  PipelineOptions pipeline;
  pipeline.fuse = !args.has("--no-fuse");
  pipeline.verbose = args.has("--verbose");
  pipeline.optimizer = &module->train; // --emit=grad shows the parameter updates
  const bool trainStep = args.has("--train-step") && (stage == "llvm" || stage == "asm");
  Stage graphStage = stage == "ir" || stage == "dot" ? Stage::Forward
                     : stage == "fused"              ? Stage::Fused
                     : stage == "grad" || trainStep  ? Stage::Grad
                     : stage == "infer"              ? Stage::Infer
                                                     : Stage::Folded;
  std::optional<Graph> graph;
  if (stage == "ir" || stage == "dot")
    graph = module->graph; // exactly what lowering produced
  else
    graph = runPipeline(module->graph, graphStage, pipeline, model.diags());
  model.flushDiagnostics();
  if (!graph)
    return kExitUserError;
  if (stage == "infer") {
    // Before and after fold-batchnorm (the folded weights are shown as the
    // parameter expressions that `mlpc compile` evaluates once).
    auto folded = runPipeline(module->graph, Stage::Folded, pipeline, model.diags());
    model.flushDiagnostics();
    if (!folded)
      return kExitUserError;
    return writeOutput(args, "; inference graph\n" + printGraph(*graph) +
                                 "\n; after fold-batchnorm\n" + printGraph(*folded));
  }
  if (stage == "ir" || stage == "fused" || stage == "grad")
    return writeOutput(args, printGraph(*graph));
  if (stage == "dot")
    return writeOutput(args, printDot(*graph));
  return emitCode(args, stage, *module, *graph, trainStep);
}

} // namespace mlpc
