// matmul_bench: mlpc's matmul kernels against oneDNN's dnnl_sgemm on the same
// shapes, in ONE process, interleaved (issue 15: every matmul node at least
// as fast as dnnl_sgemm).
//
// Why one process: on a shared VM the speed of a core moves by +-30% from
// one second to the next (other tenants, the sibling vCPU's load), so two
// programs timed a minute apart compare the machine's moods, not the code.
// Here every trial times a burst of mlpc calls and then a burst of dnnl calls
// on the same operands (~0.2 ms each), for many trials; the minimum per
// implementation is the speed of the code on a quiet core, and both see the
// same quiet moments.
//
// A shape is MxNxK[:AB] as in dnnl_matmul.c: C[M,N] = op(A) @ op(B), all
// row-major, op(A) = A^T when A is stored [K,M] (T), op(B) = B^T when B is
// stored [N,K]. mlpc compiles a graph holding just that matmul node
// (CompileOptions as `mlpc bench --threads 1`); the step's nodes also carry
// their fused epilogues, which this leaves out on both sides.
//
// Built only when oneDNN is installed (Debian libdnnl-dev; a benchmark
// reference, never a dependency of mlpc): `cmake --build build --target
// mlpc_matmul_bench`, then
//   build/bench/mlpc_matmul_bench [--trials N] [--vector-bits B] [--evict-kb KB] [SHAPE...]
// --evict-kb 256: each call starts with its operands out of L1 (see burstMicros).
// --cpu x86-64-v3 with DNNL_MAX_CPU_ISA=AVX2 in the environment: both sides
// limited to AVX2 (mlpc's 256-bit, 16-register shape, codegen/VectorShape.h).
// Without shapes: makemore's six matmuls at B=32 and B=256. One JSON line per
// shape on stdout, a table on stderr.
#include "codegen/Compiler.h"
#include "ir/Graph.h"
#include "ir/ShapeRules.h"

#include <dnnl.h>
#include <omp.h>
#include <llvm/Support/Error.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace mlpc;

namespace {

struct Shape3 {
  int64_t m, n, k;
  bool ta, tb;
  std::string text() const {
    return std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) + ":" +
           (ta ? "T" : "N") + (tb ? "T" : "N");
  }
};

bool parseShape(const char *s, Shape3 &out) {
  long m, n, k;
  char a = 'N', b = 'N';
  int used = 0;
  if (std::sscanf(s, "%ldx%ldx%ld%n", &m, &n, &k, &used) != 3 || m < 1 || n < 1 || k < 1)
    return false;
  if (s[used] == ':' && std::strlen(s + used) == 3) {
    a = s[used + 1];
    b = s[used + 2];
  } else if (s[used] != 0) {
    return false;
  }
  if ((a != 'N' && a != 'T') || (b != 'N' && b != 'T'))
    return false;
  out = {m, n, k, a == 'T', b == 'T'};
  return true;
}

ValueId addLeaf(Graph &g, const std::string &name, mlpc::Shape shape) {
  Node n(Op::Param);
  n.name = name;
  n.type = {DType::F32, std::move(shape)};
  return g.add(std::move(n));
}

llvm::Expected<Graph> matmulGraph(const Shape3 &s) {
  Graph g;
  g.name = "matmul";
  ValueId a = addLeaf(g, "a", s.ta ? mlpc::Shape{s.k, s.m} : mlpc::Shape{s.m, s.k});
  ValueId b = addLeaf(g, "b", s.tb ? mlpc::Shape{s.n, s.k} : mlpc::Shape{s.k, s.n});
  Node mm(Op::MatMul, {a, b});
  mm.transA = s.ta;
  mm.transB = s.tb;
  std::string error;
  std::optional<TensorType> t = inferType(g, mm, error);
  if (!t)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "shape %s: %s",
                                   s.text().c_str(), error.c_str());
  mm.type = *t;
  g.setOutput("c", g.add(std::move(mm)));
  return g;
}

double seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Calls per burst so that a burst takes ~0.2 ms.
template <class F> int callsPerBurst(F &&call) {
  double t0 = seconds();
  int n = 0;
  while (seconds() - t0 < 2e-3 || n < 10) {
    call();
    ++n;
  }
  return std::max(1, static_cast<int>(n * 0.2e-3 / (seconds() - t0)));
}

// Mean time of one call over a burst. With an eviction buffer, each call is
// timed alone after streaming through the buffer, so the operands come from
// L2 as they do in a training step (the nodes before it used L1 for their
// own operands), not from L1.
template <class F> double burstMicros(F &&call, int calls, std::vector<float> &evict) {
  if (evict.empty()) {
    double t0 = seconds();
    for (int i = 0; i < calls; ++i)
      call();
    return (seconds() - t0) / calls * 1e6;
  }
  double total = 0;
  for (int i = 0; i < calls; ++i) {
    for (size_t j = 0; j < evict.size(); j += 16)
      evict[j] += 1.0f;
    double t0 = seconds();
    call();
    total += seconds() - t0;
  }
  return total / calls * 1e6;
}

