// Autodiff against oracles: every op's VJP rule against central finite
// differences (in isolation), fused against atomic gradients, and the
// makemore gradients against the seed's hand-written backward pass.
// OpCase tables list only the fields each case needs.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include "TestUtil.h"
#include "ir/GradCheck.h"
#include "passes/Autodiff.h"
#include "runtime/ParamInit.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <functional>

using namespace mlpc;

namespace {

struct OpCase {
  std::string name;
  // Builds the op under test from the leaves; returns its value.
  std::function<ValueId(Graph &, std::vector<ValueId> &)> build;
  std::vector<Shape> paramShapes;
  std::vector<Shape> indexShapes; // i32 inputs, values in [0, indexRange)
  int64_t indexRange = 3;
  double low = -1.5, high = 1.5; // parameter value range
  bool avoidZero = false;        // keep |x| >= 0.2 (kinks of relu/max)
};

ValueId attr(Graph &g, Op op, std::vector<ValueId> operands, std::function<void(Node &)> set) {
  Node n(op, std::move(operands));
  set(n);
  return g.build(std::move(n));
}

// loss = sum(op(x) * R) for a fixed random R, so every output element matters
// with a different weight.
Graph makeCase(const OpCase &c, LeafValues &leaves, Rng &rng) {
  Graph g;
  std::vector<ValueId> args;
  for (size_t i = 0; i < c.paramShapes.size(); ++i) {
    Node p(Op::Param);
    p.name = "p" + std::to_string(i);
    p.type = {DType::F32, c.paramShapes[i]};
    args.push_back(g.add(p));
    auto &values = leaves[p.name];
    for (int64_t k = 0; k < p.type.numel(); ++k) {
      double x = c.low + (c.high - c.low) * rng.uniform();
      if (c.avoidZero && std::fabs(x) < 0.2)
        x = x < 0 ? x - 0.2 : x + 0.2;
      values.push_back(x);
    }
  }
  for (size_t i = 0; i < c.indexShapes.size(); ++i) {
    Node in(Op::Input);
    in.name = "i" + std::to_string(i);
    in.type = {DType::I32, c.indexShapes[i]};
    args.push_back(g.add(in));
    auto &values = leaves[in.name];
    for (int64_t k = 0; k < in.type.numel(); ++k)
      values.push_back(double(rng.below(c.indexRange)));
  }
  ValueId out = c.build(g, args);
  ValueId loss = out;
  if (g[out].type.rank() != 0) {
    Node r(Op::Param);
    r.name = "R";
    r.type = g[out].type;
    ValueId weights = g.add(r);
    for (int64_t k = 0; k < r.type.numel(); ++k)
      leaves["R"].push_back(rng.uniform() * 2 - 1);
    loss = attr(g, Op::Sum, {g.make(Op::Mul, {out, weights})}, [](Node &n) { n.axis = -1; });
  }
  g.setOutput("loss", loss, OutputRole::Loss);
  g.compact();
  return g;
}

std::vector<OpCase> opCases() {
  auto un = [](Op op) {
    return [op](Graph &g, std::vector<ValueId> &a) { return g.make(op, {a[0]}); };
  };
  auto bin = [](Op op) {
    return [op](Graph &g, std::vector<ValueId> &a) { return g.make(op, {a[0], a[1]}); };
  };
  auto red = [](Op op, int axis) {
    return [op, axis](Graph &g, std::vector<ValueId> &a) {
      return attr(g, op, {a[0]}, [&](Node &n) { n.axis = axis; });
    };
  };
  auto pow = [](double e) {
    return [e](Graph &g, std::vector<ValueId> &a) {
      return attr(g, Op::Pow, {a[0]}, [&](Node &n) { n.scalar = e; });
    };
  };
  auto mm = [](bool ta, bool tb) {
    return [ta, tb](Graph &g, std::vector<ValueId> &a) {
      return attr(g, Op::MatMul, {a[0], a[1]}, [&](Node &n) {
        n.transA = ta;
        n.transB = tb;
      });
    };
  };
  std::vector<OpCase> cases = {
      {"add broadcast [3,4]+[4]", bin(Op::Add), {{3, 4}, {4}}},
      {"add broadcast [3,1]+[1,4]", bin(Op::Add), {{3, 1}, {1, 4}}},
      {"sub broadcast", bin(Op::Sub), {{3, 4}, {3, 1}}},
      {"mul broadcast", bin(Op::Mul), {{3, 4}, {1, 4}}},
      {"div broadcast", bin(Op::Div), {{3, 4}, {4}}, {}, 3, 0.5, 2.0},
      {"neg", un(Op::Neg), {{3, 4}}},
      {"pow 2", pow(2), {{3, 4}}},
      {"pow -0.5", pow(-0.5), {{3, 4}}, {}, 3, 0.5, 2.0},
      {"pow -1", pow(-1), {{3, 4}}, {}, 3, 0.5, 2.0},
      {"tanh", un(Op::Tanh), {{3, 4}}},
      {"sigmoid", un(Op::Sigmoid), {{3, 4}}},
      {"relu", un(Op::Relu), {{3, 4}}, {}, 3, -1.5, 1.5, true},
      {"exp", un(Op::Exp), {{3, 4}}},
      {"log", un(Op::Log), {{3, 4}}, {}, 3, 0.5, 2.0},
      {"sum axis 0", red(Op::Sum, 0), {{3, 4}}},
      {"sum axis 1", red(Op::Sum, 1), {{3, 4}}},
      {"sum all", red(Op::Sum, -1), {{3, 4}}},
      {"mean axis 0", red(Op::Mean, 0), {{3, 4}}},
      {"mean all", red(Op::Mean, -1), {{2, 3, 4}}},
      {"max axis 1", red(Op::Max, 1), {{3, 4}}},
      {"max axis 0", red(Op::Max, 0), {{3, 4}}},
      {"matmul", mm(false, false), {{3, 5}, {5, 4}}},
      {"matmul transA", mm(true, false), {{5, 3}, {5, 4}}},
      {"matmul transB", mm(false, true), {{3, 5}, {4, 5}}},
      {"matmul transA transB", mm(true, true), {{5, 3}, {4, 5}}},
      {"reshape",
       [](Graph &g, std::vector<ValueId> &a) {
         return attr(g, Op::Reshape, {a[0]}, [](Node &n) { n.shapeAttr = {2, 6}; });
       },
       {{3, 4}}},
      {"broadcast",
       [](Graph &g, std::vector<ValueId> &a) {
         return attr(g, Op::Broadcast, {a[0]}, [](Node &n) { n.shapeAttr = {3, 4}; });
       },
       {{1, 4}}},
      {"gather (repeated indices)", bin(Op::Gather), {{3, 4}}, {{5, 2}}},
      {"pick", bin(Op::Pick), {{5, 3}}, {{5}}},
      {"batchnorm [H] gain",
       [](Graph &g, std::vector<ValueId> &a) {
         return attr(g, Op::BatchNorm, {a[0], a[1], a[2]}, [](Node &n) { n.scalar = 1e-5; });
       },
       {{6, 4}, {4}, {1, 4}}},
      {"cross_entropy", bin(Op::CrossEntropy), {{5, 3}}, {{5}}},
  };
  return cases;
}

} // namespace

