// Shape rules, the verifier, lowering and the simplify pass.
#include "TestUtil.h"
#include "ir/Printer.h"
#include "ir/ShapeRules.h"

#include <catch2/catch.hpp>

#include <cmath>

using namespace mlpc;

namespace {
ValueId param(Graph &g, const std::string &name, Shape shape) {
  Node n(Op::Param);
  n.name = name;
  n.type = {DType::F32, std::move(shape)};
  return g.add(std::move(n));
}
ValueId index(Graph &g, const std::string &name, Shape shape) {
  Node n(Op::Input);
  n.name = name;
  n.type = {DType::I32, std::move(shape)};
  return g.add(std::move(n));
}
std::string typeError(Graph &g, Node n) {
  std::string error;
  REQUIRE_FALSE(inferType(g, n, error));
  return error;
}
} // namespace

TEST_CASE("broadcasting follows numpy's trailing-axis rule", "[shape]") {
  CHECK(broadcastShapes({32, 200}, {200}) == Shape{32, 200});
  CHECK(broadcastShapes({32, 1}, {1, 27}) == Shape{32, 27});
  CHECK(broadcastShapes({}, {3, 4}) == Shape{3, 4});
  CHECK_FALSE(broadcastShapes({32, 200}, {27}));
  CHECK_FALSE(broadcastShapes({2, 3}, {3, 2}));
}

TEST_CASE("shape rules compute result types", "[shape]") {
  Graph g;
  ValueId a = param(g, "a", {32, 30}), b = param(g, "b", {30, 200}), x = index(g, "x", {32, 3});
  ValueId c = param(g, "c", {27, 10}), y = index(g, "y", {32});
  CHECK(g[g.make(Op::MatMul, {a, b})].type.shape == Shape{32, 200});
  Node mt(Op::MatMul, {a, a});
  mt.transA = true;
  CHECK(g[g.build(mt)].type.shape == Shape{30, 30});
  CHECK(g[g.make(Op::Gather, {c, x})].type.shape == Shape{32, 3, 10});
  Node sum(Op::Sum, {a});
  sum.axis = 1;
  CHECK(g[g.build(sum)].type.shape == Shape{32, 1});
  sum.axis = -1;
  CHECK(g[g.build(sum)].type.shape == Shape{});
  ValueId logits = param(g, "l", {32, 27});
  CHECK(g[g.make(Op::CrossEntropy, {logits, y})].type.shape == Shape{});
  CHECK(g[g.make(Op::Pick, {logits, y})].type.shape == Shape{32});
}

TEST_CASE("shape rules explain mismatches with both shapes", "[shape]") {
  Graph g;
  ValueId a = param(g, "a", {32, 30}), b = param(g, "b", {20, 200}), y = index(g, "y", {16});
  CHECK(typeError(g, Node(Op::MatMul, {a, b})) ==
        "matmul shapes do not match: [32, 30] @ [20, 200] (inner dimensions 30 and 20 differ)");
  CHECK(typeError(g, Node(Op::Add, {a, b})) == "cannot broadcast [32, 30] and [20, 200] in 'add'");
  CHECK(typeError(g, Node(Op::Pick, {a, y})) ==
        "'pick' needs one label per row: 32 rows but labels of shape [16]");
  CHECK(typeError(g, Node(Op::Tanh, {y})) ==
        "'tanh' expects a f32 tensor as operand 1, got i32[16]");
  Node r(Op::Reshape, {a});
  r.shapeAttr = {7, 7};
  CHECK(typeError(g, r) == "cannot reshape [32, 30] (960 elements) to [7, 7] (49 elements)");
  ValueId gain = param(g, "g", {31});
  CHECK(typeError(g, Node(Op::BatchNorm, {a, gain, gain})) ==
        "'batchnorm' operand 2 must have shape [30] or [1, 30] to match [32, 30], got f32[31]");
}

TEST_CASE("the verifier catches broken graphs", "[verifier]") {
  Graph g;
  ValueId a = param(g, "a", {4, 4});
  ValueId t = g.make(Op::Tanh, {a});
  g.setOutput("out", t);
  CHECK(verifyGraph(g).empty());
  g[t].type.shape = {4, 5};
  REQUIRE(verifyGraph(g).size() == 1);
  CHECK(verifyGraph(g)[0] == "%1 (tanh) has type f32[4, 5] but its shape rule gives f32[4, 4]");
  g[t].type.shape = {4, 4};
  g[t].operands[0] = 5; // refers forward: not topologically ordered
  CHECK(verifyGraph(g)[0] == "%1 (tanh) uses %5 before it is defined");
}

