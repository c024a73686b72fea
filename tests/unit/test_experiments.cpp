// The experiment loop of makemore part 2: --set overrides (frontend/Overrides.h)
// against the shapes lowering gives, the learning-rate search's schedule
// against its closed form, and the embedding projection against a table whose
// principal components are known.
#include "TestUtil.h"
#include "frontend/Overrides.h"
#include "runtime/LrFinder.h"
#include "runtime/Projection.h"

#include <catch2/catch.hpp>

#include <cmath>

using namespace mlpc;

namespace {

const char *kModel = R"(model m
dim V = vocab
dim T = 3
dim E = 10
dim H = 200
dim N = batch
input X : i32[N, T]
target Y : i32[N]
param C : [V, E] = randn
param W1 : [T*E, H] = randn / sqrt(T*E)
param W2 : [H, V] = randn * 0.1
forward {
  h = tanh(reshape(C[X], [N, T*E]) @ W1)
  loss = cross_entropy(h @ W2, Y)
}
train {
  steps 1000
  batch 32
  sgd lr 0.1, 0.01 after 500
}
)";

struct Parsed {
  std::string source = kModel;
  DiagnosticEngine diags{"m.mlp", source};
  ModelAST ast = parseModel(source, diags);
};

// Consumes `e`; true when it held an error.
bool failed(llvm::Error e) {
  bool isError = bool(e);
  llvm::consumeError(std::move(e));
  return isError;
}

template <typename T> bool failed(llvm::Expected<T> e) {
  return failed(e ? llvm::Error::success() : e.takeError());
}

std::vector<Override> overrides(std::initializer_list<const char *> texts) {
  std::vector<Override> out;
  for (const char *t : texts) {
    auto o = parseOverride(t);
    if (!o) {
      FAIL(llvm::toString(o.takeError()));
      continue;
    }
    out.push_back(*o);
  }
  return out;
}

std::string applyError(ModelAST &ast, std::initializer_list<const char *> texts) {
  llvm::Error e = applyOverrides(ast, overrides(texts));
  if (!e) {
    FAIL("no error");
    return "";
  }
  return llvm::toString(std::move(e));
}

Shape paramShape(const Module &m, const std::string &name) {
  auto id = m.graph.findLeaf(Op::Param, name);
  REQUIRE(id);
  return m.graph[*id].type.shape;
}

} // namespace

TEST_CASE("--set on dims reshapes every parameter and input that uses them", "[overrides]") {
  Parsed p;
  REQUIRE_FALSE(p.diags.hasErrors());
  REQUIRE_FALSE(failed(applyOverrides(p.ast, overrides({"H=300", "T=5", "E=2", "N=64"}))));
  auto m = lowerModel(p.ast, LoweringOptions{}, p.diags);
  REQUIRE(m);
  CHECK(paramShape(*m, "C") == Shape{27, 2});
  CHECK(paramShape(*m, "W1") == Shape{10, 300}); // T*E follows both dims
  CHECK(paramShape(*m, "W2") == Shape{300, 27});
  CHECK(m->train.batch == 64); // N is bound to the batch
  CHECK(m->contextLength == 5);
  CHECK(p.ast.overrides == std::vector<std::string>{"H=300", "T=5", "E=2", "N=64"});
}

TEST_CASE("--set on train settings uses the train block's own syntax", "[overrides]") {
  Parsed p;
  REQUIRE_FALSE(failed(applyOverrides(
      p.ast, overrides({"steps=50", "batch=8", "sgd=lr 0.5, 0.05 after 20, 0.005 after 40"}))));
  auto m = lowerModel(p.ast, LoweringOptions{}, p.diags);
  REQUIRE(m);
  CHECK(m->train.steps == 50);
  CHECK(m->train.batch == 8);
  CHECK(m->train.learningRate(0) == 0.5);
  CHECK(m->train.learningRate(19) == 0.5);
  CHECK(m->train.learningRate(20) == 0.05);
  CHECK(m->train.learningRate(45) == 0.005);

  REQUIRE_FALSE(failed(applyOverrides(p.ast, overrides({"lr=0.03"}))));
  auto constant = lowerModel(p.ast, LoweringOptions{}, p.diags);
  REQUIRE(constant);
  CHECK(constant->train.learningRate(0) == 0.03);
  CHECK(constant->train.learningRate(45) == 0.03);
  // `lr` keeps the optimizer statement (and its record) and replaces its schedule.
  CHECK(p.ast.overrides == std::vector<std::string>{"steps=50", "batch=8",
                                                    "sgd=lr 0.5, 0.05 after 20, 0.005 after 40",
                                                    "lr=0.03"});
  REQUIRE_FALSE(failed(applyOverrides(p.ast, overrides({"lr=0.04"}))));
  CHECK(p.ast.overrides.back() == "lr=0.04"); // a later lr replaces the earlier one
  CHECK(p.ast.overrides.size() == 4);
}

