// The JIT's on-disk object cache (codegen/ObjectCache.h): a hit runs the
// same machine code as a cold compile (bit-identical outputs, both checked
// against the f64 interpreter), and a damaged cache file is reported and
// recompiled, never loaded.
#include "test_codegen_util.h"

#include <llvm/Support/FileSystem.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/Path.h>
#include <llvm/Support/raw_ostream.h>

using namespace mlpc;
using namespace mlpc::testing;

namespace {

// An MLP forward pass (gather, matmuls, tanh, cross-entropy) big enough to
// be compiled as more than one module on a multi-core machine.
Graph mlp() {
  Graph g;
  ValueId X = input(g, "X", {32, 3}), Y = input(g, "Y", {32});
  ValueId C = param(g, "C", {27, 10}), W1 = param(g, "W1", {30, 64}), b1 = param(g, "b1", {64});
  ValueId W2 = param(g, "W2", {64, 27}), b2 = param(g, "b2", {27});
  ValueId emb = node(g, Op::Gather, {C, X});
  ValueId flat = node(g, Op::Reshape, {emb}, [](Node &n) { n.shapeAttr = {32, 30}; });
  ValueId h = node(g, Op::Tanh, {node(g, Op::Add, {node(g, Op::MatMul, {flat, W1}), b1})});
  ValueId logits = node(g, Op::Add, {node(g, Op::MatMul, {h, W2}), b2});
  g.setOutput("loss", node(g, Op::CrossEntropy, {logits, Y}), OutputRole::Loss);
  g.setOutput("logits", logits);
  return g;
}

struct TempDir {
  std::string path;
  TempDir() {
    llvm::SmallString<128> p;
    if (llvm::sys::fs::createUniqueDirectory("mlpc-jit-cache-test", p))
      FAIL("cannot create a temporary directory");
    path = std::string(p.str());
  }
  ~TempDir() { llvm::sys::fs::remove_directories(path); }
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (llvm::sys::fs::directory_iterator it(path, ec), end; it != end && !ec; it.increment(ec))
      out.push_back(it->path());
    return out;
  }
};

struct Engine {
  std::unique_ptr<JitEngine> jit;
  std::vector<std::string> warnings;
  explicit Engine(const std::string &dir) {
    JitCacheOptions cache{dir, [this](const std::string &w) { warnings.push_back(w); }};
    auto j = JitEngine::create(CompileOptions{}, cache);
    if (!j)
      FAIL(llvm::toString(j.takeError()));
    jit = std::move(*j);
  }
};

void checkOutputs(const Graph &g, const JitRun &run, const Values &ref) {
  for (size_t i = 0; i < g.outputs.size(); ++i)
    expectClose(run.outputs[i], ref[g.outputs[i].value], g.outputs[i].name);
}

bool bitIdentical(const JitRun &a, const JitRun &b) {
  if (a.outputs.size() != b.outputs.size())
    return false;
  for (size_t i = 0; i < a.outputs.size(); ++i)
    if (a.outputs[i].size() != b.outputs[i].size() ||
        std::memcmp(a.outputs[i].data(), b.outputs[i].data(), a.outputs[i].size() * 4) != 0)
      return false;
  return true;
}

// The graph, its leaves and interpreter values, and an empty cache directory.
struct CacheCase {
  Graph g = mlp();
  LeafData data = randomLeaves(g);
  Values ref = interpretOrFail(g, data);
  TempDir dir;

  static LeafData randomLeaves(const Graph &g) {
    RandomLeaves random;
    random.indexRange = 27;
    return random(g);
  }
};

} // namespace

TEST_CASE("jit cache: a hit runs the cold compile's code", "[codegen][cache]") {
  CacheCase c;
  const auto &[g, data, ref, dir] = c;

  Engine cold(dir.path);
  JitRun first = runJit(g, data, {}, 0, {}, cold.jit.get(), "mlp");
  checkOutputs(g, first, ref);
  CHECK(cold.jit->cacheHits() == 0);
  const unsigned modules = cold.jit->cacheMisses();
  CHECK(modules >= 1);
  CHECK(dir.files().size() == modules);

  Engine warm(dir.path); // a new engine, as a new process would have
  JitRun second = runJit(g, data, {}, 0, {}, warm.jit.get(), "mlp");
  CHECK(warm.jit->cacheHits() == modules);
  CHECK(warm.jit->cacheMisses() == 0);
  checkOutputs(g, second, ref);
  CHECK(bitIdentical(first, second));
  CHECK(warm.warnings.empty());

  // Another function name is another module: no hit.
  Engine other(dir.path);
  runJit(g, data, {}, 0, {}, other.jit.get(), "mlp_renamed");
  CHECK(other.jit->cacheHits() == 0);
}

TEST_CASE("jit cache: damaged files are reported and recompiled", "[codegen][cache]") {
  CacheCase c;
  const auto &[g, data, ref, dir] = c;
  {
    Engine cold(dir.path);
    runJit(g, data, {}, 0, {}, cold.jit.get(), "mlp");
  }
  std::vector<std::string> files = dir.files();
  REQUIRE(!files.empty());
  // Damage every file a different way: a flipped payload byte, a cut, garbage.
  for (size_t i = 0; i < files.size(); ++i) {
    auto buffer = llvm::MemoryBuffer::getFile(files[i]);
    REQUIRE(buffer);
    std::string bytes = (*buffer)->getBuffer().str();
    if (i % 3 == 0)
      bytes[bytes.size() - 100] ^= 0x40;
    else if (i % 3 == 1)
      bytes.resize(bytes.size() / 2);
    else
      bytes = "not an object file";
    std::error_code ec;
    llvm::raw_fd_ostream os(files[i], ec);
    REQUIRE(!ec);
    os << bytes;
  }
  Engine damaged(dir.path);
  JitRun run = runJit(g, data, {}, 0, {}, damaged.jit.get(), "mlp");
  checkOutputs(g, run, ref);
  CHECK(damaged.jit->cacheHits() == 0);
  CHECK(damaged.warnings.size() == files.size());
  for (const std::string &w : damaged.warnings)
    CHECK(w.find("ignoring corrupt JIT cache file") != std::string::npos);

  // The recompiled objects replaced the damaged files.
  Engine again(dir.path);
  JitRun rerun = runJit(g, data, {}, 0, {}, again.jit.get(), "mlp");
  CHECK(again.jit->cacheHits() == files.size());
  CHECK(again.warnings.empty());
  CHECK(bitIdentical(run, rerun));
}

TEST_CASE("jit cache: an unwritable directory only warns", "[codegen][cache]") {
  CacheCase c;
  const auto &[g, data, ref, dir] = c;
  std::string file = dir.path + "/plain-file";
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(file, ec);
    REQUIRE(!ec);
  }
  Engine engine(file + "/cache"); // a directory under a regular file
  JitRun run = runJit(g, data, {}, 0, {}, engine.jit.get(), "mlp");
  checkOutputs(g, run, ref);
  CHECK(engine.warnings.size() == 1);
}
