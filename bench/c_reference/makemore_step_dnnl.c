/*
 * makemore_step_dnnl.c -- the makemore-MLP training step written by hand in C
 * with its six matmuls done by oneDNN's dnnl_sgemm (issue 15): the "what a
 * careful C programmer with a tuned BLAS gets" reference for the harness.
 *
 * The step is the one of makemore_step.c (seed: makemore part 4, exercise 4):
 * embedding gather, embcat@W1 + b1, BatchNorm (batch mean, variance over B-1,
 * eps 1e-5), tanh, h@W2 + b2, cross-entropy; manual backward with the fused
 * cross-entropy gradient (softmax - onehot)/B and the fused BatchNorm
 * backward; scatter-add into dC; SGD on all 7 parameters; running BN stats.
 * Data, RNG, initialisation and parameters are makemore_step.c's, included
 * below with its train_step and main renamed, so both references run the
 * same batches from the same initial weights (and --check compares them).
 *
 * Differences from makemore_step.c, all in the reference's favour:
 *   - the six matmuls call dnnl_sgemm (row-major), one thread;
 *   - the weight updates are folded into the weight-gradient GEMMs:
 *     W2 += -lr * h^T @ dlogits and W1 += -lr * embcat^T @ dhprebn
 *     (beta = 1), after dh and dembcat have read the old weights;
 *   - built with -Ofast (so tanhf/expf vectorise through glibc's libmvec).
 *
 * Build (Debian: apt-get install -y libdnnl-dev; not a dependency of mlpc):
 *   gcc -Ofast -march=native -fopenmp -DHIDDEN=200 -DBATCH=32 \
 *       -o makemore_step_dnnl makemore_step_dnnl.c -ldnnl -lm
 *
 * Modes:
 *   default  benchmark: --data names.txt --steps N --warmup W --reps R;
 *            one JSON line {"impl":"c-dnnl","hidden":H,"batch":B,
 *            "us_per_step_median":..,"us_per_step_all":[..],"final_loss":..}
 *   --check  runs --steps steps (default 1000) with makemore_step.c's loops
 *            and again from the same state with this step; prints the
 *            largest loss difference and exits 1 if it exceeds 1e-3.
 */
#define _POSIX_C_SOURCE 199309L
#include <dnnl.h> /* before makemore_step.c, whose one-letter shape macros */
#include <omp.h>  /* would clash with these headers' parameter names */

#undef _POSIX_C_SOURCE
#define train_step train_step_loops
#define main makemore_step_loops_main
#include "makemore_step.c"
#undef main
#undef train_step

/* C = alpha * op(A) @ op(B) + beta * C, all row-major, leading dimension =
 * the row length of the stored matrix. */
static void gemm(char ta, char tb, int m, int n, int k, float alpha, const float *a, const float *b,
                 float beta, float *c) {
  dnnl_dim_t lda = ta == 'N' ? k : m, ldb = tb == 'N' ? n : k;
  if (dnnl_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, n) != dnnl_success) {
    fprintf(stderr, "dnnl_sgemm failed\n");
    exit(1);
  }
}