TEST_CASE("lowering binds dims, vocab and batch overrides", "[lowering]") {
  std::string errors;
  std::string src =
      "model m\ndim V = vocab\ndim N = batch\ninput X : i32[N, 2]\ntarget Y : i32[N]\n"
      "param C : [V, 4] = randn\nforward {\n  loss = cross_entropy(reshape(C[X], [N, 8]) @ ones8, "
      "Y)\n}\n";
  // `ones8` is unknown: errors are reported, not thrown.
  CHECK_FALSE(test::lowerSource(src, &errors));
  CHECK(errors.find("unknown name 'ones8'") != std::string::npos);

  std::string ok = "model m\ndim V = vocab\ndim N = batch\ninput X : i32[N, 2]\ntarget Y : i32[N]\n"
                   "param C : [V, V] = randn\nforward {\n  loss = cross_entropy(reshape(C[X], [N, "
                   "2*V]) @ W, Y)\n}\n"
                   "train {\n  batch 16\n}\n";
  std::string full = ok.substr(0, ok.find("forward")) + "param W : [2*V, V] = zeros\n" +
                     ok.substr(ok.find("forward"));
  LoweringOptions options;
  options.vocab = 5;
  auto m = test::lowerSource(full, &errors, options);
  REQUIRE(m);
  CHECK(m->dim("V") == 5);
  CHECK(m->dim("N") == 16);
  CHECK(m->batchDim == "N");
  CHECK(m->contextLength == 2);
  options.dimOverrides["N"] = 1;
  auto one = test::lowerSource(full, &errors, options);
  REQUIRE(one);
  CHECK(one->graph[*one->graph.findLeaf(Op::Input, "X")].type.shape == Shape{1, 2});
}

TEST_CASE("simplify folds constants and removes identities, duplicates and dead code", "[passes]") {
  Graph g;
  ValueId a = param(g, "a", {4, 3});
  ValueId x = g.make(Op::Add, {g.make(Op::Mul, {a, g.makeConst(1.0)}), g.makeConst(0.0)});
  ValueId t1 = g.make(Op::Tanh, {g.make(Op::Neg, {g.make(Op::Neg, {x})})});
  ValueId t2 = g.make(Op::Tanh, {x});
  g.make(Op::Exp, {t1}); // dead
  ValueId half = g.make(Op::Div, {g.makeConst(1.0), g.makeConst(2.0)});
  g.setOutput("out", g.make(Op::Mul, {g.make(Op::Add, {t1, t2}), half}));
  PassContext ctx;
  CHECK(simplify(g, ctx));
  CHECK(printGraph(g) == "graph  {\n"
                         "  %0 = param a : f32[4, 3] = ?\n"
                         "  %1 = tanh %0 : f32[4, 3]\n"
                         "  %2 = add %1, %1 : f32[4, 3]\n"
                         "  %3 = const 0.5\n"
                         "  %4 = mul %2, %3 : f32[4, 3]\n"
                         "  output out = %4\n"
                         "}\n");
  CHECK_FALSE(simplify(g, ctx)); // already minimal
}

TEST_CASE("x * 1 is not simplified when 1 broadcasts x to a larger shape", "[passes]") {
  Graph g;
  ValueId a = param(g, "a", {3});
  ValueId ones = param(g, "ones", {2, 3});
  ValueId one = g.makeConst(1.0);
  ValueId bigOne = g.make(Op::Mul, {ones, g.makeConst(0.0)});
  g.setOutput("out", g.make(Op::Add, {g.make(Op::Mul, {a, one}), bigOne}));
  PassContext ctx;
  simplify(g, ctx);
  // a*1 -> a, but a + broadcast(0) keeps the [2, 3] shape.
  CHECK(g[*g.output("out")].type.shape == Shape{2, 3});
  CHECK(verifyGraph(g).empty());
}

TEST_CASE("CSE never merges a NaN constant with another constant", "[passes]") {
  Graph g;
  ValueId a = param(g, "a", {2});
  ValueId nan = g.makeConst(std::nan(""));
  ValueId two = g.makeConst(2.0);
  g.setOutput("x", g.make(Op::Mul, {a, nan}));
  g.setOutput("y", g.make(Op::Mul, {a, two}));
  PassContext ctx;
  simplify(g, ctx);
  CHECK(*g.output("x") != *g.output("y"));
}
