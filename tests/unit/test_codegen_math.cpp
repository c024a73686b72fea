// Error bounds of the generated exp / log / tanh / sigmoid (codegen/MathEmitter.h)
// against the f64 libm results, over dense sweeps, plus their special values.
#include "test_codegen_util.h"

#include <cstdio>
#include <limits>
#include <memory>

using namespace mlpc;
using namespace mlpc::testing;

namespace {

// Compiles y = op(x) for x : f32[n] once and evaluates it over any input set.
class UnaryKernel {
public:
  UnaryKernel(Op op, int64_t n, CompileOptions options = {}) : n_(n) {
    Graph g;
    ValueId x = param(g, "x", {n});
    g.setOutput("y", node(g, op, {x}));
    if (!options.cpu.empty()) { // an engine for that target (sharedJit is the host's)
      auto jit = JitEngine::create(options);
      if (!jit)
        FAIL(llvm::toString(jit.takeError()));
      jit_ = std::move(*jit);
    }
    auto fn = (jit_ ? *jit_ : sharedJit()).compile(g, uniqueName(), options);
    if (!fn)
      FAIL(llvm::toString(fn.takeError()));
    fn_ = *fn;
    ws_.reset(std::aligned_alloc(64, (fn_.workspaceBytes() + 63) / 64 * 64 + 64), std::free);
  }
  std::vector<float> operator()(std::vector<float> x) const {
    x.resize(n_, 0.0f);
    std::vector<float> y(n_);
    void *bindings[] = {x.data(), y.data()};
    fn_.run(bindings, 0, ws_.get());
    return y;
  }
  int64_t size() const { return n_; }

private:
  int64_t n_;
  std::unique_ptr<JitEngine> jit_; // owns fn_'s code when not sharedJit's
  CompiledFunction fn_;
  std::shared_ptr<void> ws_;
};

// Max relative error of `kernel` against `ref` over the inputs, evaluated in batches.
template <class Ref>
double maxRelativeError(const UnaryKernel &kernel, const std::vector<float> &inputs, Ref ref,
                        float *worstX) {
  double worst = 0;
  for (size_t start = 0; start < inputs.size(); start += kernel.size()) {
    std::vector<float> batch(inputs.begin() + start,
                             inputs.begin() +
                                 std::min(inputs.size(), start + size_t(kernel.size())));
    std::vector<float> y = kernel(batch);
    for (size_t i = 0; i < batch.size(); ++i) {
      double e = ref(double(batch[i]));
      double err = e == 0 ? std::fabs(y[i]) : std::fabs((double(y[i]) - e) / e);
      if (!(err <= worst)) {
        worst = err;
        *worstX = batch[i];
      }
    }
  }
  return worst;
}

std::vector<float> linspace(double lo, double hi, size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = float(lo + (hi - lo) * double(i) / double(n - 1));
  return v;
}

constexpr int64_t kBatch = 1 << 16;

} // namespace

TEST_CASE("codegen math: exp relative error", "[codegen][math]") {
  UnaryKernel k(Op::Exp, kBatch);
  float at = 0;
  // Every result in the normal f32 range: x in [-87.3, 88.7].
  double err = maxRelativeError(
      k, linspace(-87.33, 88.72, 1 << 22), [](double x) { return std::exp(x); }, &at);
  std::printf("exp:     max relative error %.3g at x = %.9g\n", err, at);
  CHECK(err < 1.5e-7);
  std::vector<float> special = k({0.0f, -0.0f, 1.0f, 89.0f, 1000.0f, -104.0f, -1000.0f, INFINITY,
                                  -INFINITY, NAN, -88.0f, -100.0f});
  CHECK(special[0] == 1.0f);
  CHECK(special[1] == 1.0f);
  CHECK(special[2] == Approx(std::exp(1.0)).epsilon(2e-7));
  CHECK(std::isinf(special[3]));
  CHECK(std::isinf(special[4]));
  CHECK(special[5] == 0.0f);
  CHECK(special[6] == 0.0f);
  CHECK(std::isinf(special[7]));
  CHECK(special[8] == 0.0f);
  CHECK(std::isnan(special[9]));
  CHECK(special[10] ==
        Approx(std::exp(-88.0)).epsilon(1e-5)); // subnormal result, correctly rounded
  CHECK(std::fabs(special[11] - std::exp(-100.0)) < 1.5e-45);
}

