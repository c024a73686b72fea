// JIT vs interpreter, op by op, on random inputs (see test_codegen_util.h).
#include "test_codegen_util.h"

#include "codegen/BufferPlan.h"

#include <algorithm>

using namespace mlpc;
using namespace mlpc::testing;

namespace {

ValueId constant(Graph &g, double v) {
  return g.makeConst(v);
}

} // namespace

TEST_CASE("codegen: binary elementwise ops with broadcasting", "[codegen]") {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{4, 5}, {4, 5}}, {{4, 37}, {37}},       {{4, 5}, {4, 1}},   {{3, 1, 5}, {4, 1}},
      {{1, 5}, {3, 1}}, {{6400}, {6400}},      {{32, 200}, {200}}, {{32, 200}, {1, 200}},
      {{}, {7}},        {{2, 3, 4}, {2, 3, 4}}};
  for (Op op : {Op::Add, Op::Sub, Op::Mul, Op::Div})
    for (auto &[sa, sb] : shapes) {
      DYNAMIC_SECTION(opInfo(op).name << " " << toString(sa) << " " << toString(sb)) {
        Graph g;
        ValueId a = param(g, "a", sa), b = param(g, "b", sb);
        g.setOutput("out", node(g, op, {a, b}));
        g.setOutput("rev", node(g, op, {b, a}));
        RandomLeaves r;
        if (op == Op::Div)
          r.lo = 0.5, r.hi = 2;
        checkAgainstInterpreter(g, r);
      }
    }
}

TEST_CASE("codegen: scalar constants in elementwise ops", "[codegen]") {
  Graph g;
  ValueId x = param(g, "x", {3, 7});
  g.setOutput("a", node(g, Op::Sub, {constant(g, 1.0), node(g, Op::Mul, {x, x})}));
  g.setOutput("b", node(g, Op::Div, {x, constant(g, 3.0)}));
  checkAgainstInterpreter(g);
}

TEST_CASE("codegen: unary elementwise ops", "[codegen]") {
  struct Case {
    Op op;
    double scalar, lo, hi;
  };
  const std::vector<Case> cases = {
      {Op::Neg, 0, -3, 3},     {Op::Tanh, 0, -6, 6},  {Op::Sigmoid, 0, -20, 20},
      {Op::Relu, 0, -1, 1},    {Op::Exp, 0, -20, 20}, {Op::Log, 0, 1e-3, 50},
      {Op::Step, 0, -1, 1},    {Op::Pow, 2, -3, 3},   {Op::Pow, 3, -3, 3},
      {Op::Pow, -1, 0.5, 3},   {Op::Pow, 0.5, 0, 9},  {Op::Pow, -0.5, 0.1, 9},
      {Op::Pow, 1.5, 0.01, 9}, {Op::Pow, 0, -3, 3},   {Op::Pow, -2, 0.5, 3}};
  for (const Case &c : cases)
    // 33 x 1000: a loop of 32K+ elements, eight vectors at a time
    // (GraphLowering::interleave), ending in a part group and a masked vector.
    for (Shape shape : {Shape{37}, Shape{3, 50}, Shape{}, Shape{33, 1000}}) {
      DYNAMIC_SECTION(opInfo(c.op).name << "(" << c.scalar << ") " << toString(shape)) {
        Graph g;
        ValueId x = param(g, "x", shape);
        g.setOutput("y", node(g, c.op, {x}, [&](Node &n) { n.scalar = c.scalar; }));
        RandomLeaves r;
        r.lo = c.lo, r.hi = c.hi;
        checkAgainstInterpreter(g, r, 2e-6, 1e-6);
      }
    }
}

