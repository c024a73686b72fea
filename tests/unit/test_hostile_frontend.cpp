// Hostile model files that once crashed the compiler (issue 8): expressions
// whose trees are deep without nesting in the parser. Each must produce one
// located error, not a stack overflow in the parser, the lowering or the AST
// destructor.
#include "TestUtil.h"

#include <catch2/catch.hpp>

#include <string>

using namespace mlpc;

namespace {

std::string parseErrors(const std::string &src) {
  DiagnosticEngine diags("t.mlp", src);
  parseModel(src, diags);
  return diags.render();
}

std::string model(const std::string &expr) {
  return "model m\ndim N = 4\nparam W : [N] = randn\nforward {\n  a = " + expr +
         "\n  loss = sum(a)\n}\n";
}

} // namespace

TEST_CASE("hostile: a million-term chain is rejected, not recursed into", "[hostile][parser]") {
  // 4 MB of `W + W + ...`: a left-deep tree a million levels high. It used to
  // be built, then lowered recursively (SIGSEGV at ~100k levels).
  std::string chain = "W";
  for (int i = 0; i < 1000000; ++i)
    chain += " + W";
  std::string out = parseErrors(model(chain));
  // The 1000th operator (column 9 + 4 * 999) makes the tree 1001 levels deep.
  CHECK(out.find("t.mlp:5:4005: error: expression is too deep: more than 1000 levels of "
                 "operations\n") == 0);
  // Recovery continues with the next statement: only one error.
  CHECK(out.find(": error: ", out.find(": error: ") + 1) == std::string::npos);
}

TEST_CASE("hostile: every left-deep form is bounded", "[hostile][parser]") {
  auto repeat = [](const std::string &first, const std::string &piece, int n) {
    std::string s = first;
    for (int i = 0; i < n; ++i)
      s += piece;
    return s;
  };
  const std::string tooDeep = "error: expression is too deep";
  CHECK(parseErrors(model(repeat("W", " * W", 200000))).find(tooDeep) != std::string::npos);
  CHECK(parseErrors(model(repeat("W", " @ W", 200000))).find(tooDeep) != std::string::npos);
  CHECK(parseErrors(model(repeat("W", " - 1", 200000))).find(tooDeep) != std::string::npos);
  CHECK(parseErrors(model(repeat("C", "[X]", 200000))).find(tooDeep) != std::string::npos);
  // Each parenthesised group nests once (within the 200 limit) but adds a
  // level to the tree: 150 groups of 10 operators are 1500 levels deep.
  std::string groups = "W";
  for (int i = 0; i < 150; ++i)
    groups = "(" + groups + " + W + W + W + W + W + W + W + W + W + W)";
  CHECK(parseErrors(model(groups)).find(tooDeep) != std::string::npos);
  // Dimension and initializer expressions go through the same parser.
  CHECK(parseErrors("model m\ndim T = " + repeat("1", " + 1", 100000) + "\n").find(tooDeep) !=
        std::string::npos);
}

TEST_CASE("hostile: expressions just under the depth limit still compile", "[hostile][lowering]") {
  std::string chain = "W";
  for (int i = 0; i < 999; ++i)
    chain += " + W";
  std::string errors;
  std::optional<Module> m = test::lowerSource(model(chain), &errors);
  INFO(errors);
  REQUIRE(m);
  // And the whole check pipeline runs on it.
  DiagnosticEngine diags("t.mlp", "");
  CHECK(runPipeline(m->graph, Stage::Grad, {}, diags));
  CHECK(!diags.hasErrors());
}
