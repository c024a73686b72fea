// libFuzzer target: the `mlpc check` / `mlpc emit` path on an arbitrary
// model file. The input is the file's bytes. Every stage runs on whatever
// the previous one accepted:
//
//   parseModel -> render diagnostics, printAST
//   lowerModel (V = 27, as `mlpc check`) -> printGraph
//   runPipeline Fused / Grad / Infer / Folded -> printGraph
//   lowerModel again with the batch dim overridden to 1 in inference mode
//   (the `sample` / `compile` path) -> Infer / Folded
//
// A crash, a sanitizer report or a hang is a bug; so is any "internal error"
// diagnostic: user mistakes must be reported as located errors, and only a
// broken invariant inside mlpc may say "internal error".
#include "frontend/ASTPrinter.h"
#include "frontend/Lowering.h"
#include "frontend/Parser.h"
#include "ir/Printer.h"
#include "passes/Pipeline.h"

#include <cstdio>
#include <cstdlib>
#include <string>

using namespace mlpc;

namespace {

void checkNoInternalError(const DiagnosticEngine &diags) {
  for (const Diagnostic &d : diags.diagnostics())
    if (d.message.find("internal error") != std::string::npos) {
      std::fprintf(stderr, "%s", diags.render().c_str());
      std::abort();
    }
}

// The name of the inputs' leading dim, as tools/Driver.cpp finds it.
std::string batchDimName(const ModelAST &ast) {
  for (const TensorDecl &t : ast.tensors)
    if (!t.shape.empty() && t.shape[0]->kind == ExprKind::Ident)
      return t.shape[0]->name;
  return "";
}

void runStages(const Module &module, std::initializer_list<Stage> stages, DiagnosticEngine &diags) {
  PipelineOptions options;
  for (Stage s : stages)
    if (std::optional<Graph> g = runPipeline(module.graph, s, options, diags))
      (void)printGraph(*g);
  checkNoInternalError(diags);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string source(reinterpret_cast<const char *>(data), size);
  DiagnosticEngine diags("fuzz.mlp", source);
  ModelAST ast = parseModel(source, diags);
  (void)diags.render();
  if (diags.hasErrors())
    return 0;
  (void)printAST(ast);

  std::optional<Module> module = lowerModel(ast, LoweringOptions{}, diags);
  (void)diags.render();
  checkNoInternalError(diags);
  if (!module)
    return 0;
  (void)printGraph(module->graph);
  (void)printDot(module->graph);
  runStages(*module, {Stage::Fused, Stage::Grad, Stage::Infer, Stage::Folded}, diags);

  // One row, inference only: what `mlpc sample` and `mlpc compile` lower.
  std::string batch = batchDimName(ast);
  if (batch.empty())
    return 0;
  DiagnosticEngine rowDiags("fuzz.mlp", source);
  LoweringOptions oneRow;
  oneRow.dimOverrides[batch] = 1;
  oneRow.inferenceOnly = true;
  if (std::optional<Module> row = lowerModel(ast, oneRow, rowDiags))
    runStages(*row, {Stage::Infer, Stage::Folded}, rowDiags);
  (void)rowDiags.render();
  checkNoInternalError(rowDiags);
  return 0;
}