TEST_CASE("codegen: fused elementwise chains", "[codegen]") {
  // tanh'(x) * d = (1 - tanh(x)^2) * d with a broadcast bias: the chain
  // collapses into one loop over [rows, 200] (fused nodes get no buffer).
  // 256 rows: 51200 elements, eight vectors at a time per row
  // (GraphLowering::interleave: 8, then 4 and a masked one).
  const int64_t rows = GENERATE(32, 256);
  Graph g;
  ValueId x = param(g, "x", {rows, 200}), b = param(g, "b", {200}), d = param(g, "d", {rows, 200});
  ValueId pre = node(g, Op::Add, {x, b});
  ValueId t = node(g, Op::Tanh, {pre});
  ValueId sq = node(g, Op::Mul, {t, t}); // t read twice by one consumer: still fused, computed once
  ValueId one = constant(g, 1.0);
  ValueId dt = node(g, Op::Mul, {node(g, Op::Sub, {one, sq}), d});
  ValueId e = node(g, Op::Exp, {node(g, Op::Neg, {node(g, Op::Broadcast, {b}, [rows](Node &n) {
                                       n.shapeAttr = {rows, 200};
                                     })})});
  g.setOutput("dt", dt);
  g.setOutput("e", node(g, Op::Add, {e, dt}));
  auto plan = codegen::planBuffers(g, false);
  REQUIRE(bool(plan));
  CHECK(plan->storage[pre] == codegen::Storage::Inlined);
  CHECK(plan->storage[t] == codegen::Storage::Inlined);
  CHECK(plan->storage[sq] == codegen::Storage::Inlined);
  CHECK(plan->storage[dt] ==
        codegen::Storage::Output); // used twice; computed in its output binding
  checkAgainstInterpreter(g, RandomLeaves{}, 1e-5, 1e-5);
}

TEST_CASE("codegen: broadcast op", "[codegen]") {
  for (auto [from, to] : std::vector<std::pair<Shape, Shape>>{
           {{5}, {3, 5}}, {{3, 1}, {3, 4}}, {{1, 4, 1}, {2, 4, 3}}, {{}, {2, 3}}, {{6}, {6}}}) {
    DYNAMIC_SECTION(toString(from) << " -> " << toString(to)) {
      Graph g;
      ValueId x = param(g, "x", from);
      Shape target = to;
      g.setOutput("y", node(g, Op::Broadcast, {x}, [&](Node &n) { n.shapeAttr = target; }));
      checkAgainstInterpreter(g);
    }
  }
  Graph g; // a broadcast constant
  g.setOutput("y", node(g, Op::Broadcast, {constant(g, 2.5)}, [](Node &n) {
                n.shapeAttr = {4, 3};
              }));
  checkAgainstInterpreter(g);
}

TEST_CASE("codegen: reductions over each axis and axis=-1", "[codegen]") {
  const std::vector<Shape> shapes = {{4, 37, 5}, {6, 100},   {33, 40}, {100},
                                     {32, 200},  {2, 3, 70}, {1}};
  for (Op op : {Op::Sum, Op::Mean, Op::Max})
    for (const Shape &shape : shapes)
      for (int axis = -1; axis < int(shape.size()); ++axis) {
        DYNAMIC_SECTION(opInfo(op).name << " " << toString(shape) << " axis " << axis) {
          Graph g;
          ValueId x = param(g, "x", shape);
          g.setOutput("y", node(g, op, {x}, [&](Node &n) { n.axis = axis; }));
          checkAgainstInterpreter(g, RandomLeaves{}, 1e-5,
                                  2e-6 * std::sqrt(double(g[x].type.numel())));
        }
      }
}

TEST_CASE("codegen: max_mask picks the first arg-max", "[codegen]") {
  for (int axis : {0, 1, 2}) {
    DYNAMIC_SECTION("axis " << axis) {
      Graph g;
      ValueId x = param(g, "x", {5, 7, 3});
      g.setOutput("m", node(g, Op::MaxMask, {x}, [&](Node &n) { n.axis = axis; }));
      RandomLeaves r;
      LeafData data = r(g);
      for (double &v : data["x"])
        v = std::floor((v + 1) * 1.5); // values in {0, 1, 2}: many ties
      Values ref = interpretOrFail(g, data);
      expectClose(runJit(g, data).outputs[0], ref[g.outputs[0].value], "mask", 0, 0);
    }
  }
}

