/* What a barrier between two threads costs, for the two designs mlpc's
 * team has had (runtime/ThreadTeam.cpp: waitBarrier):
 *   counter        every thread adds to one shared counter; the last to
 *                  arrive resets it and advances a phase the others spin on
 *                  (the line goes to the last thread, then the phase to
 *                  each waiter: two crossings)
 *   dissemination  each thread marks a flag of its own and waits for the
 *                  other's (one round for two threads: one crossing)
 * Two threads pinned to CPUs A and B pass N barriers back to back, with no
 * work between them ("even") and with thread B doing ~100 dependent
 * multiply-adds more than thread A before each ("uneven": B always last).
 * Prints one JSON line of nanoseconds per barrier (wall time / N; "uneven"
 * includes B's extra work, the same in both designs).
 *
 *   barrier_cost [--cpus A,B] [--barriers N]
 * On the 2-core Zen 5 guest with the vCPUs ~220-228 ns apart (2026-12-03,
 * three runs): even 336-625 (counter) vs 287-318 (dissemination), uneven
 * 496-529 vs 343-416; ~58 ns apart: even 101-109 vs 66-71, uneven 202-206
 * vs 204-210. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "two_cpus.h"
#define PAUSE() _mm_pause()
#else
#define PAUSE() sched_yield()
#endif

static _Alignas(64) _Atomic unsigned long g_phase;
static _Alignas(64) _Atomic unsigned long g_arrived;
static _Alignas(64) _Atomic unsigned long g_flags[2][8]; /* a line each */
static long g_barriers = 200000;
static int g_cpus[2] = {-1, -1};
static int g_counter, g_extra;
static volatile double g_sink;

static double nanos(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static void counter_barrier(void) {
  unsigned long phase = atomic_load_explicit(&g_phase, memory_order_acquire);
  if (atomic_fetch_add_explicit(&g_arrived, 1, memory_order_acq_rel) + 1 == 2) {
    atomic_store_explicit(&g_arrived, 0, memory_order_relaxed);
    atomic_store_explicit(&g_phase, phase + 1, memory_order_release);
    return;
  }
  while (atomic_load_explicit(&g_phase, memory_order_acquire) == phase)
    PAUSE();
}

static void dissemination_barrier(int id, unsigned long number) {
  atomic_store_explicit(&g_flags[id][0], number, memory_order_release);
  while (atomic_load_explicit(&g_flags[1 - id][0], memory_order_acquire) < number)
    PAUSE();
}

static void *run(void *arg) {
  const int id = (int)(long)arg;
  if (pin_to_cpu(g_cpus[id]) != 0)
    return (void *)1;
  double x = 1;
  for (long i = 1; i <= g_barriers; ++i) {
    for (int w = 0; w < (id == 1 ? g_extra : 0); ++w)
      x = x * 1.0000001 + 1e-9;
    if (g_counter)
      counter_barrier();
    else
      dissemination_barrier(id, (unsigned long)i);
  }
  g_sink = x;
  return NULL;
}

/* ns per barrier, or a negative value if a thread could not be pinned. */
static double measure(int counter, int extra) {
  g_counter = counter;
  g_extra = extra;
  atomic_store(&g_phase, 0);
  atomic_store(&g_arrived, 0);
  atomic_store(&g_flags[0][0], 0);
  atomic_store(&g_flags[1][0], 0);
  pthread_t other;
  const double start = nanos();
  if (pthread_create(&other, NULL, run, (void *)1L) != 0)
    return -1;
  void *mine = run((void *)0L), *theirs = NULL;
  pthread_join(other, &theirs);
  if (mine || theirs)
    return -1;
  return (nanos() - start) / g_barriers;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--cpus") && i + 1 < argc) {
      if (parse_cpus(argv[++i], g_cpus) != 0) {
        fprintf(stderr, "barrier_cost: --cpus wants A,B\n");
        return 2;
      }
    } else if (!strcmp(argv[i], "--barriers") && i + 1 < argc) {
      g_barriers = atol(argv[++i]);
    } else {
      fprintf(stderr, "usage: barrier_cost [--cpus A,B] [--barriers N]\n");
      return 2;
    }
  }
  if (g_barriers < 1) {
    fprintf(stderr, "barrier_cost: --barriers must be positive\n");
    return 2;
  }
  if (g_cpus[0] < 0 && first_two_cpus(g_cpus) != 0) {
    fprintf(stderr, "barrier_cost: needs two CPUs\n");
    return 1;
  }
  double ns[2][2];
  for (int counter = 0; counter < 2; ++counter)
    for (int uneven = 0; uneven < 2; ++uneven)
      if ((ns[counter][uneven] = measure(counter, uneven ? 100 : 0)) < 0) {
        fprintf(stderr, "barrier_cost: cannot run on CPUs %d and %d\n", g_cpus[0], g_cpus[1]);
        return 1;
      }
  printf("{\"cpus\": [%d, %d], \"ns_per_barrier\": {\"counter\": {\"even\": %.1f, \"uneven\": %.1f}, "
         "\"dissemination\": {\"even\": %.1f, \"uneven\": %.1f}}}\n",
         g_cpus[0], g_cpus[1], ns[1][0], ns[1][1], ns[0][0], ns[0][1]);
  return 0;
}
