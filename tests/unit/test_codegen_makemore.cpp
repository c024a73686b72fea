// The makemore MLP (B=32, T=3, E=10, H=200, V=27) built by hand: the
// forward graph, and a training step (forward, backward with the fused
// gradients, SGD update, BatchNorm running-stat write-back) as the autodiff
// pass will produce it. Checked against the interpreter; the [.bench] case
// reports compile time and time per call.
#include "test_codegen_util.h"

#include "codegen/BufferPlan.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

using namespace mlpc;
using namespace mlpc::testing;

namespace {

constexpr int64_t B = 32, T = 3, E = 10, H = 200, V = 27;

struct Makemore {
  Graph g;
  ValueId X, Y, C, W1, b1, gain, bias, W2, b2, runMean, runVar;
  ValueId emb, embcat, hprebn, hpreact, h, logits, loss;
};

Makemore forward(bool withState) {
  Makemore m;
  Graph &g = m.g;
  m.X = input(g, "X", {B, T});
  m.Y = input(g, "Y", {B});
  m.C = param(g, "C", {V, E});
  m.W1 = param(g, "W1", {T * E, H});
  m.b1 = param(g, "b1", {H});
  m.gain = param(g, "bngain", {H});
  m.bias = param(g, "bnbias", {H});
  m.W2 = param(g, "W2", {H, V});
  m.b2 = param(g, "b2", {V});
  if (withState) {
    m.runMean = state(g, "bngain.running_mean", {H});
    m.runVar = state(g, "bngain.running_var", {H});
  }
  m.emb = node(g, Op::Gather, {m.C, m.X});
  m.embcat = node(g, Op::Reshape, {m.emb}, [](Node &n) { n.shapeAttr = {B, T * E}; });
  m.hprebn = node(g, Op::Add, {node(g, Op::MatMul, {m.embcat, m.W1}), m.b1});
  m.hpreact = node(g, Op::BatchNorm, {m.hprebn, m.gain, m.bias}, [](Node &n) { n.scalar = 1e-5; });
  m.h = node(g, Op::Tanh, {m.hpreact});
  m.logits = node(g, Op::Add, {node(g, Op::MatMul, {m.h, m.W2}), m.b2});
  m.loss = node(g, Op::CrossEntropy, {m.logits, m.Y});
  return m;
}

ValueId sum0(Graph &g, ValueId x) {
  ValueId s = node(g, Op::Sum, {x}, [](Node &n) { n.axis = 0; });
  return node(g, Op::Reshape, {s}, [&](Node &n) { n.shapeAttr = {g[x].type.shape[1]}; });
}

// Forward + backward + SGD (+ running stats), outputs named as the trainer expects.
Makemore trainingStep() {
  Makemore m = forward(true);
  Graph &g = m.g;
  ValueId one = g.makeConst(1.0);
  ValueId dlogits = node(g, Op::CrossEntropyGrad, {m.logits, m.Y, one});
  ValueId dW2 = node(g, Op::MatMul, {m.h, dlogits}, [](Node &n) { n.transA = true; });
  ValueId db2 = sum0(g, dlogits);
  ValueId dh = node(g, Op::MatMul, {dlogits, m.W2}, [](Node &n) { n.transB = true; });
  ValueId dhpreact = node(g, Op::Mul, {dh, node(g, Op::Sub, {one, node(g, Op::Mul, {m.h, m.h})})});
  ValueId xhat = node(g, Op::BatchNormXhat, {m.hprebn}, [](Node &n) { n.scalar = 1e-5; });
  ValueId dgain = sum0(g, node(g, Op::Mul, {dhpreact, xhat}));
  ValueId dbias = sum0(g, dhpreact);
  ValueId dhprebn =
      node(g, Op::BatchNormGrad, {m.hprebn, m.gain, dhpreact}, [](Node &n) { n.scalar = 1e-5; });
  ValueId dW1 = node(g, Op::MatMul, {m.embcat, dhprebn}, [](Node &n) { n.transA = true; });
  ValueId db1 = sum0(g, dhprebn);
  ValueId dembcat = node(g, Op::MatMul, {dhprebn, m.W1}, [](Node &n) { n.transB = true; });
  ValueId demb = node(g, Op::Reshape, {dembcat}, [](Node &n) { n.shapeAttr = {B, T, E}; });
  ValueId dC = node(g, Op::ScatterAdd, {demb, m.X}, [](Node &n) { n.shapeAttr = {V, E}; });
  // running = 0.999 * running + 0.001 * batch statistic (Bessel variance)
  ValueId mean = node(g, Op::Mean, {m.hprebn}, [](Node &n) { n.axis = 0; });
  ValueId centred = node(g, Op::Sub, {m.hprebn, mean});
  ValueId var =
      node(g, Op::Div,
           {node(g, Op::Sum, {node(g, Op::Mul, {centred, centred})}, [](Node &n) { n.axis = 0; }),
            g.makeConst(double(B - 1))});
  auto ema = [&](ValueId run, ValueId stat) {
    return node(g, Op::Add,
                {node(g, Op::Mul, {run, g.makeConst(0.999)}),
                 node(g, Op::Mul, {stat, g.makeConst(0.001)})});
  };
  g.setOutput("loss", m.loss, OutputRole::Loss);
  g.setOutput({"grad.C", dC, OutputRole::Gradient, *g.findLeaf(Op::Param, "C"), {}});
  g.setOutput({"grad.W1", dW1, OutputRole::Gradient, *g.findLeaf(Op::Param, "W1"), {}});
  g.setOutput({"grad.b1", db1, OutputRole::Gradient, *g.findLeaf(Op::Param, "b1"), {}});
  g.setOutput({"grad.bngain", dgain, OutputRole::Gradient, *g.findLeaf(Op::Param, "bngain"), {}});
  g.setOutput({"grad.bnbias", dbias, OutputRole::Gradient, *g.findLeaf(Op::Param, "bnbias"), {}});
  g.setOutput({"grad.W2", dW2, OutputRole::Gradient, *g.findLeaf(Op::Param, "W2"), {}});
  g.setOutput({"grad.b2", db2, OutputRole::Gradient, *g.findLeaf(Op::Param, "b2"), {}});
  g.setOutput(
      {"state.bngain.running_mean", ema(m.runMean, mean), OutputRole::WriteBack, m.runMean, {}});
  g.setOutput(
      {"state.bngain.running_var", ema(m.runVar, var), OutputRole::WriteBack, m.runVar, {}});
  return m;
}

LeafData makemoreData(const Graph &g, uint32_t seed) {
  RandomLeaves r;
  r.rng.seed(seed);
  r.lo = -1, r.hi = 1;
  r.indexRange = V;
  LeafData data = r(g);
  for (double &v : data["bngain"])
    v = 1 + 0.1 * v;
  for (double &v : data["W1"])
    v *= 0.3;
  for (double &v : data["W2"])
    v *= 0.1;
  if (data.count("bngain.running_var"))
    for (double &v : data["bngain.running_var"])
      v = 1 + 0.1 * v;
  return data;
}

} // namespace