TEST_CASE("codegen: matmul, every transpose variant", "[codegen]") {
  struct Dims {
    int64_t m, k, n;
  };
  for (Dims d : {Dims{32, 30, 200}, Dims{32, 200, 27}, Dims{200, 32, 27}, Dims{30, 32, 200},
                 Dims{32, 27, 200}, Dims{32, 200, 30}, Dims{7, 5, 3}, Dims{1, 1, 1},
                 Dims{33, 17, 45}, Dims{5, 64, 16},
                 // K-blocked (a 64 KB panel of op(B) per column tile; LowerMatMul.cpp)
                 Dims{30, 256, 200}, Dims{7, 300, 70},
                 // N a multiple of 128: transB's scratch rows padded by a line
                 Dims{9, 40, 256},
                 // transA with N <= 32, M >= 2N, K >= 128: C^T by the tiled
                 // kernel, then transposed (LowerMatMulTransposed.cpp); M and
                 // N with and without partial VW blocks, K-blocked or not
                 Dims{200, 256, 27}, Dims{70, 130, 30}, Dims{64, 128, 32}, Dims{33, 600, 5},
                 // op(B) rows 1 KB / 2 KB apart: packed panels, the first row
                 // tile copying them; K-blocked; C^T of the transposed path too
                 Dims{20, 300, 256}, Dims{512, 200, 27}})
    for (int variant = 0; variant < 4; ++variant) {
      bool ta = variant & 1, tb = variant & 2;
      DYNAMIC_SECTION(d.m << "x" << d.k << "x" << d.n << (ta ? " transA" : "")
                          << (tb ? " transB" : "")) {
        Graph g;
        ValueId a = param(g, "a", ta ? Shape{d.k, d.m} : Shape{d.m, d.k});
        ValueId b = param(g, "b", tb ? Shape{d.n, d.k} : Shape{d.k, d.n});
        g.setOutput("c",
                    node(g, Op::MatMul, {a, b}, [&](Node &n) { n.transA = ta, n.transB = tb; }));
        checkAgainstInterpreter(g, RandomLeaves{}, 1e-5, 1e-6 * std::sqrt(double(d.k)));
      }
    }
}

// K blocking (LowerMatMul.cpp) starts where a column tile's panel of op(B)
// passes 32 KB: K > 128 with 16-lane tiles of 4 vectors, K > 512 with 8-lane
// tiles of 2, K > 2048 with 4-lane ones, and only with at least one full
// column tile (N = 70: at every width; N = 40: not at 512 bits, where the
// unblocked narrow nest runs); every width, every transpose.
TEST_CASE("codegen: K-blocked matmul at every vector width", "[codegen][vector-width]") {
  for (unsigned bits : {128u, 256u, 512u})
    for (int variant = 0; variant < 8; ++variant) {
      const bool ta = variant & 1, tb = variant & 2;
      const int64_t m = 5, k = 2100, n = variant & 4 ? 70 : 40;
      DYNAMIC_SECTION(bits << " bits N=" << n << (ta ? " transA" : "") << (tb ? " transB" : "")) {
        Graph g;
        ValueId a = param(g, "a", ta ? Shape{k, m} : Shape{m, k});
        ValueId b = param(g, "b", tb ? Shape{n, k} : Shape{k, n});
        g.setOutput("c",
                    node(g, Op::MatMul, {a, b}, [&](Node &nd) { nd.transA = ta, nd.transB = tb; }));
        CompileOptions options;
        options.vectorBits = bits;
        LeafData data = RandomLeaves{}(g);
        Values ref = interpretOrFail(g, data);
        expectClose(runJit(g, data, options).outputs[0], ref[g.outputs[0].value], "c", 1e-5,
                    1e-6 * std::sqrt(double(k)));
      }
    }
}

