// Kernels that keep per-row or per-column values in their scratch or in a
// statistics region, run as parallel code on teams of 2 and 3 threads with
// even and uneven parts (and as serial code), against the f64 interpreter.
// Every team's outputs must also equal the serial code's bit for bit. The
// workspace starts poisoned (every byte 0xff: NaN floats), so a read of
// bytes no thread wrote shows in the outputs, and a guard after it must
// stay untouched, so a write past the planned size shows too. Covers the
// cross-entropy's phases (LowerCrossEntropy.cpp: per-row maxima and sums in
// scratch, each thread its own row blocks in every phase) at row counts
// around the vector width, and the BatchNorm statistics' and gradient's
// padded rows (BufferPlan.h: statsColumnStride) at widths that are not a
// multiple of 16, and scatter_add by row blocks (LowerIndex.cpp: a padded
// table per block in scratch, then the tables added in order).
#include "test_codegen_util.h"

#include "runtime/ThreadTeam.h"

#include <cstdlib>
#include <cstring>

using namespace mlpc;
using namespace mlpc::testing;

namespace {

struct Team {
  unsigned threads;           // 0: serial code
  std::vector<double> shares; // fixed parts of the shared loops, or even
};
const Team kTeams[] = {{0, {}}, {2, {}}, {3, {0.6, 0.1, 0.3}}};

// g compiled as parallel or serial code, its leaves bound to `data` (in
// f32 / i32); the output bindings are the caller's to append.
struct CompiledWithLeaves {
  CompiledFunction fn;
  std::vector<std::vector<float>> floats;
  std::vector<std::vector<int32_t>> ints;
  std::vector<void *> bindings;
};

void compileWithLeaves(const Graph &g, const LeafData &data, bool parallel, unsigned bits,
                       CompiledWithLeaves &out) {
  CompileOptions options;
  options.parallel = parallel;
  options.vectorBits = bits;
  auto compiled = sharedJit().compile(g, uniqueName(), options);
  if (!compiled)
    FAIL(llvm::toString(compiled.takeError()));
  out.fn = *compiled;
  out.floats.reserve(g.size()); // the bindings point into these vectors
  out.ints.reserve(g.size());
  for (const BindingInfo &b : out.fn.bindings()) {
    if (b.kind == BindingInfo::Kind::Output)
      break;
    const std::vector<double> &d = data.at(b.name);
    if (b.type.dtype == DType::I32)
      out.bindings.push_back(out.ints.emplace_back(d.begin(), d.end()).data());
    else
      out.bindings.push_back(out.floats.emplace_back(d.begin(), d.end()).data());
  }
}

// Runs g on `team` against the interpreter; returns the outputs.
std::vector<std::vector<float>> checkOnTeam(const Graph &g, RandomLeaves random, const Team &team,
                                            unsigned bits, double rtol, double atol) {
  LeafData data = random(g);
  Values ref = interpretOrFail(g, data);
  CompiledWithLeaves compiled;
  compileWithLeaves(g, data, team.threads > 0, bits, compiled);
  const CompiledFunction &fn = compiled.fn;
  std::vector<void *> &bindings = compiled.bindings;
  std::vector<std::vector<float>> outputs(g.outputs.size());
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    outputs[i].assign(g[g.outputs[i].value].type.numel(), NAN);
    bindings.push_back(outputs[i].data());
  }
  const size_t bytes = (fn.workspaceBytes() + 63) / 64 * 64, guard = 4096;
  std::vector<char> storage(bytes + guard + 64);
  char *ws = storage.data() + (64 - reinterpret_cast<uintptr_t>(storage.data()) % 64) % 64;
  std::memset(ws, 0xff, bytes + guard);
  if (team.threads == 0) {
    fn.run(bindings.data(), 0, ws, nullptr);
  } else {
    ThreadTeam threads(team.threads);
    if (!team.shares.empty())
      threads.fixShares(team.shares);
    threads.run([&](const ThreadContext &ctx) { fn.run(bindings.data(), 0, ws, &ctx); });
  }
  const std::vector<char> poison(guard, char(0xff));
  CHECK(std::memcmp(ws + bytes, poison.data(), guard) == 0);
  for (size_t i = 0; i < g.outputs.size(); ++i)
    expectClose(outputs[i], ref[g.outputs[i].value], g.outputs[i].name, rtol, atol);
  return outputs;
}

