// bench/peak/row_passes.c's step run by mlpc's own ThreadTeam instead of two
// pinned pthreads: the same 7 passes over 8 buffers of [256, COLS] floats
// (each pass a tanh-like rational function per element, AVX-512), split by
// rows with ThreadContext::shareBegin / shareEnd, the team's barrier between
// passes, ThreadTeam::run once a step, the caller's thread being thread 0.
// If this scales like row_passes.c while mlpc's compiled step does not, the
// difference is in the compiled step, not in the team (PERFORMANCE.md, "Vector
// width and threads", session of 2026-12-03 from 17:07 UTC).
//
//   cmake --build build --target mlpc_team_passes
//   build/bench/mlpc_team_passes [--cols N] [--steps S]
// Prints one JSON line: microseconds a step (mean over S, after a warm-up)
// for one thread (a plain loop) and for the team of 2, and each thread's
// own-rows loop per pass. Timing only, never a test. x86 with AVX-512F.
#include "runtime/ThreadTeam.h"

#include <immintrin.h>

// GCC 12's _mm512_min_ps passes _mm512_undefined_ps() as its unused
// pass-through, which -Wmaybe-uninitialized flags once inlined.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {
using Clock = std::chrono::steady_clock;
constexpr int kBuffers = 8;

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

__attribute__((target("avx512f,avx512dq,fma"))) void pass(const float *in, float *out, int64_t lo,
                                                          int64_t hi) {
  for (int64_t i = lo; i < hi; i += 16) {
    __m512 x = _mm512_load_ps(in + i);
    __m512 c = _mm512_min_ps(_mm512_andnot_ps(_mm512_set1_ps(-0.0f), x), _mm512_set1_ps(9.5f));
    __m512 t = _mm512_mul_ps(c, c);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1e-6f), t, _mm512_set1_ps(2e-4f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.01f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.2f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.f));
    __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(2e-5f), t, _mm512_set1_ps(3e-3f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(0.05f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(0.5f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(1.f));
    __m512 r = _mm512_min_ps(_mm512_div_ps(_mm512_mul_ps(c, p), q), _mm512_set1_ps(1.f));
    _mm512_store_ps(out + i, _mm512_or_ps(r, _mm512_and_ps(x, _mm512_set1_ps(-0.0f))));
  }
}

struct Run {
  std::vector<float *> buffers;
  int64_t rows = 256, cols = 128;
  double ownSeconds[2] = {0, 0};

  // Thread `index`'s rows of every pass: its share of the rows, each cut
  // rounded to the nearest row as the generated code's loopShared does.
  void step(const mlpc::ThreadContext &c) {
    const int64_t unit = mlpc::ThreadContext::kShareUnit;
    auto cut = [&](int64_t at) { return (rows * at + unit / 2) / unit * cols; };
    const int64_t lo = cut(c.shareBegin), hi = cut(c.shareEnd);
    for (int k = 0; k + 1 < kBuffers; ++k) {
      auto start = Clock::now();
      pass(buffers[k], buffers[k + 1], lo, hi);
      ownSeconds[c.index] += secondsSince(start);
      if (c.count > 1)
        c.barrier(c.team);
    }
  }
};
} // namespace

int main(int argc, char **argv) {
  if (!__builtin_cpu_supports("avx512f")) {
    std::fprintf(stderr, "team_passes: needs AVX-512F\n");
    return 1;
  }
  Run run;
  int steps = 3000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--cols"))
      run.cols = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--steps"))
      steps = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: team_passes [--cols N] [--steps S]\n");
      return 2;
    }
  }
  if (run.cols < 16 || run.cols % 16 || steps < 1) {
    std::fprintf(stderr, "team_passes: --cols a multiple of 16, --steps positive\n");
    return 2;
  }
  for (int k = 0; k < kBuffers; ++k) {
    auto *b = static_cast<float *>(std::aligned_alloc(64, run.rows * run.cols * sizeof(float)));
    for (int64_t i = 0; i < run.rows * run.cols; ++i)
      b[i] = 0.001f * float(i % 100);
    run.buffers.push_back(b);
  }
  // One thread: the whole rows, a plain loop.
  const mlpc::ThreadContext alone{0,      1, nullptr, nullptr, 0, mlpc::ThreadContext::kShareUnit,
                                  nullptr};
  for (int s = 0; s < steps / 4; ++s)
    run.step(alone);
  run.ownSeconds[0] = 0;
  auto start = Clock::now();
  for (int s = 0; s < steps; ++s)
    run.step(alone);
  const double one = secondsSince(start) / steps * 1e6;
  const double ownOne = run.ownSeconds[0] / steps / (kBuffers - 1) * 1e6;
  // The team of 2, equal parts.
  mlpc::ThreadTeam team(2);
  team.fixShares({1.0, 1.0});
  auto job = [&](const mlpc::ThreadContext &c) { run.step(c); };
  for (int s = 0; s < steps / 4; ++s)
    team.run(job);
  run.ownSeconds[0] = run.ownSeconds[1] = 0;
  start = Clock::now();
  for (int s = 0; s < steps; ++s)
    team.run(job);
  const double two = secondsSince(start) / steps * 1e6;
  std::printf("{\"rows\": %lld, \"cols\": %lld, \"step_us\": {\"1\": %.2f, \"2\": %.2f}, "
              "\"speedup\": %.2f, \"own_rows_us_per_pass\": {\"1\": %.3f, \"2\": [%.3f, %.3f]}}\n",
              (long long)run.rows, (long long)run.cols, one, two, one / two, ownOne,
              run.ownSeconds[0] / steps / (kBuffers - 1) * 1e6,
              run.ownSeconds[1] / steps / (kBuffers - 1) * 1e6);
  for (float *b : run.buffers)
    std::free(b);
  return 0;
}
