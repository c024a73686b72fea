/* Measured single-core f32 peak for the harness's %peak column (issue 6).
 *
 * Twelve independent chains of multiply-adds at the widest vector width: enough to cover the FMA
 * latency (4 cycles) times the number of FMA pipes (2 on Zen 4/5 and recent
 * Intel), so the loop is bound by FMA throughput, not latency. The result is
 * what one core can retire at the clock it actually runs at under load, which
 * is the honest denominator (the nominal "cpu MHz" in /proc/cpuinfo is not).
 * Build: cc -O2 -march=native bench/peak/peak_fma.c -o peak_fma
 * Prints one JSON line: {"peak_gflops": ..., "chains": 12, "lanes": 16}.
 */
#include <stdio.h>
#include <time.h>

/* The widest vector the compiler targets, so the asm barrier below can keep
 * it in one register. */
#if defined(__AVX512F__)
#define LANES 16
#elif defined(__AVX__)
#define LANES 8
#else
#define LANES 4
#endif
typedef float vf __attribute__((vector_size(LANES * 4)));
enum { CHAINS = 12 };

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static double run(long iterations) {
  vf acc[CHAINS], mul, add;
  for (int i = 0; i < LANES; ++i) {
    mul[i] = 0.999999f;
    add[i] = 1e-7f;
  }
  for (int c = 0; c < CHAINS; ++c)
    for (int i = 0; i < LANES; ++i)
      acc[c][i] = (float)(c + i);
  double t0 = seconds();
  for (long it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int c = 0; c < CHAINS; ++c)
      acc[c] = acc[c] * mul + add;
    /* Keeps the compiler from collapsing iterations. */
    __asm__ volatile("" : "+x"(mul));
  }
  double elapsed = seconds() - t0;
  float sink = 0;
  for (int c = 0; c < CHAINS; ++c)
    for (int i = 0; i < LANES; ++i)
      sink += acc[c][i];
  if (sink == 42.0f)
    puts("");
  return (double)iterations * CHAINS * LANES * 2 / elapsed / 1e9;
}

int main(void) {
  run(20000000); /* warm-up: let the clock ramp */
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    double g = run(50000000);
    if (g > best)
      best = g;
  }
  printf("{\"peak_gflops\": %.1f, \"chains\": %d, \"lanes\": %d}\n", best, CHAINS, LANES);
  return 0;
}