// Every team against the serial code (kTeams[0]), bit for bit: the kernels'
// promise that any thread count and any split computes the same bits.
class SameBitsAsSerial {
public:
  void check(const Team &team, const std::vector<std::vector<float>> &outputs) {
    if (team.threads == 0) {
      serial_ = outputs;
      return;
    }
    REQUIRE(serial_.size() == outputs.size());
    for (size_t i = 0; i < outputs.size(); ++i)
      CHECK(std::memcmp(outputs[i].data(), serial_[i].data(), outputs[i].size() * sizeof(float)) ==
            0);
  }

private:
  std::vector<std::vector<float>> serial_;
};

} // namespace

TEST_CASE("parallel kernels: cross-entropy by phases on any team", "[codegen][threads]") {
  for (int64_t rows : {1, 17, 40, 257})
    for (unsigned bits : {256u, 512u})
      for (int variant = 0; variant < 3; ++variant) {
        SameBitsAsSerial same;
        for (const Team &team : kTeams) {
          INFO("rows " << rows << ", " << bits << " bits, variant " << variant << ", "
                       << team.threads << " threads");
          Graph g;
          ValueId logits = param(g, "logits", {rows, 27}), y = input(g, "Y", {rows});
          if (variant == 0) { // the training step's pair: the loss kernel fills the gradient
            g.setOutput("loss", node(g, Op::CrossEntropy, {logits, y}));
            ValueId grad = node(g, Op::CrossEntropyGrad, {logits, y, g.makeConst(1.0)});
            g.setOutput("g", node(g, Op::Add, {grad, logits}));
          } else if (variant == 1) { // a gradient kernel of its own (dloss not constant)
            ValueId grad = node(g, Op::CrossEntropyGrad, {logits, y, param(g, "dloss", {})});
            g.setOutput("g", node(g, Op::Mul, {grad, grad}));
          } else { // the loss alone
            g.setOutput("loss", node(g, Op::CrossEntropy, {logits, y}));
          }
          RandomLeaves r;
          r.lo = -4, r.hi = 4;
          r.indexRange = 27;
          same.check(team, checkOnTeam(g, r, team, bits, 1e-5, 1e-6));
        }
      }
}

TEST_CASE("parallel kernels: batchnorm statistics rows at any width", "[codegen][threads]") {
  // 64 and 256 rows: the row-block kernels, whose partial sums sit in rows
  // padded to 16 floats; H = 40 and 200 are not multiples of 16. H = 40 and
  // 64 keep a row's sums in registers (KernelColumnSums.cpp: two blocks at
  // a time on one thread, one a trip on a team), H = 200 in the scratch.
  for (int64_t rows : {64, 256})
    for (int64_t h : {40, 64, 200}) {
      SameBitsAsSerial same;
      for (const Team &team : kTeams) {
        INFO(rows << " x " << h << ", " << team.threads << " threads");
        Graph g;
        addBatchNormFamily(g, rows, h);
        same.check(team, checkOnTeam(g, RandomLeaves{}, team, 512, 1e-4, 1e-4));
      }
    }
}