TEST_CASE("every op's gradient rule matches central finite differences", "[autodiff]") {
  for (const OpCase &c : opCases()) {
    SECTION(c.name) {
      Rng rng(7);
      LeafValues leaves;
      Graph g = makeCase(c, leaves, rng);
      PassContext ctx;
      std::optional<Graph> training = buildTrainingGraph(g, ctx);
      REQUIRE(training);
      auto values = interpret(*training, leaves);
      REQUIRE(bool(values));
      for (const GraphOutput &o : training->outputs) {
        if (o.role != OutputRole::Gradient)
          continue;
        std::string leaf = (*training)[*o.subject].name;
        std::vector<size_t> all(leaves[leaf].size());
        for (size_t i = 0; i < all.size(); ++i)
          all[i] = i;
        auto fd = finiteDifferences(g, leaves, leaf, all);
        REQUIRE(bool(fd));
        Discrepancy d = compareValues((*values)[o.value], *fd);
        INFO(c.name << " d/d" << leaf << " maxabs " << d.maxAbs);
        CHECK(d.maxAbs < 1e-7);
      }
    }
  }
}

TEST_CASE("an op without a gradient rule is a located error naming every occurrence",
          "[autodiff]") {
  std::string src =
      "model m\ndim N = 4\ninput X : i32[N, 1]\ntarget Y : i32[N]\nparam C : [3, 3] = randn\n"
      "forward {\n  h = reshape(C[X], [N, 3])\n  loss = max(h) + max(h * 2)\n}\n";
  auto m = test::lowerSource(src);
  REQUIRE(m);
  DiagnosticEngine diags("t.mlp", src);
  PassContext ctx{&diags, false};
  CHECK_FALSE(buildTrainingGraph(m->graph, ctx));
  CHECK(diags.errorCount() == 2);
  CHECK(diags.render().find("t.mlp:8:10: error: no gradient rule for 'max' over all axes") !=
        std::string::npos);
  CHECK(diags.render().find("t.mlp:8:19: error: no gradient rule for 'max' over all axes") !=
        std::string::npos);
}

