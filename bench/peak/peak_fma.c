/* Measured single-core f32 peak: the denominator of the harness's %peak column.
 *
 * Why this file is written in assembly (issue 15). The first version was C
 * with vector extensions: twelve chains `acc = acc * mul + add`. GCC kept the
 * loop-invariant addend on the stack and emitted `vfmadd213ps 64(%rsp), ...`;
 * an FMA with a memory operand is a load+FMA micro-op pair, and on Intel cores
 * the loads cut the retired rate to ~70% of what the FMA pipes can do (an
 * AVX-512 host reported 170-181 GFLOP/s against a true 240). The %peak column
 * then overstated everything by a third. A compiler is free to make such a
 * choice, so the measurement must not go through one.
 *
 * What it does. On x86-64, hand-written loops of `vfmadd231ps a, b, acc_i`
 * with every operand in a register: the multiplicands in the two top
 * registers, acc_0..acc_{n-1} independent chains below them. All registers
 * are initialised (broadcast from memory) before the loop: garbage left in an
 * unused register can be a denormal, and FMAs on denormals take a microcode
 * assist (100+ cycles), which once gave nonsense low numbers here. The
 * values stay normal: acc starts at 1 and grows by 1e-6 per iteration.
 * The loop is throughput-bound once chains >= FMA latency x FMA pipes
 * (4 x 2 = 8 on recent Intel and AMD cores); rather than trust that rule it
 * sweeps every chain count 4..24 (zmm: registers 0-23, multiplicands in
 * 30/31) or 4..14 (xmm/ymm without AVX-512VL: 16 registers) and every width
 * the CPU and OS support (checked at run time with __builtin_cpu_supports,
 * which also checks the OS saves the wider state), and reports the maximum.
 * The kernels are file-scope asm functions (SysV: every vector register is
 * caller-saved), so the file builds with any -march and any compiler flags;
 * the assembler accepts AVX-512 mnemonics regardless of -march.
 *
 * Elsewhere (not x86-64, or no FMA), a portable C vector-extension loop with
 * twelve chains; its number is a lower bound and the JSON says "method":"c".
 *
 * Build: cc -O2 bench/peak/peak_fma.c -o peak_fma      (-march not needed)
 * Usage: peak_fma [--verbose]  (--verbose prints every width/chain point to stderr)
 * Prints one JSON line, e.g.
 *   {"peak_gflops": 175.3, "chains": 12, "lanes": 16, "width": "zmm",
 *    "method": "asm", "by_width": {"zmm": 175.3, "ymm": 93.1, "xmm": 46.9}}
 * peak_gflops = FLOP/s (2 per lane per FMA) of the best (width, chains) point;
 * chains/lanes/width say which point that was.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <string.h>
#include <time.h>

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Initial values: {acc, a, b}; acc += a * b keeps every value normal. */
static const float init_values[3] = {1.0f, 1e-3f, 1e-3f};

#if defined(__x86_64__)

/* PEAK_FN w, n, ta, tb defines peak_<w>_<n>(long iterations, const float *init):
 * n chains in registers w0..w{n-1}, multiplicands in w<ta>, w<tb>. */
__asm__(".pushsection .text\n"
        ".intel_syntax noprefix\n"
        ".altmacro\n"
        ".macro PEAK_FMAS w, i, n, ta, tb\n"
        "  vfmadd231ps \\w\\i, \\w\\ta, \\w\\tb\n"
        "  .if \\i+1-\\n\n"
        "  PEAK_FMAS \\w, %(\\i+1), \\n, \\ta, \\tb\n"
        "  .endif\n"
        ".endm\n"
        ".macro PEAK_INIT w, i, n\n"
        "  vbroadcastss \\w\\i, dword ptr [rsi]\n"
        "  .if \\i+1-\\n\n"
        "  PEAK_INIT \\w, %(\\i+1), \\n\n"
        "  .endif\n"
        ".endm\n"
        ".macro PEAK_FN w, n, ta, tb\n"
        "  .p2align 6\n"
        "  .globl peak_\\w\\()_\\n\n"
        "  .type peak_\\w\\()_\\n, @function\n"
        "peak_\\w\\()_\\n:\n"
        "  vbroadcastss \\w\\ta, dword ptr [rsi+4]\n"
        "  vbroadcastss \\w\\tb, dword ptr [rsi+8]\n"
        "  PEAK_INIT \\w, 0, \\n\n"
        "  .p2align 5\n"
        "1:\n"
        "  PEAK_FMAS \\w, 0, \\n, \\ta, \\tb\n"
        "  dec rdi\n"
        "  jnz 1b\n"
        "  vzeroupper\n"
        "  ret\n"
        "  .size peak_\\w\\()_\\n, .-peak_\\w\\()_\\n\n"
        ".endm\n"
        ".irp n, 4,5,6,7,8,9,10,11,12,13,14\n"
        "  PEAK_FN xmm, \\n, 14, 15\n"
        "  PEAK_FN ymm, \\n, 14, 15\n"
        ".endr\n"
        ".irp n, 4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24\n"
        "  PEAK_FN zmm, \\n, 30, 31\n"
        ".endr\n"
        ".purgem PEAK_FN\n"
        ".purgem PEAK_FMAS\n"
        ".purgem PEAK_INIT\n"
        ".noaltmacro\n"
        ".att_syntax prefix\n"
        ".popsection\n");

typedef void (*kernel_fn)(long iterations, const float *init);

