// End-to-end tests of `mlpc compile --train` (issue 16): the training object
// is linked with the system C compiler into tests/aot/train_check.c, which
// runs M_init, 1000 M_train_step calls, M_forward and M_calibrate; the
// oracle is ModelRuntime (the JIT that `mlpc train` uses, its C++ Rng and
// libm) on the same seed and batches:
//   - M_init: the tensors equal initParams(seed) bit for bit;
//   - every step's loss and, after the steps, every tensor within 1e-6
//     relative, and in fact bit for bit: the object runs the JIT's kernels
//     for the same (host) target;
//   - forward logits and calibrated statistics as the JIT's logits()/calibrate().
// train_check itself checks the error paths (NaN and an unchanged state).
#include <catch2/catch.hpp>

#include "AotTestUtil.h"

#include <llvm/Object/ObjectFile.h>

#include <cstring>

namespace {

using namespace mlpc;
using namespace mlpc::aot_test;

// No undefined symbols and no writable data (what `nm -u` / `objdump -h` show).
void requireSelfContained(const std::string &object) {
  auto file = llvm::object::ObjectFile::createObjectFile(object);
  if (!file)
    FAIL(llvm::toString(file.takeError()));
  for (const llvm::object::SymbolRef &sym : file->getBinary()->symbols()) {
    auto flags = sym.getFlags();
    REQUIRE(static_cast<bool>(flags));
    auto name = sym.getName();
    INFO("undefined symbol " << (name ? name->str() : std::string("?")));
    CHECK(!(*flags & llvm::object::SymbolRef::SF_Undefined));
  }
  for (const llvm::object::SectionRef &section : file->getBinary()->sections()) {
    auto name = section.getName();
    REQUIRE(static_cast<bool>(name));
    INFO("section " << name->str());
    if (section.getSize() > 0)
      CHECK(!(name->starts_with(".data") || section.isBSS()));
  }
}

// A names file whose vocabulary is kVocab.
std::string writeNames(const TempDir &dir) {
  writeFile(dir / "names.txt", "abcdefghijklm\nnopqrstuvwxyz\nemma\n");
  return dir / "names.txt";
}

struct Run {
  std::vector<std::vector<float>> init, trained, calibrated; // per tensor
  std::vector<float> losses, logits, calibratedLogits;
};

template <typename T> void append(std::string &bytes, const T *p, size_t n) {
  bytes.append(reinterpret_cast<const char *>(p), n * sizeof(T));
}

double maxRelative(const std::vector<float> &got, const std::vector<float> &want) {
  REQUIRE(got.size() == want.size());
  double scale = 0, worst = 0;
  for (float w : want)
    scale = std::max(scale, std::fabs(double(w)));
  for (size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, std::fabs(double(got[i]) - want[i]) / std::max(scale, 1e-30));
  return worst;
}

struct Variant {
  std::vector<std::string> flags; // extra `mlpc compile` flags
  bool fuse = true;               // false: --no-fuse, for the object and the reference
  // The object runs the JIT's code for the host: the same bits. Another CPU
  // (--cpu x86-64-v3) vectorizes differently: only close.
  bool sameCode = true;
  // Compile with --weights (a checkpoint of other initial values): M_init
  // must copy them.
  bool fromCheckpoint = false;
  std::string path; // the model file (default: examples/<model>.mlp)
};

// The reference: the JIT runtime `mlpc train` uses, on kVocab.
struct TrainReference {
  std::string source;
  std::unique_ptr<DiagnosticEngine> diags;
  ModelAST ast;
  std::unique_ptr<ModelRuntime> runtime;
  std::vector<std::string> names; // tensors in checkpoint order (Params, then States)

