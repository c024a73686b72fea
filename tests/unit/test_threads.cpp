// `--threads N` (CompileOptions::parallel, runtime/ThreadTeam.h): the step
// and evaluation give bit-identical results for 1, 2 and 3 threads, with
// equal or uneven parts of the shared loops; the team's balancing moves the
// parts towards the faster thread. The
// oracle is the one-thread runtime, whose code is the serial code checked
// against the f64 interpreter in test_jit_examples.cpp; 3 threads on a
// 2-core machine also exercises the oversubscribed barrier.
#include "Skip.h"
#include "TestUtil.h"
#include "TrainingFixture.h"
#include "frontend/Overrides.h"
#include "runtime/ModelRuntime.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <random>

using namespace mlpc;

namespace {

struct Run {
  std::vector<float> losses;
  TensorMap params;
  std::vector<float> logits;
};

// `shares`: fixed, uneven parts of the shared loops (ThreadTeam::fixShares)
// instead of the balanced ones; empty: the team's own.
Run train(const ModelAST &ast, DiagnosticEngine &diags, unsigned threads,
          std::vector<double> shares = {}) {
  std::unique_ptr<ModelRuntime> rt = test::threadedRuntime(ast, diags, threads);
  CHECK(rt->threads() == threads);
  if (!shares.empty()) {
    REQUIRE(rt->threadTeam());
    rt->threadTeam()->fixShares(shares);
  }
  const int64_t context = rt->context();
  std::mt19937 rng(11);
  Run run;
  run.losses = test::trainRandomSteps(*rt, 4, rng);
  run.params = rt->params();
  if (rt->hasLogits()) {
    std::vector<int32_t> rows(ModelRuntime::kEvalRows * context);
    for (auto &x : rows)
      x = static_cast<int32_t>(rng() % 27);
    auto logits = rt->logits(rows.data(), ModelRuntime::kEvalRows);
    REQUIRE(bool(logits));
    run.logits.assign(*logits, *logits + ModelRuntime::kEvalRows * 27);
  }
  return run;
}

} // namespace

