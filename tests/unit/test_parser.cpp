#include "frontend/ASTPrinter.h"
#include "frontend/Parser.h"

#include <catch2/catch.hpp>

#include <string>

using namespace mlpc;

namespace {

// Printed AST of a source that must parse cleanly.
std::string printed(const std::string &src) {
  DiagnosticEngine diags("t.mlp", src);
  ModelAST ast = parseModel(src, diags);
  INFO(diags.render());
  CHECK_FALSE(diags.hasErrors());
  return printAST(ast);
}

// The S-expression of one forward-block expression.
std::string expr(const std::string &text) {
  std::string src = "model m\nforward {\n  x = " + text + "\n}\n";
  DiagnosticEngine diags("t.mlp", src);
  ModelAST ast = parseModel(src, diags);
  INFO(diags.render());
  REQUIRE_FALSE(diags.hasErrors());
  REQUIRE(ast.forward.size() == 1);
  return printExpr(*ast.forward[0].value);
}

const char *kMakemore = R"(# makemore MLP with BatchNorm
model makemore

dim V = vocab        # bound from the dataset
dim T = 3
dim E = 10
dim H = 200
dim N = batch

input  X : i32[N, T]
target Y : i32[N]

param C      : [V, E]   = randn
param W1     : [T*E, H] = randn * (5/3) / sqrt(T*E)
param bngain : [H]      = 1 + randn * 0.1

forward {
  emb     = C[X]                          # [N, T, E]
  embcat  = reshape(emb, [N, T*E])
  hprebn  = embcat @ W1
  hpreact = batchnorm(hprebn, bngain, bnbias)
  h       = tanh(hpreact)
  loss    = cross_entropy(h @ W2 + b2, Y)
}

train {
  steps 200000
  batch 32
  sgd lr 0.1, 0.01 after 100000
}
)";

} // namespace

TEST_CASE("parser: makemore model prints as golden AST", "[parser]") {
  CHECK(printed(kMakemore) == R"(model makemore
dim V = vocab
dim T = 3
dim E = 10
dim H = 200
dim N = batch
input X : i32[N, T]
target Y : i32[N]
param C : [V, E] = randn
param W1 : [(* T E), H] = (/ (* randn (/ 5 3)) (sqrt (* T E)))
param bngain : [H] = (+ 1 (* randn 0.1))
forward
  emb = (index C X)
  embcat = (reshape emb [N, (* T E)])
  hprebn = (@ embcat W1)
  hpreact = (batchnorm hprebn bngain bnbias)
  h = (tanh hpreact)
  loss = (cross_entropy (+ (@ h W2) b2) Y)
train
  steps 200000
  batch 32
  sgd lr 0.1 from 0, 0.01 from 100000
)");
}

TEST_CASE("parser: precedence and associativity", "[parser]") {
  CHECK(expr("a + b * c") == "(+ a (* b c))");
  CHECK(expr("a * b + c") == "(+ (* a b) c)");
  CHECK(expr("a - b - c") == "(- (- a b) c)");
  CHECK(expr("a / b / c") == "(/ (/ a b) c)");
  CHECK(expr("a @ b + c") == "(+ (@ a b) c)");
  CHECK(expr("a + b @ c") == "(+ a (@ b c))");
  CHECK(expr("a @ b * c") == "(* (@ a b) c)");
  CHECK(expr("-x ^ 2") == "(neg (^ x 2))");
  CHECK(expr("x ^ -0.5") == "(^ x (neg 0.5))");
  CHECK(expr("a ^ b ^ c") == "(^ a (^ b c))");
  CHECK(expr("2 * x ^ 2") == "(* 2 (^ x 2))");
  CHECK(expr("--x") == "(neg (neg x))");
  CHECK(expr("a - -b") == "(- a (neg b))");
  CHECK(expr("(a + b) * c") == "(* (+ a b) c)");
  CHECK(expr("C[X] ^ 2") == "(^ (index C X) 2)");
  CHECK(expr("-C[X]") == "(neg (index C X))");
}

TEST_CASE("parser: calls, lists and indexing", "[parser]") {
  CHECK(expr("f") == "f");
  CHECK(expr("f()") == "(f)");
  CHECK(expr("sum(x, 1)") == "(sum x 1)");
  CHECK(expr("reshape(emb, [N, T*E])") == "(reshape emb [N, (* T E)])");
  CHECK(expr("f([])") == "(f [])");
  CHECK(expr("f([a], [b, c])") == "(f [a] [b, c])");
  CHECK(expr("C[X][0]") == "(index (index C X) 0)");
  CHECK(expr("C[X[1] + 2]") == "(index C (+ (index X 1) 2))");
  CHECK(expr("f(x)[i]") == "(index (f x) i)");
  CHECK(expr("(a)[i]") == "(index a i)");
}

