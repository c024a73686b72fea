/* aot_train_step: speed of a training object from `mlpc compile --train`,
 * measured the way `mlpc bench` measures the JIT's step: every step samples
 * a minibatch of the training rows (uniform, with replacement) and runs one
 * step at lr 0.01; reps of N steps after a warm-up of N / 4, and the median
 * of the per-rep microseconds per step. bench/run_aot_train.sh builds it and
 * runs it next to `mlpc bench`.
 *
 *   aot_train_step names.txt [steps] [reps]
 *
 * The rows: every context window of the first int(0.8 * names) names of the
 * file, in file order (the sampled rows' values do not change the speed).
 * Prints one JSON line.
 */
#include MLPC_MODEL_HEADER

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { T = MLPC_MODEL_CONTEXT, B = MLPC_MODEL_BATCH };

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: aot_train_step names.txt [steps] [reps]\n");
    return 1;
  }
  long steps = argc > 2 ? atol(argv[2]) : 5000, reps = argc > 3 ? atol(argv[3]) : 5;
  if (steps < 1 || reps < 1 || reps > 1000)
    return 1;
  FILE *f = fopen(argv[1], "rb");
  if (!f)
    return 1;
  static char text[1 << 22];
  size_t len = fread(text, 1, sizeof text - 1, f), words = 0;
  fclose(f);
  text[len] = 0;
  for (size_t i = 0; i < len; ++i)
    words += text[i] == '\n';
  size_t keep = (size_t)(0.8 * (double)words);
  int32_t *X = malloc(sizeof(int32_t) * T * (len + 1)), *Y = malloc(sizeof(int32_t) * (len + 1));
  int64_t rows = 0;
  int32_t window[T] = {0};
  for (size_t i = 0, w = 0; i < len && w < keep; ++i) {
    char c = text[i];
    if (c == '\r')
      continue;
    const char *at = c && c != '\n' ? strchr(MLPC_MODEL_VOCAB, c) : NULL;
    int32_t ix = at ? (int32_t)(at - MLPC_MODEL_VOCAB) : 0;
    memcpy(X + rows * T, window, sizeof window);
    Y[rows++] = ix;
    memmove(window, window + 1, sizeof(int32_t) * (T - 1));
    window[T - 1] = ix;
    if (c == '\n') {
      memset(window, 0, sizeof window);
      ++w;
    }
  }
  unsigned char *block = malloc(MLPC_MODEL_STATE_BYTES() + 64);
  void *state = block + (64 - (uintptr_t)block % 64) % 64;
  MLPC_MODEL_INIT(state, 42);
  MLPC_MODEL_SET_LR(state, 0.01f);
  uint64_t rng = 1;
  int32_t bx[B * T], by[B];
  double perStep[1000], sink = 0;
  for (long r = -1; r < reps; ++r) {
    long n = r < 0 ? (steps / 4 > 10 ? steps / 4 : 10) : steps;
    double start = now_us();
    for (long s = 0; s < n; ++s) {
      for (int i = 0; i < B; ++i) {
        int64_t row = (int64_t)(splitmix(&rng) % (uint64_t)rows);
        memcpy(bx + i * T, X + row * T, sizeof(int32_t) * T);
        by[i] = Y[row];
      }
      sink += MLPC_MODEL_TRAIN_STEP(state, bx, by);
    }
    if (r >= 0)
      perStep[r] = (now_us() - start) / (double)steps;
  }
  printf("{\"impl\": \"mlpc-aot-train\", \"model\": \"%s\", \"batch\": %d, \"us_per_step_all\": [",
         MLPC_MODEL_NAME, B);
  for (long r = 0; r < reps; ++r)
    printf(r ? ", %.3f" : "%.3f", perStep[r]);
  qsort(perStep, (size_t)reps, sizeof(double), compare_doubles);
  double median = reps % 2 ? perStep[reps / 2] : (perStep[reps / 2 - 1] + perStep[reps / 2]) / 2;
  printf("], \"us_per_step_median\": %.3f, \"steps_per_rep\": %ld, \"reps\": %ld, "
         "\"loss_sum\": %.3f}\n",
         median, steps, reps, sink);
  free(block);
  free(X);
  free(Y);
  return 0;
}
