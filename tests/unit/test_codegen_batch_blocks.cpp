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
        WeightGradientGraph w = weightGradientGraph(c.batch, c.m, c.n);
        CHECK(codegen::matMulBatchBlocks(w.g, w.g[w.plain]) == c.blocks);
        checkWeightGradient(w, bits, c.batch);
      }
}
