// Helpers for the codegen tests: building graphs by hand, binding random
// data, running the JIT and the reference interpreter side by side.
#pragma once

#include "codegen/Compiler.h"
#include "ir/Interpreter.h"
#include "ir/ShapeRules.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace mlpc::testing {

inline ValueId leaf(Graph &g, Op op, const std::string &name, Shape shape) {
  Node n(op);
  n.name = name;
  n.type = {op == Op::Input ? DType::I32 : DType::F32, std::move(shape)};
  return g.add(std::move(n));
}
inline ValueId param(Graph &g, const std::string &name, Shape shape) {
  return leaf(g, Op::Param, name, shape);
}
inline ValueId input(Graph &g, const std::string &name, Shape shape) {
  return leaf(g, Op::Input, name, shape);
}
inline ValueId state(Graph &g, const std::string &name, Shape shape) {
  return leaf(g, Op::State, name, shape);
}

// A node with attributes set by `attrs` before its type is inferred.
inline ValueId node(Graph &g, Op op, std::vector<ValueId> operands,
                    const std::function<void(Node &)> &attrs = {}) {
  Node n(op, std::move(operands));
  if (attrs)
    attrs(n);
  std::string error;
  std::optional<TensorType> t = inferType(g, n, error);
  INFO(error);
  REQUIRE(t);
  n.type = *t;
  return g.add(std::move(n));
}

// The BatchNorm family over x[rows, h] as a training step has it: tanh of
// the normalised x ("y"), the input gradient ("dx") and the column sums of
// the gain, bias and layer-below bias gradients ("dgain", "dbias",
// "dbelow"), eps 1e-5. Returns x.
inline ValueId addBatchNormFamily(Graph &g, int64_t rows, int64_t h) {
  auto eps = [](Node &n) { n.scalar = 1e-5; };
  auto axis0 = [](Node &n) { n.axis = 0; };
  ValueId x = param(g, "x", {rows, h}), gain = param(g, "gain", {h}), bias = param(g, "bias", {h}),
          dout = param(g, "dout", {rows, h});
  g.setOutput("y", node(g, Op::Tanh, {node(g, Op::BatchNorm, {x, gain, bias}, eps)}));
  ValueId dx = node(g, Op::BatchNormGrad, {x, gain, dout}, eps);
  g.setOutput("dx", dx);
  ValueId xhat = node(g, Op::BatchNormXhat, {x}, eps);
  g.setOutput("dgain", node(g, Op::Sum, {node(g, Op::Mul, {dout, xhat})}, axis0));
  g.setOutput("dbias", node(g, Op::Sum, {dout}, axis0));
  g.setOutput("dbelow", node(g, Op::Sum, {dx}, axis0)); // the bias gradient of the layer below
  return x;
}

inline JitEngine &sharedJit() {
  static std::unique_ptr<JitEngine> jit = [] {
    auto j = JitEngine::create(CompileOptions{});
    if (!j) {
      FAIL(llvm::toString(j.takeError()));
    }
    return std::move(*j);
  }();
  return *jit;
}

inline std::string uniqueName() {
  static int counter = 0;
  return "test_fn_" + std::to_string(counter++);
}

using LeafData = std::map<std::string, std::vector<double>>;

// Random data for every leaf: f32 uniform in [lo, hi), i32 uniform in [0, indexRange).
struct RandomLeaves {
  std::mt19937 rng{12345};
  double lo = -1, hi = 1;
  int indexRange = 1;
  LeafData operator()(const Graph &g) {
    LeafData data;
    for (const Node &n : g.nodes) {
      if (n.op != Op::Input && n.op != Op::Param && n.op != Op::State)
        continue;
      std::vector<double> &d = data[n.name];
      for (int64_t i = 0; i < n.type.numel(); ++i)
        d.push_back(n.op == Op::Input
                        ? double(std::uniform_int_distribution<int>(0, indexRange - 1)(rng))
                        : double(float(std::uniform_real_distribution<double>(lo, hi)(rng))));
    }
    return data;
  }
};

struct JitRun {
  CompiledFunction fn;
  std::vector<std::vector<float>> outputs; // per graph output (empty if bound to null)
  std::map<std::string, std::vector<float>> leavesAfter; // Param / State contents after the call
};