TEST_CASE("parser: newlines inside brackets are skipped", "[parser]") {
  CHECK(expr("f(a,\n    b)") == "(f a b)");
  CHECK(expr("(a\n  + b)") == "(+ a b)");
  CHECK(expr("C[\n X\n ]") == "(index C X)");
  CHECK(expr("reshape(emb, [N,\n T*E])") == "(reshape emb [N, (* T E)])");
}

TEST_CASE("parser: numbers print by value", "[parser]") {
  CHECK(expr("3") == "3");
  CHECK(expr("1.0") == "1.0");
  CHECK(expr("0.1") == "0.1");
  CHECK(expr("1e-5") == "1e-05");
  CHECK(expr("2.5E+3") == "2500.0");
  CHECK(expr("1e20") == "1e+20");
  CHECK(expr("9223372036854775807") == "9223372036854775807");
  CHECK(expr("9223372036854775808") == "9.223372036854776e+18");
}

TEST_CASE("parser: declarations and their fields", "[parser]") {
  std::string src = "\n\n# header comment\nmodel m\ndim N = batch\ndim X = vocab * 2\n"
                    "input A : i32[N]\ntarget B : f32[N, 2]\nparam W : [3] = 1\n"
                    "forward { y = W }\ntrain {\n  sgd lr 1, 0.5 after 10, 0.25 after 20\n}";
  DiagnosticEngine diags("t.mlp", src);
  ModelAST ast = parseModel(src, diags);
  INFO(diags.render());
  REQUIRE_FALSE(diags.hasErrors());
  CHECK(ast.name == "m");
  CHECK(ast.loc.line == 4);
  CHECK(ast.loc.col == 7);
  REQUIRE(ast.dims.size() == 2);
  CHECK(ast.dims[0].binding == "batch");
  CHECK(ast.dims[0].value == nullptr);
  CHECK(ast.dims[1].binding.empty()); // `vocab * 2` is an expression, not a binding
  CHECK(printExpr(*ast.dims[1].value) == "(* vocab 2)");
  REQUIRE(ast.tensors.size() == 2);
  CHECK(ast.tensors[0].role == TensorDecl::Role::Input);
  CHECK(ast.tensors[1].role == TensorDecl::Role::Target);
  CHECK(ast.tensors[1].dtype == "f32"); // the parser keeps any dtype; lowering checks it
  CHECK(ast.tensors[1].dtypeLoc.col == 12);
  CHECK(ast.tensors[1].shape.size() == 2);
  CHECK(ast.hasForward);
  CHECK(ast.forwardLoc.line == 10);
  REQUIRE(ast.forward.size() == 1);
  REQUIRE(ast.train);
  CHECK_FALSE(ast.train->steps);
  CHECK_FALSE(ast.train->batch);
  REQUIRE(ast.train->schedule.size() == 3);
  CHECK(ast.train->schedule[0].lr == 1.0);
  CHECK(ast.train->schedule[0].fromStep == 0);
  CHECK(ast.train->schedule[1].lr == 0.5);
  CHECK(ast.train->schedule[1].fromStep == 10);
  CHECK(ast.train->schedule[2].fromStep == 20);
  CHECK(ast.train->schedule[2].loc.col == 27);
  CHECK(printAST(ast) == R"(model m
dim N = batch
dim X = (* vocab 2)
input A : i32[N]
target B : f32[N, 2]
param W : [3] = 1
forward
  y = W
train
  sgd lr 1.0 from 0, 0.5 from 10, 0.25 from 20
)");
}

TEST_CASE("parser: node locations", "[parser]") {
  std::string src = "model m\nforward {\n  h = -f(a) @ W[i] + 2\n}\n";
  DiagnosticEngine diags("t.mlp", src);
  ModelAST ast = parseModel(src, diags);
  REQUIRE(ast.forward.size() == 1);
  const Assign &a = ast.forward[0];
  CHECK(a.loc.line == 3);
  CHECK(a.loc.col == 3);
  // Binary and Index nodes sit at their operator, so `@` and `+` differ.
  const Expr &plus = *a.value;
  CHECK(plus.op == '+');
  CHECK(plus.loc.col == 20);
  const Expr &matmul = *plus.args[0];
  CHECK(matmul.op == '@');
  CHECK(matmul.loc.col == 13);
  const Expr &neg = *matmul.args[0];
  CHECK(neg.kind == ExprKind::Unary);
  CHECK(neg.loc.col == 7);
  CHECK(neg.args[0]->kind == ExprKind::Call);
  CHECK(neg.args[0]->loc.col == 8);
  CHECK(neg.args[0]->args[0]->loc.col == 10);
  const Expr &index = *matmul.args[1];
  CHECK(index.kind == ExprKind::Index);
  CHECK(index.loc.col == 16);
  CHECK(plus.args[1]->isInteger);
  CHECK(plus.args[1]->integer == 2);
}

TEST_CASE("parser: 200 levels of nesting are accepted", "[parser]") {
  std::string deep = std::string(200, '(') + "x" + std::string(200, ')');
  CHECK(expr(deep) == "x");
  CHECK(expr(std::string(200, '-') + "x").size() == 200 * 5 + 1 + 200);
}
