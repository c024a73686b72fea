// mlpc gradcheck / mlpc grad: the autodiff pipeline checked against the f64
// interpreter (finite differences, and fused vs atomic gradients).
#include "ir/GradCheck.h"
#include "runtime/Checkpoint.h"
#include "runtime/ParamInit.h"
#include "tools/Driver.h"
#include "tools/OutputFlags.h"

#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace mlpc {
namespace {

// Tolerances: an element passes when |a - b| <= atol + rtol * |reference|.
// Central differences in f64 with h = 1e-6 carry ~1e-10 absolute rounding
// error; fused and atomic gradients differ only by f64 rounding.
constexpr double kFdAtol = 1e-7, kFdRtol = 1e-4;
constexpr double kAtomicAtol = 1e-12, kAtomicRtol = 1e-9;

double worstExcess(const std::vector<double> &value, const std::vector<double> &reference,
                   const std::vector<size_t> &indices, double atol, double rtol) {
  double worst = 0;
  for (size_t i = 0; i < reference.size(); ++i) {
    double x = indices.empty() ? value[i] : value[indices[i]];
    double diff = std::fabs(x - reference[i]);
    double excess = diff / (atol + rtol * std::fabs(reference[i]));
    worst = std::max(worst, excess == excess ? excess : INFINITY);
  }
  return worst;
}

LeafValues randomLeaves(const Graph &g, uint64_t seed, int64_t vocab) {
  Rng rng(seed);
  LeafValues leaves;
  for (auto &[name, values] : initParameters(g, rng))
    leaves[name] = std::vector<double>(values.begin(), values.end());
  for (ValueId v : g.leaves(Op::Input)) {
    std::vector<double> &x = leaves[g[v].name];
    x.resize(g[v].type.numel());
    for (double &i : x)
      i = static_cast<double>(rng.below(vocab));
  }
  return leaves;
}

std::string shapeText(const Graph &g, const std::string &param) {
  auto p = g.findLeaf(Op::Param, param);
  return p ? toString(g[*p].type.shape) : "?";
}

// The elements finite differences check: every element of small tensors,
// else a sample that always includes the largest-magnitude gradient entry.
std::vector<size_t> sampleElements(const std::vector<double> &grad, Rng &pick) {
  constexpr size_t kSamples = 48;
  std::vector<size_t> elements;
  if (grad.size() <= kSamples) {
    for (size_t i = 0; i < grad.size(); ++i)
      elements.push_back(i);
    return elements;
  }
  elements.push_back(
      std::max_element(grad.begin(), grad.end(),
                       [](double a, double b) { return std::fabs(a) < std::fabs(b); }) -
      grad.begin());
  while (elements.size() < kSamples)
    elements.push_back(pick.below(grad.size()));
  return elements;
}

} // namespace

int runGradcheck(const ParsedArgs &args) {
  auto file = openModel(args);
  if (!file)
    return reportError(file.takeError());
  ModelFile &model = **file;
  auto options = loweringOptions(args, 27);
  std::string error;
  auto seed = args.getInt("--seed", 42, error);
  if (!options || !seed)
    return error.empty() ? kExitUserError : reportError(error);
  std::optional<Module> module = model.lower(*options);
  if (!module) {
    model.flushDiagnostics();
    return kExitUserError;
  }
  PipelineOptions fused, atomic;
  fused.verbose = atomic.verbose = args.has("--verbose");
  atomic.fuse = false;
  auto fusedGraph = runPipeline(module->graph, Stage::Grad, fused, model.diags());
  auto atomicGraph = runPipeline(module->graph, Stage::Grad, atomic, model.diags());
  model.flushDiagnostics();
  if (!fusedGraph || !atomicGraph)
    return kExitUserError;

  LeafValues leaves = randomLeaves(*fusedGraph, *seed, options->vocab);
  auto fusedValues = interpret(*fusedGraph, leaves);
  if (!fusedValues)
    return reportError(fusedValues.takeError());
  auto atomicValues = interpret(*atomicGraph, leaves);
  if (!atomicValues)
    return reportError(atomicValues.takeError());
  double loss = (*fusedValues)[*fusedGraph->output(OutputRole::Loss)][0];
  double atomicLoss = (*atomicValues)[*atomicGraph->output(OutputRole::Loss)][0];

  llvm::outs() << fmt::format("gradcheck {} (seed {}, loss {:.10f}, atomic loss {:.10f})\n",
                              module->name, *seed, loss, atomicLoss);
  llvm::outs() << fmt::format("{:<10} {:<12} {:>7} {:>11} {:>11} {:>11} {:>11}  {}\n", "param",
                              "shape", "fd-n", "fd-maxabs", "fd-maxrel", "atom-maxabs",
                              "atom-maxrel", "ok");
  bool allOk = std::fabs(loss - atomicLoss) <= kAtomicAtol + kAtomicRtol * std::fabs(loss);
  Rng pick(*seed + 1);
  for (const GraphOutput &out : fusedGraph->outputs) {
    if (out.role != OutputRole::Gradient)
      continue;
    std::string param = (*fusedGraph)[*out.subject].name;
    const std::vector<double> &grad = (*fusedValues)[out.value];
    const std::vector<double> &atomicGrad =
        (*atomicValues)[*atomicGraph->output(OutputRole::Gradient, param)];

    const std::vector<size_t> elements = sampleElements(grad, pick);
    auto fd = finiteDifferences(module->graph, leaves, param, elements);
    if (!fd)
      return reportError(fd.takeError());
    Discrepancy vsFd = compareValues(grad, *fd, elements);
    Discrepancy vsAtomic = compareValues(grad, atomicGrad);
    bool ok = worstExcess(grad, *fd, elements, kFdAtol, kFdRtol) <= 1 &&
              worstExcess(grad, atomicGrad, {}, kAtomicAtol, kAtomicRtol) <= 1;
    allOk = allOk && ok;
    llvm::outs() << fmt::format("{:<10} {:<12} {:>7} {:>11.3e} {:>11.3e} {:>11.3e} {:>11.3e}  {}\n",
                                param, shapeText(*fusedGraph, param), elements.size(), vsFd.maxAbs,
                                vsFd.maxRel, vsAtomic.maxAbs, vsAtomic.maxRel, ok ? "ok" : "FAIL");
  }
  llvm::outs() << fmt::format(
      "tolerances: fd |d| <= {:g} + {:g}|fd|, atomic |d| <= {:g} + {:g}|x|\n", kFdAtol, kFdRtol,
      kAtomicAtol, kAtomicRtol);
  llvm::outs() << (allOk ? "gradcheck passed\n" : "gradcheck FAILED\n");
  return allOk ? kExitOk : kExitUserError;
}

} // namespace mlpc