// Compiles and runs g once. nullOutputs: output names bound to null.
// engine / name: where and as what to compile (default: sharedJit(), a fresh name).
inline JitRun runJit(const Graph &g, const LeafData &data, const CompileOptions &options = {},
                     float lr = 0, const std::vector<std::string> &nullOutputs = {},
                     JitEngine *engine = nullptr, const std::string &name = "") {
  auto compiled =
      (engine ? *engine : sharedJit()).compile(g, name.empty() ? uniqueName() : name, options);
  if (!compiled)
    FAIL(llvm::toString(compiled.takeError()));
  JitRun run{*compiled, {}, {}};
  std::vector<std::vector<float>> floatLeaves;
  std::vector<std::vector<int32_t>> intLeaves;
  std::vector<void *> bindings;
  std::vector<std::string> leafNames;
  floatLeaves.reserve(g.size());
  intLeaves.reserve(g.size());
  for (const BindingInfo &b : run.fn.bindings()) {
    if (b.kind == BindingInfo::Kind::Output)
      break;
    const std::vector<double> &d = data.at(b.name);
    if (b.type.dtype == DType::I32) {
      intLeaves.emplace_back(d.begin(), d.end());
      bindings.push_back(intLeaves.back().data());
    } else {
      floatLeaves.emplace_back(d.begin(), d.end());
      bindings.push_back(floatLeaves.back().data());
      leafNames.push_back(b.name);
    }
  }
  run.outputs.resize(g.outputs.size());
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    bool null =
        std::find(nullOutputs.begin(), nullOutputs.end(), g.outputs[i].name) != nullOutputs.end();
    if (!null)
      run.outputs[i].assign(g[g.outputs[i].value].type.numel(), NAN);
    bindings.push_back(null ? nullptr : run.outputs[i].data());
  }
  // Garbage-filled workspace: a kernel reading before writing shows up as NaN.
  size_t bytes = (run.fn.workspaceBytes() + 63) / 64 * 64 + 64;
  void *ws = std::aligned_alloc(64, bytes);
  std::memset(ws, 0xff, bytes);
  run.fn.run(bindings.data(), lr, ws);
  std::free(ws);
  for (size_t i = 0; i < leafNames.size(); ++i)
    run.leavesAfter[leafNames[i]] = floatLeaves[i];
  return run;
}

inline Values interpretOrFail(const Graph &g, const LeafData &data) {
  auto values = interpret(g, data);
  if (!values)
    FAIL(llvm::toString(values.takeError()));
  return *values;
}

// |actual - expected| <= rtol * |expected| + atol elementwise; reports the worst element.
inline void expectClose(const std::vector<float> &actual, const std::vector<double> &expected,
                        const std::string &what, double rtol = 1e-5, double atol = 1e-5) {
  REQUIRE(actual.size() == expected.size());
  size_t worst = 0;
  double worstExcess = -1;
  bool ok = true;
  for (size_t i = 0; i < actual.size(); ++i) {
    double a = actual[i], e = expected[i];
    if (std::isnan(e) && std::isnan(a))
      continue;
    if (std::isinf(e) && a == e)
      continue;
    double excess = std::fabs(a - e) - (rtol * std::fabs(e) + atol);
    if (!(excess <= 0))
      ok = false;
    if (!(excess <= worstExcess))
      worstExcess = excess, worst = i;
  }
  INFO(what << ": element " << worst << " of " << actual.size() << " is " << actual[worst]
            << ", expected " << expected[worst]);
  CHECK(ok);
}

// dW = x^T @ dy, x [batch, m] and dy [batch, n], three ways: a plain
// output, fused into an elementwise consumer (+ bias), and the gradient of a
// parameter P [m, n] (the SGD update in the kernel's epilogue or after it).
struct WeightGradientGraph {
  Graph g;
  ValueId plain = 0, fused = 0, grad = 0;
};
inline WeightGradientGraph weightGradientGraph(int64_t batch, int64_t m, int64_t n) {
  WeightGradientGraph w;
  Graph &g = w.g;
  ValueId x = param(g, "x", {batch, m}), dy = param(g, "dy", {batch, n});
  ValueId p = param(g, "P", {m, n}), bias = param(g, "bias", {n});
  auto dw = [&] { return node(g, Op::MatMul, {x, dy}, [](Node &nd) { nd.transA = true; }); };
  w.plain = dw(), w.fused = node(g, Op::Add, {dw(), bias}), w.grad = dw();
  g.setOutput("plain", w.plain);
  g.setOutput("fused", w.fused);
  g.setOutput({"grad.P", w.grad, OutputRole::Gradient, p, std::nullopt});
  return w;
}
// Runs it at `bits` with lr 0.25 and checks the three outputs and P after
// the update against the interpreter (tolerance growing with sqrt(batch)).
inline void checkWeightGradient(const WeightGradientGraph &w, unsigned bits, int64_t batch) {
  CompileOptions options;
  options.vectorBits = bits;
  options.sgdUpdate = true;
  const float lr = 0.25f;
  LeafData data = RandomLeaves{}(w.g);
  Values ref = interpretOrFail(w.g, data);
  JitRun run = runJit(w.g, data, options, lr);
  const double tol = 1e-6 * std::sqrt(double(batch));
  expectClose(run.outputs[0], ref[w.plain], "plain", 1e-5, tol);
  expectClose(run.outputs[1], ref[w.fused], "fused", 1e-5, tol);
  expectClose(run.outputs[2], ref[w.grad], "grad.P", 1e-5, tol);
  std::vector<double> expect = data["P"];
  for (size_t i = 0; i < expect.size(); ++i)
    expect[i] -= lr * ref[w.grad][i];
  expectClose(run.leavesAfter["P"], expect, "P after the update", 1e-5, tol);
}

// Runs g with the JIT and the interpreter on the same random data and compares every output.
inline void checkAgainstInterpreter(const Graph &g, RandomLeaves random = {}, double rtol = 1e-5,
                                    double atol = 1e-5) {
  LeafData data = random(g);
  Values ref = interpretOrFail(g, data);
  JitRun run = runJit(g, data);
  for (size_t i = 0; i < g.outputs.size(); ++i)
    expectClose(run.outputs[i], ref[g.outputs[i].value], g.outputs[i].name, rtol, atol);
}

} // namespace mlpc::testing
