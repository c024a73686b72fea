/* What bench/peak's two-CPU programs (cross_core.c, cross_core_writes.c,
 * barrier_cost.c) share: pinning the calling thread to a CPU, the first two
 * CPUs this process may run on, and reading --cpus A,B. Linux only (sched_setaffinity); each
 * program defines _GNU_SOURCE before its first include. */
#pragma once

#include <pthread.h>
#include <sched.h>
#include <stdio.h>

/* 0 when the calling thread now runs on `cpu` only. */
static inline int pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* The first two CPUs of this process's affinity mask into cpus[0..1]; 0 on
 * success, -1 with fewer than two. */
static inline int first_two_cpus(int cpus[2]) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0)
    return -1;
  int found = 0;
  for (int c = 0; c < CPU_SETSIZE && found < 2; ++c)
    if (CPU_ISSET(c, &set))
      cpus[found++] = c;
  return found == 2 ? 0 : -1;
}

/* --cpus A,B: 0 when `text` names two CPUs, into cpus[0..1]. */
static inline int parse_cpus(const char *text, int cpus[2]) {
  return sscanf(text, "%d,%d", &cpus[0], &cpus[1]) == 2 ? 0 : -1;
}