namespace {

LeafValues randomMakemoreLeaves(const Graph &g, uint64_t seed) {
  Rng rng(seed);
  LeafValues leaves;
  for (auto &[name, v] : initParameters(g, rng))
    leaves[name].assign(v.begin(), v.end());
  for (ValueId v : g.leaves(Op::Input)) {
    auto &x = leaves[g[v].name];
    for (int64_t i = 0; i < g[v].type.numel(); ++i)
      x.push_back(double(rng.below(27)));
  }
  return leaves;
}

std::map<std::string, std::vector<double>> gradients(const Graph &training,
                                                     const LeafValues &leaves) {
  auto values = interpret(training, leaves);
  REQUIRE(bool(values));
  std::map<std::string, std::vector<double>> grads;
  for (const GraphOutput &o : training.outputs)
    if (o.role != OutputRole::WriteBack) // running statistics are not gradients
      grads[o.name] = (*values)[o.value];
  return grads;
}

} // namespace

TEST_CASE("makemore and makemore_atomic give the same gradients (f64, 1e-9)",
          "[autodiff][fusion]") {
  auto fusedModel = test::lowerSource(test::readFile(test::examplePath("makemore.mlp")));
  auto atomicModel = test::lowerSource(test::readFile(test::examplePath("makemore_atomic.mlp")));
  REQUIRE(fusedModel);
  REQUIRE(atomicModel);
  Graph fused = test::stage(fusedModel->graph, Stage::Grad);
  Graph atomicFused = test::stage(atomicModel->graph, Stage::Grad);
  Graph atomicUnfused = test::stage(atomicModel->graph, Stage::Grad, /*fuse=*/false);
  // The fusion passes recognise both chains: no atomic op remains.
  for (const Node &n : atomicFused.nodes) {
    CHECK(n.op != Op::MaxMask);
    CHECK(n.op != Op::Unpick);
  }
  for (uint64_t seed : {1, 2, 3}) {
    LeafValues leaves = randomMakemoreLeaves(fused, seed);
    auto a = gradients(fused, leaves), b = gradients(atomicFused, leaves),
         c = gradients(atomicUnfused, leaves);
    for (const auto &[name, grad] : a) {
      INFO(name);
      // Same fused graph: identical. Atomic (unfused) chain: equal to 1e-9
      // relative (entries below 1e-6 compared absolutely).
      CHECK(compareValues(grad, b[name]).maxAbs <= 1e-15);
      CHECK(compareValues(grad, c[name], {}, 1e-6).maxRel <= 1e-9);
    }
  }
}