// MatMulKernel::Transposed (dW = x^T @ dy with few columns) at every width,
// into each kind of epilogue: a plain store, a fused elementwise consumer,
// and a gradient output with the SGD update (done after the kernel: the
// update goes into the matmul's own epilogue only for N >= 64).
TEST_CASE("codegen: transposed narrow weight gradient at every vector width",
          "[codegen][vector-width]") {
  for (unsigned bits : {128u, 256u, 512u})
    for (int64_t rows : {64, 75})
      DYNAMIC_SECTION(bits << " bits, dW [" << rows << ", 27]") {
        const int64_t batch = 160;
        WeightGradientGraph w = weightGradientGraph(batch, rows, 27);
        REQUIRE(codegen::matMulKernel(w.g, w.g[w.plain]) == codegen::MatMulKernel::Transposed);
        auto plan = codegen::planBuffers(w.g, true);
        REQUIRE(bool(plan));
        CHECK(plan->storage[w.g[w.fused].operands[0]] == codegen::Storage::Epilogue);
        checkWeightGradient(w, bits, batch);
      }
}

TEST_CASE("codegen: reshape aliases and outputs", "[codegen]") {
  Graph g;
  ValueId x = param(g, "x", {4, 6});
  ValueId r = node(g, Op::Reshape, {x}, [](Node &n) { n.shapeAttr = {2, 12}; });
  ValueId y = node(g, Op::Mul, {r, constant(g, 2.0)});
  ValueId r2 = node(g, Op::Reshape, {y}, [](Node &n) { n.shapeAttr = {24}; });
  g.setOutput("r", r);   // alias of a leaf: copied
  g.setOutput("y", y);   // computed in place in the output binding... and aliased:
  g.setOutput("r2", r2); // so this one is a copy
  g.setOutput("x", x);
  checkAgainstInterpreter(g);
}

TEST_CASE("codegen: gather and scatter_add with repeated indices", "[codegen]") {
  for (int vocab : {27, 3}) {
    DYNAMIC_SECTION("vocab " << vocab) {
      Graph g;
      ValueId table = param(g, "C", {vocab, 10});
      ValueId idx = input(g, "X", {32, 3});
      ValueId d = param(g, "d", {32, 3, 10});
      g.setOutput("emb", node(g, Op::Gather, {table, idx}));
      g.setOutput("dC", node(g, Op::ScatterAdd, {d, idx}, [&](Node &n) {
                    n.shapeAttr = {vocab, 10};
                  }));
      RandomLeaves r;
      r.indexRange = vocab;
      checkAgainstInterpreter(g, r);
    }
  }
  Graph g; // wide rows (more than one vector) and a rank-1 index
  ValueId table = param(g, "T", {5, 37});
  ValueId idx = input(g, "I", {9});
  g.setOutput("rows", node(g, Op::Gather, {table, idx}));
  g.setOutput("back",
              node(g, Op::ScatterAdd, {node(g, Op::Gather, {table, idx}), idx}, [](Node &n) {
                n.shapeAttr = {5, 37};
              }));
  RandomLeaves r;
  r.indexRange = 5;
  checkAgainstInterpreter(g, r);
}

TEST_CASE("codegen: pick and unpick", "[codegen]") {
  Graph g;
  ValueId x = param(g, "x", {8, 27});
  ValueId y = input(g, "Y", {8});
  ValueId d = param(g, "d", {8});
  g.setOutput("pick", node(g, Op::Pick, {x, y}));
  g.setOutput("unpick", node(g, Op::Unpick, {d, y}, [](Node &n) { n.shapeAttr = {8, 27}; }));
  RandomLeaves r;
  r.indexRange = 27;
  checkAgainstInterpreter(g, r);
}

