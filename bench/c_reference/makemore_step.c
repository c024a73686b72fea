/*
 * makemore_step.c -- hand-written C99 reference for the makemore-MLP training
 * step (seed: makemore part 4, exercise 4), used to benchmark mlpc against.
 *
 * Plain loops, float32 everywhere, i-k-j order for the A@B matmuls (and the
 * natural contiguous dot-product form for A@B^T), no intrinsics, no threads.
 * Shapes are compile-time constants so the compiler can specialise on them,
 * as a compiler with static shapes would:
 *
 *   gcc -O3 -march=native -std=c99 -DHIDDEN=200 -DBATCH=32 \
 *       -o makemore_step makemore_step.c -lm
 *
 * (deliberately no -ffast-math: the step must keep IEEE semantics; this also
 * means tanhf/expf are scalar libm calls.)
 *
 * Step:  emb = C[Xb] -> embcat (B, T*E) -> hprebn = embcat@W1 + b1
 *        BatchNorm, training mode: batch mean, Bessel-corrected variance
 *        (divide by B-1), eps 1e-5
 *        h = tanh(hpreact) -> logits = h@W2 + b2 -> loss = cross_entropy
 *        backward: fused CE grad (softmax - onehot)/B, fused BN backward,
 *        scatter-add into dC; SGD p -= lr*grad on all 7 params;
 *        BN running stats: running = 0.999*running + 0.001*batch stat.
 *
 * Data: names.txt is read from --data PATH.  The word list is shuffled with a
 * Fisher-Yates shuffle driven by xorshift64* seeded with 42 (NOT the same
 * permutation as Python's random.seed(42) shuffle, but the same procedure:
 * shuffle, then 80/10/10 split into train/val/test, contexts of 3 chars with
 * '.' = 0 as padding/terminator, 'a'..'z' = 1..26).
 *
 * RNG: xorshift64* (seed 2147483647) for the init (Box-Muller normals) and for
 * minibatch sampling (uniform index via 64-bit multiply-high).
 *
 * Modes:
 *   default   benchmark: --steps N --warmup W --reps R, prints one JSON line
 *             {"impl":"c-O3","hidden":H,"batch":B,"us_per_step_median":..,
 *              "us_per_step_all":[..],"final_loss":..}
 *   --train   full seed schedule: 200k steps, lr 0.1 then 0.01 after 100k,
 *             then BN calibrated over the train split (mean, unbiased var),
 *             prints train/val loss (and val loss with the running stats).
 */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef HIDDEN
#define HIDDEN 200
#endif
#ifndef BATCH
#define BATCH 32
#endif

#define V 27
#define T 3
#define E 10
#define TE (T * E)
#define H HIDDEN
#define B BATCH

/* ------------------------------------------------------------------ RNG */

static uint64_t rng_state = 2147483647ULL;