TEST_CASE("parallel kernels: scatter_add by row blocks on any team", "[codegen][threads]") {
  // 768 rows (makemore's embedding gradient at batch 256): 4 blocks of 192;
  // 256 x 8 with rows of 24 (wavenet's): 4 of 512; 320 rows of 37 floats
  // (more than one vector, a masked tail) and 3 table rows (every block
  // hits every row); 96 rows, and 768 rows into a 1000-row table (larger
  // than a block's rows): one table, the serial kernel; rows of 16 and of
  // 8 floats, one table: the sums straight into the output (no padding at
  // the row updates' 8 lanes, LowerIndex.cpp); rows of 4 and 12 floats
  // (padded at 8 lanes, not at 4: 128-bit code).
  struct Case {
    int64_t batch, context, width, vocab;
  };
  for (Case c : {Case{256, 3, 10, 27}, Case{256, 8, 24, 27}, Case{64, 5, 37, 3},
                 Case{32, 3, 10, 27}, Case{256, 3, 10, 1000}, Case{32, 3, 16, 27},
                 Case{16, 2, 8, 5}, Case{32, 3, 4, 27}, Case{32, 3, 12, 27}})
    for (unsigned bits : {128u, 256u, 512u}) {
      SameBitsAsSerial same;
      for (const Team &team : kTeams) {
        INFO(c.batch << " x " << c.context << " rows of " << c.width << ", vocab " << c.vocab
                     << ", " << bits << " bits, " << team.threads << " threads");
        Graph g;
        ValueId idx = input(g, "X", {c.batch, c.context});
        ValueId d = param(g, "d", {c.batch, c.context, c.width});
        g.setOutput("dC", node(g, Op::ScatterAdd, {d, idx}, [&](Node &n) {
                      n.shapeAttr = {c.vocab, c.width};
                    }));
        RandomLeaves r;
        r.indexRange = static_cast<int>(c.vocab);
        same.check(team, checkOnTeam(g, r, team, bits, 1e-5, 1e-5));
      }
    }
}

TEST_CASE("parallel kernels: row reductions split by row blocks", "[codegen][threads]") {
  // Sum / Mean / Max along the last axis (LowerReduce.cpp: blocks of VW rows,
  // threads split the blocks, the tail block on the last share), a plain
  // and a fused operand, at row counts around the vector width.
  for (int64_t rows : {1, 17, 40, 257})
    for (unsigned bits : {256u, 512u}) {
      SameBitsAsSerial same;
      for (const Team &team : kTeams) {
        INFO(rows << " rows, " << bits << " bits, " << team.threads << " threads");
        Graph g;
        auto axis1 = [](Node &n) { n.axis = 1; };
        ValueId x = param(g, "x", {rows, 37}), w = param(g, "w", {rows, 37});
        g.setOutput("sum", node(g, Op::Sum, {x}, axis1));
        g.setOutput("mean", node(g, Op::Mean, {node(g, Op::Mul, {x, w})}, axis1));
        g.setOutput("max", node(g, Op::Max, {x}, axis1));
        same.check(team, checkOnTeam(g, RandomLeaves{}, team, bits, 1e-5, 1e-5));
      }
    }
}

namespace {
// Runs g's parallel code on a team of 2 (even parts) with each thread given
// output buffers of its own, NaN-filled: every output element must come
// from exactly one thread (finite in one buffer, NaN in the other). A
// shared node whose kernel did not split its loop would have both threads
// write everything, which the values alone cannot show (they are equal),
// and a node left to thread 0 would leave the other's buffers empty.
void checkPartitioned(const Graph &g, RandomLeaves random, unsigned bits) {
  CompiledWithLeaves compiled;
  compileWithLeaves(g, random(g), /*parallel=*/true, bits, compiled);
  const CompiledFunction &fn = compiled.fn;
  const std::vector<void *> &inputs = compiled.bindings;
  std::vector<std::vector<float>> outputs[2];
  std::vector<void *> bindings[2];
  for (int t = 0; t < 2; ++t) {
    bindings[t] = inputs;
    for (const auto &o : g.outputs)
      outputs[t].emplace_back(g[o.value].type.numel(), NAN);
    for (auto &o : outputs[t])
      bindings[t].push_back(o.data());
  }
  std::vector<char> ws((fn.workspaceBytes() + 127) / 64 * 64);
  char *aligned = ws.data() + (64 - reinterpret_cast<uintptr_t>(ws.data()) % 64) % 64;
  ThreadTeam team(2);
  team.run([&](const ThreadContext &ctx) { fn.run(bindings[ctx.index].data(), 0, aligned, &ctx); });
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    int64_t both = 0, none = 0, first = 0, second = 0;
    for (size_t j = 0; j < outputs[0][i].size(); ++j) {
      const bool a = std::isfinite(outputs[0][i][j]), b = std::isfinite(outputs[1][i][j]);
      both += a && b;
      none += !a && !b;
      first += a;
      second += b;
    }
    INFO("output " << g.outputs[i].name);
    CHECK(both == 0);
    CHECK(none == 0);
    CHECK(first > 0); // shared, not left to thread 0
    CHECK(second > 0);
  }
}
} // namespace

