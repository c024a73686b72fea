/* How long a cache line takes to move between two cores: two threads pinned
 * to CPUs A and B pass a counter back and forth through one line (each
 * waits for the other's increment, then stores its own), and each round's
 * time per hand-over is the one-way latency.
 *
 * Why the harness records it: what a second thread gains on a training step
 * is bound by this, not by the FLOPs (each change of split moves the
 * activations between the cores; each barrier moves a line twice). On a VM
 * it is not a constant: on the 2-core AMD EPYC (Zen 4) guest of bench/PERFORMANCE.md
 * it was ~30 ns for minutes (the two vCPUs on one CCD), then ~170 ns (on two
 * CCDs, through the I/O die), and back, and two-thread speedups followed.
 *
 *   cross_core [--cpus A,B] [--rounds R]
 * prints one JSON line: {"cpus": [A, B], "one_way_ns": [per round],
 * "median_ns": M}. Defaults: the first two CPUs this process may run on,
 * 10 rounds of 100000 hand-overs. Linux only (sched_setaffinity). */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "two_cpus.h"

enum { kPasses = 100000 };

static _Alignas(64) _Atomic long line;
static long g_rounds = 10;
static int g_cpus[2] = {-1, -1};

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Waits for odd values and answers with the next even one. */
static void *answer(void *arg) {
  (void)arg;
  if (pin_to_cpu(g_cpus[1]) != 0)
    return NULL;
  for (long i = 0; i < g_rounds * kPasses; ++i) {
    while (atomic_load_explicit(&line, memory_order_acquire) != 2 * i + 1)
      ;
    atomic_store_explicit(&line, 2 * i + 2, memory_order_release);
  }
  return NULL;
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--cpus") && i + 1 < argc &&
        parse_cpus(argv[++i], g_cpus) == 0 && g_cpus[0] != g_cpus[1])
      continue;
    if (!strcmp(argv[i], "--rounds") && i + 1 < argc && (g_rounds = atol(argv[++i])) > 0 &&
        g_rounds <= 1000)
      continue;
    fprintf(stderr, "usage: cross_core [--cpus A,B (two different CPUs)] [--rounds R (1-1000)]\n");
    return 2;
  }
  if (g_cpus[0] < 0 && first_two_cpus(g_cpus) != 0) {
    fprintf(stderr, "cross_core: needs two CPUs this process may run on\n");
    return 1;
  }
  /* Both CPUs checked here: the answering thread could not report it. */
  for (int k = 1; k >= 0; --k)
    if (pin_to_cpu(g_cpus[k]) != 0) {
      fprintf(stderr, "cross_core: cannot run on CPU %d\n", g_cpus[k]);
      return 1;
    }
  pthread_t other;
  if (pthread_create(&other, NULL, answer, NULL) != 0)
    return 1;
  double *ns = malloc(sizeof(double) * g_rounds), *sorted = malloc(sizeof(double) * g_rounds);
  if (!ns || !sorted)
    return 1;
  for (long r = 0; r < g_rounds; ++r) {
    double start = seconds();
    for (long i = r * kPasses; i < (r + 1) * kPasses; ++i) {
      atomic_store_explicit(&line, 2 * i + 1, memory_order_release);
      while (atomic_load_explicit(&line, memory_order_acquire) != 2 * i + 2)
        ;
    }
    ns[r] = (seconds() - start) / kPasses / 2 * 1e9; /* two hand-overs per pass */
  }
  pthread_join(other, NULL);
  memcpy(sorted, ns, sizeof(double) * g_rounds);
  qsort(sorted, g_rounds, sizeof(double), compare);
  printf("{\"cpus\": [%d, %d], \"one_way_ns\": [", g_cpus[0], g_cpus[1]);
  for (long r = 0; r < g_rounds; ++r)
    printf("%s%.1f", r ? ", " : "", ns[r]);
  printf("], \"median_ns\": %.1f}\n", sorted[g_rounds / 2]);
  free(ns);
  free(sorted);
  return 0;
}
