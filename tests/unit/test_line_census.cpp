// The line census (`mlpc bench --line-census`: CompileOptions::traceLines,
// runtime/LineCensus.h) against what the split of the step implies, in
// closed form. makemore at batch 256: the SGD update of W1 [30, H] splits
// W1's rows between the n threads and the forward matmul hprebn = emb @ W1
// has every thread read all of W1, so every step each of W1's L lines is
// written by one thread after the others read it (L writes after reads), and
// each thread reads the (n - 1) / n of the lines the others wrote ((n - 1) L
// reads after writes). A line may straddle a cut when the binding is not
// 64-byte aligned, which moves a count by at most one per cut (the reads:
// by up to one per thread per cut, see below).
#include "TestUtil.h"
#include "frontend/Overrides.h"
#include "runtime/BoundFunction.h"
#include "runtime/LineCensus.h"
#include "runtime/ModelRuntime.h"
#include "runtime/ThreadTeam.h"

#include <catch2/catch.hpp>

#include <random>

using namespace mlpc;

namespace {

ModelAST makemoreAt(const std::vector<std::string> &settings, DiagnosticEngine &diags,
                    const std::string &source) {
  ModelAST ast = parseModel(source, diags);
  REQUIRE_FALSE(diags.hasErrors());
  REQUIRE_FALSE(bool(test::applySettings(ast, settings)));
  return ast;
}

void step(ModelRuntime &rt, std::mt19937 &rng) {
  std::vector<int32_t> X(rt.batch() * rt.context()), Y(rt.batch());
  for (auto &x : X)
    x = static_cast<int32_t>(rng() % 27);
  for (auto &y : Y)
    y = static_cast<int32_t>(rng() % 27);
  REQUIRE(bool(rt.trainStep(X.data(), Y.data(), 0.05f)));
}

// Lines per step of `crossing` on `buffer`, all nodes together.
double perStep(const LineCensus &census, const std::string &buffer, LineCensus::Crossing crossing) {
  uint64_t lines = 0;
  for (const LineCensus::Row &r : census.rows())
    if (r.buffer == buffer && r.crossing == crossing)
      lines += r.lines;
  return static_cast<double>(lines) / static_cast<double>(census.steps());
}

// Counts `steps` traced steps of makemore at `settings` on `threads` threads
// (equal parts) after one warm-up step; returns the runtime for its buffers.
std::unique_ptr<ModelRuntime> countSteps(const std::vector<std::string> &settings, unsigned threads,
                                         int steps, LineCensus &census) {
  static const std::string source = test::readFile(test::examplePath("makemore.mlp"));
  DiagnosticEngine diags{"makemore.mlp", source};
  ModelAST ast = makemoreAt(settings, diags, source);
  Vocabulary vocab = buildVocabulary({"abcdefghijklmnopqrstuvwxyz"});
  ExecutionOptions execution;
  execution.threads = threads;
  auto rt = ModelRuntime::create(ast, vocab, diags, {}, execution);
  REQUIRE(bool(rt));
  ThreadTeam *team = (*rt)->threadTeam();
  REQUIRE(team);
  team->setTracer(&LineCensus::record, &census);
  team->fixShares(std::vector<double>(threads, 1.0));
  (*rt)->enableLineTrace();
  (*rt)->initParams(5);
  std::mt19937 rng(11);
  step(**rt, rng); // compiles and binds the traced step
  census.describe(*(*rt)->trainBound());
  step(**rt, rng);
  census.startCounting();
  for (int s = 0; s < steps; ++s) {
    step(**rt, rng);
    census.countStep();
  }
  REQUIRE(census.steps() == steps);
  return std::move(*rt);
}

} // namespace

TEST_CASE("the line census counts the weights' crossings in closed form", "[threads][census]") {
  for (unsigned threads : {2u, 3u}) {
    INFO(threads << " threads");
    LineCensus census;
    std::unique_ptr<ModelRuntime> rt = countSteps({"batch=256", "H=64"}, threads, 3, census);
    auto it = rt->params().find("W1"); // the buffer the step is bound to
    REQUIRE(it != rt->params().end());
    REQUIRE(it->second.size() == 30 * 64);
    const auto begin = reinterpret_cast<uintptr_t>(it->second.data());
    const auto end = begin + it->second.size() * sizeof(float);
    const double lines = static_cast<double>((end - 1) / 64 - begin / 64 + 1);
    const double cuts = threads - 1;
    using C = LineCensus::Crossing;
    const double written = perStep(census, "binding W1", C::WriteAfterRead);
    const double read = perStep(census, "binding W1", C::ReadAfterWrite);
    CHECK(written >= lines - cuts);
    CHECK(written <= lines + cuts);
    // A line straddling a cut has two writers, and a reader whose reads of it
    // fall between their two writes counts it once after each: up to
    // `threads` more counts per cut, by timing (seen: 246 against 242 + 2
    // with 3 threads on 2 vCPUs).
    CHECK(read >= (threads - 1) * lines - cuts);
    CHECK(read <= (threads - 1) * lines + cuts * threads);
    // Nothing is written by two threads in turn there: the update's rows
    // are each thread's own.
    CHECK(perStep(census, "binding W1", C::WriteAfterWrite) <= cuts);
  }
}

TEST_CASE("parallel code writes each value's bytes from one thread", "[threads][census]") {
  // The split keeps each thread on its batch rows, and parallel plans give
  // values of other row lengths bytes of their own (BufferPlan.cpp, step 5),
  // so a value's line is written by two threads in turn only where a cut
  // falls inside it or a thread-0 node writes what a shared one wrote: a
  // few lines. With the serial plan's reuse, hprebn [256, 64] shared bytes
  // with dembcat [256, 30]: ~480 lines a step (2 now). Scratch is reused
  // between nodes either way, so it is not counted here.
  LineCensus census;
  std::unique_ptr<ModelRuntime> rt = countSteps({"batch=256", "H=64"}, 2, 2, census);
  uint64_t lines = 0;
  for (const LineCensus::Row &r : census.rows())
    if (r.crossing == LineCensus::Crossing::WriteAfterWrite && r.buffer.rfind('%', 0) == 0)
      lines += r.lines;
  const double perStepWW = static_cast<double>(lines) / static_cast<double>(census.steps());
  INFO("value lines written after the other thread wrote them, per step: " << perStepWW);
  CHECK(perStepWW <= 16);
}

TEST_CASE("threads split the one-block batch statistics by columns", "[threads][census]") {
  // At batch 32 the batch statistics are one block of rows (statsRowBlocks):
  // threads split the column groups (LowerFused.cpp, emitBatchStats), so each
  // line of the mean, the 1/std and the running statistics is written by one
  // thread. Computed on every thread, every one of those lines was written
  // by both in turn each step (same values: the bits could not show it).
  LineCensus census;
  std::unique_ptr<ModelRuntime> rt = countSteps({"batch=32", "H=256"}, 2, 3, census);
  uint64_t lines = 0;
  for (const LineCensus::Row &r : census.rows())
    if (r.crossing == LineCensus::Crossing::WriteAfterWrite &&
        (r.buffer.rfind("batch statistics", 0) == 0 || r.buffer.rfind("binding bnmean", 0) == 0 ||
         r.buffer.rfind("binding bnvar", 0) == 0))
      lines += r.lines;
  const double perStepWW = static_cast<double>(lines) / static_cast<double>(census.steps());
  INFO("statistics lines written after the other thread wrote them, per step: " << perStepWW);
  CHECK(perStepWW <= 4);
}
