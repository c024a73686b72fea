/*
 * dnnl_matmul.c -- times oneDNN's dnnl_sgemm on given shapes, one thread, for
 * the harness's per-matmul-node table (issue 15: every matmul node of
 * `mlpc bench --profile` against dnnl_sgemm on the same shape).
 *
 * A shape is MxNxK[:AB], A and B each N or T: C[M,N] = op(A) @ op(B), all
 * row-major, op(A) = A^T when A is stored transposed ([K,M]), likewise B
 * ([N,K]); the default is NN. alpha = 1, beta = 0. The operands are small and
 * reused, so they stay in cache, as in a training step.
 *
 * Build (Debian: apt-get install -y libdnnl-dev; not a dependency of mlpc):
 *   gcc -O2 -fopenmp bench/dnnl_matmul.c -o dnnl_matmul -ldnnl
 * Usage: dnnl_matmul [--reps R] SHAPE...      e.g. dnnl_matmul 32x200x30 200x27x32:TN
 * Prints one JSON line per shape:
 *   {"m":32,"n":200,"k":30,"trans":"NN","us_median":..,"us_min":..,"gflops":..}
 * us_median: median over R (default 11) reps of the mean time of one call in
 * a rep of ~20 ms (after a warm-up that also triggers oneDNN's kernel JIT).
 */
#define _POSIX_C_SOURCE 199309L
#include <dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

struct shape {
  long m, n, k;
  char ta, tb;
};

static int parse_shape(const char *s, struct shape *sh) {
  char t[3] = "NN";
  int used = 0;
  if (sscanf(s, "%ldx%ldx%ld%n", &sh->m, &sh->n, &sh->k, &used) != 3 || sh->m < 1 || sh->n < 1 ||
      sh->k < 1)
    return 0;
  if (s[used] == ':') {
    if (strlen(s + used + 1) != 2)
      return 0;
    memcpy(t, s + used + 1, 2);
  } else if (s[used] != 0) {
    return 0;
  }
  for (int i = 0; i < 2; i++)
    if (t[i] != 'N' && t[i] != 'T')
      return 0;
  sh->ta = t[0];
  sh->tb = t[1];
  return 1;
}

static void call(const struct shape *s, const float *a, const float *b, float *c) {
  dnnl_dim_t lda = s->ta == 'N' ? s->k : s->m, ldb = s->tb == 'N' ? s->n : s->k;
  if (dnnl_sgemm(s->ta, s->tb, s->m, s->n, s->k, 1.0f, a, lda, b, ldb, 0.0f, c, s->n) !=
      dnnl_success) {
    fprintf(stderr, "dnnl_sgemm failed\n");
    exit(1);
  }
}

static void bench(const struct shape *s, int reps) {
  float *a = malloc(sizeof(float) * (size_t)(s->m * s->k));
  float *b = malloc(sizeof(float) * (size_t)(s->k * s->n));
  float *c = malloc(sizeof(float) * (size_t)(s->m * s->n));
  for (long i = 0; i < s->m * s->k; i++)
    a[i] = (float)((i * 7919) % 101) / 101.0f - 0.5f;
  for (long i = 0; i < s->k * s->n; i++)
    b[i] = (float)((i * 104729) % 103) / 103.0f - 0.5f;
  for (int i = 0; i < 10; i++) /* warm-up: oneDNN JITs its kernels on the first call */
    call(s, a, b, c);
  long calls = 1; /* calls per rep for ~20 ms */
  for (;;) {
    double t0 = now_s();
    for (long i = 0; i < calls; i++)
      call(s, a, b, c);
    double dt = now_s() - t0;
    if (dt > 0.02)
      break;
    calls = dt < 1e-4 ? calls * 16 : (long)(calls * 0.025 / dt) + 1;
  }
  double *us = malloc(sizeof(double) * (size_t)reps);
  for (int r = 0; r < reps; r++) {
    double t0 = now_s();
    for (long i = 0; i < calls; i++)
      call(s, a, b, c);
    us[r] = (now_s() - t0) * 1e6 / (double)calls;
  }
  qsort(us, (size_t)reps, sizeof(double), cmp_double);
  double med = reps % 2 ? us[reps / 2] : 0.5 * (us[reps / 2 - 1] + us[reps / 2]);
  printf("{\"m\":%ld,\"n\":%ld,\"k\":%ld,\"trans\":\"%c%c\",\"us_median\":%.3f,\"us_min\":%.3f,"
         "\"gflops\":%.1f,\"calls_per_rep\":%ld,\"reps\":%d}\n",
         s->m, s->n, s->k, s->ta, s->tb, med, us[0], 2.0 * s->m * s->n * s->k / med / 1e3, calls,
         reps);
  fflush(stdout);
  free(us);
  free(a);
  free(b);
  free(c);
}

int main(int argc, char **argv) {
  int reps = 11, first = 1;
  if (argc > 2 && !strcmp(argv[1], "--reps")) {
    reps = atoi(argv[2]);
    first = 3;
  }
  if (reps < 1 || first >= argc) {
    fprintf(stderr, "usage: %s [--reps R] MxNxK[:AB]...   (A, B: N or T)\n", argv[0]);
    return 2;
  }
  omp_set_num_threads(1);
  for (int i = first; i < argc; i++) {
    struct shape s;
    if (!parse_shape(argv[i], &s)) {
      fprintf(stderr, "bad shape '%s' (want MxNxK or MxNxK:AB with A, B in {N, T})\n", argv[i]);
      return 2;
    }
    bench(&s, reps);
  }
  return 0;
}
