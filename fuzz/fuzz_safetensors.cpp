// libFuzzer target: the safetensors reader on arbitrary bytes, then the
// checkpoint checks (runtime/Checkpoint.h) that match its tensors against a
// model's parameters, running statistics and inputs.
//
// The reader must return an llvm::Error for every malformed file (huge or
// truncated header lengths, offsets past the end or overlapping, shapes
// whose byte size overflows, unknown dtypes, deep JSON) and never crash or
// allocate more than the input holds. What it accepts must be consistent:
// each tensor's bytes match its shape and dtype.
#include "frontend/Lowering.h"
#include "frontend/Parser.h"
#include "passes/Pipeline.h"
#include "runtime/Checkpoint.h"
#include "runtime/Safetensors.h"

#include <cstdio>
#include <cstdlib>

using namespace mlpc;

namespace {

// A BatchNorm model, so that the graph has Param, State and Input leaves.
constexpr const char *kModel = R"(model m
dim V = vocab
dim N = 4
input X : i32[N, 3]
target Y : i32[N]
param C : [V, 2] = randn
param W : [6, 5] = randn
param g : [5] = ones
param b : [5] = zeros
param W2 : [5, V] = randn
forward {
  h = tanh(batchnorm(reshape(C[X], [N, 6]) @ W, g, b))
  loss = cross_entropy(h @ W2, Y)
}
)";

// The training graph (params, running statistics, inputs), built once.
const Graph &trainingGraph() {
  static const Graph graph = [] {
    DiagnosticEngine diags("model.mlp", kModel);
    ModelAST ast = parseModel(kModel, diags);
    LoweringOptions options;
    options.vocab = 3;
    std::optional<Module> m = lowerModel(ast, options, diags);
    std::optional<Graph> g = m ? runPipeline(m->graph, Stage::Grad, {}, diags) : std::nullopt;
    if (!g) {
      std::fprintf(stderr, "%s", diags.render().c_str());
      std::abort();
    }
    return *g;
  }();
  return graph;
}

[[noreturn]] void fail(const char *what) {
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef bytes(reinterpret_cast<const char *>(data), size);
  llvm::Expected<TensorFile> file = parseSafetensors(bytes, "fuzz.safetensors");
  if (!file) {
    if (llvm::toString(file.takeError()).empty())
      fail("empty error message");
    return 0;
  }
  for (const auto &[name, t] : file->tensors) {
    int64_t n = t.numel();
    if (n < 0 || static_cast<uint64_t>(n) * dtypeSize(t.dtype) != t.bytes.size())
      fail("tensor bytes do not match its shape");
    if (t.bytes.size() > size)
      fail("tensor larger than the input");
  }
  const Graph &g = trainingGraph();
  for (Op kind : {Op::Param, Op::State}) {
    auto leaves = extractLeaves(*file, "fuzz.safetensors", g, kind, /*allowExtra=*/true);
    if (leaves)
      for (const Node &n : g.nodes)
        if (n.op == kind && (*leaves)[n.name].size() != static_cast<size_t>(n.type.numel()))
          fail("extracted leaf has the wrong size");
    if (!leaves)
      llvm::consumeError(leaves.takeError());
  }
  if (auto strict = extractLeaves(*file, "fuzz.safetensors", g, Op::Param); !strict)
    llvm::consumeError(strict.takeError());
  if (auto inputs = extractInputs(*file, "fuzz.safetensors", g); !inputs)
    llvm::consumeError(inputs.takeError());
  return 0;
}