static uint64_t rng_next(void) {
  uint64_t x = rng_state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng_state = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* uniform in [0, 1) with 53 bits */
static double rng_uniform(void) {
  return (rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

/* uniform integer in [0, n) */
static uint32_t rng_below(uint32_t n) {
  return (uint32_t)(((rng_next() >> 32) * (uint64_t)n) >> 32);
}

static float rng_normal(void) {
  static int have = 0;
  static double spare;
  if (have) {
    have = 0;
    return (float)spare;
  }
  double u1, u2;
  do {
    u1 = rng_uniform();
  } while (u1 <= 0.0);
  u2 = rng_uniform();
  double r = sqrt(-2.0 * log(u1));
  double th = 6.283185307179586 * u2;
  spare = r * sin(th);
  have = 1;
  return (float)(r * cos(th));
}

/* ------------------------------------------------------------------ data */

typedef struct {
  int32_t (*X)[T];
  int32_t *Y;
  int n;
} Split;

static int stoi(char c) {
  return c == '.' ? 0 : (c - 'a' + 1);
}

static void build_split(char **words, int nw, Split *s) {
  int n = 0;
  for (int w = 0; w < nw; w++)
    n += (int)strlen(words[w]) + 1;
  s->n = n;
  s->X = malloc(sizeof(int32_t[T]) * (size_t)n);
  s->Y = malloc(sizeof(int32_t) * (size_t)n);
  int k = 0;
  for (int w = 0; w < nw; w++) {
    int ctx[T] = {0};
    const char *p = words[w];
    size_t len = strlen(p);
    for (size_t i = 0; i <= len; i++) {
      int ix = i < len ? stoi(p[i]) : 0;
      for (int t = 0; t < T; t++)
        s->X[k][t] = ctx[t];
      s->Y[k] = ix;
      for (int t = 0; t < T - 1; t++)
        ctx[t] = ctx[t + 1];
      ctx[T - 1] = ix;
      k++;
    }
  }
}

static void load_data(const char *path, Split *tr, Split *va, Split *te) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    exit(1);
  }
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)sz + 1);
  if (fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
    perror("fread");
    exit(1);
  }
  buf[sz] = 0;
  fclose(f);

  int cap = 1024, nw = 0;
  char **words = malloc(sizeof(char *) * (size_t)cap);
  char *p = buf;
  while (*p) {
    char *e = p;
    while (*e && *e != '\n' && *e != '\r')
      e++;
    int more = *e != 0;
    *e = 0;
    if (e > p) {
      for (char *q = p; q < e; q++) {
        if (*q < 'a' || *q > 'z') {
          fprintf(stderr, "unexpected char '%c' in %s\n", *q, path);
          exit(1);
        }
      }
      if (nw == cap) {
        cap *= 2;
        words = realloc(words, sizeof(char *) * (size_t)cap);
      }
      words[nw++] = p;
    }
    p = more ? e + 1 : e;
  }

  /* Fisher-Yates with xorshift64* seeded 42 */
  uint64_t saved = rng_state;
  rng_state = 42;
  for (int i = nw - 1; i > 0; i--) {
    int j = (int)rng_below((uint32_t)i + 1);
    char *t = words[i];
    words[i] = words[j];
    words[j] = t;
  }
  rng_state = saved;

  int n1 = (int)(0.8 * nw), n2 = (int)(0.9 * nw);
  build_split(words, n1, tr);
  build_split(words + n1, n2 - n1, va);
  build_split(words + n2, nw - n2, te);
  free(words); /* buf stays referenced by nothing afterwards */
  free(buf);
}

/* ------------------------------------------------------------------ model */

static float Cemb[V][E], W1[TE][H], b1[H], W2[H][V], b2[V], bngain[H], bnbias[H];
static float bnmean_running[H], bnvar_running[H];

/* gradients */
static float dC[V][E], dW1[TE][H], db1[H], dW2[H][V], db2[V], dbngain[H], dbnbias[H];

/* activations of one step */
static int32_t Xb[B][T], Yb[B];
static float embcat[B][TE], hprebn[B][H], bnmean[H], bnvar[H], bnvar_inv[H];
static float bnraw[B][H], hact[B][H], logits[B][V];
static float dlogits[B][V], dh[B][H], dhpreact[B][H], dhprebn[B][H], dembcat[B][TE];

static void init_params(void) {
  rng_state = 2147483647ULL;
  for (int i = 0; i < V; i++)
    for (int j = 0; j < E; j++)
      Cemb[i][j] = rng_normal();
  const float s1 = (5.0f / 3.0f) / sqrtf((float)TE);
  for (int i = 0; i < TE; i++)
    for (int j = 0; j < H; j++)
      W1[i][j] = rng_normal() * s1;
  for (int j = 0; j < H; j++)
    b1[j] = rng_normal() * 0.1f;
  for (int i = 0; i < H; i++)
    for (int j = 0; j < V; j++)
      W2[i][j] = rng_normal() * 0.1f;
  for (int j = 0; j < V; j++)
    b2[j] = rng_normal() * 0.1f;
  for (int j = 0; j < H; j++)
    bngain[j] = 1.0f + rng_normal() * 0.1f;
  for (int j = 0; j < H; j++)
    bnbias[j] = rng_normal() * 0.1f;
  for (int j = 0; j < H; j++) {
    bnmean_running[j] = 0.0f;
    bnvar_running[j] = 1.0f;
  }
}