TEST_CASE("parallel kernels: shared nodes split their outputs between threads",
          "[codegen][threads]") {
  // Every kind of shared node: a row reduction, a scatter_add by row blocks,
  // elementwise, matmul, gather, a column sum, the cross-entropy's gradient,
  // BatchNormGrad, and a small elementwise node with a matmul in its loop
  // (a weight gradient's scaled update).
  for (unsigned bits : {256u, 512u}) {
    INFO(bits << " bits");
    {
      Graph g;
      auto axis1 = [](Node &n) { n.axis = 1; };
      ValueId x = param(g, "x", {257, 37});
      g.setOutput("sum", node(g, Op::Sum, {x}, axis1));
      checkPartitioned(g, RandomLeaves{}, bits);
    }
    {
      Graph g;
      ValueId idx = input(g, "X", {256, 3}), d = param(g, "d", {256, 3, 10});
      g.setOutput("dC", node(g, Op::ScatterAdd, {d, idx}, [](Node &n) { n.shapeAttr = {27, 10}; }));
      RandomLeaves r;
      r.indexRange = 27;
      checkPartitioned(g, r, bits);
    }
    {
      Graph g; // the other kinds over the batch: elementwise, matmul, gather, column sum
      ValueId x = param(g, "x", {256, 200}), w = param(g, "w", {200, 27}); // >= 2 column groups
      ValueId table = param(g, "C", {27, 10}), idx = input(g, "X", {256, 3});
      g.setOutput("tanh", node(g, Op::Tanh, {x}));
      g.setOutput("xw", node(g, Op::MatMul, {x, w}));
      g.setOutput("emb", node(g, Op::Gather, {table, idx}));
      g.setOutput("colsum", node(g, Op::Sum, {x}, [](Node &n) { n.axis = 0; }));
      RandomLeaves r;
      r.indexRange = 27;
      checkPartitioned(g, r, bits);
    }
    {
      Graph g; // the cross-entropy's gradient rows and BatchNormGrad's
      auto eps = [](Node &n) { n.scalar = 1e-5; };
      ValueId logits = param(g, "logits", {256, 27}), y = input(g, "Y", {256});
      g.setOutput("dlogits", node(g, Op::CrossEntropyGrad, {logits, y, param(g, "dloss", {})}));
      ValueId x = param(g, "x", {256, 40}), gain = param(g, "gain", {40}),
              dout = param(g, "dout", {256, 40});
      g.setOutput("dx", node(g, Op::BatchNormGrad, {x, gain, dout}, eps));
      RandomLeaves r;
      r.indexRange = 27;
      checkPartitioned(g, r, bits);
    }
    {
      Graph g; // dW = a^T @ b over 256 rows, then scaled: [30, 64], 1920 elements
      ValueId a = param(g, "a", {256, 30}), b = param(g, "b", {256, 64});
      ValueId dw = node(g, Op::MatMul, {a, b}, [](Node &n) { n.transA = true; });
      g.setOutput("w", node(g, Op::Mul, {dw, g.makeConst(0.5)}));
      checkPartitioned(g, RandomLeaves{}, bits);
    }
  }
}