TEST_CASE("codegen: batchnorm family", "[codegen]") {
  // 256, 68 and 64 rows: the row-block kernels (4 blocks, read along whole
  // rows 2 and 1 at a time: KernelBuilder::blockColumnSums), at 5500 columns
  // with BatchNormGrad's coefficients too wide for the stack; 16400 rows:
  // blocks of 4100, past the statistics' table of 1 / j (LowerFused.cpp);
  // the others one block.
  for (Shape shape : {Shape{32, 200}, Shape{5, 37}, Shape{2, 16}, Shape{256, 40}, Shape{68, 37},
                      Shape{64, 5500}, Shape{16400, 16}})
    for (bool rowVectors : {false, true})
      for (double offset : {0.0, 100.0}) {
        // Two rows near 100 can differ by a few f32 ulps: the batch statistics
        // are then ill-conditioned in f32 whatever the kernel does. Over
        // blocks of 4100 rows near 100, the f32 mean itself carries ~1e-4 of
        // rounding (two passes' sums or Welford's running means alike).
        if (offset && (shape[0] == 2 || shape[0] > 4096))
          continue;
        DYNAMIC_SECTION(toString(shape)
                        << (rowVectors ? " [1,H] params" : " [H] params") << " offset " << offset) {
          int64_t h = shape[1];
          Shape vec = rowVectors ? Shape{1, h} : Shape{h};
          Graph g;
          ValueId x = param(g, "x", shape), gain = param(g, "gain", vec),
                  bias = param(g, "bias", vec);
          ValueId mean = param(g, "mean", vec), var = param(g, "var", vec),
                  dout = param(g, "dout", shape);
          auto eps = [](Node &n) { n.scalar = 1e-5; };
          g.setOutput("bn", node(g, Op::BatchNorm, {x, gain, bias}, eps));
          g.setOutput("xhat", node(g, Op::BatchNormXhat, {x}, eps));
          g.setOutput("grad", node(g, Op::BatchNormGrad, {x, gain, dout}, eps));
          g.setOutput("infer", node(g, Op::BatchNormInfer, {x, gain, bias, mean, var}, eps));
          RandomLeaves r;
          LeafData data = r(g);
          for (double &v : data["x"])
            v = double(float(v + offset));
          for (double &v : data["var"])
            v = std::fabs(v) + 0.1;
          for (double &v : data["mean"])
            v += offset;
          Values ref = interpretOrFail(g, data);
          JitRun run = runJit(g, data);
          // With offset 100 the inputs carry f32 rounding of ~4e-6 that the
          // normalisation scales up by 1/std ~ 1.7: 1e-4 absolute.
          double atol = offset ? 1e-4 : 1e-5;
          for (size_t i = 0; i < g.outputs.size(); ++i)
            expectClose(run.outputs[i], ref[g.outputs[i].value], g.outputs[i].name, 1e-5, atol);
        }
      }
}

TEST_CASE("codegen: batchnorm statistics and gradient sums are shared", "[codegen]") {
  // In autodiff's order: the input gradient, then the gain and bias
  // gradients, whose column sums the batchnorm_grad kernel already has.
  // 256 rows: the row-block kernels, which write the sums per column after
  // the blocks.
  const int64_t rows = GENERATE(32, 256);
  Graph g;
  ValueId x = addBatchNormFamily(g, rows, 40);
  auto axis0 = [](Node &n) { n.axis = 0; };
  ValueId mean = node(g, Op::Mean, {x}, axis0);
  g.setOutput("mean", mean); // the running mean update
  ValueId d = node(g, Op::Sub, {x, mean});
  g.setOutput("squares", node(g, Op::Sum, {node(g, Op::Mul, {d, d})}, axis0)); // running variance
  auto plan = codegen::planBuffers(g, false);
  REQUIRE(bool(plan));
  CHECK(plan->stats.size() == 1);
  // Five values come from other kernels (codegen/KernelFills.cpp).
  CHECK(std::count_if(plan->filledBy.begin(), plan->filledBy.end(),
                      [](int64_t by) { return by >= 0; }) == 5);
  CHECK(plan->stats[0].squares >= 0);
  checkAgainstInterpreter(g, RandomLeaves{}, 1e-5, 1e-5);
}