TEST_CASE("--set errors name the setting and the model's dims", "[overrides]") {
  Parsed p;
  std::string unknown = applyError(p.ast, {"Q=3"});
  CHECK_THAT(unknown, Catch::Contains("'Q' is not a dim or train setting"));
  CHECK_THAT(unknown, Catch::Contains("T=3 E=10 H=200 N=batch"));
  CHECK_THAT(applyError(p.ast, {"H=1.5"}), Catch::Contains("must be a positive integer"));
  CHECK_THAT(applyError(p.ast, {"H=0"}), Catch::Contains("must be a positive integer"));
  CHECK_THAT(applyError(p.ast, {"V=30"}), Catch::Contains("bound to the dataset's vocabulary"));
  CHECK_THAT(applyError(p.ast, {"sgd=lr"}), Catch::Contains("expected learning rate"));
  CHECK_THAT(applyError(p.ast, {"steps=many"}), Catch::Contains("expected integer after 'steps'"));
  CHECK(failed(parseOverride("H")));
  CHECK(failed(parseOverride("=3")));
  CHECK(failed(parseOverride("H=")));
}

TEST_CASE("an override that breaks a shape is a lowering error at the model's line",
          "[overrides]") {
  std::string source = std::string(kModel);
  source.replace(source.find("dim E = 10"), 10, "dim E = 10\ndim D = 30");
  source.replace(source.find("[T*E, H]"), 8, "[D, H]");
  DiagnosticEngine diags("m.mlp", source);
  ModelAST ast = parseModel(source, diags);
  REQUIRE_FALSE(diags.hasErrors());
  REQUIRE_FALSE(failed(applyOverrides(ast, overrides({"E=4"}))));
  CHECK_FALSE(lowerModel(ast, LoweringOptions{}, diags));
  CHECK_THAT(diags.render(), Catch::Contains("m.mlp:"));
  CHECK_THAT(diags.render(), Catch::Contains("[32, 12]")); // reshape(C[X]) is now [N, T*E] = 12
}

TEST_CASE("checkpoint metadata round-trips overrides", "[overrides]") {
  std::vector<std::string> texts = {"H=300", "sgd=lr 0.1, 0.01 after 5", "steps=7"};
  auto decoded = decodeOverrides(encodeOverrides(texts));
  if (!decoded)
    FAIL(llvm::toString(decoded.takeError()));
  REQUIRE(decoded->size() == 3);
  CHECK((*decoded)[1].name == "sgd");
  CHECK((*decoded)[1].value == "lr 0.1, 0.01 after 5");
  CHECK(failed(decodeOverrides("{\"H\": 3}")));
}

TEST_CASE("lr-find raises the rate exponentially from lo to hi", "[lrfind]") {
  LrFindOptions o; // the seed: lre = linspace(-3, 0, 1000); lr = 10**lre
  CHECK(lrFindRate(0, o) == Approx(1e-3));
  CHECK(lrFindRate(999, o) == Approx(1.0));
  CHECK(lrFindRate(333, o) == Approx(std::pow(10.0, -3.0 + 3.0 * 333 / 999)));
  CHECK(lrFindRate(666, o) == Approx(std::pow(10.0, -3.0 + 3.0 * 666 / 999)));
  o.steps = 3;
  o.lo = 1e-4;
  o.hi = 1e-2;
  CHECK(lrFindRate(1, o) == Approx(1e-3));
  CHECK_FALSE(failed(validate(o)));
  o.hi = o.lo;
  CHECK(failed(validate(o)));
}

TEST_CASE("the embedding projection finds the principal components", "[projection]") {
  // Rows spread along (1, 1, 0)/sqrt2 with variance 4x that along (0, 0, 1).
  std::vector<float> table;
  const int rows = 8;
  for (int r = 0; r < rows; ++r) {
    const float signs[rows] = {1, -1, -1, 1, 1, -1, -1, 1}; // uncorrelated with r, mean 0
    float a = static_cast<float>(r) - 3.5f, b = signs[r];
    table.insert(table.end(), {a + 5, a + 5, b});
  }
  Projection2D p = project2D(table.data(), rows, 3);
  CHECK(p.principal);
  double var1 = 0, var2 = 0;
  for (int r = 0; r < rows; ++r) {
    CHECK(p.x[r] == Approx((r - 3.5) * std::sqrt(2.0)).margin(1e-6)); // sign: positive loading
    CHECK(std::fabs(p.y[r]) == Approx(1.0).margin(1e-6));
    var1 += p.x[r] * p.x[r];
    var2 += p.y[r] * p.y[r];
  }
  CHECK(p.explained[0] == Approx(var1 / (var1 + var2)));
  CHECK(p.explained[1] == Approx(var2 / (var1 + var2)));

  std::vector<float> two = {1, 2, 3, 4};
  Projection2D raw = project2D(two.data(), 2, 2);
  CHECK_FALSE(raw.principal);
  CHECK(raw.x == std::vector<double>{1, 3});
  CHECK(raw.y == std::vector<double>{2, 4});
}