TEST_CASE("the log-sum-exp form of the loss fuses and matches cross_entropy (f64)",
          "[autodiff][fusion]") {
  // makemore with its loss written as the seed's log-sum-exp (issue 13), and
  // with the logsumexp composite: both fuse into cross_entropy, and their
  // gradients equal makemore's, fused and unfused.
  std::string source = test::readFile(test::examplePath("makemore.mlp"));
  const std::string ce = "loss    = cross_entropy(logits, Y)";
  REQUIRE(source.find(ce) != std::string::npos);
  auto fusedModel = test::lowerSource(source);
  REQUIRE(fusedModel);
  Graph fused = test::stage(fusedModel->graph, Stage::Grad);
  for (const char *form : {"m = max(logits, 1)\n  lse = log(sum(exp(logits - m), 1)) + m\n"
                           "  loss = mean(reshape(lse, [N]) - pick(logits, Y))",
                           "loss = mean(reshape(logsumexp(logits, 1), [N]) - pick(logits, Y))"}) {
    INFO(form);
    std::string lseSource = source;
    lseSource.replace(lseSource.find(ce), ce.size(), form);
    auto lseModel = test::lowerSource(lseSource);
    REQUIRE(lseModel);
    Graph lseFused = test::stage(lseModel->graph, Stage::Grad);
    Graph lseAtomic = test::stage(lseModel->graph, Stage::Grad, /*fuse=*/false);
    bool hasCrossEntropy = false;
    for (const Node &n : lseFused.nodes) {
      hasCrossEntropy = hasCrossEntropy || n.op == Op::CrossEntropyGrad;
      CHECK(n.op != Op::MaxMask);
      CHECK(n.op != Op::Unpick);
    }
    CHECK(hasCrossEntropy);
    LeafValues leaves = randomMakemoreLeaves(fused, 5);
    auto a = gradients(fused, leaves), b = gradients(lseFused, leaves),
         c = gradients(lseAtomic, leaves);
    for (const auto &[name, grad] : a) {
      INFO(name);
      CHECK(compareValues(grad, b[name]).maxAbs <= 1e-15);
      CHECK(compareValues(grad, c[name], {}, 1e-6).maxRel <= 1e-9);
    }
  }
}