TEST_CASE("codegen: cross_entropy and its gradient", "[codegen]") {
  for (Shape shape : {Shape{32, 27}, Shape{5, 3}, Shape{4, 40}}) {
    DYNAMIC_SECTION(toString(shape)) {
      Graph g;
      ValueId logits = param(g, "logits", shape);
      ValueId y = input(g, "Y", {shape[0]});
      ValueId dloss = param(g, "dloss", {});
      g.setOutput("loss", node(g, Op::CrossEntropy, {logits, y}));
      g.setOutput("grad1", node(g, Op::CrossEntropyGrad, {logits, y, constant(g, 1.0)}));
      g.setOutput("grad", node(g, Op::CrossEntropyGrad, {logits, y, dloss}));
      // The loss kernel writes grad1 (constant dloss), not grad.
      auto plan = codegen::planBuffers(g, false);
      REQUIRE(bool(plan));
      CHECK(std::count_if(plan->lossGrad.begin(), plan->lossGrad.end(),
                          [](int64_t grad) { return grad >= 0; }) == 1);
      RandomLeaves r;
      r.lo = -4, r.hi = 4;
      r.indexRange = int(shape[1]);
      checkAgainstInterpreter(g, r, 1e-5, 1e-6);
    }
  }
}

TEST_CASE("codegen: sgdUpdate updates params after their last read", "[codegen]") {
  Graph g;
  ValueId p = param(g, "P", {4, 5}), q = param(g, "Q", {5}), x = param(g, "x", {4, 5});
  ValueId grad = node(g, Op::Mul, {x, q}); // grad.P, computed before P's last read
  ValueId late = node(g, Op::Add, {p, node(g, Op::Mul, {grad, grad})}); // reads P after grad exists
  ValueId gq = node(g, Op::Sum, {node(g, Op::Mul, {p, x})}, [](Node &n) { n.axis = 0; });
  g.setOutput({"grad.P", grad, OutputRole::Gradient, p, std::nullopt});
  g.setOutput("late", late);
  g.setOutput({"grad.Q", node(g, Op::Reshape, {gq}, [](Node &n) { n.shapeAttr = {5}; }),
               OutputRole::Gradient, q, std::nullopt});
  CompileOptions options;
  options.sgdUpdate = true;
  const float lr = 0.25f;
  LeafData data = RandomLeaves{}(g);
  Values ref = interpretOrFail(g, data);
  for (bool nullGrads : {false, true}) {
    DYNAMIC_SECTION((nullGrads ? "null" : "non-null") << " gradient bindings") {
      std::vector<std::string> nulls;
      if (nullGrads)
        nulls = {"grad.P", "grad.Q"};
      JitRun run = runJit(g, data, options, lr, nulls);
      expectClose(run.outputs[1], ref[late], "late (must see the old P)");
      if (!nullGrads) {
        expectClose(run.outputs[0], ref[grad], "grad.P");
        expectClose(run.outputs[2], ref[g.outputs[2].value], "grad.Q");
      }
      for (auto [name, gv] :
           {std::pair<std::string, ValueId>{"P", grad}, {"Q", g.outputs[2].value}}) {
        std::vector<double> expect = data[name];
        for (size_t i = 0; i < expect.size(); ++i)
          expect[i] -= lr * ref[gv][i];
        expectClose(run.leavesAfter[name], expect, name + " after the update");
      }
    }
  }
  // Without sgdUpdate, grad.* outputs are plain outputs and params stay put.
  JitRun plain = runJit(g, data, CompileOptions{}, lr);
  expectClose(plain.outputs[0], ref[grad], "grad.P plain");
  expectClose(plain.leavesAfter["P"], data["P"], "P unchanged", 0, 0);
}

