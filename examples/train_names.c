/* train_names: trains a model on a names file with nothing but a training
 * object from `mlpc compile --train` and the C library, then writes a
 * safetensors checkpoint that `mlpc eval` and `mlpc sample` read.
 *
 *   mlpc compile examples/makemore.mlp --train -o makemore.o
 *   cc -O2 -DMLPC_MODEL_HEADER='"makemore.h"' -I. examples/train_names.c makemore.o -lm \
 *      -o train_names
 *   ./train_names --data names.txt --out trained.safetensors
 *   mlpc eval examples/makemore.mlp --weights trained.safetensors
 *
 * or `make -C examples train` (examples/Makefile). Everything else is here:
 * reading the names, the train/val/test split (the same as mlpc's: Python's
 * random.seed(42); random.shuffle(words), then 80% / 10% / 10%, so the val
 * loss printed here is the one `mlpc eval` reports), minibatch sampling (its
 * own generator), the loop, calibration and the split losses.
 *
 *   --data FILE   names file (default names.txt)
 *   --steps N     training steps (default: the model's train block)
 *   --seed S      parameter initialisation (M_init) and batch sampling (default 42)
 *   --out CKPT    checkpoint to write (default trained.safetensors)
 *   --every K     print the mean minibatch loss every K steps (default 10000)
 */
#include MLPC_MODEL_HEADER

#ifndef MLPC_MODEL_TRAINING
#error "train_names needs a header from 'mlpc compile --train'"
#endif

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { T = MLPC_MODEL_CONTEXT, V = MLPC_MODEL_VOCAB_SIZE, B = MLPC_MODEL_BATCH };

/* ---- Python's random: MT19937 seeded like random.seed(int) ---- */
typedef struct {
  uint32_t mt[624];
  int mti;
} Mt;

static void mt_seed(Mt *r, uint32_t seed) {
  uint32_t *mt = r->mt;
  mt[0] = 19650218u;
  for (int i = 1; i < 624; ++i)
    mt[i] = 1812433253u * (mt[i - 1] ^ (mt[i - 1] >> 30)) + (uint32_t)i;
  int i = 1; /* init_by_array with the one-word key {seed} */
  for (int k = 624; k; --k) {
    mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525u)) + seed;
    if (++i >= 624) {
      mt[0] = mt[623];
      i = 1;
    }
  }
  for (int k = 623; k; --k) {
    mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
    if (++i >= 624) {
      mt[0] = mt[623];
      i = 1;
    }
  }
  mt[0] = 0x80000000u;
  r->mti = 624;
}