namespace mlpc {

int runGrad(const ParsedArgs &args) {
  auto weightsPath = args.get("--weights"), batchPath = args.get("--batch"),
       outPath = args.get("-o");
  if (!weightsPath || !batchPath || !outPath)
    return reportError("mlpc grad needs --weights FILE, --batch FILE and -o FILE");
  if (llvm::Error e = checkOutputFlags(args, {"-o"}))
    return reportError(std::move(e));
  auto file = openModel(args, *weightsPath);
  if (!file)
    return reportError(file.takeError());
  ModelFile &model = **file;
  auto options = loweringOptions(args, 27);
  if (!options)
    return kExitUserError;
  std::optional<Module> module = model.lower(*options);
  PipelineOptions pipeline;
  pipeline.fuse = !args.has("--no-fuse");
  std::optional<Graph> training;
  if (module)
    training = runPipeline(module->graph, Stage::Grad, pipeline, model.diags());
  model.flushDiagnostics();
  if (!training)
    return kExitUserError;

  auto weightsFile = readSafetensors(*weightsPath);
  if (!weightsFile)
    return reportError(weightsFile.takeError());
  auto params = extractLeaves(*weightsFile, *weightsPath, *training, Op::Param);
  if (!params)
    return reportError(params.takeError());
  auto batchFile = readSafetensors(*batchPath);
  if (!batchFile)
    return reportError(batchFile.takeError());
  auto batch = extractInputs(*batchFile, *batchPath, *training);
  if (!batch)
    return reportError(batch.takeError());

  LeafValues leaves;
  for (auto &[name, values] : *params)
    leaves[name].assign(values.begin(), values.end());
  for (auto &[name, values] : *batch)
    leaves[name].assign(values.begin(), values.end());
  // Running statistics do not affect the loss or the gradients in training
  // mode; bind PyTorch's initial values.
  for (ValueId s : training->leaves(Op::State))
    leaves[(*training)[s].name].assign((*training)[s].type.numel(), 0.0);

  auto values = interpret(*training, leaves);
  if (!values)
    return reportError(values.takeError());
  TensorFile out;
  double loss = (*values)[*training->output(OutputRole::Loss)][0];
  out.tensors["loss"] = makeF32Tensor({}, {static_cast<float>(loss)});
  for (const GraphOutput &o : training->outputs) {
    if (o.role != OutputRole::Gradient)
      continue;
    const std::vector<double> &g = (*values)[o.value];
    out.tensors[(*training)[*o.subject].name] =
        makeF32Tensor((*training)[o.value].type.shape, std::vector<float>(g.begin(), g.end()));
  }
  out.metadata["loss_f64"] = fmt::format("{:.17g}", loss);
  if (llvm::Error e = writeSafetensors(*outPath, out))
    return reportError(std::move(e));
  llvm::outs() << fmt::format("loss {:.8f}; wrote {} gradients to {}\n", loss,
                              out.tensors.size() - 1, *outPath);
  return kExitOk;
}

} // namespace mlpc