TEST_CASE("codegen: sgdUpdate inside the gradient matmul kernel", "[codegen]") {
  // dW = x^T @ dy with rows of >= 64 floats is updated by the matmul's own
  // epilogue (BufferPlan: OutputPlan::inKernel) unless P is still read later.
  for (bool readLater : {false, true}) {
    Graph g;
    ValueId p = param(g, "P", {8, 80}), x = param(g, "x", {16, 8}), dy = param(g, "dy", {16, 80});
    ValueId dw = node(g, Op::MatMul, {x, dy}, [](Node &n) { n.transA = true; });
    g.setOutput({"grad.P", dw, OutputRole::Gradient, p, std::nullopt});
    if (readLater)
      g.setOutput("late", node(g, Op::MatMul, {x, p}));
    CompileOptions options;
    options.sgdUpdate = true;
    auto plan = codegen::planBuffers(g, true);
    REQUIRE(bool(plan));
    CHECK(plan->outputs[0].inKernel == !readLater);
    const float lr = 0.5f;
    LeafData data = RandomLeaves{}(g);
    Values ref = interpretOrFail(g, data);
    for (bool nullGrad : {false, true}) {
      INFO((readLater ? "P read after dW" : "dW last")
           << (nullGrad ? ", null" : ", non-null") << " gradient binding");
      JitRun run =
          runJit(g, data, options, lr,
                 nullGrad ? std::vector<std::string>{"grad.P"} : std::vector<std::string>{});
      if (!nullGrad)
        expectClose(run.outputs[0], ref[dw], "grad.P");
      if (readLater)
        expectClose(run.outputs[1], ref[g.outputs[1].value], "late (must see the old P)");
      std::vector<double> expect = data["P"];
      for (size_t i = 0; i < expect.size(); ++i)
        expect[i] -= lr * ref[dw][i];
      expectClose(run.leavesAfter["P"], expect, "P after the update");
    }
  }
}

TEST_CASE("codegen: state write-back happens after every read", "[codegen]") {
  Graph g;
  ValueId s = state(g, "S", {6}), x = param(g, "x", {3, 6});
  ValueId mean = node(g, Op::Mean, {x}, [](Node &n) { n.axis = 0; }); // [1, 6]
  ValueId next = node(g, Op::Add,
                      {node(g, Op::Mul, {s, constant(g, 0.9)}),
                       node(g, Op::Mul, {mean, constant(g, 0.1)})}); // [1, 6]
  ValueId late = node(g, Op::Mul, {node(g, Op::Exp, {next}), s});    // reads S after `next`
  g.setOutput({"state.S", next, OutputRole::WriteBack, s, std::nullopt});
  g.setOutput("late", late);
  LeafData data = RandomLeaves{}(g);
  Values ref = interpretOrFail(g, data);
  for (bool null : {false, true}) {
    DYNAMIC_SECTION((null ? "null" : "non-null") << " state binding") {
      JitRun run = runJit(g, data, CompileOptions{}, 0,
                          null ? std::vector<std::string>{"state.S"} : std::vector<std::string>{});
      expectClose(run.outputs[1], ref[late], "late (must see the old S)");
      expectClose(run.leavesAfter["S"], ref[next], "S after write-back");
      if (!null)
        expectClose(run.outputs[0], ref[next], "state.S output");
    }
  }
}

TEST_CASE("codegen: bad graphs and names are errors, not crashes", "[codegen]") {
  Graph g;
  ValueId x = param(g, "x", {3});
  g.setOutput({"state.missing", x, OutputRole::WriteBack, std::nullopt, std::nullopt});
  auto r = sharedJit().compile(g, uniqueName(), CompileOptions{});
  REQUIRE(!r);
  CHECK(llvm::toString(r.takeError()).find("no parameter or state leaf") != std::string::npos);
  Graph h;
  h.setOutput("y", node(h, Op::Neg, {param(h, "x", {3})}));
  auto bad = sharedJit().compile(h, "not a name", CompileOptions{});
  REQUIRE(!bad);
  llvm::consumeError(bad.takeError());
}

TEST_CASE("codegen: workspace reuses dead buffers", "[codegen]") {
  // A chain of 8 matmuls on [64, 64]: each intermediate dies after the next
  // one, so two buffers suffice however long the chain.
  Graph g;
  ValueId w = param(g, "w", {64, 64});
  ValueId v = param(g, "x", {64, 64});
  for (int i = 0; i < 8; ++i)
    v = node(g, Op::MatMul, {v, w});
  g.setOutput("y", node(g, Op::Tanh, {v}));
  auto plan = codegen::planBuffers(g, false);
  REQUIRE(bool(plan));
  CHECK(plan->workspaceBytes <= 2 * 64 * 64 * 4);
  RandomLeaves r;
  r.lo = -0.2, r.hi = 0.2;
  checkAgainstInterpreter(g, r);
}

