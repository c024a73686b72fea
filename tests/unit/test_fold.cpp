// fold-batchnorm + materialize-constants against the interpreter: the folded
// inference graph computes the same logits as the unfolded one.
#include "TestUtil.h"
#include "ir/GradCheck.h"
#include "ir/Printer.h"
#include "passes/FoldBatchNorm.h"
#include "runtime/ParamInit.h"

#include <catch2/catch.hpp>

using namespace mlpc;

namespace {

void checkFoldEquivalence(const std::string &example) {
  auto model = test::lowerSource(test::readFile(test::examplePath(example)));
  REQUIRE(model);
  Graph infer = test::stage(model->graph, Stage::Infer);
  Graph folded = test::stage(model->graph, Stage::Folded);
  for (const Node &n : folded.nodes)
    CHECK(n.op != Op::BatchNormInfer);

  Rng rng(5);
  TensorMap weights = initParameters(infer, rng);
  for (auto &[name, values] : weights) // non-trivial running statistics
    if (name.find(".running_") != std::string::npos)
      for (float &v : values)
        v = name.find("_var") != std::string::npos ? 0.5f + float(rng.uniform())
                                                   : float(rng.normal());
  std::map<std::string, std::vector<double>> leaves;
  for (auto &[name, values] : weights)
    leaves[name].assign(values.begin(), values.end());
  auto X = *infer.findLeaf(Op::Input, "X");
  for (int64_t i = 0; i < infer[X].type.numel(); ++i)
    leaves["X"].push_back(double(rng.below(27)));

  auto before = interpret(infer, leaves);
  REQUIRE(bool(before));
  const std::vector<double> &expected = (*before)[*infer.output(OutputRole::Logits)];

  // Symbolic fold, evaluated in f64 directly from the original weights.
  auto symbolic = interpret(folded, leaves);
  REQUIRE(bool(symbolic));
  CHECK(compareValues((*symbolic)[*folded.output(OutputRole::Logits)], expected).maxAbs < 1e-12);

  // Materialized into f32 parameters, as `mlpc compile` does.
  TensorMap materializedWeights = weights;
  PassContext ctx;
  REQUIRE(materializeConstantSubgraphs(folded, materializedWeights, ctx));
  for (const Node &n : folded.nodes)
    CHECK(n.op != Op::State); // statistics are gone, folded into W' and b'
  std::map<std::string, std::vector<double>> foldedLeaves;
  for (const Node &n : folded.nodes)
    if (n.op == Op::Param)
      foldedLeaves[n.name].assign(materializedWeights[n.name].begin(),
                                  materializedWeights[n.name].end());
  foldedLeaves["X"] = leaves["X"];
  auto after = interpret(folded, foldedLeaves);
  REQUIRE(bool(after));
  // Only the f32 rounding of W' and b' separates the two.
  CHECK(compareValues((*after)[*folded.output(OutputRole::Logits)], expected).maxAbs < 1e-4);
}

} // namespace

TEST_CASE("folding batchnorm preserves the inference forward pass", "[fold]") {
  SECTION("makemore") {
    checkFoldEquivalence("makemore.mlp");
  }
  SECTION("mlp3_bn") {
    checkFoldEquivalence("mlp3_bn.mlp");
  }
}

// --no-fuse only changes the training graph: inference of the atomic model
// still finds the logits and switches every batchnorm to its running
// statistics, so `mlpc train makemore_atomic.mlp --no-fuse` can evaluate.
TEST_CASE("inference stages fuse even under --no-fuse", "[fold][pipeline]") {
  auto model = test::lowerSource(test::readFile(test::examplePath("makemore_atomic.mlp")));
  REQUIRE(model);
  Graph fused = test::stage(model->graph, Stage::Infer);
  Graph unfusedRequest = test::stage(model->graph, Stage::Infer, /*fuse=*/false);
  CHECK(printGraph(unfusedRequest) == printGraph(fused));
  int batchNorms = 0;
  for (const Node &n : unfusedRequest.nodes)
    batchNorms += n.op == Op::BatchNormInfer;
  CHECK(batchNorms == 1);
  // The training graph really is unfused.
  Graph training = test::stage(model->graph, Stage::Grad, /*fuse=*/false);
  for (const Node &n : training.nodes) {
    CHECK(n.op != Op::CrossEntropy);
    CHECK(n.op != Op::BatchNorm);
  }
}

// Sampling and `mlpc compile`'s row kernel build the inference graph for one
// row. There the atomic chain's batch sums run over a size-1 axis and its
// Bessel factor 1/(N-1) is inf; at two rows that factor is 1 and simplified
// away. The chain must still be recognised as batchnorm (so inference uses
// the running statistics), or one-row inference would normalise the row by
// its own statistics.
TEST_CASE("the atomic batchnorm chain is recognised at batch sizes 1 and 2", "[fold][pipeline]") {
  for (int64_t rows : {1, 2, 3}) {
    INFO("rows " << rows);
    LoweringOptions options;
    options.dimOverrides["N"] = rows;
    options.inferenceOnly = true; // a one-row batchnorm is only valid in inference
    auto atomic = test::lowerSource(test::readFile(test::examplePath("makemore_atomic.mlp")),
                                    nullptr, options);
    std::string errors;
    auto fused =
        test::lowerSource(test::readFile(test::examplePath("makemore.mlp")), &errors, options);
    REQUIRE(atomic);
    INFO(errors);
    REQUIRE(fused);
    Graph atomicInfer = test::stage(atomic->graph, Stage::Infer);
    int batchNorms = 0;
    for (const Node &n : atomicInfer.nodes)
      batchNorms += n.op == Op::BatchNormInfer;
    CHECK(batchNorms == 1);
    CHECK(atomicInfer[*atomicInfer.output(OutputRole::Logits)].type.shape ==
          std::vector<int64_t>{rows, 27});
    // The same inference graph as the model written with batchnorm() and
    // cross_entropy() (the printed graphs differ only in the model's name).
    std::string a = printGraph(atomicInfer),
                f = printGraph(test::stage(fused->graph, Stage::Infer));
    CHECK(a.substr(a.find('\n')) == f.substr(f.find('\n')));
  }
}
