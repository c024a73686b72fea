// mlpc: the driver. One subcommand per user task; see `mlpc --help`.
#include "tools/Driver.h"

#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

namespace mlpc {

namespace {
const FlagSpec kVocab{"--vocab", "N", "value of 'dim V = vocab' without a dataset (default 27)"};
const FlagSpec kNoFuse{"--no-fuse", "",
                       "no cross-entropy or batchnorm fusion in the fused and training graphs "
                       "(inference stages always fuse)"};
const FlagSpec kVerbose{"--verbose", "", "explain pass decisions (e.g. why a chain was not fused)"};
const FlagSpec kOutput{"-o", "FILE", "write the output to FILE instead of stdout"};
const FlagSpec kData{"--data", "FILE",
                     "names file (default: data/names.txt, $MLPC_DATA, ../shared/data/names.txt)"};
const FlagSpec kWeights{"--weights", "CKPT",
                        "checkpoint (.safetensors) with the trained parameters"};
const FlagSpec kSeed{"--seed", "S", "random seed (default 42)"};
const FlagSpec kThreads{"--threads", "N",
                        "threads of the step: a number or auto (default: auto, a team for steps "
                        "of 16+ MFLOP, each call run on it or on one thread, whichever is "
                        "measured faster); results are the same for any N"};
const FlagSpec kNoCache{
    "--no-cache", "",
    "compile without the on-disk machine-code cache (also: MLPC_NO_CACHE=1; "
    "default directory $XDG_CACHE_HOME/mlpc or ~/.cache/mlpc, or $MLPC_CACHE_DIR)"};
const FlagSpec kCache{"--cache", "",
                      "use the on-disk machine-code cache (bench compiles cold by default)"};
const FlagSpec kVectorBits{
    "--vector-bits", "BITS",
    "kernel vector width, 128, 256 or 512 (default: the widest the CPU has)"};
} // namespace

const std::vector<Command> &allCommands() {
  static const std::vector<Command> commands = {
      {{"check",
        "FILE [options]",
        "Parse, lower and verify a model file; exit 1 on any error.",
        {kSetFlag, kVocab, kVerbose},
        1,
        1},
       runCheck},
      {{"emit",
        "FILE --emit=STAGE [options]",
        "Print a compilation stage: ast, ir, fused, grad, infer, dot, llvm, asm.",
        {kSetFlag,
         {"--emit", "STAGE", "ast | ir | fused | grad | infer | dot | llvm | asm"},
         {"--batch", "N", "compile for N rows instead of the model's batch size"},
         {"--weights", "CKPT",
          "llvm | asm: print the module 'mlpc compile' emits for this checkpoint"},
         {"--train-step", "",
          "llvm | asm: the training step's code instead of the inference function"},
         kVectorBits,
         kData,
         kVocab,
         kNoFuse,
         kVerbose,
         kOutput},
        1,
        1},
       runEmit},
      {{"gradcheck",
        "FILE [options]",
        "Check the fused gradients against central finite differences and the unfused ones.",
        {kSetFlag, kSeed, kVocab, kVerbose},
        1,
        1},
       runGradcheck},
      {{"grad",
        "FILE --weights W.safetensors --batch B.safetensors -o G.safetensors",
        "Compute the loss and every parameter's gradient for one batch (f64 interpreter).",
        {kSetFlag,
         {"--weights", "FILE", "parameters (tensor names = param names, f32)"},
         {"--batch", "FILE", "inputs and targets (tensor names = input names, i32)"},
         kOutput,
         kVocab,
         kNoFuse},
        1,
        1},
       runGrad},
      {{"train",
        "MODEL [--data FILE] [options]",
        "JIT-compile the training step and train on a names file; prints losses and samples.",
        {kSetFlag,
         kData,
         {"--steps", "N", "number of SGD steps (default: the model's train block)"},
         {"--lr", "LR", "constant learning rate (overrides the model's schedule)"},
         kSeed,
         {"--out", "CKPT", "write the trained checkpoint (.safetensors), atomically"},
         {"--checkpoint-every", "N",
          "also write --out every N steps (SIGINT/SIGTERM always save one)"},
         {"--resume", "CKPT", "continue a run from its checkpoint (same batches and schedule)"},
         {"--init", "CKPT", "start from these parameters (fresh optimizer state, step 0)"},
         {"--batches", "FILE",
          "replay these minibatches (safetensors: input i32[S, N, T], target i32[S, N]) "
          "instead of sampling"},
         {"--metrics", "FILE", "write final metrics as JSON"},
         {"--log", "FILE", "write a CSV loss log (step, loss, lr)"},
         {"--log-every", "K",
          "print a progress line every K steps when not on a terminal (default 10000)"},
         {"--samples", "N", "names to sample at the end (default 20)"},
         {"--stats", "FILE", "record activation and gradient statistics as JSON (see 'mlpc plot')"},
         {"--stats-every", "K", "a stats record every K steps (default 1000)"},
         {"--no-test", "", "do not evaluate the test split (sweeps look at it once, at the end)"},
         kNoFuse,
         kVerbose,
         kThreads,
         kVectorBits,
         kNoCache},
        1,
        1},
       runTrain},
      {{"plot",
        "STATS.json -o DIR",
        "Render the plots of a 'train --stats' file as PNG files (needs gnuplot).",
        {{"-o", "DIR", "output directory (created if missing)"}},
        1,
        1},
       runPlot},
      {{"eval",
        "MODEL --weights CKPT --data FILE",
        "Print train/val/test losses of a checkpoint.",
        {kSetFlag,
         kWeights,
         kData,
         {"--split", "NAME", "only this split: train, val or test"},
         kThreads,
         kVectorBits,
         kNoCache},
        1,
        1},
       runEval},
      {{"sample",
        "MODEL --weights CKPT [-n 20] [--seed S]",
        "Sample names from a checkpoint.",
        {kSetFlag, kWeights, {"-n", "N", "number of names (default 20)"}, kSeed, kData},
        1,
        1},
       runSample},
      {{"compile",
        "MODEL --weights CKPT -o OUT.o [options] | MODEL --train -o OUT.o [--weights CKPT]",
        "Emit an inference object (BatchNorm folded) or, with --train, a training object, and its "
        "C header.",
        {kSetFlag,
         kWeights,
         {"--train", "", "emit the training object (C API: M_init, M_train_step, ...)"},
         kNoFuse,
         {"-o", "OUT.o", "object file to write; OUT.h (and OUT.bin) are written next to it"},
         {"--data", "FILE", "names file for the vocabulary (default: the checkpoint's metadata)"},
         {"--target", "TRIPLE", "target triple (default: host)"},
         {"--cpu", "NAME", "target CPU (default: host)"},
         kVectorBits,
         {"--weights-external", "", "write weights to OUT.bin instead of embedding them"}},
        1,
        1},
       runCompile},
      {{"fold-check",
        "MODEL --weights CKPT --data FILE",
        "Compare the folded and unfolded inference graphs over the val split.",
        {kSetFlag, kWeights, kData},
        1,
        1},
       runFoldCheck},
      {{"bench",
        "MODEL [--data FILE] [--steps N] [--reps R] [--profile] [--compare-threads N] "
        "[--line-census]",
        "Time the compiled training step, compilation and evaluation; prints one JSON line.",
        {kSetFlag,
         kData,
         {"--steps", "N", "training steps per repetition (default 5000)"},
         {"--reps", "R", "repetitions after a warm-up (default 5)"},
         {"--profile", "",
          "also print each graph node's share of the step (x86; with --threads N a column per "
          "thread, then each thread's barrier waits)"},
         {"--compare-threads", "N",
          "also time one thread against N, alternating R rounds of --steps steps in this process, "
          "and print the speedup (median of the rounds' ratios)"},
         {"--line-census", "",
          "also print the cache lines the step's threads pass between them per step, by node "
          "and buffer (every access traced: slow; --threads N, default 2, equal parts)"},
         kThreads,
         {"--shares", "A,B,...",
          "fixed parts of the step's shared loops, one per thread of --threads N (default: "
          "equal, then balanced); 1,0 runs them all on thread 0, the others passing barriers"},
         kVectorBits,
         kCache},
        1,
        1},
       runBench},
      {{"lr-find",
        "MODEL [--steps K] [--lo LO] [--hi HI] [-o FILE.png] [--json]",
        "Find a learning rate: one run with the rate rising exponentially from LO to HI.",
        {kSetFlag,
         kData,
         {"--steps", "K", "steps of the search, one minibatch each (default 1000)"},
         {"--lo", "LO", "first learning rate (default 1e-3)"},
         {"--hi", "HI", "last learning rate (default 1)"},
         kSeed,
         {"-o", "FILE.png", "plot to write (default MODEL-lr-find.png); the CSV goes beside it"},
         {"--json", "", "print {\"suggested_lr\": ...} on stdout for scripts"},
         kNoFuse},
        1,
        1},
       runLrFind},
      {{"sweep",
        "MODEL --grid NAME=V1,V2,... [--grid ...] --out DIR [options] | --collect DIR",
        "Train every combination of the grids in parallel; rank by val, test the best once.",
        {{"--grid", "NAME=V1,V2,...",
          "values of a dim or train setting (as --set); ';' separates values that hold commas",
          /*repeatable=*/true},
         kSetFlag,
         {"--steps", "N", "training steps of every run (the same as --set steps=N)"},
         {"--jobs", "J", "runs at a time, one process each (default: the number of cores)"},
         {"--out", "DIR", "sweep directory: one subdirectory per run, results.csv/json/png"},
         kData,
         kSeed,
         {"--emit-jobs", "FILE",
          "write one shell command per unfinished run (for GNU parallel, Slurm) and stop"},
         {"--retry-failed", "",
          "run the failed runs of an earlier sweep again (default: keep them)"},
         {"--run-one", "RUNDIR", "run one prepared run directory (the --emit-jobs commands)"},
         {"--collect", "DIR", "rank the finished runs in DIR (after --emit-jobs)"}},
        0,
        1},
       runSweep},
      {{"plot-embedding",
        "CKPT [-o FILE.png] [--param NAME]",
        "Scatter plot of a checkpoint's embedding table, each point labelled by its character.",
        {{"-o", "FILE.png", "plot to write (default: CKPT with .png)"},
         {"--param", "NAME",
          "the embedding table (default: the checkpoint's only [vocab, E] parameter)"}},
        1,
        1},
       runPlotEmbedding},
  };
  return commands;
}

} // namespace mlpc

using namespace mlpc;

static std::string mainHelp() {
  std::string out = "mlpc: a static computation-graph compiler for small neural networks\n\n"
                    "usage: mlpc <command> [options]\n\ncommands:\n";
  for (const Command &c : allCommands())
    out += fmt::format("  {:<12} {}\n", c.spec.name, c.spec.summary);
  out += "\n  mlpc <command> --help   options of one command\n  mlpc --version\n";
  return out;
}

int main(int argc, char **argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    llvm::outs() << mainHelp();
    return args.empty() ? kExitUserError : kExitOk;
  }
  if (args[0] == "--version") {
    llvm::outs() << "mlpc " << MLPC_VERSION << " (LLVM " << LLVM_VERSION_STRING << ")\n";
    return kExitOk;
  }
  for (const Command &c : allCommands()) {
    if (c.spec.name != args[0])
      continue;
    std::string error;
    auto parsed = parseArgs(c.spec, {args.begin() + 1, args.end()}, error);
    if (!parsed)
      return reportError(error);
    if (parsed->has("--help")) {
      llvm::outs() << helpText(c.spec);
      return kExitOk;
    }
    return c.run(*parsed);
  }
  return reportError(fmt::format("unknown command '{}' (see 'mlpc --help')", args[0]));
}
