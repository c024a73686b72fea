// The JIT against the f64 interpreter on every example: the training graph's
// loss, every gradient and the running-statistics updates, and the inference
// graphs' logits, on random parameters and batches.
#include "Skip.h"
#include "TestUtil.h"
#include "ir/GradCheck.h"
#include "runtime/BoundFunction.h"
#include "runtime/ParamInit.h"

#include <catch2/catch.hpp>

#include <cmath>

using namespace mlpc;

namespace {

// max |jit - ref| relative to the largest |ref| of the tensor (at least
// 1e-3). A tensor that is zero in exact arithmetic (the gradient of a bias
// right before a batchnorm: the f64 reference is ~1e-17) holds only the f32
// rounding of a sum that cancels, ~batch x ulp of its terms (~1e-8 for
// terms ~0.05): compared against a floor of 1e-2, i.e. 1e-7 absolute.
double relativeError(const float *jit, const std::vector<double> &ref) {
  double maxDiff = 0, scale = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    maxDiff = std::max(maxDiff, std::fabs(double(jit[i]) - ref[i]));
    scale = std::max(scale, std::fabs(ref[i]));
  }
  return maxDiff / (scale < 1e-12 ? 1e-2 : std::max(scale, 1e-3));
}

void checkAgainstInterpreter(const Graph &g, uint64_t seed, int64_t vocab,
                             CompileOptions options = {}) {
  Rng rng(seed);
  TensorMap params = initParameters(g, rng);
  for (auto &[name, values] : params) // non-trivial running statistics
    if (name.find(".running_var") != std::string::npos)
      for (float &v : values)
        v = 0.5f + float(rng.uniform());
  std::map<std::string, std::vector<int32_t>> inputs;
  LeafValues leaves;
  for (auto &[name, values] : params)
    leaves[name].assign(values.begin(), values.end());
  for (ValueId v : g.leaves(Op::Input)) {
    auto &x = inputs[g[v].name];
    for (int64_t i = 0; i < g[v].type.numel(); ++i)
      x.push_back(int32_t(rng.below(vocab)));
    leaves[g[v].name].assign(x.begin(), x.end());
  }
  auto expected = interpret(g, leaves);
  REQUIRE(bool(expected));

  auto jit = JitEngine::create(options);
  REQUIRE(bool(jit));
  auto compiled = (*jit)->compile(g, "under_test", options);
  REQUIRE(bool(compiled));
  BoundFunction fn(std::move(*compiled));
  TensorMap working = params; // the function writes running statistics back
  for (const BindingInfo &b : fn.function().bindings()) {
    if (b.kind == BindingInfo::Kind::Input)
      REQUIRE_FALSE(bool(fn.bind(b.name, inputs[b.name].data())));
    else if (b.kind != BindingInfo::Kind::Output)
      REQUIRE_FALSE(bool(fn.bind(b.name, working[b.name].data())));
  }
  std::vector<std::vector<float>> stateOut;
  for (const BindingInfo &b : fn.function().bindings())
    if (b.kind == BindingInfo::Kind::Output && b.optional) {
      stateOut.emplace_back(b.type.numel());
      REQUIRE_FALSE(bool(fn.bind(b.name, stateOut.back().data())));
    }
  REQUIRE_FALSE(bool(fn.ready()));
  fn.run(0.0f);
  size_t optionalIndex = 0;
  for (const BindingInfo &b : fn.function().bindings()) {
    if (b.kind != BindingInfo::Kind::Output)
      continue;
    const float *out = b.optional ? stateOut[optionalIndex++].data() : fn.output(b.name);
    INFO(g.name << " output " << b.name);
    CHECK(relativeError(out, (*expected)[*g.output(b.name)]) < 1e-5);
  }
}

} // namespace

TEST_CASE("JIT training and inference graphs agree with the f64 interpreter", "[jit]") {
  for (const char *example :
       {"makemore.mlp", "makemore_atomic.mlp", "mlp3_bn.mlp", "deep_tanh_zero.mlp"}) {
    SECTION(example) {
      auto model = test::lowerSource(test::readFile(test::examplePath(example)));
      REQUIRE(model);
      for (uint64_t seed : {1, 2}) {
        checkAgainstInterpreter(test::stage(model->graph, Stage::Grad), seed, 27);
        checkAgainstInterpreter(test::stage(model->graph, Stage::Infer), seed, 27);
        checkAgainstInterpreter(test::stage(model->graph, Stage::Folded), seed, 27);
      }
      // Unfused atomic graphs exercise every elementwise, reduction and
      // gradient-only op the fusion passes would otherwise remove.
      checkAgainstInterpreter(test::stage(model->graph, Stage::Grad, /*fuse=*/false), 3, 27);
    }
  }
}

// Each vector width the kernels can be built for (codegen/VectorShape.h: the
// widths change the tiles, the masks and the order of every reduction)
// computes the same numbers. A width the host lacks is capped to its widest.
TEST_CASE("every vector width agrees with the f64 interpreter", "[jit][vector-width]") {
  for (const char *example : {"makemore.mlp", "mlp3_bn.mlp"}) {
    auto model = test::lowerSource(test::readFile(test::examplePath(example)));
    REQUIRE(model);
    for (unsigned bits : {128u, 256u, 512u}) {
      INFO(example << " at " << bits << " bits");
      CompileOptions options;
      options.vectorBits = bits;
      checkAgainstInterpreter(test::stage(model->graph, Stage::Grad), 4, 27, options);
      checkAgainstInterpreter(test::stage(model->graph, Stage::Infer), 4, 27, options);
    }
  }
}

// The width rule for CPUs by name (codegen/VectorShape.h): the widest
// registers, whatever the CPU's tuning prefers.
TEST_CASE("the vector width follows the CPU's registers", "[jit][vector-width]") {
  auto bits = [](const char *cpu, unsigned requested = 0) {
    CompileOptions options;
    options.triple = "x86_64-unknown-linux-gnu";
    options.cpu = cpu;
    options.vectorBits = requested;
    auto target = describeTarget(options);
    REQUIRE(bool(target));
    return std::make_pair(target->vectorBits, target->vectorRegisters);
  };
  CHECK(bits("x86-64-v3") == std::make_pair(256u, 16u));
  CHECK(bits("x86-64-v4") == std::make_pair(512u, 32u));
  CHECK(bits("sapphirerapids") == std::make_pair(512u, 32u)); // LLVM prefers 256 here
  CHECK(bits("skylake-avx512") == std::make_pair(512u, 32u));
  CHECK(bits("znver4") == std::make_pair(512u, 32u));
  CHECK(bits("x86-64") == std::make_pair(128u, 16u));
  CHECK(bits("sapphirerapids", 256) == std::make_pair(256u, 32u));
  CHECK(bits("x86-64-v3", 512) == std::make_pair(256u, 16u)); // a cap, not a promise
}

#if defined(__x86_64__)
// Code for an AVX2-only CPU (8 lanes, 16 registers: other tiles and masks)
// runs on any AVX2 host and agrees with the interpreter.
TEST_CASE("code for --cpu x86-64-v3 agrees with the f64 interpreter", "[jit][vector-width]") {
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    test::skipTest("the host has no AVX2");
    return;
  }
  auto model = test::lowerSource(test::readFile(test::examplePath("makemore.mlp")));
  REQUIRE(model);
  CompileOptions options;
  options.cpu = "x86-64-v3";
  checkAgainstInterpreter(test::stage(model->graph, Stage::Grad), 6, 27, options);
  checkAgainstInterpreter(test::stage(model->graph, Stage::Infer), 6, 27, options);
}
#endif
