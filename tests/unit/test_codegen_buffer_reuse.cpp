// Workspace reuse (codegen/BufferPlan.cpp, steps 4 and 5) against the f64
// interpreter: a BatchNormGrad's dx written over its dout when nothing reads
// dout after it, and the operands of values another kernel fills (the
// gradient sums BatchNormGrad computes) freed where that kernel runs. The
// plan is checked too, so that a change which stops reusing the bytes shows;
// the numbers show a reuse that is not safe.
#include "test_codegen_util.h"

#include "codegen/BufferPlan.h"

using namespace mlpc;
using namespace mlpc::testing;

namespace {

struct BatchNormGradGraph {
  Graph g;
  ValueId x, dout, dx, dxBelow;
};

// x = p + q and dout = a * b (workspace values), dx = batchnorm_grad(x,
// gain, dout), a matmul of dx like the layer below's input gradient, then,
// in autodiff's order, the gain and bias gradients (sums the BatchNormGrad
// kernel fills). With readLater, a node at the end reads dout as well, so dx
// needs bytes of its own.
BatchNormGradGraph batchNormGradGraph(int64_t rows, int64_t h, bool readLater) {
  BatchNormGradGraph t;
  Graph &g = t.g;
  auto eps = [](Node &n) { n.scalar = 1e-5; };
  auto axis0 = [](Node &n) { n.axis = 0; };
  t.x = node(g, Op::Add, {param(g, "p", {rows, h}), param(g, "q", {rows, h})});
  ValueId gain = param(g, "gain", {h});
  t.dout = node(g, Op::Mul, {param(g, "a", {rows, h}), param(g, "b", {rows, h})});
  t.dx = node(g, Op::BatchNormGrad, {t.x, gain, t.dout}, eps);
  t.dxBelow = node(g, Op::MatMul, {t.dx, param(g, "W", {16, h})}, [](Node &n) { n.transB = true; });
  g.setOutput("dxBelow", node(g, Op::Mul, {t.dxBelow, t.dxBelow}));
  ValueId xhat = node(g, Op::BatchNormXhat, {t.x}, eps);
  g.setOutput("dgain", node(g, Op::Sum, {node(g, Op::Mul, {t.dout, xhat})}, axis0));
  g.setOutput("dbias", node(g, Op::Sum, {t.dout}, axis0));
  if (readLater)
    g.setOutput("doutTwice", node(g, Op::Add, {t.dout, t.dout}));
  return t;
}

} // namespace

TEST_CASE("codegen: BatchNormGrad writes dx over a dout read last there", "[codegen]") {
  // 32 rows: the column-group kernel; 256: row blocks.
  for (int64_t rows : {32, 256})
    for (bool readLater : {false, true})
      DYNAMIC_SECTION(rows << " rows, dout " << (readLater ? "read later" : "read last there")) {
        BatchNormGradGraph t = batchNormGradGraph(rows, 40, readLater);
        auto plan = codegen::planBuffers(t.g, false);
        REQUIRE(bool(plan));
        REQUIRE(plan->storage[t.dout] == codegen::Storage::Workspace);
        REQUIRE(plan->storage[t.dx] == codegen::Storage::Workspace);
        CHECK((plan->offset[t.dx] == plan->offset[t.dout]) == !readLater);
        checkAgainstInterpreter(t.g, RandomLeaves{}, 1e-5, 1e-5);
      }
}

TEST_CASE("codegen: values filled by another kernel are read where it runs", "[codegen]") {
  // x is last read by the BatchNormGrad (the gain gradient's sum comes from
  // its kernel), so the matmul after it takes x's bytes.
  for (int64_t rows : {32, 256})
    DYNAMIC_SECTION(rows << " rows") {
      BatchNormGradGraph t = batchNormGradGraph(rows, 40, /*readLater=*/false);
      auto plan = codegen::planBuffers(t.g, false);
      REQUIRE(bool(plan));
      REQUIRE(plan->storage[t.x] == codegen::Storage::Workspace);
      REQUIRE(plan->storage[t.dxBelow] == codegen::Storage::Workspace);
      CHECK(plan->offset[t.dxBelow] == plan->offset[t.x]);
      checkAgainstInterpreter(t.g, RandomLeaves{}, 1e-5, 1e-5);
    }
}

TEST_CASE("codegen: dx is not written over a dout that a write-back copies after it", "[codegen]") {
  // The write-back of the state s = dout runs once s's last reader, the
  // BatchNormGrad, is done: after its kernel, so dout must still be there.
  for (int64_t rows : {32, 256})
    DYNAMIC_SECTION(rows << " rows") {
      Graph g;
      auto eps = [](Node &n) { n.scalar = 1e-5; };
      ValueId s = state(g, "s", {rows, 40});
      ValueId dout = node(g, Op::Mul, {param(g, "a", {rows, 40}), param(g, "b", {rows, 40})});
      ValueId dx = node(g, Op::BatchNormGrad, {s, param(g, "gain", {40}), dout}, eps);
      g.setOutput("dx2", node(g, Op::Mul, {dx, dx}));
      g.setOutput({"state.s", dout, OutputRole::WriteBack, s, std::nullopt});
      auto plan = codegen::planBuffers(g, false);
      REQUIRE(bool(plan));
      CHECK(plan->offset[dx] != plan->offset[dout]);
      checkAgainstInterpreter(g, RandomLeaves{}, 1e-5, 1e-5);
    }
}
