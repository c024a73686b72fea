/* sample_names: a plain C program that links an inference object emitted by
 * `mlpc compile` and samples names from it, seeded.
 *
 *   mlpc compile examples/makemore.mlp --weights makemore.safetensors -o makemore.o
 *   cc -O2 -DMLPC_MODEL_HEADER='"makemore.h"' -I. examples/sample_names.c makemore.o -lm -o
 * sample_names
 *   ./sample_names 20 42
 *
 * or, with examples/Makefile (same two steps, rebuilt when the checkpoint changes):
 *
 *   make -C examples CKPT=$PWD/makemore.safetensors && examples/build/sample_names 20 42
 *
 * It only uses the generic MLPC_MODEL_* names every emitted header defines,
 * so the same program works for any model compiled by mlpc (with embedded
 * weights: a --weights-external header defines MLPC_MODEL_FORWARD_WITH instead).
 * With `--logits`, it instead reads contexts (CONTEXT integers per line) on
 * stdin and prints the logits of each row (used by tests/aot).
 */
#include MLPC_MODEL_HEADER

#ifndef MLPC_MODEL_FORWARD
#error "sample_names needs a header from 'mlpc compile' without --weights-external"
#endif

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* xorshift64*: a tiny seeded generator, so runs are reproducible. */
static uint64_t rng_state;
static double uniform01(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (double)((rng_state * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0);
}

static int print_logits(void) {
  int32_t context[MLPC_MODEL_CONTEXT];
  float logits[MLPC_MODEL_VOCAB_SIZE];
  for (;;) {
    for (int i = 0; i < MLPC_MODEL_CONTEXT; ++i)
      if (scanf("%d", &context[i]) != 1)
        return 0;
    if (MLPC_MODEL_FORWARD(context, 1, logits) != 0) {
      fprintf(stderr, "sample_names: forward failed (index out of range?)\n");
      return 1;
    }
    for (int k = 0; k < MLPC_MODEL_VOCAB_SIZE; ++k)
      printf(k ? " %.9g" : "%.9g", logits[k]);
    printf("\n");
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--logits") == 0)
    return print_logits();
  int count = argc > 1 ? atoi(argv[1]) : 20;
  rng_state = argc > 2 ? strtoull(argv[2], NULL, 10) * 0x9E3779B97F4A7C15ULL + 1 : 42;
  for (int n = 0; n < count; ++n) {
    int32_t context[MLPC_MODEL_CONTEXT] = {0};
    for (int length = 0; length < 64; ++length) {
      float logits[MLPC_MODEL_VOCAB_SIZE];
      if (MLPC_MODEL_FORWARD(context, 1, logits) != 0)
        return 1;
      double probs[MLPC_MODEL_VOCAB_SIZE], max = logits[0], total = 0;
      for (int k = 1; k < MLPC_MODEL_VOCAB_SIZE; ++k)
        if (logits[k] > max)
          max = logits[k];
      for (int k = 0; k < MLPC_MODEL_VOCAB_SIZE; ++k)
        total += probs[k] = exp(logits[k] - max);
      double u = uniform01() * total;
      int next = MLPC_MODEL_VOCAB_SIZE - 1;
      for (int k = 0; k < MLPC_MODEL_VOCAB_SIZE; ++k) {
        if (u < probs[k]) {
          next = k;
          break;
        }
        u -= probs[k];
      }
      if (next == 0)
        break;
      putchar(MLPC_MODEL_VOCAB[next]);
      memmove(context, context + 1, sizeof(int32_t) * (MLPC_MODEL_CONTEXT - 1));
      context[MLPC_MODEL_CONTEXT - 1] = next;
    }
    putchar('\n');
  }
  return 0;
}
