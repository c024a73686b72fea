/* train_check: drives a training object from `mlpc compile --train` for
 * tests/aot/test_aot_train.cpp, which compares what it writes with the JIT.
 *
 *   train_check IN OUT
 *
 * IN (native int64/int32): seed, steps, rows, then steps batches of
 * X int32[BATCH][CONTEXT] and Y int32[BATCH], then rows contexts int32[rows][CONTEXT].
 * OUT (native floats), each tensor block in param_name order:
 *   the tensors after init(seed); the loss of every step; the tensors after
 *   the steps; forward logits of the rows; the tensors after calibrate(rows);
 *   forward logits again.
 * Then it checks the API's error paths itself (exit status 2 with a message
 * on stderr when one misbehaves): train_step returns NaN and leaves the state
 * unchanged for a non-finite update, a bad index and NULL; set_lr < 0 returns
 * to the schedule; param() finds every name and rejects unknown ones.
 */
#include MLPC_MODEL_HEADER

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T = MLPC_MODEL_CONTEXT, V = MLPC_MODEL_VOCAB_SIZE, B = MLPC_MODEL_BATCH };

static int fail(const char *what) {
  fprintf(stderr, "train_check: %s\n", what);
  return 2;
}

static void read_or_die(void *p, size_t size, size_t n, FILE *f) {
  if (fread(p, size, n, f) != n) {
    fprintf(stderr, "train_check: short input\n");
    exit(1);
  }
}

static void dump_tensors(void *state, FILE *out) {
  for (int64_t i = 0; i < MLPC_MODEL_PARAM_COUNT; ++i) {
    int64_t numel = -1;
    float *p = MLPC_MODEL_PARAM(state, MLPC_MODEL_PARAM_NAME(i), &numel);
    fwrite(p, sizeof(float), (size_t)numel, out);
  }
}

/* The tensors region as one byte string (for "unchanged" checks). */
static int same_tensors(void *state, const unsigned char *copy, size_t bytes) {
  return memcmp((unsigned char *)MLPC_MODEL_PARAM(state, MLPC_MODEL_PARAM_NAME(0), NULL), copy,
                bytes) == 0;
}

static int check_errors(void *state, const int32_t *X, const int32_t *Y) {
  /* The tensors run from the first to the end of the last (64-byte slots). */
  int64_t lastNumel = 0;
  unsigned char *first = (unsigned char *)MLPC_MODEL_PARAM(state, MLPC_MODEL_PARAM_NAME(0), NULL);
  unsigned char *last = (unsigned char *)MLPC_MODEL_PARAM(
      state, MLPC_MODEL_PARAM_NAME(MLPC_MODEL_PARAM_COUNT - 1), &lastNumel);
  size_t bytes = (size_t)(last - first) + 4 * (size_t)lastNumel;
  unsigned char *copy = malloc(bytes);
  memcpy(copy, first, bytes);
  uint64_t step = MLPC_MODEL_STEP(state);
  int32_t badX[B * T], badY[B];
  memcpy(badX, X, sizeof badX);
  memcpy(badY, Y, sizeof badY);
  badX[B * T - 1] = V;
  badY[0] = -1;
  if (!isnan(MLPC_MODEL_TRAIN_STEP(state, badX, Y)) ||
      !isnan(MLPC_MODEL_TRAIN_STEP(state, X, badY)))
    return fail("an out-of-range index did not give NaN");
  if (!isnan(MLPC_MODEL_TRAIN_STEP(state, NULL, Y)) || !isnan(MLPC_MODEL_TRAIN_STEP(NULL, X, Y)))
    return fail("a NULL pointer did not give NaN");
  MLPC_MODEL_SET_LR(state, INFINITY); /* every updated parameter becomes inf or NaN */
  if (!isnan(MLPC_MODEL_TRAIN_STEP(state, X, Y)))
    return fail("a non-finite update did not give NaN");
  if (!same_tensors(state, copy, bytes) || MLPC_MODEL_STEP(state) != step)
    return fail("a rejected step changed the state");
  MLPC_MODEL_SET_LR(state, 0.0f); /* lr 0: a finite step that changes no parameter */
  float loss = MLPC_MODEL_TRAIN_STEP(state, X, Y);
  if (isnan(loss) || MLPC_MODEL_STEP(state) != step + 1)
    return fail("a step at lr 0 failed");
  MLPC_MODEL_SET_LR(state, -1.0f);
  if (MLPC_MODEL_PARAM(state, "no such tensor", NULL) || MLPC_MODEL_PARAM_NAME(-1) ||
      MLPC_MODEL_PARAM_NAME(MLPC_MODEL_PARAM_COUNT) || MLPC_MODEL_PARAM_SHAPE(-1, NULL) != -1)
    return fail("an unknown tensor was found");
  int32_t contexts[2 * T];
  float logits[2 * V];
  memset(contexts, 0, sizeof contexts);
  contexts[1] = -1;
  if (MLPC_MODEL_FORWARD(state, contexts, 2, logits) != -1 ||
      MLPC_MODEL_FORWARD(state, contexts, 0, logits) != -1 ||
      MLPC_MODEL_CALIBRATE(state, contexts, 2) != -1)
    return fail("forward/calibrate accepted a bad request");
  free(copy);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3)
    return fail("usage: train_check IN OUT");
  FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
  if (!in || !out)
    return fail("cannot open the files");
  int64_t header[3];
  read_or_die(header, sizeof(int64_t), 3, in);
  int64_t steps = header[1], rows = header[2];
  /* 64-byte aligned by hand (C99 has no aligned_alloc). */
  unsigned char *block = malloc(MLPC_MODEL_STATE_BYTES() + 64);
  if (!block)
    return fail("cannot allocate the state");
  void *state = block + (64 - (uintptr_t)block % 64) % 64;
  if (MLPC_MODEL_INIT(state, (uint64_t)header[0]) != 0)
    return fail("init failed");
  dump_tensors(state, out);
  int32_t X[B * T], Y[B];
  for (int64_t s = 0; s < steps; ++s) {
    read_or_die(X, sizeof(int32_t), B * T, in);
    read_or_die(Y, sizeof(int32_t), B, in);
    float loss = MLPC_MODEL_TRAIN_STEP(state, X, Y);
    fwrite(&loss, sizeof loss, 1, out);
  }
  if (MLPC_MODEL_STEP(state) != (uint64_t)steps)
    return fail("step count");
  dump_tensors(state, out);
  int32_t *contexts = malloc(sizeof(int32_t) * (size_t)(rows * T));
  float *logits = malloc(sizeof(float) * (size_t)(rows * V));
  read_or_die(contexts, sizeof(int32_t), (size_t)(rows * T), in);
  if (MLPC_MODEL_FORWARD(state, contexts, rows, logits) != 0)
    return fail("forward failed");
  fwrite(logits, sizeof(float), (size_t)(rows * V), out);
  if (MLPC_MODEL_CALIBRATE(state, contexts, rows) != 0)
    return fail("calibrate failed");
  dump_tensors(state, out);
  if (MLPC_MODEL_FORWARD(state, contexts, rows, logits) != 0)
    return fail("forward failed");
  fwrite(logits, sizeof(float), (size_t)(rows * V), out);
  if (fclose(out) != 0)
    return fail("cannot write the output");
  int rc = check_errors(state, X, Y);
  free(block);
  return rc;
}