/* One training step on a freshly sampled minibatch; returns the loss. */
static float train_step(const Split *tr, float lr) {
  /* minibatch */
  for (int i = 0; i < B; i++) {
    uint32_t ix = rng_below((uint32_t)tr->n);
    for (int t = 0; t < T; t++)
      Xb[i][t] = tr->X[ix][t];
    Yb[i] = tr->Y[ix];
  }

  /* ---------------- forward ---------------- */
  /* embedding gather: embcat[i] = concat(C[Xb[i][0]], ..., C[Xb[i][T-1]]) */
  for (int i = 0; i < B; i++)
    for (int t = 0; t < T; t++)
      for (int e = 0; e < E; e++)
        embcat[i][t * E + e] = Cemb[Xb[i][t]][e];

  /* hprebn = embcat @ W1 + b1   (i-k-j) */
  for (int i = 0; i < B; i++) {
    for (int j = 0; j < H; j++)
      hprebn[i][j] = b1[j];
    for (int k = 0; k < TE; k++) {
      const float a = embcat[i][k];
      for (int j = 0; j < H; j++)
        hprebn[i][j] += a * W1[k][j];
    }
  }

  /* batch statistics */
  for (int j = 0; j < H; j++)
    bnmean[j] = 0.0f;
  for (int i = 0; i < B; i++)
    for (int j = 0; j < H; j++)
      bnmean[j] += hprebn[i][j];
  for (int j = 0; j < H; j++)
    bnmean[j] *= 1.0f / B;
  for (int j = 0; j < H; j++)
    bnvar[j] = 0.0f;
  for (int i = 0; i < B; i++)
    for (int j = 0; j < H; j++) {
      const float d = hprebn[i][j] - bnmean[j];
      bnvar[j] += d * d;
    }
  for (int j = 0; j < H; j++) {
    bnvar[j] *= 1.0f / (B - 1);
    bnvar_inv[j] = 1.0f / sqrtf(bnvar[j] + 1e-5f);
  }

  /* normalise, scale/shift, tanh */
  for (int i = 0; i < B; i++)
    for (int j = 0; j < H; j++) {
      const float r = (hprebn[i][j] - bnmean[j]) * bnvar_inv[j];
      bnraw[i][j] = r;
      hact[i][j] = tanhf(bngain[j] * r + bnbias[j]);
    }

  /* logits = h @ W2 + b2   (i-k-j) */
  for (int i = 0; i < B; i++) {
    for (int j = 0; j < V; j++)
      logits[i][j] = b2[j];
    for (int k = 0; k < H; k++) {
      const float a = hact[i][k];
      for (int j = 0; j < V; j++)
        logits[i][j] += a * W2[k][j];
    }
  }

  /* cross entropy + fused gradient dlogits = (softmax - onehot) / B */
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

  /* ---------------- backward ---------------- */
  /* dh = dlogits @ W2^T   (dot products over contiguous rows) */
  for (int i = 0; i < B; i++)
    for (int k = 0; k < H; k++) {
      float s = 0.0f;
      for (int j = 0; j < V; j++)
        s += dlogits[i][j] * W2[k][j];
      dh[i][k] = s;
    }
  /* dW2 = h^T @ dlogits   (i-k-j), db2 = sum_i dlogits */
  memset(dW2, 0, sizeof dW2);
  memset(db2, 0, sizeof db2);
  for (int i = 0; i < B; i++) {
    for (int k = 0; k < H; k++) {
      const float a = hact[i][k];
      for (int j = 0; j < V; j++)
        dW2[k][j] += a * dlogits[i][j];
    }
    for (int j = 0; j < V; j++)
      db2[j] += dlogits[i][j];
  }

  /* tanh backward, BN param grads */
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

  /* fused BN backward:
   * dhprebn = bngain*bnvar_inv/B * (B*dhpreact - sum_i dhpreact
   *                                 - B/(B-1) * bnraw * sum_i(dhpreact*bnraw)) */
  memset(db1, 0, sizeof db1);
  for (int i = 0; i < B; i++)
    for (int j = 0; j < H; j++) {
      const float d = bngain[j] * bnvar_inv[j] * (1.0f / B) *
                      ((float)B * dhpreact[i][j] - dbnbias[j] -
                       ((float)B / (float)(B - 1)) * bnraw[i][j] * dbngain[j]);
      dhprebn[i][j] = d;
      db1[j] += d;
    }

  /* dembcat = dhprebn @ W1^T   (dot products over contiguous rows) */
  for (int i = 0; i < B; i++)
    for (int k = 0; k < TE; k++) {
      float s = 0.0f;
      for (int j = 0; j < H; j++)
        s += dhprebn[i][j] * W1[k][j];
      dembcat[i][k] = s;
    }
  /* dW1 = embcat^T @ dhprebn   (i-k-j) */
  memset(dW1, 0, sizeof dW1);
  for (int i = 0; i < B; i++)
    for (int k = 0; k < TE; k++) {
      const float a = embcat[i][k];
      for (int j = 0; j < H; j++)
        dW1[k][j] += a * dhprebn[i][j];
    }

  /* embedding scatter-add */
  memset(dC, 0, sizeof dC);
  for (int i = 0; i < B; i++)
    for (int t = 0; t < T; t++)
      for (int e = 0; e < E; e++)
        dC[Xb[i][t]][e] += dembcat[i][t * E + e];

  /* ---------------- SGD update ---------------- */
  for (int i = 0; i < V; i++)
    for (int e = 0; e < E; e++)
      Cemb[i][e] -= lr * dC[i][e];
  for (int k = 0; k < TE; k++)
    for (int j = 0; j < H; j++)
      W1[k][j] -= lr * dW1[k][j];
  for (int j = 0; j < H; j++)
    b1[j] -= lr * db1[j];
  for (int k = 0; k < H; k++)
    for (int j = 0; j < V; j++)
      W2[k][j] -= lr * dW2[k][j];
  for (int j = 0; j < V; j++)
    b2[j] -= lr * db2[j];
  for (int j = 0; j < H; j++)
    bngain[j] -= lr * dbngain[j];
  for (int j = 0; j < H; j++)
    bnbias[j] -= lr * dbnbias[j];

  /* BN running statistics, momentum 0.001 */
  for (int j = 0; j < H; j++) {
    bnmean_running[j] = 0.999f * bnmean_running[j] + 0.001f * bnmean[j];
    bnvar_running[j] = 0.999f * bnvar_running[j] + 0.001f * bnvar[j];
  }
  return loss;
}

