/* aot_latency: speed of an inference object emitted by `mlpc compile`.
 *
 *   mlpc compile examples/makemore.mlp --weights makemore.safetensors -o build/makemore.o
 *   cc -O2 -DMLPC_MODEL_HEADER='"makemore.h"' -Ibuild bench/aot_latency.c build/makemore.o -o
 * aot_latency
 *   ./aot_latency names.txt [seconds]
 *
 * (bench/run_aot.sh does all of this.) Prints one JSON line:
 *   latency_ns_median   one row per call, each call's input depending on the
 *                       previous call's output (as when sampling), median over
 *                       batches of kBatch calls of the per-call time
 *   independent_ns      one row per call, calls independent (the CPU may
 *                       overlap consecutive calls)
 *   block_call_ns       one call of MLPC_MODEL_BLOCK_ROWS rows (the block kernel)
 *   rows_per_s          all rows of the train-sized split in one call (median);
 *   rows_per_s_best     the same from the fastest call: a 70 ms call is often
 *                       preempted on a busy machine, the 256-call batches above
 *                       rarely are, so on a loaded machine compare this one
 *
 * The rows: every context window of the first int(0.8 * names) names of the
 * file, in file order. That is as many names as the seed's train split (the
 * real split is a seeded shuffle; throughput does not depend on which rows).
 */
#include MLPC_MODEL_HEADER

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { kBatch = 256 };
#define T MLPC_MODEL_CONTEXT
#define V MLPC_MODEL_VOCAB_SIZE

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, size_t n) {
  qsort(v, n, sizeof *v, compare_doubles);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The context windows of the first int(0.8 * count) names: *rows of T indices. */
static int32_t *read_rows(const char *path, size_t *rows) {
  FILE *f = fopen(path, "r");
  if (!f) {
    perror(path);
    return NULL;
  }
  int index[256];
  for (int c = 0; c < 256; ++c)
    index[c] = -1;
  for (int k = 0; k < V && MLPC_MODEL_VOCAB[k]; ++k)
    index[(unsigned char)MLPC_MODEL_VOCAB[k]] = k;
  char line[1024];
  size_t names = 0;
  while (fgets(line, sizeof line, f))
    names += line[0] != '\n' && line[0] != '\r';
  size_t keep = (size_t)(0.8 * (double)names), cap = 1 << 16, n = 0;
  int32_t *X = malloc(cap * T * sizeof *X);
  rewind(f);
  for (size_t name = 0; name < keep && X && fgets(line, sizeof line, f);) {
    size_t len = strcspn(line, "\r\n");
    if (len == 0)
      continue;
    ++name;
    int32_t ctx[T] = {0};
    for (size_t i = 0; i <= len; ++i) { /* each character, then the final '.' */
      if (n == cap)
        X = realloc(X, (cap *= 2) * T * sizeof *X);
      if (!X)
        break;
      memcpy(X + n++ * T, ctx, sizeof ctx);
      int next = i < len ? index[(unsigned char)line[i]] : 0;
      if (next < 0) {
        fprintf(stderr, "aot_latency: '%c' is not in the model's vocabulary\n", line[i]);
        exit(1);
      }
      memmove(ctx, ctx + 1, sizeof(int32_t) * (T - 1));
      ctx[T - 1] = next;
    }
  }
  fclose(f);
  *rows = n;
  return X;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: aot_latency names.txt [seconds per measurement]\n");
    return 2;
  }
  double seconds = argc > 2 ? atof(argv[2]) : 1.0;
  size_t rows = 0;
  int32_t *X = read_rows(argv[1], &rows);
  float *logits = X ? malloc(rows * V * sizeof *logits) : NULL;
  if (!X || !logits || rows == 0)
    return 1;
  double checksum = 0;

  /* Dependent single-row calls: row i+1 is chosen through a comparison on
   * row i's logits (always false for finite logits), so a call cannot start
   * before the previous one has finished. */
  size_t batches = 0, cap = 1 << 20, r = 0;
  double *per_call = malloc(cap * sizeof *per_call), start = now_ns(), t0;
  float out[V] = {0};
  while (batches < cap && ((t0 = now_ns()) - start < seconds * 1e9 || batches < 101)) {
    for (int i = 0; i < kBatch; ++i) {
      r = (r + 1 + (out[0] != out[0])) % rows;
      if (MLPC_MODEL_FORWARD(X + r * T, 1, out) != 0)
        return 1;
    }
    per_call[batches++] = (now_ns() - t0) / kBatch;
    checksum += out[0];
  }
  double latency = median(per_call, batches);
  size_t latency_batches = batches;

  /* Independent single-row calls over the rows in order. */
  batches = 0;
  start = now_ns();
  while (batches < cap && ((t0 = now_ns()) - start < seconds * 1e9 || batches < 101)) {
    for (int i = 0; i < kBatch; ++i, r = (r + 1) % rows)
      if (MLPC_MODEL_FORWARD(X + r * T, 1, logits + r * V) != 0)
        return 1;
    per_call[batches++] = (now_ns() - t0) / kBatch;
  }
  double independent = median(per_call, batches);

  /* One block (MLPC_MODEL_BLOCK_ROWS rows, the block kernel alone) per call:
   * compared with latency_ns_median it tells whether padding a short tail to
   * a block could ever beat one call of the row kernel per row. */
  batches = 0;
  start = now_ns();
  while (batches < cap && ((t0 = now_ns()) - start < seconds * 1e9 || batches < 101)) {
    for (int i = 0; i < 16; ++i, r = (r + MLPC_MODEL_BLOCK_ROWS) % (rows - MLPC_MODEL_BLOCK_ROWS))
      if (MLPC_MODEL_FORWARD(X + r * T, MLPC_MODEL_BLOCK_ROWS, logits + r * V) != 0)
        return 1;
    per_call[batches++] = (now_ns() - t0) / 16;
  }
  double block = median(per_call, batches);

  /* All rows in one call. */
  batches = 0;
  start = now_ns();
  while (batches < cap && ((t0 = now_ns()) - start < seconds * 1e9 || batches < 5)) {
    if (MLPC_MODEL_FORWARD(X, (int64_t)rows, logits) != 0)
      return 1;
    per_call[batches++] = now_ns() - t0;
    checksum += logits[rows * V - 1];
  }
  double all_ns = median(per_call, batches), all_best = per_call[0]; /* sorted by median() */

  printf("{\"impl\": \"mlpc-aot\", \"latency_ns_median\": %.1f, \"latency_batches\": %zu, "
         "\"calls_per_batch\": %d, \"independent_ns_median\": %.1f, \"block_rows\": %d, "
         "\"block_call_ns_median\": %.1f, \"block_ns_per_row\": %.1f, \"rows\": %zu, "
         "\"all_rows_ms_median\": %.3f, \"rows_per_s\": %.0f, \"all_rows_ms_min\": %.3f, "
         "\"rows_per_s_best\": %.0f, \"checksum\": %.6g}\n",
         latency, latency_batches, kBatch, independent, MLPC_MODEL_BLOCK_ROWS, block,
         block / MLPC_MODEL_BLOCK_ROWS, rows, all_ns / 1e6, rows / (all_ns / 1e9), all_best / 1e6,
         rows / (all_best / 1e9), checksum);
  free(per_call);
  free(logits);
  free(X);
  return 0;
}
