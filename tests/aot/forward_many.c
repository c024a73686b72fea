/* forward_many: a test driver for objects emitted by `mlpc compile`. Unlike
 * examples/sample_names.c (one row per call) it passes many rows to ONE call,
 * so the block kernel and the 1-row tail both run.
 *
 *   cc -DMLPC_MODEL_HEADER='"m.h"' -I DIR tests/aot/forward_many.c DIR/m.o -o forward_many
 *   ./forward_many [WEIGHTS.bin] < requests
 *
 * WEIGHTS.bin is required for a --weights-external header. stdin holds
 * requests: a row count n, then n * CONTEXT indices (whitespace separated).
 * For each request it prints "rc R untouched U" (U = 1 if the logits buffer
 * still holds its NaN fill after the call), then on success n lines of
 * logits. An n < 1 is passed through as is (the call must return -1).
 */
#include MLPC_MODEL_HEADER

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define T MLPC_MODEL_CONTEXT
#define V MLPC_MODEL_VOCAB_SIZE

int main(int argc, char **argv) {
#ifdef MLPC_MODEL_FORWARD_WITH
  if (argc < 2) {
    fprintf(stderr, "usage: forward_many WEIGHTS.bin < requests\n");
    return 2;
  }
  static float weights[MLPC_MODEL_WEIGHTS_FLOATS];
  FILE *wf = fopen(argv[1], "rb");
  if (!wf ||
      fread(weights, sizeof(float), MLPC_MODEL_WEIGHTS_FLOATS, wf) != MLPC_MODEL_WEIGHTS_FLOATS ||
      fgetc(wf) != EOF) {
    fprintf(stderr, "forward_many: %s does not hold %d floats\n", argv[1],
            MLPC_MODEL_WEIGHTS_FLOATS);
    return 1;
  }
  fclose(wf);
#define FORWARD(X, n, logits) MLPC_MODEL_FORWARD_WITH(weights, X, n, logits)
#else
  (void)argc;
  (void)argv;
#define FORWARD(X, n, logits) MLPC_MODEL_FORWARD(X, n, logits)
#endif
  long long n;
  while (scanf("%lld", &n) == 1) {
    long long rows = n > 0 ? n : 1;
    int32_t *X = malloc(sizeof(int32_t) * T * rows);
    float *logits = malloc(sizeof(float) * V * rows);
    if (!X || !logits)
      return 1;
    for (long long i = 0; i < (n > 0 ? n * T : 0); ++i)
      if (scanf("%d", &X[i]) != 1)
        return 1;
    for (long long i = 0; i < V * rows; ++i)
      logits[i] = NAN;
    int rc = FORWARD(X, (int64_t)n, logits);
    int untouched = 1;
    for (long long i = 0; i < V * rows; ++i)
      untouched = untouched && isnan(logits[i]);
    printf("rc %d untouched %d\n", rc, untouched);
    for (long long r = 0; rc == 0 && r < n; ++r)
      for (int k = 0; k < V; ++k)
        printf(k + 1 < V ? "%.9g " : "%.9g\n", logits[r * V + k]);
    free(X);
    free(logits);
  }
  return 0;
}
