/* Measured single-core f32 peak for the harness's %peak column (issue 6).
 *
 * Twelve independent chains of 16-lane multiply-adds: enough to cover the FMA
 * latency (4 cycles) times the number of FMA pipes (2 on Zen 4/5 and recent
 * Intel), so the loop is bound by FMA throughput, not latency. The result is
 * what one core can retire at the clock it actually runs at under load, which
 * is the honest denominator (the nominal "cpu MHz" in /proc/cpuinfo is not).
 * Build: cc -O2 -march=native bench/peak/peak_fma.c -o peak_fma
 * Prints one JSON line: {"peak_gflops": ..., "fma_lanes_per_insn": 16}.
 */
#include <stdio.h>
#include <time.h>

typedef float v16 __attribute__((vector_size(64)));
enum { CHAINS = 12 };

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static double run(long iterations) {
  v16 acc[CHAINS], mul, add;
  for (int i = 0; i < 16; ++i) {
    mul[i] = 0.999999f;
    add[i] = 1e-7f;
  }
  for (int c = 0; c < CHAINS; ++c)
    for (int i = 0; i < 16; ++i)
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
    for (int i = 0; i < 16; ++i)
      sink += acc[c][i];
  if (sink == 42.0f)
    puts("");
  return (double)iterations * CHAINS * 16 * 2 / elapsed / 1e9;
}

int main(void) {
  run(20000000); /* warm-up: let the clock ramp */
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    double g = run(50000000);
    if (g > best)
      best = g;
  }
  printf("{\"peak_gflops\": %.1f, \"chains\": %d, \"lanes\": 16}\n", best, CHAINS);
  return 0;
}
