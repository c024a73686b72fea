// `--threads N` (CompileOptions::parallel, runtime/ThreadTeam.h): the step
// and evaluation give bit-identical results for 1, 2 and 3 threads. The
// oracle is the one-thread runtime, whose code is the serial code checked
// against the f64 interpreter in test_jit_examples.cpp; 3 threads on a
// 2-core machine also exercises the oversubscribed barrier.
#include "TestUtil.h"
#include "frontend/Overrides.h"
#include "runtime/ModelRuntime.h"

#include <catch2/catch.hpp>

#include <random>

using namespace mlpc;

namespace {

struct Run {
  std::vector<float> losses;
  TensorMap params;
  std::vector<float> logits;
};

Run train(const ModelAST &ast, DiagnosticEngine &diags, unsigned threads) {
  Vocabulary vocab = buildVocabulary({"abcdefghijklmnopqrstuvwxyz"});
  ExecutionOptions execution;
  execution.threads = threads;
  auto rt = ModelRuntime::create(ast, vocab, diags, {}, execution);
  REQUIRE(bool(rt));
  CHECK((*rt)->threads() == threads);
  (*rt)->initParams(5);
  const int64_t batch = (*rt)->batch(), context = (*rt)->context();
  std::vector<int32_t> X(batch * context), Y(batch);
  std::mt19937 rng(11);
  Run run;
  for (int step = 0; step < 4; ++step) {
    for (auto &x : X)
      x = static_cast<int32_t>(rng() % 27);
    for (auto &y : Y)
      y = static_cast<int32_t>(rng() % 27);
    auto loss = (*rt)->trainStep(X.data(), Y.data(), 0.05f);
    REQUIRE(bool(loss));
    run.losses.push_back(*loss);
  }
  run.params = (*rt)->params();
  if ((*rt)->hasLogits()) {
    std::vector<int32_t> rows(ModelRuntime::kEvalRows * context);
    for (auto &x : rows)
      x = static_cast<int32_t>(rng() % 27);
    auto logits = (*rt)->logits(rows.data(), ModelRuntime::kEvalRows);
    REQUIRE(bool(logits));
    run.logits.assign(*logits, *logits + ModelRuntime::kEvalRows * 27);
  }
  return run;
}

} // namespace

TEST_CASE("every thread count computes the same bits", "[threads]") {
  // makemore at batch 256 also runs the K-blocked weight gradient (dW1 =
  // emb^T @ dhprebn, K = 256: partial sums per row tile between chunks).
  // The batch statistics, BatchNormGrad and column sums split row blocks
  // when 4 blocks of at least 16 rows divide the batch (256; 68: blocks of
  // 17, not a multiple of the matmul's row tiles) and column groups
  // otherwise (60; wavenet has both). At H = 1024 the transposed dW2
  // (LowerMatMulTransposed.cpp) splits its 16 column tiles of C^T between
  // threads, then the blocks of the transpose pass.
  for (const char *example :
       {"makemore.mlp", "makemore.mlp@batch=256", "makemore.mlp@batch=68", "makemore.mlp@batch=60",
        "makemore.mlp@batch=256@H=1024", "makemore_adamw.mlp", "mlp3_bn.mlp", "wavenet.mlp",
        "layernorm_gelu.mlp"}) {
    SECTION(example) {
      std::string file = example;
      std::vector<std::string> settings;
      for (size_t at; (at = file.rfind('@')) != std::string::npos; file.resize(at))
        settings.push_back(file.substr(at + 1));
      std::string source = test::readFile(test::examplePath(file));
      DiagnosticEngine diags{file, source};
      ModelAST ast = parseModel(source, diags);
      REQUIRE_FALSE(diags.hasErrors());
      for (const std::string &setting : settings) {
        auto o = parseOverride(setting);
        REQUIRE(bool(o));
        REQUIRE_FALSE(bool(applyOverrides(ast, {*o})));
      }
      Run one = train(ast, diags, 1);
      for (unsigned threads : {2u, 3u}) {
        INFO(example << " with " << threads << " threads");
        Run many = train(ast, diags, threads);
        CHECK(many.losses == one.losses);
        CHECK(many.logits == one.logits);
        for (auto &[name, values] : one.params) {
          INFO(name);
          CHECK(many.params[name] == values);
        }
      }
    }
  }
}