TEST_CASE("codegen: makemore forward graph", "[codegen]") {
  Makemore m = forward(false);
  m.g.setOutput("loss", m.loss, OutputRole::Loss);
  m.g.setOutput("logits", m.logits);
  LeafData data = makemoreData(m.g, 7);
  Values ref = interpretOrFail(m.g, data);
  JitRun run = runJit(m.g, data);
  expectClose(run.outputs[0], ref[m.loss], "loss");
  expectClose(run.outputs[1], ref[m.logits], "logits");
}

TEST_CASE("codegen: makemore training step with SGD and running stats", "[codegen]") {
  Makemore m = trainingStep();
  {
    // One set of batch statistics for batchnorm, batchnorm_xhat and
    // batchnorm_grad (see BufferPlan.h). (The gain and bias gradient sums are
    // not taken from the batchnorm_grad kernel here: this graph computes them
    // before it, autodiff's graphs after.)
    auto plan = codegen::planBuffers(m.g, true);
    REQUIRE(bool(plan));
    CHECK(plan->stats.size() == 1);
  }
  LeafData data = makemoreData(m.g, 11);
  Values ref = interpretOrFail(m.g, data);
  CompileOptions options;
  options.sgdUpdate = true;
  const float lr = 0.1f;
  JitRun run = runJit(m.g, data, options, lr);
  for (size_t i = 0; i < m.g.outputs.size(); ++i) {
    const GraphOutput &out = m.g.outputs[i];
    expectClose(run.outputs[i], ref[out.value], out.name, 1e-5, 1e-6);
    if (out.role == OutputRole::Gradient) {
      std::string p = m.g[*out.subject].name;
      std::vector<double> expect = data[p];
      for (size_t j = 0; j < expect.size(); ++j)
        expect[j] -= lr * ref[out.value][j];
      expectClose(run.leavesAfter[p], expect, p + " updated", 1e-5, 1e-6);
    } else if (out.role == OutputRole::WriteBack) {
      expectClose(run.leavesAfter[m.g[*out.subject].name], ref[out.value],
                  out.name + " written back", 1e-5, 1e-6);
    }
  }
}

