// The ahead-of-time training module: see TrainingObject.h for the contract
// and the state layout. This file checks the graphs, lays out the state and
// assembles the module; the entry functions are in TrainingEntries.cpp, the
// initialisers in InitEmitter.cpp.
#include "codegen/TrainingObject.h"

#include "codegen/Lowering.h"
#include "codegen/Target.h"
#include "codegen/TrainingEntries.h"
#include "ir/ShapeRules.h"

#include <llvm/IR/Module.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>

#include <fmt/format.h>

using namespace llvm;

namespace mlpc {
namespace {

Error fail(std::string message) {
  return createStringError(inconvertibleErrorCode(), message);
}

int64_t align64(int64_t bytes) {
  return codegen::roundUpTo(bytes, codegen::kBufferAlign);
}

// The input (contexts) and, for the training graph, the target of `g`.
Error checkInputs(const Graph &g, int64_t rows, bool training, TrainingLayout &layout) {
  std::vector<std::string> problems = verifyGraph(g);
  if (!problems.empty())
    return fail("invalid graph: " + problems.front());
  const Node *x = nullptr, *y = nullptr;
  for (ValueId v : g.leaves(Op::Input))
    (g[v].isTarget ? y : x) = &g[v];
  if (!x || x->type.dtype != DType::I32 || x->type.rank() != 2 || x->type.shape[0] != rows)
    return fail(fmt::format("the model must read one input of contexts i32[{}, T]", rows));
  if (layout.context && x->type.shape[1] != layout.context)
    return fail("internal error: the graphs disagree on the context length");
  layout.context = x->type.shape[1];
  if (training && (!y || y->type.dtype != DType::I32 || y->type.rank() != 1 ||
                   y->type.shape[0] != rows || g.leaves(Op::Input).size() != 2))
    return fail(
        fmt::format("the training graph must read contexts [{}, T] and targets [{}]", rows, rows));
  if (!training) {
    std::optional<ValueId> logits = g.output(OutputRole::Logits);
    if (!logits || g[*logits].type.rank() != 2 || g[*logits].type.shape[0] != rows ||
        g[*logits].type.shape[1] != layout.vocab)
      return fail(
          fmt::format("the inference graph must output logits [{}, {}]", rows, layout.vocab));
  }
  return Error::success();
}

// Every Param/State leaf of an inference graph must be a tensor of the state.
Error checkLeaves(const Graph &g, const TrainingLayout &layout) {
  for (ValueId v = 0; v < g.size(); ++v) {
    if (g[v].op != Op::Param && g[v].op != Op::State)
      continue;
    bool found = false;
    for (const StateTensor &t : layout.tensors)
      found |= t.name == g[v].name && t.count == g[v].type.numel();
    if (!found)
      return fail(fmt::format("internal error: inference reads '{}', which training does not hold",
                              g[v].name));
  }
  return Error::success();
}

// LLVM's default pipeline at optLevel, as for inference objects (see
// optimizeFully in InferenceObject.cpp): the entry functions' copy and check
// loops want the vectorizer; the kernels compute the same values under
// either schedule (no fast-math reassociation beyond what they mark).
void optimizeModule(llvm::Module &m, TargetMachine &tm, unsigned optLevel) {
  codegen::runModulePipeline(m, tm, [optLevel](PassBuilder &pb) {
    return optLevel == 0
               ? pb.buildO0DefaultPipeline(OptimizationLevel::O0)
               : pb.buildPerModuleDefaultPipeline(optLevel == 1   ? OptimizationLevel::O1
                                                  : optLevel == 2 ? OptimizationLevel::O2
                                                                  : OptimizationLevel::O3);
  });
}

// Every BatchNorm layer has its calibration input and its two running
// statistics in the state.
Error checkBatchNormLayers(const TrainingModel &model, const TrainingLayout &layout) {
  for (const std::string &l : model.bnLayers) {
    if (!model.calibrate->output("bn_input." + l))
      return fail("internal error: the calibration graph lacks bn_input." + l);
    for (const char *stat : {".running_mean", ".running_var"}) {
      bool held = false;
      for (const StateTensor &t : layout.tensors)
        held |= t.isState && t.name == l + stat;
      if (!held)
        return fail("internal error: the state lacks " + l + stat);
    }
  }
  return Error::success();
}

// The state's optimizer, snapshot and workspace areas after the tensors
// (which end at `offset`), and the stack the inference entries need.
Error sizeMemory(const TrainingModel &model, int64_t offset, TrainingLayout &layout) {
  const Graph &g = *model.train;
  layout.optimizerOffset = offset;
  layout.optimizerBytes = 0; // SGD keeps no state of its own
  layout.snapshotOffset = layout.optimizerOffset + layout.optimizerBytes;
  layout.workspaceOffset =
      layout.snapshotOffset + align64(layout.tensorsBytes + layout.optimizerBytes);
  auto plan = codegen::planBuffers(g, /*sgdUpdate=*/true);
  if (!plan)
    return plan.takeError();
  layout.workspaceBytes = align64(plan->workspaceBytes);
  layout.stateBytes = layout.workspaceOffset + layout.workspaceBytes;
  int64_t stack = 0;
  for (const Graph *inf : {model.block, model.row, model.calibrate}) {
    auto p = codegen::planBuffers(*inf, false);
    if (!p)
      return p.takeError();
    stack = std::max(stack, align64(p->workspaceBytes));
  }
  int64_t outputs = 0;
  for (const GraphOutput &o : model.calibrate->outputs)
    outputs += align64((*model.calibrate)[o.value].type.numel() * 4);
  layout.inferWorkspaceBytes = stack;
  int64_t bnColumns = 0;
  for (const std::string &l : model.bnLayers)
    bnColumns += (*model.calibrate)[*model.calibrate->output("bn_input." + l)].type.shape[1];
  layout.stackBytes = stack + outputs + align64(model.blockRows * layout.context * 4) +
                      align64(model.blockRows * layout.vocab * 4) + bnColumns * 3 * 8;
  return Error::success();
}

} // namespace

Expected<TrainingLayout> checkTrainingModel(const TrainingModel &model) {
  if (!codegen::isCIdentifier(model.name))
    return fail(fmt::format("model name '{}' is not a C identifier", model.name));
  if (!model.train || !model.block || !model.row || !model.calibrate || model.blockRows < 1)
    return fail("internal error: incomplete training model");
  TrainingLayout layout;
  const Graph &g = *model.train;
  std::vector<ValueId> inputs = g.leaves(Op::Input);
  layout.batch = inputs.empty() ? 0 : g[inputs[0]].type.shape[0];
  if (Error e = checkInputs(g, layout.batch, true, layout))
    return e;
  std::optional<ValueId> loss = g.output(OutputRole::Loss);
  if (!loss || g[*loss].type.numel() != 1)
    return fail("the training graph must output a scalar 'loss'");
  std::optional<ValueId> logits = model.block->output(OutputRole::Logits);
  if (!logits || (*model.block)[*logits].type.rank() != 2)
    return fail("the inference graph must output 'logits' [rows, V]");
  layout.vocab = (*model.block)[*logits].type.shape[1];
  for (const Graph *inf : {model.block, model.calibrate})
    if (Error e = checkInputs(*inf, model.blockRows, false, layout))
      return e;
  if (Error e = checkInputs(*model.row, 1, false, layout))
    return e;
  // Every gather of the contexts reads a V-row table (the index check's bound).
  for (ValueId v = 0; v < g.size(); ++v)
    if (g[v].op == Op::Gather && g[g[v].operands[1]].op == Op::Input &&
        g[g[v].operands[0]].type.shape[0] != layout.vocab)
      return fail(fmt::format("'{}' gathers the contexts from {} rows, but indices are checked "
                              "against the vocabulary size {}",
                              g[v].name, g[g[v].operands[0]].type.shape[0], layout.vocab));

  int64_t offset = layout.tensorsOffset;
  for (Op kind : {Op::Param, Op::State})
    for (ValueId v : g.leaves(kind)) {
      if (g[v].type.rank() > 8)
        return fail(fmt::format("'{}' has more than 8 dimensions", g[v].name));
      if (model.weights) {
        auto it = model.weights->find(g[v].name);
        if (it == model.weights->end() ||
            static_cast<int64_t>(it->second.size()) != g[v].type.numel())
          return fail(fmt::format("no weights of the right size for '{}'", g[v].name));
      }
      layout.tensors.push_back(
          {g[v].name, g[v].type.shape, kind == Op::State, offset, g[v].type.numel()});
      offset += align64(g[v].type.numel() * 4);
    }
  layout.tensorsBytes = offset - layout.tensorsOffset;
  for (const Graph *inf : {model.block, model.row, model.calibrate})
    if (Error e = checkLeaves(*inf, layout))
      return e;
  if (Error e = checkBatchNormLayers(model, layout))
    return e;
  if (Error e = sizeMemory(model, offset, layout))
    return e;
  return layout;
}

Expected<std::string> emitTrainingModule(const TrainingModel &model, const CompileOptions &options,
                                         TrainingEmit kind) {
  auto layout = checkTrainingModel(model);
  if (!layout)
    return layout.takeError();
  auto tm = createObjectTargetMachine(options);
  if (!tm)
    return tm.takeError();
  LLVMContext ctx;
  llvm::Module m(model.name, ctx);
  m.setDataLayout((*tm)->createDataLayout());
  m.setTargetTriple((*tm)->getTargetTriple().str());
  if ((*tm)->createDataLayout().isBigEndian())
    return fail("training objects support little-endian targets only");
  if (Error e = training::emitTrainingEntries(model, *layout, m, **tm))
    return e;
  if (Error e = training::emitInferenceEntries(model, *layout, m, **tm))
    return e;
  emitInitFunction(model, *layout, m, **tm);
  if (Error e = verifyModuleIR(m, model.name))
    return e;
  optimizeModule(m, **tm, options.optLevel);
  if (kind == TrainingEmit::LLVMText)
    return moduleOutput(m, **tm, std::nullopt);
  return moduleOutput(m, **tm,
                      kind == TrainingEmit::Object ? CodeGenFileType::ObjectFile
                                                   : CodeGenFileType::AssemblyFile);
}

} // namespace mlpc