/* ------------------------------------------------------------------ eval */

#define CHUNK 1024

/* hprebn for rows [r0, r0+n) of a split into out[n][H] */
static void eval_hprebn(const Split *s, int r0, int n, float (*out)[H]) {
  for (int i = 0; i < n; i++) {
    float x[TE];
    for (int t = 0; t < T; t++)
      for (int e = 0; e < E; e++)
        x[t * E + e] = Cemb[s->X[r0 + i][t]][e];
    for (int j = 0; j < H; j++)
      out[i][j] = b1[j];
    for (int k = 0; k < TE; k++)
      for (int j = 0; j < H; j++)
        out[i][j] += x[k] * W1[k][j];
  }
}

/* BN calibration over a whole split: mean and unbiased variance (double acc). */
static void calibrate(const Split *s, float *mean, float *var) {
  static float buf[CHUNK][H];
  double *acc = calloc(H, sizeof(double));
  for (int r0 = 0; r0 < s->n; r0 += CHUNK) {
    int n = s->n - r0 < CHUNK ? s->n - r0 : CHUNK;
    eval_hprebn(s, r0, n, buf);
    for (int i = 0; i < n; i++)
      for (int j = 0; j < H; j++)
        acc[j] += buf[i][j];
  }
  for (int j = 0; j < H; j++)
    mean[j] = (float)(acc[j] / s->n);
  memset(acc, 0, H * sizeof(double));
  for (int r0 = 0; r0 < s->n; r0 += CHUNK) {
    int n = s->n - r0 < CHUNK ? s->n - r0 : CHUNK;
    eval_hprebn(s, r0, n, buf);
    for (int i = 0; i < n; i++)
      for (int j = 0; j < H; j++) {
        double d = (double)buf[i][j] - mean[j];
        acc[j] += d * d;
      }
  }
  for (int j = 0; j < H; j++)
    var[j] = (float)(acc[j] / (s->n - 1));
  free(acc);
}