namespace {

// Thread CPU time: other processes on the machine steal wall time, not this.
double cpuMicros() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

struct Timing {
  double compileMs, medianUs, minUs;
  size_t workspace;
};

// Compiles g and times calls on random data (lr = 0 keeps the parameters
// fixed, so every call does identical work): 21 batches of `calls` calls.
Timing measure(const Graph &g, const CompileOptions &options, int calls = 2000) {
  auto compiled = sharedJit().compile(g, uniqueName(), options);
  if (!compiled)
    FAIL(llvm::toString(compiled.takeError()));
  const CompiledFunction &fn = *compiled;
  LeafData data = makemoreData(g, 3);
  std::vector<std::vector<float>> floats;
  std::vector<std::vector<int32_t>> ints;
  floats.reserve(fn.bindings().size());
  ints.reserve(fn.bindings().size());
  std::vector<void *> bindings;
  for (const BindingInfo &b : fn.bindings()) {
    if (b.kind == BindingInfo::Kind::Output) {
      floats.emplace_back(b.type.numel());
      bindings.push_back(b.optional ? nullptr : floats.back().data());
    } else if (b.type.dtype == DType::I32) {
      ints.emplace_back(data[b.name].begin(), data[b.name].end());
      bindings.push_back(ints.back().data());
    } else {
      floats.emplace_back(data[b.name].begin(), data[b.name].end());
      bindings.push_back(floats.back().data());
    }
  }
  void *ws = std::aligned_alloc(64, (fn.workspaceBytes() + 63) / 64 * 64 + 64);
  for (int i = 0; i < calls; ++i)
    fn.run(bindings.data(), 0.0f, ws);
  std::vector<double> us;
  for (int rep = 0; rep < 21; ++rep) {
    double t0 = cpuMicros();
    for (int i = 0; i < calls; ++i)
      fn.run(bindings.data(), 0.0f, ws);
    us.push_back((cpuMicros() - t0) / calls);
  }
  std::free(ws);
  std::sort(us.begin(), us.end());
  return {fn.compileMillis(), us[us.size() / 2], us[0], fn.workspaceBytes()};
}

} // namespace

TEST_CASE("codegen: makemore benchmark", "[.bench]") {
  auto report = [](const char *label, const Graph &g, const CompileOptions &options) {
    Timing t = measure(g, options);
    std::printf("%-22s compile %7.1f ms   run %6.2f us/call (median of 21, min %.2f)   workspace "
                "%zu bytes\n",
                label, t.compileMs, t.medianUs, t.minUs, t.workspace);
  };
  Makemore f = forward(false);
  f.g.setOutput("loss", f.loss, OutputRole::Loss);
  report("makemore forward", f.g, CompileOptions{});
  Makemore t = trainingStep();
  CompileOptions options;
  options.sgdUpdate = true;
  report("makemore train step", t.g, options);
}