TEST_CASE("codegen: emitters and engine errors", "[codegen]") {
  Graph g;
  ValueId x = param(g, "x", {3, 5});
  g.setOutput("y", node(g, Op::Tanh, {node(g, Op::Mul, {x, x})}));
  auto ir = emitLLVMText(g, "my_fn", CompileOptions{});
  REQUIRE(bool(ir));
  CHECK(ir->find("define void @my_fn(ptr") != std::string::npos);
  auto asmText = emitAssembly(g, "my_fn", CompileOptions{});
  REQUIRE(bool(asmText));
  CHECK(asmText->find("my_fn:") != std::string::npos);

  std::string path =
      std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/mlpc_codegen_test.o";
  REQUIRE(!emitObjectFile(g, "my_fn", CompileOptions{}, path));
  std::FILE *f = std::fopen(path.c_str(), "rb");
  REQUIRE(f);
  char magic[4] = {};
  CHECK(std::fread(magic, 1, 4, f) == 4);
  std::fclose(f);
  std::remove(path.c_str());
  CHECK(std::string(magic, 4) == "\x7f"
                                 "ELF");

  CompileOptions badCpu;
  badCpu.cpu = "not-a-cpu";
  auto e1 = emitAssembly(g, "my_fn", badCpu);
  REQUIRE(!e1);
  CHECK(llvm::toString(e1.takeError()).find("unknown cpu") != std::string::npos);

  // The same name twice in one engine is an error, not a crash.
  std::string name = uniqueName();
  auto first = sharedJit().compile(g, name, CompileOptions{});
  REQUIRE(bool(first));
  auto second = sharedJit().compile(g, name, CompileOptions{});
  REQUIRE(!second);
  llvm::consumeError(second.takeError());

  // optLevel 0 still computes the same thing.
  CompileOptions o0;
  o0.optLevel = 0;
  LeafData data = RandomLeaves{}(g);
  Values ref = interpretOrFail(g, data);
  expectClose(runJit(g, data, o0).outputs[0], ref[g.outputs[0].value], "y at O0");
}

TEST_CASE("codegen: matmul epilogue fusion", "[codegen]") {
  // Each matmul has one same-shape elementwise user, so its tiles feed that
  // expression from registers (bias rows, bias columns, full tensors, scalars).
  for (bool transB : {false, true}) {
    DYNAMIC_SECTION((transB ? "transB" : "plain")) {
      Graph g;
      ValueId x = param(g, "x", {33, 30});
      ValueId w = param(g, "w", transB ? Shape{45, 30} : Shape{30, 45});
      ValueId row = param(g, "row", {45}), col = param(g, "col", {33, 1}),
              full = param(g, "full", {33, 45});
      auto mm = [&] { return node(g, Op::MatMul, {x, w}, [&](Node &n) { n.transB = transB; }); };
      ValueId m1 = mm(), m2 = mm(), m3 = mm();
      ValueId y1 = node(g, Op::Add, {m1, row});
      ValueId y2 = node(g, Op::Mul, {node(g, Op::Sub, {m2, col}), node(g, Op::Tanh, {full})});
      ValueId y3 =
          node(g, Op::Add,
               {node(g, Op::Mul, {m3, g.makeConst(2.0)}), node(g, Op::MatMul, {x, w}, [&](Node &n) {
                  n.transB = transB;
                })}); // two matmuls: only one can be the epilogue
      g.setOutput("y1", y1);
      g.setOutput("y2", y2);
      g.setOutput("y3", y3);
      auto plan = codegen::planBuffers(g, false);
      REQUIRE(bool(plan));
      CHECK(plan->storage[m1] == codegen::Storage::Epilogue);
      CHECK(plan->storage[m2] == codegen::Storage::Epilogue);
      CHECK(plan->storage[m3] == codegen::Storage::Epilogue);
      CHECK(plan->storage[g[y3].operands[1]] == codegen::Storage::Workspace);
      checkAgainstInterpreter(g, RandomLeaves{}, 1e-5, 1e-5);
    }
  }
}
