// mlpc fold-check / mlpc compile: the inference path with BatchNorm folded
// into the preceding Linear layers.
#include "passes/BatchNormState.h"
#include "passes/FoldBatchNorm.h"
#include "runtime/Checkpoint.h"
#include "runtime/ModelRuntime.h"
#include "tools/Driver.h"

#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

#include <cmath>

namespace mlpc {
namespace {

// Tolerance of fold-check: W' and b' are rounded to f32 once, so the folded
// logits differ from the unfolded ones by a few f32 ulps of their magnitude.
constexpr double kFoldTolerance = 1e-4;

struct InferenceFunction {
  std::unique_ptr<BoundFunction> fn;
  std::vector<int32_t> X;
};

llvm::Expected<InferenceFunction> compileInference(JitEngine &jit, const Graph &g,
                                                   TensorMap &weights, const std::string &name,
                                                   int64_t rows, int64_t context) {
  auto compiled = jit.compile(g, name, CompileOptions{});
  if (!compiled)
    return compiled.takeError();
  InferenceFunction f{std::make_unique<BoundFunction>(std::move(*compiled)),
                      std::vector<int32_t>(rows * context, 0)};
  for (const BindingInfo &b : f.fn->function().bindings()) {
    void *data = b.kind == BindingInfo::Kind::Input ? static_cast<void *>(f.X.data()) : nullptr;
    if (b.kind == BindingInfo::Kind::Param || b.kind == BindingInfo::Kind::State)
      data = weights.at(b.name).data();
    if (data)
      if (llvm::Error e = f.fn->bind(b.name, data))
        return e;
  }
  if (llvm::Error e = f.fn->ready())
    return e;
  return f;
}

struct FoldComparison {
  double maxDiff = 0, lossBefore = 0, lossAfter = 0;
};

// The unfolded and folded functions over the split, `rows` at a time (the
// last block padded with context 0): the largest |logit difference| and
// each one's mean cross-entropy.
FoldComparison compareLogits(InferenceFunction &before, InferenceFunction &after,
                             const Split &split, int64_t rows, int64_t context, int64_t classes) {
  FoldComparison c;
  for (int64_t row = 0; row < split.rows(); row += rows) {
    int64_t n = std::min(rows, split.rows() - row);
    for (InferenceFunction *f : {&before, &after}) {
      std::fill(f->X.begin(), f->X.end(), 0);
      std::copy_n(split.X.data() + row * context, n * context, f->X.data());
      f->fn->run();
    }
    const float *a = before.fn->output(OutputRole::Logits),
                *b = after.fn->output(OutputRole::Logits);
    for (int64_t i = 0; i < n * classes; ++i)
      c.maxDiff = std::max(c.maxDiff, std::fabs(double(a[i]) - double(b[i])));
    c.lossBefore += crossEntropy(a, split.Y.data() + row, n, classes) * n;
    c.lossAfter += crossEntropy(b, split.Y.data() + row, n, classes) * n;
  }
  c.lossBefore /= std::max<int64_t>(split.rows(), 1);
  c.lossAfter /= std::max<int64_t>(split.rows(), 1);
  return c;
}

} // namespace

// fold-check's two graphs of the model at `rows` rows, inference only:
// without folding (Stage::Infer) and folded (Stage::Folded, its constant
// subgraphs evaluated into foldedWeights), and the BatchNorm layers the
// folding left. Nothing, with the diagnostics reported, where either
// cannot be made or the model has no logits to compare.
struct FoldGraphs {
  Graph unfolded, folded;
  TensorMap weights, foldedWeights;
  int remaining = 0;
};

std::optional<FoldGraphs> foldGraphs(ModelFile &model, const std::string &batchDim, int64_t rows,
                                     int64_t vocab, const TensorMap &weights, bool verbose) {
  LoweringOptions options;
  options.vocab = vocab;
  options.dimOverrides[batchDim] = rows;
  options.inferenceOnly = true;
  std::optional<Module> lowered = model.lower(options);
  PipelineOptions pipeline;
  pipeline.verbose = verbose;
  std::optional<Graph> unfolded, folded;
  if (lowered) {
    unfolded = runPipeline(lowered->graph, Stage::Infer, pipeline, model.diags());
    folded = runPipeline(lowered->graph, Stage::Folded, pipeline, model.diags());
    if (folded && !folded->output(OutputRole::Logits)) {
      model.diags().error(lowered->graph[*lowered->graph.output(OutputRole::Loss)].loc,
                          std::string("fold-check compares logits, and this model has no "
                                      "recognisable logits: ") +
                              kLogitsHelp);
      folded.reset();
    }
  }
  TensorMap foldedWeights = weights;
  if (folded) {
    PassContext ctx{&model.diags(), pipeline.verbose};
    materializeConstantSubgraphs(*folded, foldedWeights, ctx);
  }
  model.flushDiagnostics();
  if (!unfolded || !folded || model.diags().hasErrors())
    return std::nullopt;
  int remaining = 0;
  for (const Node &n : folded->nodes)
    remaining += n.op == Op::BatchNormInfer;
  return FoldGraphs{std::move(*unfolded), std::move(*folded), weights, std::move(foldedWeights),
                    remaining};
}

int runFoldCheck(const ParsedArgs &args) {
  auto weightsPath = args.get("--weights");
  if (!weightsPath)
    return reportError("mlpc fold-check needs --weights CKPT");
  auto file = openModel(args, *weightsPath);
  if (!file)
    return reportError(file.takeError());
  ModelFile &model = **file;
  auto words = readNamesFile(args);
  if (!words)
    return reportError(words.takeError());
  Vocabulary vocab = buildVocabulary(*words);
  auto runtime = ModelRuntime::create(model.ast(), vocab, model.diags());
  model.flushDiagnostics();
  if (!runtime)
    return reportError(runtime.takeError());
  if (llvm::Error e = (*runtime)->loadParams(*weightsPath))
    return reportError(std::move(e));
  auto data = buildDataset(std::move(*words), static_cast<int>((*runtime)->context()));
  if (!data)
    return reportError(data.takeError());

  const int64_t rows = ModelRuntime::kEvalRows, context = (*runtime)->context();
  std::optional<FoldGraphs> graphs =
      foldGraphs(model, (*runtime)->module().batchDim, rows, static_cast<int64_t>(vocab.size()),
                 (*runtime)->params(), args.has("--verbose"));
  if (!graphs)
    return kExitUserError;
  auto &[unfolded, folded, weights, foldedWeights, remaining] = *graphs;

  auto jit = JitEngine::create(CompileOptions{});
  if (!jit)
    return reportError(jit.takeError());
  auto before = compileInference(**jit, unfolded, weights, "unfolded", rows, context);
  if (!before)
    return reportError(before.takeError());
  auto after = compileInference(**jit, folded, foldedWeights, "folded", rows, context);
  if (!after)
    return reportError(after.takeError());

  const Split &val = data->val;
  const FoldComparison c =
      compareLogits(*before, *after, val, rows, context, static_cast<int64_t>(vocab.size()));
  bool ok = c.maxDiff <= kFoldTolerance && remaining == 0;
  llvm::outs() << fmt::format("fold-check {} on the val split ({} rows)\n",
                              (*runtime)->module().name, val.rows());
  llvm::outs() << fmt::format("  batchnorm layers left after folding: {}\n", remaining);
  llvm::outs() << fmt::format("  max |logit difference|: {:.3e} (tolerance {:g})\n", c.maxDiff,
                              kFoldTolerance);
  llvm::outs() << fmt::format("  val loss unfolded: {:.6f}\n  val loss folded:   {:.6f}\n",
                              c.lossBefore, c.lossAfter);
  llvm::outs() << (ok ? "fold-check passed\n" : "fold-check FAILED\n");
  return ok ? kExitOk : kExitUserError;
}

} // namespace mlpc