// Single ops at makemore shapes: where the time of a step goes.
TEST_CASE("codegen: op benchmarks", "[.bench]") {
  auto report = [](const std::string &label, const Graph &g, double flops = 0) {
    Timing t = measure(g, CompileOptions{}, 5000);
    std::printf("%-30s %7.3f us", label.c_str(), t.minUs);
    if (flops)
      std::printf("  %6.1f GFLOP/s", flops / t.minUs * 1e-3);
    std::printf("\n");
  };
  auto matmul = [&](const char *label, Shape a, Shape b, bool ta, bool tb) {
    Graph g;
    ValueId x = param(g, "a", a), y = param(g, "b", b);
    ValueId c = node(g, Op::MatMul, {x, y}, [&](Node &n) { n.transA = ta, n.transB = tb; });
    g.setOutput("c", c);
    const Shape &s = g[c].type.shape;
    report(label, g, 2.0 * double(s[0] * s[1] * (ta ? a[0] : a[1])));
  };
  matmul("NN [32,30]@[30,200]", {32, 30}, {30, 200}, false, false);
  matmul("NN [32,200]@[200,27]", {32, 200}, {200, 27}, false, false);
  matmul("TN [32,200]^T@[32,27]", {32, 200}, {32, 27}, true, false);
  matmul("NT [32,27]@[200,27]^T", {32, 27}, {200, 27}, false, true);
  matmul("TN [32,30]^T@[32,200]", {32, 30}, {32, 200}, true, false);
  matmul("NT [32,200]@[30,200]^T", {32, 200}, {30, 200}, false, true);
  // One op over x : f32[32, 200] (or [32, 27]) plus extra operands.
  auto op = [&](const char *label, Op o, Shape s, std::vector<Shape> extra = {},
                bool labels = false) {
    Graph g;
    std::vector<ValueId> operands{param(g, "x", s)};
    if (labels)
      operands.push_back(input(g, "Y", {s[0]}));
    for (size_t i = 0; i < extra.size(); ++i)
      operands.push_back(param(g, "p" + std::to_string(i), extra[i]));
    g.setOutput("y", node(g, o, operands, [](Node &n) { n.scalar = 1e-5, n.axis = 0; }));
    report(label, g);
  };
  op("tanh [32,200]", Op::Tanh, {32, 200});
  op("exp [32,200]", Op::Exp, {32, 200});
  op("add [32,200] + [200]", Op::Add, {32, 200}, {{200}});
  op("sum axis 0 [32,200]", Op::Sum, {32, 200});
  op("batchnorm [32,200]", Op::BatchNorm, {32, 200}, {{200}, {200}});
  op("batchnorm_xhat [32,200]", Op::BatchNormXhat, {32, 200});
  op("batchnorm_grad [32,200]", Op::BatchNormGrad, {32, 200}, {{200}, {32, 200}});
  op("cross_entropy [32,27]", Op::CrossEntropy, {32, 27}, {}, true);
  op("cross_entropy_grad [32,27]", Op::CrossEntropyGrad, {32, 27}, {{}}, true);
  Graph gather;
  gather.setOutput(
      "e", node(gather, Op::Gather, {param(gather, "C", {V, E}), input(gather, "X", {B, T})}));
  report("gather [27,10] by [32,3]", gather);
  Graph scatter;
  scatter.setOutput("d", node(scatter, Op::ScatterAdd,
                              {param(scatter, "d", {B, T, E}), input(scatter, "X", {B, T})},
                              [](Node &n) {
                                n.shapeAttr = {V, E};
                              }));
  report("scatter_add [32,3,10]", scatter);
}