static uint32_t mt_next(Mt *r) {
  uint32_t *mt = r->mt, y;
  if (r->mti >= 624) {
    for (int k = 0; k < 624; ++k) {
      y = (mt[k] & 0x80000000u) | (mt[(k + 1) % 624] & 0x7fffffffu);
      mt[k] = mt[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    r->mti = 0;
  }
  y = mt[r->mti++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  return y ^ (y >> 18);
}

/* random.randrange(n) (n < 2^32): rejection on bit_length(n) bits. */
static uint32_t mt_below(Mt *r, uint32_t n) {
  int k = 0;
  while ((n >> k) && k < 32)
    ++k;
  for (;;) {
    uint32_t x = mt_next(r) >> (32 - k);
    if (x < n)
      return x;
  }
}

/* ---- minibatch sampling: splitmix64 ---- */
static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

typedef struct {
  int32_t *X, *Y;
  int64_t rows;
} Split;

static void die(const char *message, const char *detail) {
  fprintf(stderr, "train_names: %s%s\n", message, detail ? detail : "");
  exit(1);
}

static void *xmalloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p)
    die("out of memory", NULL);
  return p;
}

/* Reads the names (one per line), checking each character is in the vocabulary. */
static char **read_names(const char *path, size_t *count) {
  FILE *f = fopen(path, "rb");
  if (!f)
    die("cannot open ", path);
  size_t cap = 1024, n = 0;
  char **names = xmalloc(cap * sizeof *names), line[1024];
  while (fgets(line, sizeof line, f)) {
    size_t len = strcspn(line, "\r\n");
    line[len] = 0;
    if (!len)
      continue;
    for (size_t i = 0; i < len; ++i)
      if (line[i] == '.' || !strchr(MLPC_MODEL_VOCAB + 1, line[i]))
        die("a name uses a character outside the compiled vocabulary: ", line);
    if (n == cap)
      if (!(names = realloc(names, (cap *= 2) * sizeof *names)))
        die("out of memory", NULL);
    names[n] = xmalloc(len + 1);
    memcpy(names[n++], line, len + 1);
  }
  fclose(f);
  *count = n;
  return names;
}

/* Every (context, next character) pair of names[begin, end), as mlpc builds them. */
static Split build_split(char **names, size_t begin, size_t end) {
  Split s = {NULL, NULL, 0};
  for (size_t w = begin; w < end; ++w)
    s.rows += (int64_t)strlen(names[w]) + 1;
  s.X = xmalloc((size_t)s.rows * T * sizeof(int32_t));
  s.Y = xmalloc((size_t)s.rows * sizeof(int32_t));
  int64_t r = 0;
  for (size_t w = begin; w < end; ++w) {
    int32_t window[T] = {0};
    for (size_t i = 0; i <= strlen(names[w]); ++i) {
      char c = names[w][i];
      int32_t ix = c ? (int32_t)(strchr(MLPC_MODEL_VOCAB, c) - MLPC_MODEL_VOCAB) : 0;
      memcpy(s.X + r * T, window, sizeof window);
      s.Y[r++] = ix;
      memmove(window, window + 1, (T - 1) * sizeof(int32_t));
      window[T - 1] = ix;
    }
  }
  return s;
}

/* Mean cross-entropy of a split in inference mode (running statistics). */
static double split_loss(const void *state, const Split *s) {
  enum { ROWS = 1024 };
  static float logits[ROWS * V];
  double total = 0;
  for (int64_t r = 0; r < s->rows; r += ROWS) {
    int64_t n = s->rows - r < ROWS ? s->rows - r : ROWS;
    if (MLPC_MODEL_FORWARD(state, s->X + r * T, n, logits) != 0)
      die("forward failed", NULL);
    for (int64_t i = 0; i < n; ++i) {
      const float *row = logits + i * V;
      double mx = row[0], sum = 0;
      for (int k = 1; k < V; ++k)
        mx = row[k] > mx ? row[k] : mx;
      for (int k = 0; k < V; ++k)
        sum += exp(row[k] - mx);
      total += log(sum) + mx - row[s->Y[r + i]];
    }
  }
  return s->rows ? total / (double)s->rows : 0.0;
}

static void put_u64(FILE *f, uint64_t v) {
  unsigned char b[8];
  for (int i = 0; i < 8; ++i)
    b[i] = (unsigned char)(v >> (8 * i));
  fwrite(b, 1, 8, f);
}

/* safetensors: u64 header length, JSON header (padded to 8 bytes), f32 data
 * (little-endian, as on every target the training object supports). */
/* Appends s to json as the contents of a JSON string (quotes and backslashes escaped). */
static int json_string(char *json, int len, const char *s) {
  for (; *s && len < 60000; ++s) {
    if (*s == '"' || *s == '\\')
      json[len++] = '\\';
    json[len++] = *s;
  }
  return len;
}

static void write_checkpoint(void *state, const char *path, int64_t steps) {
  char *json = xmalloc(65536);
  /* The metadata `mlpc train` writes: vocab, context, dims and (with --set) overrides. */
  int len =
      snprintf(json, 65536, "{\"__metadata__\":{\"model\":\"%s\",\"vocab\":\"", MLPC_MODEL_NAME);
  len = json_string(json, len, MLPC_MODEL_VOCAB);
  len += snprintf(json + len, 65536 - len,
                  "\",\"context\":\"%d\",\"trained_by\":\"train_names\",\"steps\":\"%lld\","
                  "\"dims\":\"%s\"",
                  T, (long long)steps, MLPC_MODEL_CHECKPOINT_DIMS);
  if (MLPC_MODEL_CHECKPOINT_OVERRIDES[0]) {
    len += snprintf(json + len, 65536 - len, ",\"overrides\":\"");
    len = json_string(json, len, MLPC_MODEL_CHECKPOINT_OVERRIDES);
    json[len++] = '"';
  }
  len += snprintf(json + len, 65536 - len, "}");
  uint64_t offset = 0;
  for (int64_t i = 0; i < MLPC_MODEL_PARAM_COUNT; ++i) {
    int64_t dims[8], numel = 0;
    int rank = MLPC_MODEL_PARAM_SHAPE(i, dims);
    MLPC_MODEL_PARAM(state, MLPC_MODEL_PARAM_NAME(i), &numel);
    len += snprintf(json + len, 65536 - len, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[",
                    MLPC_MODEL_PARAM_NAME(i));
    for (int d = 0; d < rank; ++d)
      len += snprintf(json + len, 65536 - len, d ? ",%lld" : "%lld", (long long)dims[d]);
    len += snprintf(json + len, 65536 - len, "],\"data_offsets\":[%llu,%llu]}",
                    (unsigned long long)offset, (unsigned long long)(offset + 4 * numel));
    offset += 4 * (uint64_t)numel;
  }
  len += snprintf(json + len, 65536 - len, "}");
  while (len % 8)
    json[len++] = ' ';
  FILE *f = fopen(path, "wb");
  if (!f)
    die("cannot write ", path);
  put_u64(f, (uint64_t)len);
  fwrite(json, 1, (size_t)len, f);
  for (int64_t i = 0; i < MLPC_MODEL_PARAM_COUNT; ++i) {
    int64_t numel = 0;
    const float *p = MLPC_MODEL_PARAM(state, MLPC_MODEL_PARAM_NAME(i), &numel);
    fwrite(p, sizeof(float), (size_t)numel, f);
  }
  if (fclose(f) != 0)
    die("cannot write ", path);
  free(json);
}

int main(int argc, char **argv) {
  const char *data = "names.txt", *out = "trained.safetensors";
  long long steps = MLPC_MODEL_STEPS, every = 10000;
  unsigned long long seed = 42;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--data"))
      data = argv[i + 1];
    else if (!strcmp(argv[i], "--out"))
      out = argv[i + 1];
    else if (!strcmp(argv[i], "--steps"))
      steps = atoll(argv[i + 1]);
    else if (!strcmp(argv[i], "--seed"))
      seed = strtoull(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--every"))
      every = atoll(argv[i + 1]);
    else
      die("unknown option ", argv[i]);
  }
  if ((argc - 1) % 2)
    die("options take a value: --data FILE --steps N --seed S --out CKPT --every K", NULL);

  size_t n = 0;
  char **names = read_names(data, &n);
  Mt mt;
  mt_seed(&mt, 42);
  for (size_t i = n; i-- > 1;) { /* random.shuffle */
    size_t j = mt_below(&mt, (uint32_t)(i + 1));
    char *t = names[i];
    names[i] = names[j];
    names[j] = t;
  }
  size_t n1 = (size_t)(0.8 * (double)n), n2 = (size_t)(0.9 * (double)n);
  Split train = build_split(names, 0, n1), val = build_split(names, n1, n2),
        test = build_split(names, n2, n);
  printf("%zu names: %lld train, %lld val, %lld test rows\n", n, (long long)train.rows,
         (long long)val.rows, (long long)test.rows);

  /* The state, 64-byte aligned (by hand: C99 has no aligned_alloc). */
  unsigned char *memory = xmalloc(MLPC_MODEL_STATE_BYTES() + 64);
  void *state = memory + (64 - (uintptr_t)memory % 64) % 64;
  if (MLPC_MODEL_INIT(state, seed) != 0)
    die("cannot initialise the state", NULL);
  uint64_t rng = seed;
  int32_t X[B * T], Y[B];
  double window = 0;
  clock_t start = clock();
  for (long long step = 0; step < steps; ++step) {
    for (int r = 0; r < B; ++r) {
      int64_t row = (int64_t)(splitmix(&rng) % (uint64_t)train.rows);
      memcpy(X + r * T, train.X + row * T, sizeof(int32_t) * T);
      Y[r] = train.Y[row];
    }
    float loss = MLPC_MODEL_TRAIN_STEP(state, X, Y);
    if (isnan(loss)) {
      fprintf(stderr, "train_names: step %lld diverged (state left at step %llu)\n", step,
              (unsigned long long)MLPC_MODEL_STEP(state));
      return 1;
    }
    window += loss;
    if ((step + 1) % every == 0 || step + 1 == steps) {
      long long k = (step + 1) % every ? (step + 1) % every : every;
      printf("step %7lld/%lld: mean loss %.4f\n", step + 1, steps, window / (double)k);
      fflush(stdout);
      window = 0;
    }
  }
  double seconds = (double)(clock() - start) / CLOCKS_PER_SEC;
  printf("%.2f us/step (including sampling)\n", steps ? seconds * 1e6 / (double)steps : 0.0);
  /* As `mlpc train` does at the end: exact statistics over the training split. */
  if (MLPC_MODEL_CALIBRATE(state, train.X, train.rows) != 0)
    die("calibration failed", NULL);
  printf("train %.4f  val %.4f  test %.4f\n", split_loss(state, &train), split_loss(state, &val),
         split_loss(state, &test));
  write_checkpoint(state, out, steps);
  printf("wrote %s\n", out);
  free(memory);
  return 0;
}