struct Result {
  double mlpcMin, mlpcMedian, dnnlMin, dnnlMedian, maxDiff;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

llvm::Expected<Result> benchShape(JitEngine &jit, const Shape3 &s, const CompileOptions &options,
                                  int trials, int index, std::vector<float> &evict) {
  auto graph = matmulGraph(s);
  if (!graph)
    return graph.takeError();
  auto fn = jit.compile(*graph, "matmul_" + std::to_string(index), options);
  if (!fn)
    return fn.takeError();
  std::vector<float> a(s.m * s.k), b(s.k * s.n), c(s.m * s.n), ref(s.m * s.n);
  for (size_t i = 0; i < a.size(); ++i)
    a[i] = float((i * 7919) % 1000) / 1000.0f - 0.5f;
  for (size_t i = 0; i < b.size(); ++i)
    b[i] = float((i * 104729) % 1000) / 1000.0f - 0.5f;
  std::vector<char> workspace(fn->workspaceBytes() + 64);
  void *ws = workspace.data() + (64 - reinterpret_cast<uintptr_t>(workspace.data()) % 64) % 64;
  void *bindings[3] = {a.data(), b.data(), c.data()};
  auto runMlpc = [&] { fn->run(bindings, 0.0f, ws); };
  const long lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
  auto runDnnl = [&] {
    dnnl_sgemm(s.ta ? 'T' : 'N', s.tb ? 'T' : 'N', s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(),
               ldb, 0.0f, ref.data(), s.n);
  };
  runMlpc();
  runDnnl();
  double maxDiff = 0;
  for (size_t i = 0; i < c.size(); ++i)
    maxDiff = std::max(maxDiff, double(std::fabs(c[i] - ref[i])));
  const int mlpcCalls = callsPerBurst(runMlpc), dnnlCalls = callsPerBurst(runDnnl);
  std::vector<double> mlpcUs, dnnlUs;
  for (int t = 0; t < trials; ++t) {
    mlpcUs.push_back(burstMicros(runMlpc, mlpcCalls, evict));
    dnnlUs.push_back(burstMicros(runDnnl, dnnlCalls, evict));
  }
  return Result{*std::min_element(mlpcUs.begin(), mlpcUs.end()), median(mlpcUs),
                *std::min_element(dnnlUs.begin(), dnnlUs.end()), median(dnnlUs), maxDiff};
}

} // namespace

int main(int argc, char **argv) {
  int trials = 41, evictKb = 0;
  CompileOptions options;
  std::vector<Shape3> shapes;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "--trials" || arg == "--vector-bits" || arg == "--evict-kb") && i + 1 < argc) {
      int v = std::atoi(argv[++i]);
      if (v < 1) {
        std::fprintf(stderr, "matmul_bench: %s needs a positive number\n", arg.c_str());
        return 2;
      }
      if (arg == "--trials")
        trials = v;
      else if (arg == "--evict-kb")
        evictKb = v;
      else
        options.vectorBits = static_cast<unsigned>(v);
      continue;
    }
    if (arg == "--cpu" && i + 1 < argc) {
      options.cpu = argv[++i]; // e.g. x86-64-v3: AVX2 code (with DNNL_MAX_CPU_ISA=AVX2 for dnnl)
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      std::printf("usage: mlpc_matmul_bench [--trials N] [--vector-bits B] [--cpu NAME] [--evict-kb KB] [MxNxK[:AB]...]\n");
      return 0;
    }
    Shape3 s;
    if (!parseShape(argv[i], s)) {
      std::fprintf(stderr, "matmul_bench: bad shape '%s' (want MxNxK[:AB], A/B = N or T)\n",
                   argv[i]);
      return 2;
    }
    shapes.push_back(s);
  }
  if (shapes.empty())
    for (int64_t batch : {32, 256})
      for (Shape3 s : {Shape3{batch, 200, 30, false, false}, Shape3{batch, 27, 200, false, false},
                       Shape3{200, 27, batch, true, false}, Shape3{batch, 200, 27, false, true},
                       Shape3{30, 200, batch, true, false}, Shape3{batch, 30, 200, false, true}})
        shapes.push_back(s);
  omp_set_num_threads(1); // dnnl_sgemm on one thread, like mlpc here
  auto jit = JitEngine::create(options);
  if (!jit) {
    std::fprintf(stderr, "matmul_bench: %s\n", llvm::toString(jit.takeError()).c_str());
    return 1;
  }
  std::fprintf(stderr, "%-16s %9s %9s %9s %9s %8s %8s\n", "MxNxK:AB", "mlpc min", "dnnl min",
               "mlpc med", "dnnl med", "vs dnnl", "GFLOP/s");
  std::vector<float> evict(size_t(evictKb) * 256);
  int index = 0;
  for (const Shape3 &s : shapes) {
    auto r = benchShape(**jit, s, options, trials, index++, evict);
    if (!r) {
      std::fprintf(stderr, "matmul_bench: %s\n", llvm::toString(r.takeError()).c_str());
      return 1;
    }
    const double flops = 2.0 * s.m * s.n * s.k;
    std::fprintf(stderr, "%-16s %9.2f %9.2f %9.2f %9.2f %7.2fx %8.1f\n", s.text().c_str(),
                 r->mlpcMin, r->dnnlMin, r->mlpcMedian, r->dnnlMedian, r->dnnlMin / r->mlpcMin,
                 flops / r->mlpcMin / 1e3);
    std::printf("{\"shape\":\"%s\",\"m\":%lld,\"n\":%lld,\"k\":%lld,\"mlpc_us_min\":%.3f,"
                "\"dnnl_us_min\":%.3f,\"mlpc_us_median\":%.3f,\"dnnl_us_median\":%.3f,"
                "\"max_abs_diff\":%.3g,\"trials\":%d}\n",
                s.text().c_str(), (long long)s.m, (long long)s.n, (long long)s.k, r->mlpcMin,
                r->dnnlMin, r->mlpcMedian, r->dnnlMedian, r->maxDiff, trials);
  }
  return 0;
}