  TrainReference(const std::string &mlp, bool fuse) {
    source = readFile(mlp);
    diags = std::make_unique<DiagnosticEngine>(mlp, source);
    ast = parseModel(source, *diags);
    Vocabulary vocab;
    vocab.itos = kVocab;
    PipelineOptions pipeline;
    pipeline.fuse = fuse;
    auto rt = ModelRuntime::create(ast, vocab, *diags, pipeline);
    if (!rt)
      FAIL(llvm::toString(rt.takeError()));
    runtime = std::move(*rt);
    const Graph &g = runtime->trainingGraph();
    for (Op kind : {Op::Param, Op::State})
      for (ValueId v : g.leaves(kind))
        names.push_back(g[v].name);
  }
  const std::vector<float> &tensor(size_t i) { return runtime->params().at(names[i]); }
};

// Compiles `mlp` with --train (and the variant's flags), checks the object
// and header, and links train_check.c against it.
std::string buildTrainCheck(const TempDir &dir, const std::string &mlp, const std::string &model,
                            const Variant &variant, const std::string &checkpoint) {
  std::vector<std::string> args = {"compile", mlp, "--train", "-o", dir / "m.o"};
  if (variant.fromCheckpoint)
    args.insert(args.end(), {"--weights", checkpoint}); // the vocabulary from its metadata
  else
    args.insert(args.end(), {"--data", writeNames(dir)});
  args.insert(args.end(), variant.flags.begin(), variant.flags.end());
  if (!variant.fuse)
    args.push_back("--no-fuse");
  Ran c = runMlpc(dir, args);
  INFO(c.err);
  REQUIRE(c.rc == 0);
  requireSelfContained(dir / "m.o");
  std::string header = readFile(dir / "m.h");
  for (const char *decl :
       {"size_t %_state_bytes(void);", "int %_init(void *state, uint64_t seed);",
        "float %_train_step(void *state, const int32_t *X, const int32_t *Y);",
        "void %_set_lr(void *state, float lr);",
        "int %_forward(const void *state, const int32_t *X, int64_t n, float *logits);",
        "int %_calibrate(void *state, const int32_t *X, int64_t n);",
        "float *%_param(void *state, const char *name, int64_t *numel);",
        "const char *%_param_name(int64_t i);", "#define MLPC_MODEL_TRAIN_STEP %_train_step"}) {
    std::string d = decl;
    for (size_t at = d.find('%'); at != std::string::npos; at = d.find('%'))
      d.replace(at, 1, model);
    INFO(d);
    CHECK(header.find(d) != std::string::npos);
  }
  return buildC(dir, dir / "m.o", "m.h", kSource + "/tests/aot/train_check.c", "train_check");
}

// Runs train_check on the batches and contexts; parses what it wrote.
Run runTrainCheck(const TempDir &dir, const std::string &exe, TrainReference &ref, uint64_t seed,
                  int64_t steps, const std::vector<int32_t> &batches,
                  const std::vector<int32_t> &contexts, int64_t rows) {
  std::string input;
  int64_t head[3] = {static_cast<int64_t>(seed), steps, rows};
  append(input, head, 3);
  append(input, batches.data(), batches.size());
  append(input, contexts.data(), contexts.size());
  writeFile(dir / "in.bin", input);
  Ran r = run(dir, exe, {dir / "in.bin", dir / "out.bin"});
  INFO(r.err);
  REQUIRE(r.rc == 0);
  std::string out = readFile(dir / "out.bin");
  size_t at = 0;
  auto take = [&](size_t n) {
    REQUIRE(at + n * 4 <= out.size());
    std::vector<float> v(n);
    std::memcpy(v.data(), out.data() + at, n * 4);
    at += n * 4;
    return v;
  };
  auto tensors = [&] {
    std::vector<std::vector<float>> t;
    for (size_t i = 0; i < ref.names.size(); ++i)
      t.push_back(take(ref.tensor(i).size()));
    return t;
  };
  const int64_t V = 27;
  Run obj;
  obj.init = tensors();
  obj.losses = take(steps);
  obj.trained = tensors();
  obj.logits = take(rows * V);
  obj.calibrated = tensors();
  obj.calibratedLogits = take(rows * V);
  REQUIRE(at == out.size());
  return obj;
}

std::vector<float> jitLogits(ModelRuntime &rt, const std::vector<int32_t> &contexts, int64_t rows) {
  auto logits = rt.logits(contexts.data(), rows);
  if (!logits)
    FAIL(llvm::toString(logits.takeError()));
  return std::vector<float>(*logits, *logits + rows * 27);
}

void checkTraining(const std::string &model, uint64_t seed, int64_t steps,
                   const Variant &variant = {}) {
  TempDir dir;
  std::string mlp =
      variant.path.empty() ? kSource + "/examples/" + model + ".mlp" : kSource + "/" + variant.path;
  TrainReference ref(mlp, variant.fuse);
  ModelRuntime &rt = *ref.runtime;
  // --weights: the object starts from a checkpoint (other values than seed's).
  const std::string start = dir / "start.safetensors";
  if (variant.fromCheckpoint) {
    rt.initParams(seed + 100);
    if (llvm::Error e = rt.saveParams(start, {}))
      FAIL(llvm::toString(std::move(e)));
  }
  std::string exe = buildTrainCheck(dir, mlp, model, variant, start);
  const int64_t B = rt.batch(), T = rt.context(), V = 27, rows = 77;
  std::mt19937 rng(static_cast<unsigned>(seed));
  std::uniform_int_distribution<int32_t> index(0, V - 1);
  std::vector<int32_t> batches((B * T + B) * steps), contexts = randomContexts(rows, T, V, 5);
  for (int32_t &x : batches)
    x = index(rng);
  Run obj = runTrainCheck(dir, exe, ref, seed, steps, batches, contexts, rows);

  if (!variant.fromCheckpoint)
    rt.initParams(seed);
  else if (llvm::Error e = rt.loadParams(start))
    FAIL(llvm::toString(std::move(e)));
  for (size_t i = 0; i < ref.names.size(); ++i) {
    INFO("M_init vs the runtime's start: " << ref.names[i]);
    CHECK(obj.init[i] == ref.tensor(i));
  }
  std::vector<float> losses;
  for (int64_t s = 0; s < steps; ++s) {
    const int32_t *X = batches.data() + s * (B * T + B);
    auto loss = rt.trainStep(X, X + B * T, static_cast<float>(rt.module().train.learningRate(s)));
    if (!loss)
      FAIL(llvm::toString(loss.takeError()));
    losses.push_back(*loss);
  }
  const double tolerance = variant.sameCode ? 1e-6 : 1e-4;
  CHECK(maxRelative(obj.losses, losses) <= tolerance);
  size_t identical = 0;
  for (size_t i = 0; i < ref.names.size(); ++i) {
    INFO("after " << steps << " steps: " << ref.names[i]);
    CHECK(maxRelative(obj.trained[i], ref.tensor(i)) <= tolerance);
    identical += obj.trained[i] == ref.tensor(i);
  }
  if (variant.sameCode) { // same kernels, same target: the same bits
    CHECK(identical == ref.names.size());
    CHECK(obj.losses == losses);
  }
  requireClose(obj.logits, jitLogits(rt, contexts, rows));
  Split split;
  split.X = contexts;
  split.Y.assign(rows, 0);
  if (llvm::Error e = rt.calibrate(split))
    FAIL(llvm::toString(std::move(e)));
  for (size_t i = 0; i < ref.names.size(); ++i) {
    INFO("after calibrate: " << ref.names[i]);
    CHECK(maxRelative(obj.calibrated[i], ref.tensor(i)) <= tolerance);
  }
  requireClose(obj.calibratedLogits, jitLogits(rt, contexts, rows));
}

} // namespace

