/* What a write costs when the other core has touched the lines: CPU A
 * writes a buffer after CPU B has
 *   read it      ("shared": the lines are in both caches, so every store
 *                 must first invalidate B's copy),
 *   written it   ("modified": the lines move from B's cache as a read does),
 *   not touched  ("own": A's cache has them; the reference),
 * and the same "shared" case with non-temporal stores ("streaming": no read
 * for ownership; the lines leave both caches). Each round: B's pass, then
 * A's timed pass; the median of the rounds, in microseconds per buffer.
 *
 * Why the harness records it: a training step split between threads has
 * this pattern wherever a thread reads what another wrote and the writer
 * writes it again in the next step (the weights every thread reads and the
 * SGD update writes by parts; activation rows where two nodes cut the batch
 * differently). On the 2-core Zen 5 guest of bench/PERFORMANCE.md, with the two vCPUs
 * ~225 ns apart, "shared" took 9.0-9.5 us per 64 KB against 2.0-2.3 for
 * "modified" and 1.1 for "own"; with them ~50 ns apart 2.2 / 1.1 / 1.1, and
 * the two-thread step's loss closes with it (bench/peak/cross_core.c
 * measures that distance).
 *
 *   cross_core_writes [--cpus A,B] [--kb K] [--rounds R]
 * prints one JSON line: {"cpus": [A, B], "kb": K, "us": {"own": ..,
 * "shared": .., "modified": .., "streaming": ..}}. Defaults: the first two
 * CPUs this process may run on, 64 KB, 101 rounds. x86-64 with SSE2
 * (streaming stores), Linux (sched_setaffinity). */
#define _GNU_SOURCE
#include <emmintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "two_cpus.h"

enum Mode { kOwn, kShared, kModified, kStreaming, kModes };
static const char *const kModeNames[kModes] = {"own", "shared", "modified", "streaming"};

static _Alignas(64) _Atomic long turn; /* even: B's pass is next; odd: A's */
static float *g_buf;
static long g_floats, g_rounds = 101;
static int g_cpus[2] = {-1, -1};
static enum Mode g_mode;
static volatile float g_sink;

static double micros(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}

/* CPU B: before each of A's passes, reads or writes the buffer (or not). */
static void *other(void *arg) {
  (void)arg;
  if (pin_to_cpu(g_cpus[1]) != 0)
    return NULL;
  for (long round = 0; round < g_rounds; ++round) {
    while (atomic_load_explicit(&turn, memory_order_acquire) != 2 * round)
      ;
    if (g_mode == kShared || g_mode == kStreaming) {
      __m128 sum = _mm_setzero_ps();
      for (long i = 0; i < g_floats; i += 4)
        sum = _mm_add_ps(sum, _mm_load_ps(g_buf + i));
      g_sink = _mm_cvtss_f32(sum);
    } else if (g_mode == kModified) {
      for (long i = 0; i < g_floats; i += 4)
        _mm_store_ps(g_buf + i, _mm_set1_ps((float)round));
    }
    atomic_store_explicit(&turn, 2 * round + 1, memory_order_release);
  }
  return NULL;
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The median time of CPU A's pass, or a negative value if B cannot run. */
static double measure(enum Mode mode, double *times) {
  g_mode = mode;
  atomic_store(&turn, 0);
  pthread_t thread;
  if (pthread_create(&thread, NULL, other, NULL) != 0)
    return -1;
  for (long round = 0; round < g_rounds; ++round) {
    while (atomic_load_explicit(&turn, memory_order_acquire) != 2 * round + 1)
      ;
    const __m128 value = _mm_set1_ps(round + 0.5f);
    const double start = micros();
    if (mode == kStreaming) {
      for (long i = 0; i < g_floats; i += 4)
        _mm_stream_ps(g_buf + i, value);
      _mm_sfence();
    } else {
      for (long i = 0; i < g_floats; i += 4)
        _mm_store_ps(g_buf + i, value);
    }
    times[round] = micros() - start;
    atomic_store_explicit(&turn, 2 * round + 2, memory_order_release);
  }
  pthread_join(thread, NULL);
  qsort(times, g_rounds, sizeof *times, compare);
  return times[g_rounds / 2];
}

int main(int argc, char **argv) {
  long kb = 64;
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--cpus") && i + 1 < argc) {
      if (parse_cpus(argv[++i], g_cpus) != 0) {
        fprintf(stderr, "cross_core_writes: --cpus wants A,B\n");
        return 2;
      }
    } else if (!strcmp(argv[i], "--kb") && i + 1 < argc) {
      kb = atol(argv[++i]);
    } else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
      g_rounds = atol(argv[++i]);
    } else {
      fprintf(stderr, "usage: cross_core_writes [--cpus A,B] [--kb K] [--rounds R]\n");
      return 2;
    }
  }
  if (kb < 1 || g_rounds < 1) {
    fprintf(stderr, "cross_core_writes: --kb and --rounds must be positive\n");
    return 2;
  }
  if (g_cpus[0] < 0 && first_two_cpus(g_cpus) != 0) {
    fprintf(stderr, "cross_core_writes: needs two CPUs\n");
    return 1;
  }
  g_floats = kb * 256;
  g_buf = aligned_alloc(64, (size_t)g_floats * sizeof(float));
  double *times = malloc((size_t)g_rounds * sizeof *times);
  if (!g_buf || !times || pin_to_cpu(g_cpus[0]) != 0) {
    fprintf(stderr, "cross_core_writes: cannot allocate or pin to CPU %d\n", g_cpus[0]);
    return 1;
  }
  memset(g_buf, 0, (size_t)g_floats * sizeof(float));
  double us[kModes];
  for (int mode = 0; mode < kModes; ++mode)
    if ((us[mode] = measure((enum Mode)mode, times)) < 0) {
      fprintf(stderr, "cross_core_writes: cannot run on CPU %d\n", g_cpus[1]);
      return 1;
    }
  printf("{\"cpus\": [%d, %d], \"kb\": %ld, \"us\": {", g_cpus[0], g_cpus[1], kb);
  for (int mode = 0; mode < kModes; ++mode)
    printf("%s\"%s\": %.2f", mode ? ", " : "", kModeNames[mode], us[mode]);
  printf("}}\n");
  return 0;
}