TEST_CASE("codegen math: log relative error", "[codegen][math]") {
  UnaryKernel k(Op::Log, kBatch);
  float at = 0;
  // Every 97th positive finite float (normal and subnormal), plus a dense sweep around 1.
  std::vector<float> xs;
  for (uint32_t bits = 1; bits < 0x7f800000u; bits += 97) {
    float x;
    std::memcpy(&x, &bits, 4);
    xs.push_back(x);
  }
  std::vector<float> near1 = linspace(0.5, 2.0, 1 << 21);
  xs.insert(xs.end(), near1.begin(), near1.end());
  double err = maxRelativeError(
      k, xs, [](double x) { return std::log(x); }, &at);
  std::printf("log:     max relative error %.3g at x = %.9g (%zu points)\n", err, at, xs.size());
  CHECK(err < 1.5e-7);
  std::vector<float> special =
      k({1.0f, 0.0f, -0.0f, -1.0f, INFINITY, NAN, std::numeric_limits<float>::denorm_min()});
  CHECK(special[0] == 0.0f);
  CHECK((std::isinf(special[1]) && special[1] < 0));
  CHECK((std::isinf(special[2]) && special[2] < 0));
  CHECK(std::isnan(special[3]));
  CHECK((std::isinf(special[4]) && special[4] > 0));
  CHECK(std::isnan(special[5]));
  CHECK(special[6] ==
        Approx(std::log(double(std::numeric_limits<float>::denorm_min()))).epsilon(1e-6));
}

TEST_CASE("codegen math: tanh relative error", "[codegen][math]") {
  // The host's code, and AVX2-only code (x86-64-v3: the division's
  // reciprocal estimate is vrcpps, 12 bits, instead of AVX-512's vrcp14ps).
  std::vector<std::string> cpus{""};
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    cpus.push_back("x86-64-v3");
#endif
  for (const std::string &cpu : cpus) {
    CompileOptions options;
    options.cpu = cpu;
    UnaryKernel kernel(Op::Tanh, kBatch, options);
    float at = 0;
    std::vector<float> xs = linspace(-12, 12, 1 << 22);
    std::vector<float> small = linspace(-1e-3, 1e-3, 1 << 18);
    xs.insert(xs.end(), small.begin(), small.end());
    double err = maxRelativeError(
        kernel, xs, [](double x) { return std::tanh(x); }, &at);
    std::printf("tanh (%s): max relative error %.3g at x = %.9g\n",
                cpu.empty() ? "host" : cpu.c_str(), err, at);
    CHECK(err < 3.5e-7); // measured 2.9e-7 (host, AVX-512), 3.25e-7 (x86-64-v3)
  }
  UnaryKernel k(Op::Tanh, kBatch);
  std::vector<float> special = k({0.0f, 100.0f, -100.0f, INFINITY, -INFINITY, NAN, 1e-30f});
  CHECK(special[0] == 0.0f);
  CHECK(special[1] == 1.0f);
  CHECK(special[2] == -1.0f);
  CHECK(special[3] == 1.0f);
  CHECK(special[4] == -1.0f);
  CHECK(std::isnan(special[5]));
  CHECK(special[6] == 1e-30f);
}

TEST_CASE("codegen math: sigmoid relative error", "[codegen][math]") {
  UnaryKernel k(Op::Sigmoid, kBatch);
  float at = 0;
  double err = maxRelativeError(
      k, linspace(-87, 30, 1 << 22), [](double x) { return 1 / (1 + std::exp(-x)); }, &at);
  std::printf("sigmoid: max relative error %.3g at x = %.9g\n", err, at);
  CHECK(err < 3e-7);
}