static float train_step_dnnl(const Split *tr, float lr) {
  for (int i = 0; i < B; i++) {
    uint32_t ix = rng_below((uint32_t)tr->n);
    for (int t = 0; t < T; t++)
      Xb[i][t] = tr->X[ix][t];
    Yb[i] = tr->Y[ix];
  }

  /* ---------------- forward ---------------- */
  for (int i = 0; i < B; i++)
    for (int t = 0; t < T; t++)
      for (int e = 0; e < E; e++)
        embcat[i][t * E + e] = Cemb[Xb[i][t]][e];
  for (int i = 0; i < B; i++)
    memcpy(hprebn[i], b1, sizeof b1);
  gemm('N', 'N', B, H, TE, 1.0f, &embcat[0][0], &W1[0][0], 1.0f, &hprebn[0][0]);

  for (int j = 0; j < H; j++)
    bnmean[j] = bnvar[j] = 0.0f;
  for (int i = 0; i < B; i++)
    for (int j = 0; j < H; j++)
      bnmean[j] += hprebn[i][j];
  for (int j = 0; j < H; j++)
    bnmean[j] *= 1.0f / B;
  for (int i = 0; i < B; i++)
    for (int j = 0; j < H; j++) {
      const float d = hprebn[i][j] - bnmean[j];
      bnvar[j] += d * d;
    }
  for (int j = 0; j < H; j++) {
    bnvar[j] *= 1.0f / (B - 1);
    bnvar_inv[j] = 1.0f / sqrtf(bnvar[j] + 1e-5f);
  }
  for (int i = 0; i < B; i++)
    for (int j = 0; j < H; j++) {
      const float r = (hprebn[i][j] - bnmean[j]) * bnvar_inv[j];
      bnraw[i][j] = r;
      hact[i][j] = tanhf(bngain[j] * r + bnbias[j]);
    }

  for (int i = 0; i < B; i++)
    memcpy(logits[i], b2, sizeof b2);
  gemm('N', 'N', B, V, H, 1.0f, &hact[0][0], &W2[0][0], 1.0f, &logits[0][0]);

  float loss = 0.0f;
  for (int i = 0; i < B; i++) {
    float m = logits[i][0];
    for (int j = 1; j < V; j++)
      m = logits[i][j] > m ? logits[i][j] : m;
    float s = 0.0f;
    for (int j = 0; j < V; j++) {
      const float c = expf(logits[i][j] - m);
      dlogits[i][j] = c;
      s += c;
    }
    loss += logf(s) - (logits[i][Yb[i]] - m);
    const float inv = 1.0f / (s * B);
    for (int j = 0; j < V; j++)
      dlogits[i][j] *= inv;
    dlogits[i][Yb[i]] -= 1.0f / B;
  }
  loss *= 1.0f / B;

  /* ---------------- backward (+ fused W updates) ---------------- */
  gemm('N', 'T', B, H, V, 1.0f, &dlogits[0][0], &W2[0][0], 0.0f, &dh[0][0]);
  gemm('T', 'N', H, V, B, -lr, &hact[0][0], &dlogits[0][0], 1.0f, &W2[0][0]);
  memset(db2, 0, sizeof db2);
  for (int i = 0; i < B; i++)
    for (int j = 0; j < V; j++)
      db2[j] += dlogits[i][j];

  memset(dbngain, 0, sizeof dbngain);
  memset(dbnbias, 0, sizeof dbnbias);
  for (int i = 0; i < B; i++)
    for (int j = 0; j < H; j++) {
      const float hv = hact[i][j];
      const float d = (1.0f - hv * hv) * dh[i][j];
      dhpreact[i][j] = d;
      dbngain[j] += bnraw[i][j] * d;
      dbnbias[j] += d;
    }
  memset(db1, 0, sizeof db1);
  for (int i = 0; i < B; i++)
    for (int j = 0; j < H; j++) {
      const float d = bngain[j] * bnvar_inv[j] * (1.0f / B) *
                      ((float)B * dhpreact[i][j] - dbnbias[j] -
                       ((float)B / (float)(B - 1)) * bnraw[i][j] * dbngain[j]);
      dhprebn[i][j] = d;
      db1[j] += d;
    }

  gemm('N', 'T', B, TE, H, 1.0f, &dhprebn[0][0], &W1[0][0], 0.0f, &dembcat[0][0]);
  gemm('T', 'N', TE, H, B, -lr, &embcat[0][0], &dhprebn[0][0], 1.0f, &W1[0][0]);

  memset(dC, 0, sizeof dC);
  for (int i = 0; i < B; i++)
    for (int t = 0; t < T; t++)
      for (int e = 0; e < E; e++)
        dC[Xb[i][t]][e] += dembcat[i][t * E + e];

  /* ---------------- SGD on the rest, running stats ---------------- */
  for (int i = 0; i < V; i++)
    for (int e = 0; e < E; e++)
      Cemb[i][e] -= lr * dC[i][e];
  for (int j = 0; j < H; j++) {
    b1[j] -= lr * db1[j];
    bngain[j] -= lr * dbngain[j];
    bnbias[j] -= lr * dbnbias[j];
    bnmean_running[j] = 0.999f * bnmean_running[j] + 0.001f * bnmean[j];
    bnvar_running[j] = 0.999f * bnvar_running[j] + 0.001f * bnvar[j];
  }
  for (int j = 0; j < V; j++)
    b2[j] -= lr * db2[j];
  return loss;
}

/* Everything a step reads and writes besides the activations. */
struct state {
  float Cemb[V][E], W1[TE][H], b1[H], W2[H][V], b2[V], bngain[H], bnbias[H];
  float bnmean_running[H], bnvar_running[H];
  uint64_t rng;
};