#define DECL(w, n) void peak_##w##_##n(long, const float *);
#define LIST_14(X, w)                                                                              \
  X(w, 4) X(w, 5) X(w, 6) X(w, 7) X(w, 8) X(w, 9) X(w, 10) X(w, 11) X(w, 12) X(w, 13) X(w, 14)
#define LIST_24(X, w)                                                                              \
  LIST_14(X, w)                                                                                    \
  X(w, 15) X(w, 16) X(w, 17) X(w, 18) X(w, 19) X(w, 20) X(w, 21) X(w, 22) X(w, 23) X(w, 24)
LIST_14(DECL, xmm)
LIST_14(DECL, ymm)
LIST_24(DECL, zmm)
#define ENTRY(w, n) {n, peak_##w##_##n},

struct kernel {
  int chains;
  kernel_fn fn;
};
static const struct kernel xmm_kernels[] = {LIST_14(ENTRY, xmm){0, 0}};
static const struct kernel ymm_kernels[] = {LIST_14(ENTRY, ymm){0, 0}};
static const struct kernel zmm_kernels[] = {LIST_24(ENTRY, zmm){0, 0}};

struct width {
  const char *name;
  int lanes;
  int supported;
  const struct kernel *kernels;
};

/* GFLOP/s of one kernel: best of 20 runs of 4e6 FMA instructions (~0.4-1.5 ms each). Short
 * runs are likelier to fit between the time slices of other processes on a
 * shared machine; being interrupted can only make a run look slower. */
static double measure(const struct kernel *k, int lanes) {
  long iterations = 4000000 / k->chains;
  double best = 0;
  for (int rep = 0; rep < 20; ++rep) {
    double t0 = seconds();
    k->fn(iterations, init_values);
    double g = (double)iterations * k->chains * lanes * 2 / (seconds() - t0) / 1e9;
    if (g > best)
      best = g;
  }
  return best;
}

/* Sweeps every supported (width, chains) point and prints the JSON line;
 * returns 0, or 1 without printing if the CPU has no FMA. */
static int run_asm(int verbose) {
  __builtin_cpu_init();
  int fma = __builtin_cpu_supports("fma");
  struct width widths[] = {
      {"zmm", 16, __builtin_cpu_supports("avx512f"), zmm_kernels},
      {"ymm", 8, fma && __builtin_cpu_supports("avx"), ymm_kernels},
      {"xmm", 4, fma, xmm_kernels},
  };
  enum { NW = sizeof widths / sizeof widths[0] };
  if (!fma)
    return 1;
  /* Warm-up: let the clock settle at the widest width's frequency licence. */
  for (int w = 0; w < NW; ++w)
    if (widths[w].supported) {
      double t0 = seconds();
      while (seconds() - t0 < 0.2)
        widths[w].kernels[8].fn(1000000, init_values);
      break;
    }
  double best = 0, by_width[NW] = {0};
  int best_chains = 0, best_w = 0;
  for (int w = 0; w < NW; ++w) {
    if (!widths[w].supported)
      continue;
    for (const struct kernel *k = widths[w].kernels; k->fn; ++k) {
      double g = measure(k, widths[w].lanes);
      if (verbose)
        fprintf(stderr, "%s chains=%2d %7.1f GFLOP/s\n", widths[w].name, k->chains, g);
      if (g > by_width[w])
        by_width[w] = g;
      if (g > best) {
        best = g;
        best_chains = k->chains;
        best_w = w;
      }
    }
  }
  printf("{\"peak_gflops\": %.1f, \"chains\": %d, \"lanes\": %d, \"width\": \"%s\", "
         "\"method\": \"asm\", \"by_width\": {",
         best, best_chains, widths[best_w].lanes, widths[best_w].name);
  const char *sep = "";
  for (int w = 0; w < NW; ++w)
    if (widths[w].supported) {
      printf("%s\"%s\": %.1f", sep, widths[w].name, by_width[w]);
      sep = ", ";
    }
  printf("}}\n");
  return 0;
}
#endif /* __x86_64__ */

/* Portable fallback: twelve chains of compiler-generated vector FMAs. A
 * lower bound (the compiler may put operands in memory; see above). */
static void run_portable(void) {
  enum { CHAINS = 12, LANES = 4 };
  typedef float vf __attribute__((vector_size(LANES * 4)));
  vf acc[CHAINS], mul, add;
  for (int i = 0; i < LANES; ++i) {
    mul[i] = init_values[1];
    add[i] = init_values[2];
  }
  for (int c = 0; c < CHAINS; ++c)
    for (int i = 0; i < LANES; ++i)
      acc[c][i] = init_values[0];
  double best_c = 0;
  for (int rep = 0; rep < 6; ++rep) {
    long iterations = 20000000;
    double t0 = seconds();
    for (long it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
      for (int c = 0; c < CHAINS; ++c)
        acc[c] = acc[c] * mul + add;
    }
    double g = (double)iterations * CHAINS * LANES * 2 / (seconds() - t0) / 1e9;
    if (rep > 0 && g > best_c) /* rep 0 is the warm-up */
      best_c = g;
  }
  float sink = 0;
  for (int c = 0; c < CHAINS; ++c)
    sink += acc[c][0];
  printf("{\"peak_gflops\": %.1f, \"chains\": %d, \"lanes\": %d, \"width\": \"c%d\", "
         "\"method\": \"c\", \"sink\": %g}\n",
         best_c, CHAINS, LANES, LANES * 32, sink);
}

int main(int argc, char **argv) {
  int verbose = argc > 1 && !strcmp(argv[1], "--verbose");
#if defined(__x86_64__)
  if (run_asm(verbose) == 0)
    return 0;
#endif
  (void)verbose;
  run_portable();
  return 0;
}