TEST_CASE("aot train: adamw with warmup and clipping trains like the JIT", "[train]") {
  Variant adamw;
  adamw.path = "tests/aot/adamw_object.mlp"; // optimizer state in the object's state
  checkTraining("adamw_object", 5, 1000, adamw);
}

TEST_CASE("aot train: makemore object trains like the JIT", "[train]") {
  checkTraining("makemore", 7, 1000);
}

TEST_CASE("aot train: mlp3_bn (two batchnorms, calibrated in order) trains like the JIT",
          "[train_variants]") {
  checkTraining("mlp3_bn", 8, 300);
}

TEST_CASE("aot train: --weights embeds the starting point", "[train_variants]") {
  checkTraining("makemore", 11, 100, {{}, true, true, /*fromCheckpoint=*/true, /*path=*/{}});
}

TEST_CASE("aot train: makemore_atomic under --no-fuse (statistics only calibration sets)",
          "[train_variants]") {
  checkTraining("makemore_atomic", 9, 200, {{}, /*fuse=*/false, true, false, /*path=*/{}});
}

// Links arm.o (and its header arm.h) into a static AArch64 executable with no
// C library at all (clang -ffreestanding, ld.lld): nothing is left undefined.
// Needs a clang and ld.lld; reports SKIPPED without them.
void linkFreestandingAArch64(const TempDir &dir) {
  auto clang = llvm::sys::findProgramByName("clang");
  auto lld = llvm::sys::findProgramByName("ld.lld", {MLPC_LLVM_TOOLS_DIR});
  if (!clang || !lld) {
    WARN("SKIPPED: the AArch64 link test needs clang and ld.lld");
    return;
  }
  writeFile(dir / "start.c", "#include \"arm.h\"\n"
                             "static unsigned char state[makemore_STATE_BYTES]\n"
                             "    __attribute__((aligned(64)));\n"
                             "static int32_t X[MLPC_MODEL_BATCH * MLPC_MODEL_CONTEXT];\n"
                             "static int32_t Y[MLPC_MODEL_BATCH];\n"
                             "volatile float loss;\n"
                             "void _start(void) {\n"
                             "  MLPC_MODEL_INIT(state, 42);\n"
                             "  loss = MLPC_MODEL_TRAIN_STEP(state, X, Y);\n"
                             "  for (;;) {}\n"
                             "}\n");
  Ran cc = run(dir, *clang,
               {"--target=aarch64-linux-gnu", "-ffreestanding", "-O2", "-c", "-I", dir.path,
                dir / "start.c", "-o", dir / "start.o"});
  INFO(cc.err);
  REQUIRE(cc.rc == 0);
  Ran ld = run(dir, *lld,
               {"-static", "-e", "_start", dir / "start.o", dir / "arm.o", "-o", dir / "arm.elf"});
  INFO(ld.err);
  CHECK(ld.rc == 0);
}

