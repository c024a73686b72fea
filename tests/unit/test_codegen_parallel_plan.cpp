// Parallel buffer plans (planBuffers(..., parallel), BufferPlan.cpp step 5:
// values reuse only the bytes of values with as many rows of the same
// length) against the serial plan of the same graph: every buffer, scratch
// and statistics region 64-byte aligned, inside the workspace and equal to
// its alias-scope region, the threads' own transpose slots after every
// other byte and as large as the largest transposed operand, and the
// workspace, less those slots, at most 1.5x the serial one (when scratch
// was not reused between nodes either, wavenet's at H = 1024 was 125 MB
// against 67).
#include "TestUtil.h"
#include "codegen/BufferPlan.h"
#include "frontend/Overrides.h"
#include "runtime/ModelRuntime.h"

#include <catch2/catch.hpp>

using namespace mlpc;
using namespace mlpc::codegen;

namespace {

void checkPlan(const Graph &g, const BufferPlan &p) {
  for (ValueId v = 0; v < g.size(); ++v) {
    if (p.storage[v] == Storage::Workspace && p.root[v] == v) {
      const int64_t bytes = std::max<int64_t>(g[v].type.numel(), 1) * kElemBytes;
      INFO("value %" << v);
      CHECK(p.offset[v] >= 0);
      CHECK(p.offset[v] % kBufferAlign == 0);
      CHECK(p.offset[v] + bytes <= p.workspaceBytes);
      CHECK(p.regions[p.region[v]].begin == p.offset[v]);
      CHECK(p.regions[p.region[v]].end >= p.offset[v] + bytes);
    }
    if (p.scratchOffset[v] >= 0) {
      INFO("scratch of %" << v);
      CHECK(p.scratchOffset[v] % kBufferAlign == 0);
      CHECK(p.regions[p.scratchRegion[v]].begin == p.scratchOffset[v]);
      CHECK(p.regions[p.scratchRegion[v]].end <= p.workspaceBytes);
    }
  }
  for (const StatsPlan &s : p.stats) {
    CHECK(p.regions[s.region].begin == s.offset);
    CHECK(p.regions[s.region].end <= p.workspaceBytes);
  }
  int64_t largestTranspose = 0;
  for (ValueId v = 0; v < g.size(); ++v)
    if (g[v].op == Op::MatMul && g[v].transB) {
      const Shape &b = g[g[v].operands[1]].type.shape;
      largestTranspose = std::max(largestTranspose, transposeSlotFloats(b[1], b[0]) * kElemBytes);
    }
  if (!p.parallel || largestTranspose == 0) {
    CHECK(p.threadSlotsOffset == -1);
    return;
  }
  INFO("threads' own slots");
  CHECK(p.threadSlotBytes >= largestTranspose);
  CHECK(p.threadSlotsOffset % kBufferAlign == 0);
  CHECK(p.threadSlotsOffset + kTransposeSlots * p.threadSlotBytes == p.workspaceBytes);
  CHECK(p.regions[p.threadSlotsRegion].begin == p.threadSlotsOffset);
  CHECK(p.regions[p.threadSlotsRegion].end == p.workspaceBytes);
  for (const Region &r : p.regions) // nothing else in them
    if (&r != &p.regions[p.threadSlotsRegion])
      CHECK(r.end <= p.threadSlotsOffset);
}

} // namespace

TEST_CASE("parallel buffer plans stay in bounds and near the serial size", "[codegen][threads]") {
  for (const char *model : {"makemore.mlp", "wavenet.mlp", "layernorm_gelu.mlp", "mlp3_bn.mlp",
                            "makemore_adamw.mlp", "deep_tanh.mlp"})
    for (const std::vector<std::string> &settings :
         {std::vector<std::string>{}, {"batch=256"}, {"batch=256", "H=1024"}}) {
      INFO(model << " " << (settings.empty() ? "" : settings.back()));
      const std::string source = test::readFile(test::examplePath(model));
      DiagnosticEngine diags{model, source};
      ModelAST ast = parseModel(source, diags);
      REQUIRE_FALSE(diags.hasErrors());
      if (llvm::Error e = test::applySettings(ast, settings)) { // not every model has an H
        llvm::consumeError(std::move(e));
        continue;
      }
      auto rt = ModelRuntime::create(ast, buildVocabulary({"abcdefghijklmnopqrstuvwxyz"}), diags);
      REQUIRE(bool(rt));
      const Graph &g = (*rt)->trainingGraph();
      auto serial = planBuffers(g, false, false), parallel = planBuffers(g, false, true);
      REQUIRE(bool(serial));
      REQUIRE(bool(parallel));
      checkPlan(g, *serial);
      checkPlan(g, *parallel);
      const int64_t ownSlots = kTransposeSlots * parallel->threadSlotBytes;
      CHECK(parallel->workspaceBytes - ownSlots <= serial->workspaceBytes * 3 / 2);
    }
}
