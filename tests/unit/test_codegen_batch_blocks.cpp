// Weight gradients by batch row blocks (codegen/LowerMatMulBatchBlocks.cpp)
// against the f64 interpreter, on one thread: the tiled kernel (N of 64 and
// more) and the transposed one (N = 27), into a plain store, a fused
// elementwise consumer and the SGD update. tests/unit/test_threads.cpp checks
// that the threads' two-phase form gives the same bits.
#include "test_codegen_util.h"

#include "codegen/BufferPlan.h"

using namespace mlpc;
using namespace mlpc::testing;

TEST_CASE("codegen: weight gradients by batch row blocks", "[codegen][vector-width]") {
  struct Case {
    int64_t batch, m, n;
    int64_t blocks; // matMulBatchBlocks
  };
  // Blocks of 32 (the least), 40 and 64 rows; 68 rows (blocks of 17) and
  // 96 rows (blocks of 24) keep one block.
  const Case cases[] = {{128, 30, 64, 4},  {160, 64, 27, 4}, {256, 30, 200, 4},
                        {256, 200, 27, 4}, {68, 30, 64, 1},  {96, 64, 27, 1}};
  for (unsigned bits : {256u, 512u})
    for (const Case &c : cases)
      DYNAMIC_SECTION(bits << " bits, dW [" << c.m << ", " << c.n << "] over " << c.batch
                           << " rows") {
        Graph g;
        ValueId x = param(g, "x", {c.batch, c.m}), dy = param(g, "dy", {c.batch, c.n});
        ValueId p = param(g, "P", {c.m, c.n}), bias = param(g, "bias", {c.n});
        auto dw = [&] { return node(g, Op::MatMul, {x, dy}, [](Node &n) { n.transA = true; }); };
        ValueId plain = dw(), fused = node(g, Op::Add, {dw(), bias}), grad = dw();
        CHECK(codegen::matMulBatchBlocks(g, g[plain]) == c.blocks);
        g.setOutput("plain", plain);
        g.setOutput("fused", fused);
        g.setOutput({"grad.P", grad, OutputRole::Gradient, p, std::nullopt});
        CompileOptions options;
        options.vectorBits = bits;
        options.sgdUpdate = true;
        const float lr = 0.25f;
        LeafData data = RandomLeaves{}(g);
        Values ref = interpretOrFail(g, data);
        JitRun run = runJit(g, data, options, lr);
        const double tol = 1e-6 * std::sqrt(double(c.batch));
        expectClose(run.outputs[0], ref[plain], "plain", 1e-5, tol);
        expectClose(run.outputs[1], ref[fused], "fused", 1e-5, tol);
        expectClose(run.outputs[2], ref[grad], "grad.P", 1e-5, tol);
        std::vector<double> expect = data["P"];
        for (size_t i = 0; i < expect.size(); ++i)
          expect[i] -= lr * ref[grad][i];
        expectClose(run.leavesAfter["P"], expect, "P after the update", 1e-5, tol);
      }
}
