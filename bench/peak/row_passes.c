/* The row split of a parallel step, without the compiler: 8 buffers of
 * [256, 1024] floats (1 MB each), 7 passes a step, pass k reading buffer k
 * and writing buffer k + 1 (6 FMAs per element, AVX-512), one thread taking
 * all rows or two pinned threads taking half the rows each, with a spin
 * barrier after every pass. Then the same with a few lines crossing per
 * pass, as the census of `mlpc bench --line-census` counts them in a real
 * step:
 *   --cross-write KB: each thread first writes KB of the OTHER thread's half
 *                     of buffer k + 1 (a write after the other wrote it);
 *   --cross-read KB:  each thread first reads KB of the other thread's half
 *                     of buffer k, which the other rewrites a pass later
 *                     (a read after write, then a write after read).
 * Prints the best step of 300 in microseconds (one JSON line) for 1 thread
 * and for 2. On the 2-core Zen 5 guest with its vCPUs ~200 ns apart
 * (2026-12-03, bench/PERFORMANCE.md "Threads"): 1 thread 128-167 us, 2 threads 71-85 us
 * (1.97-2.0x); 4 / 16 / 64 KB written across per pass +12 / +17 / +45 us,
 * read across +4 / +15 / +56 us.
 * It also prints the mean time of each thread's own-rows loop per pass
 * (`own_rows_us_per_pass`, the crossing accesses before it not included):
 * what lines crossing cost the work that follows them. Same guest, vCPUs
 * ~228 ns apart (2026-12-03 17:40 UTC): 10.3 / 11.6 us a pass per thread
 * with nothing crossing, 12.3 / 12.4 after 16 KB written across (one
 * thread, all rows: 23.2); a variant of [256, 128] floats with a tanh-like
 * loop (in /tmp, not kept): 2.2 -> 3.2 (4 KB) -> 3.6 us (16 KB), one thread
 * 4.2. The stores to lines the other core holds drain while the loop's own
 * stores wait behind them.
 *
 *   cc -O2 -mavx512f -mfma -pthread bench/peak/row_passes.c -o /tmp/row_passes
 *   /tmp/row_passes [--cross-write KB] [--cross-read KB] [--cpus A,B]
 * Timing only, never a test. x86 with AVX-512F, Linux. */
#define _GNU_SOURCE
#include "two_cpus.h"

#include <immintrin.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { kBuffers = 8, kSteps = 300, kFloats = 256 * 1024 };

static float *buffers[kBuffers];
static int threads, cpus[2];
static size_t crossWrite, crossRead; /* floats per pass */
static atomic_long arrived;
static double best[2], ownRowsUs[2];

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void barrier(long *passed) {
  long target = ++*passed * threads;
  atomic_fetch_add(&arrived, 1);
  while (atomic_load(&arrived) < target)
    _mm_pause();
}

static void *run(void *arg) {
  const long t = (long)arg;
  if (pin_to_cpu(cpus[t]) != 0)
    perror("pin");
  const size_t lo = (size_t)kFloats * t / threads, hi = (size_t)kFloats * (t + 1) / threads;
  const size_t other = (size_t)kFloats * (1 - t) / threads;
  long passed = 0;
  best[t] = 1e30;
  ownRowsUs[t] = 0;
  for (int step = 0; step < kSteps; ++step) {
    barrier(&passed);
    double start = now_us();
    for (int k = 0; k + 1 < kBuffers; ++k) {
      const float *in = buffers[k];
      float *out = buffers[k + 1];
      __m512 acc = _mm512_setzero_ps();
      for (size_t i = 0; threads > 1 && i < crossRead; i += 16)
        acc = _mm512_add_ps(acc, _mm512_load_ps(in + other + i));
      for (size_t i = 0; threads > 1 && i < crossWrite; i += 16)
        _mm512_store_ps(out + other + i, acc);
      const double ownStart = now_us();
      for (size_t i = lo; i < hi; i += 16) {
        __m512 x = _mm512_add_ps(_mm512_load_ps(in + i), acc), y = x;
        for (int j = 0; j < 6; ++j)
          y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(0.5f));
        _mm512_store_ps(out + i, y);
      }
      ownRowsUs[t] += now_us() - ownStart;
      barrier(&passed);
    }
    double us = now_us() - start;
    if (us < best[t])
      best[t] = us;
  }
  return NULL;
}

static double ownRowsOne, ownRowsTwo[2];

static double step_us(int n) {
  threads = n;
  atomic_store(&arrived, 0);
  pthread_t workers[2];
  for (long t = 0; t < n; ++t)
    pthread_create(&workers[t], NULL, run, (void *)t);
  for (int t = 0; t < n; ++t)
    pthread_join(workers[t], NULL);
  for (int t = 0; t < n; ++t) {
    const double perPass = ownRowsUs[t] / kSteps / (kBuffers - 1);
    if (n == 1)
      ownRowsOne = perPass;
    else
      ownRowsTwo[t] = perPass;
  }
  return best[0];
}

int main(int argc, char **argv) {
  if (first_two_cpus(cpus) != 0) {
    fprintf(stderr, "row_passes: needs two CPUs\n");
    return 1;
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--cross-write"))
      crossWrite = (size_t)atoi(argv[i + 1]) * 1024 / sizeof(float);
    else if (!strcmp(argv[i], "--cross-read"))
      crossRead = (size_t)atoi(argv[i + 1]) * 1024 / sizeof(float);
    else if (!strcmp(argv[i], "--cpus") && parse_cpus(argv[i + 1], cpus) == 0)
      continue;
    else {
      fprintf(stderr, "usage: row_passes [--cross-write KB] [--cross-read KB] [--cpus A,B]\n");
      return 2;
    }
  }
  if (crossWrite > kFloats / 2 || crossRead > kFloats / 2) {
    fprintf(stderr, "row_passes: at most %d KB across\n", kFloats / 2 * 4 / 1024);
    return 2;
  }
  for (int k = 0; k < kBuffers; ++k) {
    buffers[k] = aligned_alloc(64, kFloats * sizeof(float));
    for (size_t i = 0; i < kFloats; ++i)
      buffers[k][i] = 0.001f * (float)(i % 100);
  }
  double one = step_us(1), two = step_us(2);
  printf("{\"cpus\": [%d, %d], \"cross_write_kb\": %zu, \"cross_read_kb\": %zu, "
         "\"step_us\": {\"1\": %.1f, \"2\": %.1f}, \"speedup\": %.2f, "
         "\"own_rows_us_per_pass\": {\"1\": %.2f, \"2\": [%.2f, %.2f]}}\n",
         cpus[0], cpus[1], crossWrite * 4 / 1024, crossRead * 4 / 1024, one, two, one / two,
         ownRowsOne, ownRowsTwo[0], ownRowsTwo[1]);
  return 0;
}