static void save(struct state *s) {
  memcpy(s->Cemb, Cemb, sizeof Cemb);
  memcpy(s->W1, W1, sizeof W1);
  memcpy(s->b1, b1, sizeof b1);
  memcpy(s->W2, W2, sizeof W2);
  memcpy(s->b2, b2, sizeof b2);
  memcpy(s->bngain, bngain, sizeof bngain);
  memcpy(s->bnbias, bnbias, sizeof bnbias);
  memcpy(s->bnmean_running, bnmean_running, sizeof bnmean_running);
  memcpy(s->bnvar_running, bnvar_running, sizeof bnvar_running);
  s->rng = rng_state;
}

static void restore(const struct state *s) {
  memcpy(Cemb, s->Cemb, sizeof Cemb);
  memcpy(W1, s->W1, sizeof W1);
  memcpy(b1, s->b1, sizeof b1);
  memcpy(W2, s->W2, sizeof W2);
  memcpy(b2, s->b2, sizeof b2);
  memcpy(bngain, s->bngain, sizeof bngain);
  memcpy(bnbias, s->bnbias, sizeof bnbias);
  memcpy(bnmean_running, s->bnmean_running, sizeof bnmean_running);
  memcpy(bnvar_running, s->bnvar_running, sizeof bnvar_running);
  rng_state = s->rng;
}

/* Same batches, same initial state: the loops' losses against dnnl's. */
static int check(const Split *tr, long steps) {
  static struct state s0;
  save(&s0);
  float *ref = malloc(sizeof(float) * (size_t)steps);
  for (long i = 0; i < steps; i++)
    ref[i] = train_step_loops(tr, 0.1f);
  restore(&s0);
  double worst = 0.0;
  float first = 0.0f, last = 0.0f;
  for (long i = 0; i < steps; i++) {
    last = train_step_dnnl(tr, 0.1f);
    if (i == 0)
      first = last;
    double d = fabs((double)last - ref[i]);
    worst = d > worst ? d : worst;
  }
  int ok = worst <= 1e-3;
  printf("{\"check\":\"%s\",\"hidden\":%d,\"batch\":%d,\"steps\":%ld,\"first_loss_loops\":%.6f,"
         "\"first_loss_dnnl\":%.6f,\"last_loss_loops\":%.6f,\"last_loss_dnnl\":%.6f,"
         "\"max_abs_loss_diff\":%.3g}\n",
         ok ? "ok" : "FAILED", H, B, steps, ref[0], first, ref[steps - 1], last, worst);
  free(ref);
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  const char *data = "data/names.txt";
  long steps = 1000, warmup = 200, reps = 5;
  int do_check = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--data") && i + 1 < argc)
      data = argv[++i];
    else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
      steps = atol(argv[++i]);
    else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
      warmup = atol(argv[++i]);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
      reps = atol(argv[++i]);
    else if (!strcmp(argv[i], "--check"))
      do_check = 1;
    else {
      fprintf(stderr, "usage: %s [--data names.txt] [--steps N --warmup W --reps R] [--check]\n",
              argv[0]);
      return 2;
    }
  }
  if (steps < 1 || reps < 1 || reps > 10000 || warmup < 0) {
    fprintf(stderr, "bad --steps/--reps/--warmup\n");
    return 2;
  }
  omp_set_num_threads(1); /* one thread, whatever OMP_NUM_THREADS says */

  Split tr, va, te;
  load_data(data, &tr, &va, &te);
  init_params();
  if (do_check)
    return check(&tr, steps);

  float loss = 0.0f;
  for (long i = 0; i < warmup; i++)
    loss = train_step_dnnl(&tr, 0.1f);
  double *us = malloc(sizeof(double) * (size_t)reps);
  double *sorted = malloc(sizeof(double) * (size_t)reps);
  for (long r = 0; r < reps; r++) {
    double t0 = now_s();
    for (long i = 0; i < steps; i++)
      loss = train_step_dnnl(&tr, 0.1f);
    us[r] = (now_s() - t0) * 1e6 / (double)steps;
    sorted[r] = us[r];
  }
  qsort(sorted, (size_t)reps, sizeof(double), cmp_double);
  double med = reps % 2 ? sorted[reps / 2] : 0.5 * (sorted[reps / 2 - 1] + sorted[reps / 2]);
  printf("{\"impl\":\"c-dnnl\",\"hidden\":%d,\"batch\":%d,\"us_per_step_median\":%.3f,"
         "\"us_per_step_min\":%.3f,\"us_per_step_all\":[",
         H, B, med, sorted[0]);
  for (long r = 0; r < reps; r++)
    printf("%s%.3f", r ? "," : "", us[r]);
  printf("],\"final_loss\":%.6f}\n", loss);
  return 0;
}
