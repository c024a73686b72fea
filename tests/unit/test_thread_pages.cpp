// Thread 1's own pages (codegen/ThreadPages.h, runtime/ThreadWorkspace.h):
// the mapping keeps thread 1's pages apart and shares the rest; a team of
// two whose step has such pages uses them and computes the one-thread
// bits, also after its parts are made unequal (then every thread shares
// again). The oracle is the one-thread runtime, whose serial code
// test_jit_examples.cpp checks against the f64 interpreter; the plan's
// declarations are also checked for every example and team in
// test_threads.cpp ("every thread count computes the same bits").
#include "Skip.h"
#include "TestUtil.h"
#include "TrainingFixture.h"
#include "codegen/ThreadPages.h"
#include "frontend/Overrides.h"
#include "runtime/ModelRuntime.h"
#include "runtime/ThreadWorkspace.h"

#include <catch2/catch.hpp>

#include <cstring>

using namespace mlpc;

TEST_CASE("thread 1's own pages are its own; the rest is shared", "[threads]") {
  const int64_t page = codegen::kThreadPageBytes;
  ThreadWorkspace ws(4 * page);
  CHECK(ws.forThread(0) == ws.forThread(1));
  if (!ws.privatize({{page, 3 * page}})) {
    test::skipTest("no per-thread mappings on this system (memfd, 4 KB pages)");
    return;
  }
  auto *zero = static_cast<unsigned char *>(ws.forThread(0));
  auto *one = static_cast<unsigned char *>(ws.forThread(1));
  REQUIRE(zero != one);
  std::memset(zero, 1, 4 * page); // thread 0 writes everything
  CHECK(one[0] == 1);             // shared: page 0
  CHECK(one[page] == 0);          // thread 1's own page: untouched
  CHECK(one[3 * page - 1] == 0);
  CHECK(one[3 * page] == 1); // shared: page 3
  one[page + 5] = 7;         // thread 1's write stays its own
  one[3 * page + 5] = 9;     // and a shared write is seen by thread 0
  CHECK(zero[page + 5] == 1);
  CHECK(zero[3 * page + 5] == 9);
  CHECK(ws.shared() == ws.forThread(0));
}

TEST_CASE("a workspace refuses pages that are not whole pages inside it", "[threads]") {
  const int64_t page = codegen::kThreadPageBytes;
  ThreadWorkspace ws(2 * page);
  CHECK_FALSE(ws.privatize({}));
  CHECK_FALSE(ws.privatize({{100, page}}));
  CHECK_FALSE(ws.privatize({{page, 5 * page}}));
  CHECK_FALSE(ws.privatized());
}

TEST_CASE("a team of two uses thread 1's own pages and keeps the bits", "[threads]") {
  std::string source = test::readFile(test::examplePath("makemore.mlp"));
  DiagnosticEngine diags{"makemore.mlp", source};
  ModelAST ast = parseModel(source, diags);
  REQUIRE_FALSE(diags.hasErrors());
  REQUIRE_FALSE(bool(test::applySettings(ast, {"batch=256", "H=64"})));
  std::mt19937 rngOne(11), rngTwo(11);
  auto one = test::threadedRuntime(ast, diags, 1), two = test::threadedRuntime(ast, diags, 2);
  std::vector<float> lossesOne = test::trainRandomSteps(*one, 6, rngOne);
  std::vector<float> lossesTwo = test::trainRandomSteps(*two, 3, rngTwo);
  if (two->trainThreadOwnBytes() == 0) {
    test::skipTest("no per-thread mappings on this system (memfd, 4 KB pages)");
    return;
  }
  // The batch's [256, *] values: thread 1's halves of hprebn, h and the
  // gradients (64 floats a row) at least.
  CHECK(two->trainThreadOwnBytes() >= 3 * 128 * 64 * 4);
  CHECK(two->threadTeam()->shares() == std::vector<double>{0.5, 0.5});
  // Unequal parts: thread 1 leaves its pages and every thread shares.
  two->threadTeam()->fixShares({0.3, 0.7});
  std::vector<float> more = test::trainRandomSteps(*two, 3, rngTwo);
  lossesTwo.insert(lossesTwo.end(), more.begin(), more.end());
  CHECK(lossesTwo == lossesOne);
  TensorMap paramsOne = one->params(), paramsTwo = two->params();
  for (auto &[name, values] : paramsOne) {
    INFO(name);
    CHECK(paramsTwo[name] == values);
  }
}