TEST_CASE("aot train: --target aarch64 and --cpu x86-64-v3", "[train_target]") {
  TempDir dir;
  std::string mlp = kSource + "/examples/makemore.mlp";
  Ran arm = runMlpc(dir, {"compile", mlp, "--train", "--data", writeNames(dir), "--target",
                          "aarch64-linux-gnu", "-o", dir / "arm.o"});
  INFO(arm.err);
  REQUIRE(arm.rc == 0);
  std::string elf = readFile(dir / "arm.o");
  REQUIRE(elf.size() > 20);
  CHECK(static_cast<unsigned char>(elf[18]) == 183); // e_machine: AArch64
  requireSelfContained(dir / "arm.o");
  linkFreestandingAArch64(dir);
#if defined(__x86_64__)
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    WARN("SKIPPED: this CPU cannot run x86-64-v3 code");
    return;
  }
  checkTraining("makemore", 10, 50,
                {{"--cpu", "x86-64-v3"}, true, /*sameCode=*/false, false, /*path=*/{}});
#endif
}

TEST_CASE("aot train: errors are reported and leave no output", "[train_target]") {
  TempDir dir;
  std::string mlp = kSource + "/examples/makemore.mlp", names = writeNames(dir);
  auto compile = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"compile", mlp, "--train", "--data", names};
    args.insert(args.end(), extra.begin(), extra.end());
    return runMlpc(dir, args);
  };
  Ran external = compile({"--weights-external", "-o", dir / "m.o"});
  CHECK(external.rc == 1);
  CHECK(external.err.find("--weights-external is for inference objects") != std::string::npos);
  Ran header = compile({"-o", dir / "m.h"});
  CHECK(header.rc == 1);
  CHECK(header.err.find("would be overwritten by the header") != std::string::npos);
  Ran missing = compile({"--weights", dir / "none.safetensors", "-o", dir / "m.o"});
  CHECK(missing.rc == 1);
  CHECK(missing.err.find("none.safetensors") != std::string::npos);
  Ran noOut = compile({});
  CHECK(noOut.rc == 1);
  CHECK(!exists(dir / "m.o"));
  CHECK(!exists(dir / "m.h"));
}

// examples/train_names.c against the object: a short run on a small names
// file, then `mlpc eval` of the checkpoint it wrote must print the same three
// losses: the checkpoint is readable, and the example's split is mlpc's.
TEST_CASE("aot train: examples/train_names.c writes a checkpoint mlpc evaluates alike",
          "[train_example]") {
  TempDir dir;
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> letter(0, 25), length(2, 8);
  std::string names = "abcdefghijklmnopqrstuvwxyz\n";
  for (int i = 0; i < 300; ++i) {
    for (int n = length(rng); n > 0; --n)
      names += static_cast<char>('a' + letter(rng));
    names += '\n';
  }
  writeFile(dir / "names.txt", names);
  std::string mlp = kSource + "/examples/makemore.mlp";
  Ran c = runMlpc(dir, {"compile", mlp, "--train", "--data", dir / "names.txt", "-o", dir / "m.o"});
  INFO(c.err);
  REQUIRE(c.rc == 0);
  std::string exe =
      buildC(dir, dir / "m.o", "m.h", kSource + "/examples/train_names.c", "train_names");
  Ran t = run(dir, exe,
              {"--data", dir / "names.txt", "--steps", "300", "--every", "100", "--out",
               dir / "t.safetensors"});
  INFO(t.out << t.err);
  REQUIRE(t.rc == 0);
  size_t at = t.out.find("\ntrain ");
  REQUIRE(at != std::string::npos);
  std::istringstream printed(t.out.substr(at + 1));
  std::string word;
  double train = 0, val = 0, test = 0;
  REQUIRE((printed >> word >> train >> word >> val >> word >> test));
  Ran e =
      runMlpc(dir, {"eval", mlp, "--weights", dir / "t.safetensors", "--data", dir / "names.txt"});
  INFO(e.err);
  REQUIRE(e.rc == 0);
  std::istringstream evaluated(e.out);
  double etrain = 0, eval = 0, etest = 0;
  REQUIRE((evaluated >> word >> etrain >> word >> eval >> word >> etest));
  CHECK(std::fabs(train - etrain) < 1e-4);
  CHECK(std::fabs(val - eval) < 1e-4);
  CHECK(std::fabs(test - etest) < 1e-4);
  CHECK(train < 3.2); // it learned something (log 27 = 3.30)
  Ran s = runMlpc(dir, {"sample", mlp, "--weights", dir / "t.safetensors", "-n", "3"});
  CHECK(s.rc == 0);
}
