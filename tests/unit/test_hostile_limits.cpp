// Size limits (issue 8, point 5): tensors too large for memory, dims that
// overflow, bindings from the command line (--batch, --vocab) and totals over
// all parameters or all forward values are rejected by lowering with a
// located error, before anything is allocated. Model-file cases with their
// exact diagnostics are in tests/malformed/ (34..43).
#include "TestUtil.h"

#include <catch2/catch.hpp>

#include "ir/ShapeRules.h"

#include <string>

using namespace mlpc;

namespace {

const char *kModel = R"(model m
dim V = vocab
dim N = batch
dim T = 3
input X : i32[N, T]
target Y : i32[N]
param C : [V, 10] = randn
param W : [T*10, V] = randn
forward {
  emb = reshape(C[X], [N, T*10])
  loss = cross_entropy(emb @ W, Y)
}
train {
  batch 32
}
)";

std::string lowerErrors(const std::string &src, const LoweringOptions &options) {
  std::string errors;
  std::optional<Module> m = test::lowerSource(src, &errors, options);
  CHECK(!m);
  return errors;
}

} // namespace

TEST_CASE("hostile: --batch overrides are range-checked by lowering", "[hostile][limits]") {
  LoweringOptions options;
  std::string errors;
  options.dimOverrides["N"] = 1000;
  CHECK(test::lowerSource(kModel, &errors, options));

  // Too many rows: located at the first shape that uses N.
  options.dimOverrides["N"] = int64_t(1) << 40;
  CHECK(lowerErrors(kModel, options)
            .find("t.mlp:5:15: error: tensor is too large: more than "
                  "2147483648 elements\n") == 0);
  // Large enough to overflow int64 when multiplied by T.
  options.dimOverrides["N"] = INT64_MAX;
  CHECK(lowerErrors(kModel, options).find("t.mlp:5:15: error: tensor is too large") == 0);
  // Zero and negative values: reported at the declaration of N.
  for (int64_t bad : {int64_t(0), int64_t(-1), INT64_MIN}) {
    options.dimOverrides["N"] = bad;
    CHECK(lowerErrors(kModel, options) == "t.mlp:3:5: error: dimension 'N' must be positive, got " +
                                              std::to_string(bad) + "\ndim N = batch\n    ^\n");
  }
}

TEST_CASE("hostile: a huge vocabulary is rejected at the tensors it makes too large",
          "[hostile][limits]") {
  LoweringOptions options;
  options.vocab = 1 << 24; // the largest --vocab the driver accepts
  std::string errors;
  // [V, 10] and [30, V] are fine on their own (and 2.1 GB together)...
  CHECK(test::lowerSource(kModel, &errors, options));
  // ...but a [V, V] table is not.
  std::string square = "model m\ndim V = vocab\nparam E : [V, V] = randn\nforward {\n  loss = "
                       "sum(E)\n}\n";
  CHECK(lowerErrors(square, options).find("t.mlp:3:15: error: tensor is too large") == 0);
  // Nor is the gather [N, T, V] of a wide table.
  options.dimOverrides["N"] = 100000;
  std::string wide = std::string(kModel);
  wide.replace(wide.find("[V, 10]"), 7, "[10, V]");
  CHECK(lowerErrors(wide, options).find("result of 'gather' is too large") != std::string::npos);
  // A vocabulary of zero is not a dimension.
  options.vocab = 0;
  CHECK(lowerErrors(square, options)
            .find("t.mlp:2:5: error: dimension 'V' must be positive, "
                  "got 0\n") == 0);
}

TEST_CASE("hostile: parameter totals cross the limit at the parameter that crosses it",
          "[hostile][limits]") {
  // 1 GiB of f32 each: the fifth crosses 4 GiB.
  std::string src = "model m\n";
  for (int i = 0; i < 6; ++i)
    src += "param P" + std::to_string(i) + " : [16384, 16384] = zeros\n";
  src += "forward {\n  loss = mean(P0)\n}\n";
  std::string errors = lowerErrors(src, {});
  CHECK(errors.find("t.mlp:6:7: error: the parameters are too large: more than 4 GiB "
                    "(4294967296 bytes) in total\n") == 0);
  // Reported once, not for every parameter after it.
  CHECK(errors.find(": error: ", errors.find(": error: ") + 1) == std::string::npos);
  CHECK(kMaxParamBytes == int64_t(4) << 30);
}

TEST_CASE("hostile: shape rules refuse results past the element limit", "[hostile][limits]") {
  Graph g;
  Node a(Op::Param);
  a.type = {DType::F32, {int64_t(1) << 31, 1}};
  a.name = "a";
  Node b(Op::Param);
  b.type = {DType::F32, {1, int64_t(1) << 31}};
  b.name = "b";
  ValueId va = g.add(a), vb = g.add(b);
  std::string error;
  CHECK(!inferType(g, Node(Op::Add, {va, vb}), error));
  CHECK(error == "result of 'add' is too large: [2147483648, 2147483648] has more than "
                 "2147483648 elements");
  // An attribute shape whose product overflows int64 is refused before any
  // rule multiplies it (TensorType::numel() would be undefined behaviour).
  Node r(Op::Reshape, {va});
  r.shapeAttr = {int64_t(1) << 32, int64_t(1) << 32, int64_t(1) << 32};
  error.clear();
  CHECK(!inferType(g, r, error));
  CHECK(error.find("'reshape' target shape") == 0);
  CHECK(!checkedNumel(r.shapeAttr));
  CHECK(checkedNumel({3, 4}) == 12);
  CHECK(!checkedNumel({-1, 4}));
}