TEST_CASE("makemore gradients equal the seed's hand-written backward pass", "[autodiff]") {
  auto model = test::lowerSource(test::readFile(test::examplePath("makemore.mlp")));
  REQUIRE(model);
  Graph training = test::stage(model->graph, Stage::Grad);
  LeafValues P = randomMakemoreLeaves(training, 11);
  auto grads = gradients(training, P);

  // Exercise 4 of the seed (makemore part 4), transcribed loop by loop in f64.
  const int n = 32, T = 3, E = 10, H = 200, V = 27;
  auto &C = P["C"], &W1 = P["W1"], &b1 = P["b1"], &W2 = P["W2"], &b2 = P["b2"], &gain = P["bngain"],
       &bias = P["bnbias"], &X = P["X"], &Y = P["Y"];
  std::vector<double> embcat(n * T * E), hprebn(n * H, 0), bnraw(n * H), h(n * H), logits(n * V, 0);
  for (int i = 0; i < n; ++i)
    for (int t = 0; t < T; ++t)
      for (int e = 0; e < E; ++e)
        embcat[i * T * E + t * E + e] = C[int(X[i * T + t]) * E + e];
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < H; ++j) {
      hprebn[i * H + j] = b1[j];
      for (int k = 0; k < T * E; ++k)
        hprebn[i * H + j] += embcat[i * T * E + k] * W1[k * H + j];
    }
  std::vector<double> varInv(H);
  for (int j = 0; j < H; ++j) {
    double mean = 0, var = 0;
    for (int i = 0; i < n; ++i)
      mean += hprebn[i * H + j] / n;
    for (int i = 0; i < n; ++i)
      var += std::pow(hprebn[i * H + j] - mean, 2) / (n - 1);
    varInv[j] = std::pow(var + 1e-5, -0.5);
    for (int i = 0; i < n; ++i) {
      bnraw[i * H + j] = (hprebn[i * H + j] - mean) * varInv[j];
      h[i * H + j] = std::tanh(gain[j] * bnraw[i * H + j] + bias[j]);
    }
  }
  for (int i = 0; i < n; ++i)
    for (int v = 0; v < V; ++v) {
      logits[i * V + v] = b2[v];
      for (int j = 0; j < H; ++j)
        logits[i * V + v] += h[i * H + j] * W2[j * V + v];
    }
  // dlogits = (softmax(logits) - onehot(Y)) / n
  std::vector<double> dlogits(n * V), dh(n * H, 0), dhpreact(n * H), dhprebn(n * H);
  for (int i = 0; i < n; ++i) {
    double mx = -1e300, sum = 0;
    for (int v = 0; v < V; ++v)
      mx = std::max(mx, logits[i * V + v]);
    for (int v = 0; v < V; ++v)
      sum += std::exp(logits[i * V + v] - mx);
    for (int v = 0; v < V; ++v)
      dlogits[i * V + v] = (std::exp(logits[i * V + v] - mx) / sum - (v == int(Y[i]))) / n;
  }
  std::vector<double> dW2(H * V, 0), db2(V, 0), dbngain(H, 0), dbnbias(H, 0), dW1(T * E * H, 0),
      db1(H, 0), dC(V * E, 0), dembcat(n * T * E, 0);
  for (int i = 0; i < n; ++i)
    for (int v = 0; v < V; ++v) {
      db2[v] += dlogits[i * V + v];
      for (int j = 0; j < H; ++j) {
        dh[i * H + j] += dlogits[i * V + v] * W2[j * V + v];
        dW2[j * V + v] += h[i * H + j] * dlogits[i * V + v];
      }
    }
  for (int k = 0; k < n * H; ++k)
    dhpreact[k] = (1.0 - h[k] * h[k]) * dh[k];
  for (int j = 0; j < H; ++j) {
    double sumD = 0, sumDR = 0;
    for (int i = 0; i < n; ++i) {
      dbngain[j] += bnraw[i * H + j] * dhpreact[i * H + j];
      dbnbias[j] += dhpreact[i * H + j];
      sumD += dhpreact[i * H + j];
      sumDR += dhpreact[i * H + j] * bnraw[i * H + j];
    }
    for (int i = 0; i < n; ++i)
      dhprebn[i * H + j] =
          gain[j] * varInv[j] / n *
          (n * dhpreact[i * H + j] - sumD - double(n) / (n - 1) * bnraw[i * H + j] * sumDR);
  }
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < H; ++j) {
      db1[j] += dhprebn[i * H + j];
      for (int k = 0; k < T * E; ++k) {
        dembcat[i * T * E + k] += dhprebn[i * H + j] * W1[k * H + j];
        dW1[k * H + j] += embcat[i * T * E + k] * dhprebn[i * H + j];
      }
    }
  for (int i = 0; i < n; ++i)
    for (int t = 0; t < T; ++t)
      for (int e = 0; e < E; ++e)
        dC[int(X[i * T + t]) * E + e] += dembcat[i * T * E + t * E + e];

  std::map<std::string, std::vector<double> *> manual = {
      {"C", &dC},   {"W1", &dW1},         {"b1", &db1},        {"W2", &dW2},
      {"b2", &db2}, {"bngain", &dbngain}, {"bnbias", &dbnbias}};
  for (auto &[name, grad] : manual) {
    INFO(name);
    CHECK(compareValues(grads["grad." + name], *grad).maxAbs < 1e-12);
  }
}