TEST_CASE("every thread count computes the same bits", "[threads]") {
  // makemore at batch 128 and 256 runs its weight gradients by batch row
  // blocks (LowerMatMulBatchBlocks.cpp: dW1 = emb^T @ dhprebn tiled, dW2 =
  // h^T @ dlogits transposed; blocks of 32 and 64 rows, added in pairs),
  // which one thread adds as it goes and threads in a second phase. The batch statistics,
  // BatchNormGrad and column sums split row blocks when 4 blocks of at
  // least 16 rows divide the batch (128, 256; 68: blocks of 17, not a
  // multiple of the matmul's row tiles, and too short for the weight
  // gradients' blocks) and column groups otherwise (60; wavenet has both).
  // At H = 64 the weight-gradient nodes (SGD updates of 1920 and 1728 floats
  // with the matmul in their loop) are shared like the big ones
  // (LowerParallel.cpp, nodeMode), not left on thread 0.
  for (const char *example :
       {"makemore.mlp", "makemore.mlp@batch=256", "makemore.mlp@batch=128", "makemore.mlp@batch=68",
        "makemore.mlp@batch=60", "makemore.mlp@batch=256@H=1024", "makemore.mlp@batch=256@H=64",
        "makemore.mlp@batch=256@H=400", "makemore_adamw.mlp", "mlp3_bn.mlp", "wavenet.mlp",
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
      REQUIRE_FALSE(bool(test::applySettings(ast, settings)));
      Run one = train(ast, diags, 1);
      // Equal parts, and parts as uneven as the balancing may make them
      // (ThreadTeam.h: a thread keeps at least a quarter of an equal part);
      // 5 threads, more than kTransposeSlots, share a transposed weight. From
      // 3 threads on, cuts fall inside the weight gradients' pairs of blocks
      // (KernelBuilder::onShareOfTrip): 4 threads take two to a pair.
      const std::vector<std::pair<unsigned, std::vector<double>>> teams{
          {2, {}}, {3, {}}, {2, {0.15, 0.85}}, {3, {0.6, 0.1, 0.3}}, {4, {}}, {5, {}}};
      for (const auto &[threads, shares] : teams) {
        INFO(example << " with " << threads << " threads, " << shares.size() << " fixed shares");
        Run many = train(ast, diags, threads, shares);
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

TEST_CASE("the team's barrier lets no thread through before all have arrived", "[threads]") {
  // Each thread writes its round number into its own slot, passes the
  // barrier, reads every slot (all must show this round), and passes it
  // again before the next round's write; a thread let through early reads
  // an older round. Team sizes cover one round of the dissemination
  // barrier (2), rounds with a partner wrapping around (3, 5), and more
  // threads than this machine has cores (spinning, then yielding).
  for (unsigned threads : {2u, 3u, 5u, 8u}) {
    INFO(threads << " threads");
    ThreadTeam team(threads);
    std::vector<std::atomic<int>> slots(threads);
    std::atomic<int> stale{0};
    constexpr int kRounds = 2000;
    team.run([&](const ThreadContext &ctx) {
      for (int round = 1; round <= kRounds; ++round) {
        slots[ctx.index].store(round, std::memory_order_relaxed);
        ctx.barrier(ctx.team);
        for (const std::atomic<int> &slot : slots)
          if (slot.load(std::memory_order_relaxed) != round)
            stale.fetch_add(1, std::memory_order_relaxed);
        ctx.barrier(ctx.team);
      }
    });
    CHECK(stale.load() == 0);
    // The barrier's numbers carry over from one run to the next.
    team.run([&](const ThreadContext &ctx) {
      slots[ctx.index].store(-1, std::memory_order_relaxed);
      ctx.barrier(ctx.team);
      for (const std::atomic<int> &slot : slots)
        if (slot.load(std::memory_order_relaxed) != -1)
          stale.fetch_add(1, std::memory_order_relaxed);
    });
    CHECK(stale.load() == 0);
  }
}

TEST_CASE("the team gives a faster thread more of the shared loops", "[threads]") {
  // Each step reports, per thread, cycles proportional to its part times its
  // slowness (thread 1 three times slower): the parts that equalise them are
  // 3/4 and 1/4. The shares move halfway every kBalanceSteps (16) steps.
  ThreadTeam team(2);
  CHECK(team.shares() == std::vector<double>{0.5, 0.5});
  for (int step = 0; step < 16 * 12; ++step)
    team.run([](const ThreadContext &ctx) {
      const uint64_t slowness = ctx.index == 1 ? 3 : 1;
      *ctx.sharedCycles += slowness * uint64_t(ctx.shareEnd - ctx.shareBegin);
    });
  std::vector<double> shares = team.shares();
  CHECK(shares[0] == Approx(0.75).margin(0.005));
  CHECK(shares[1] == Approx(0.25).margin(0.005));
  // Fixed shares stay put; the parts tile [0, 1).
  team.fixShares({1, 3});
  for (int step = 0; step < 40; ++step)
    team.run([](const ThreadContext &ctx) { *ctx.sharedCycles += 1; });
  CHECK(team.shares() == std::vector<double>{0.25, 0.75});
}

TEST_CASE("a thread slower for a while keeps a part to be measured by", "[threads]") {
  ThreadTeam team(2);
  for (int step = 0; step < 16 * 12; ++step)
    team.run([](const ThreadContext &ctx) {
      *ctx.sharedCycles += (ctx.index == 1 ? 1000 : 1) * uint64_t(ctx.shareEnd - ctx.shareBegin);
    });
  CHECK(team.shares()[1] == Approx(0.125).margin(0.001)); // kMinShareOfEqual of 1/2
}

TEST_CASE("auto threads: switching between the team and one thread keeps the bits", "[threads]") {
  // makemore at batch 256 (17.5 MFLOP) gets a team of 2 under auto on a
  // machine with 2 cores. Its first trial runs 16 steps on the team, 16 on
  // one thread (the parallel code without a context), and so on; 40 steps
  // cover both and two switches. The oracle: one thread, fixed.
  if (availableCores() < 2) {
    test::skipTest("--threads auto needs 2 cores for a team");
    return;
  }
  std::string source = test::readFile(test::examplePath("makemore.mlp"));
  DiagnosticEngine diags{"makemore.mlp", source};
  ModelAST ast = parseModel(source, diags);
  REQUIRE_FALSE(diags.hasErrors());
  auto o = parseOverride("batch=256");
  REQUIRE(bool(o));
  REQUIRE_FALSE(bool(applyOverrides(ast, {*o})));
  auto run = [&](unsigned threads) {
    std::unique_ptr<ModelRuntime> rt = test::threadedRuntime(ast, diags, threads);
    std::mt19937 rng(11);
    std::vector<float> losses = test::trainRandomSteps(*rt, 40, rng);
    if (threads == 0) {
      CHECK(rt->threads() == 2);
      const ThreadChoice *choice = rt->trainThreadChoice();
      REQUIRE(choice);
      CHECK(choice->callsOnTeam() == 24);
      CHECK(choice->callsAlone() == 16);
    }
    return std::make_pair(losses, rt->params());
  };
  auto [oneLosses, oneParams] = run(1);
  auto [autoLosses, autoParams] = run(0);
  CHECK(autoLosses == oneLosses);
  for (auto &[name, values] : oneParams) {
    INFO(name);
    CHECK(autoParams[name] == values);
  }
}
