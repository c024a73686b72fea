// CompileOptions::profileNodes (`mlpc bench --profile`): the instrumented
// step computes exactly what the plain one does (oracle: the plain step,
// bit for bit), and the counters land on the nodes that run code.
#include "TestUtil.h"
#include "runtime/ModelRuntime.h"

#include <catch2/catch.hpp>

#include <random>

using namespace mlpc;

// Profiling reads the x86 time-stamp counter (JitEngine::compile refuses it elsewhere).
#if defined(__x86_64__) || defined(__i386__)
TEST_CASE("profiling counters do not change the training step", "[codegen][profile]") {
  std::string source = test::readFile(test::examplePath("makemore.mlp"));
  DiagnosticEngine diags{"makemore.mlp", source};
  ModelAST ast = parseModel(source, diags);
  Vocabulary vocab = buildVocabulary({"abcdefghijklmnopqrstuvwxyz"});
  REQUIRE(vocab.size() == 27);

  auto plain = ModelRuntime::create(ast, vocab, diags);
  auto profiled = ModelRuntime::create(ast, vocab, diags);
  REQUIRE(bool(plain));
  REQUIRE(bool(profiled));
  (*profiled)->enableProfiling();
  (*plain)->initParams(3);
  (*profiled)->initParams(3);

  const int64_t batch = (*plain)->batch(), context = (*plain)->context();
  std::vector<int32_t> X(batch * context), Y(batch);
  std::mt19937 rng(9);
  for (int step = 0; step < 3; ++step) {
    for (auto &x : X)
      x = static_cast<int32_t>(rng() % 27);
    for (auto &y : Y)
      y = static_cast<int32_t>(rng() % 27);
    auto a = (*plain)->trainStep(X.data(), Y.data(), 0.1f);
    auto b = (*profiled)->trainStep(X.data(), Y.data(), 0.1f);
    REQUIRE(bool(a));
    REQUIRE(bool(b));
    CHECK(*a == *b);
  }
  for (auto &[name, values] : (*plain)->params()) {
    INFO(name);
    CHECK(values == (*profiled)->params()[name]);
  }

  CHECK((*plain)->trainProfileCounters() == nullptr);
  const uint64_t *counters = (*profiled)->trainProfileCounters();
  REQUIRE(counters != nullptr);
  const Graph &g = (*profiled)->trainingGraph();
  int timed = 0;
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node &n = g[v];
    bool leaf = n.op == Op::Input || n.op == Op::Param || n.op == Op::State || n.op == Op::Const;
    if (leaf)
      CHECK(counters[v] == 0);
    // (CrossEntropyGrad runs no code of its own: the loss kernel writes it.)
    if (n.op == Op::Tanh || n.op == Op::BatchNormGrad || n.op == Op::CrossEntropy)
      CHECK(counters[v] > 0);
    timed += counters[v] > 0;
  }
  CHECK(timed >= 10);
}
#endif