static double split_loss(const Split *s, const float *mean, const float *var) {
  static float buf[CHUNK][H];
  double total = 0.0;
  for (int r0 = 0; r0 < s->n; r0 += CHUNK) {
    int n = s->n - r0 < CHUNK ? s->n - r0 : CHUNK;
    eval_hprebn(s, r0, n, buf);
    for (int i = 0; i < n; i++) {
      float hv[H], lg[V];
      for (int j = 0; j < H; j++)
        hv[j] = tanhf(bngain[j] * (buf[i][j] - mean[j]) / sqrtf(var[j] + 1e-5f) + bnbias[j]);
      for (int j = 0; j < V; j++)
        lg[j] = b2[j];
      for (int k = 0; k < H; k++)
        for (int j = 0; j < V; j++)
          lg[j] += hv[k] * W2[k][j];
      float m = lg[0];
      for (int j = 1; j < V; j++)
        m = lg[j] > m ? lg[j] : m;
      double sum = 0.0;
      for (int j = 0; j < V; j++)
        sum += exp((double)(lg[j] - m));
      total += log(sum) - (double)(lg[s->Y[r0 + i]] - m);
    }
  }
  return total / s->n;
}

/* ------------------------------------------------------------------ main */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  const char *data = "data/names.txt";
  long steps = 1000, warmup = 200, reps = 5;
  int train = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--data") && i + 1 < argc)
      data = argv[++i];
    else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
      steps = atol(argv[++i]);
    else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
      warmup = atol(argv[++i]);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
      reps = atol(argv[++i]);
    else if (!strcmp(argv[i], "--train"))
      train = 1;
    else {
      fprintf(stderr, "usage: %s [--data names.txt] [--steps N --warmup W --reps R] [--train]\n",
              argv[0]);
      return 2;
    }
  }
  if (steps < 1 || reps < 1 || reps > 10000 || warmup < 0) {
    fprintf(stderr, "bad --steps/--reps/--warmup\n");
    return 2;
  }

  Split tr, va, te;
  load_data(data, &tr, &va, &te);
  init_params(); /* also reseeds the RNG; sampling continues from this stream */

  if (train) {
    const long max_steps = 200000;
    double t0 = now_s();
    for (long i = 0; i < max_steps; i++) {
      float lr = i < 100000 ? 0.1f : 0.01f;
      float loss = train_step(&tr, lr);
      if (i % 10000 == 0)
        fprintf(stderr, "%7ld/%7ld: %.4f\n", i, max_steps, loss);
    }
    double t1 = now_s();
    static float cmean[H], cvar[H];
    calibrate(&tr, cmean, cvar);
    double ltr = split_loss(&tr, cmean, cvar);
    double lva = split_loss(&va, cmean, cvar);
    double lva_run = split_loss(&va, bnmean_running, bnvar_running);
    printf("{\"impl\":\"c-O3\",\"mode\":\"train\",\"hidden\":%d,\"batch\":%d,"
           "\"steps\":%ld,\"train_seconds\":%.3f,\"ntrain\":%d,\"nval\":%d,"
           "\"train_loss\":%.6f,\"val_loss\":%.6f,\"val_loss_running_stats\":%.6f}\n",
           H, B, max_steps, t1 - t0, tr.n, va.n, ltr, lva, lva_run);
    return 0;
  }

  float loss = 0.0f;
  for (long i = 0; i < warmup; i++)
    loss = train_step(&tr, 0.1f);
  double *us = malloc(sizeof(double) * (size_t)reps);
  for (long r = 0; r < reps; r++) {
    double t0 = now_s();
    for (long i = 0; i < steps; i++)
      loss = train_step(&tr, 0.1f);
    double t1 = now_s();
    us[r] = (t1 - t0) * 1e6 / (double)steps;
  }
  double *sorted = malloc(sizeof(double) * (size_t)reps);
  memcpy(sorted, us, sizeof(double) * (size_t)reps);
  qsort(sorted, (size_t)reps, sizeof(double), cmp_double);
  double med = reps % 2 ? sorted[reps / 2] : 0.5 * (sorted[reps / 2 - 1] + sorted[reps / 2]);

  printf("{\"impl\":\"c-O3\",\"hidden\":%d,\"batch\":%d,\"us_per_step_median\":%.3f,"
         "\"us_per_step_min\":%.3f,\"us_per_step_all\":[",
         H, B, med, sorted[0]);
  for (long r = 0; r < reps; r++)
    printf("%s%.3f", r ? "," : "", us[r]);
  printf("],\"final_loss\":%.6f}\n", loss);
  return 0;
}
