// `mlpc compile` options and failures: --weights-external round trip,
// --target/--cpu, the header from C++, and errors that must leave no output.
#include "AotTestUtil.h"

#include <regex>

using namespace mlpc::aot_test;

namespace {

std::string compileArgsModel(const std::string &model) {
  return kSource + "/examples/" + model + ".mlp";
}

int64_t headerDefine(const std::string &header, const std::string &name) {
  std::smatch m;
  std::regex re("#define " + name + " (\\d+)");
  REQUIRE(std::regex_search(header, m, re));
  return std::stoll(m[1]);
}

} // namespace

TEST_CASE("aot: --weights-external writes OUT.bin; updating it changes the logits",
          "[aot][external]") {
  TempDir dir;
  Reference ref("makemore", dir / "ckpt.safetensors", 21);
  REQUIRE(!llvm::sys::fs::create_directory(dir / "ext"));
  Ran c = runMlpc(dir, {"compile", compileArgsModel("makemore"), "--weights",
                        dir / "ckpt.safetensors", "-o", dir / "ext/m.o", "--weights-external"});
  INFO(c.err);
  REQUIRE(c.rc == 0);
  std::string header = readFile(dir / "ext/m.h");
  CHECK(header.find("int makemore_forward_with(const float *weights, const int32_t *X, int64_t n, "
                    "float *logits);") != std::string::npos);
  CHECK(header.find("#define MLPC_MODEL_FORWARD ") == std::string::npos);
  int64_t floats = headerDefine(header, "makemore_WEIGHTS_FLOATS");
  std::string blob = readFile(dir / "ext/m.bin");
  REQUIRE(static_cast<int64_t>(blob.size()) == floats * 4);
  REQUIRE(headerDefine(header, "makemore_WEIGHTS_BYTES") == floats * 4);
  // Unfolded tensors are stored as they are in the checkpoint.
  auto tensorAt = [&](const std::string &name, size_t count) {
    int64_t offset = headerDefine(header, "makemore_WEIGHT_OFFSET_" + name);
    REQUIRE(offset % 16 == 0);
    std::vector<float> v(count);
    std::memcpy(v.data(), blob.data() + offset * 4, count * 4);
    return v;
  };
  CHECK(tensorAt("C", 27 * 10) == ref.runtime->params().at("C"));
  CHECK(tensorAt("b2", 27) == ref.runtime->params().at("b2"));

  std::vector<int32_t> X = randomContexts(77, ref.T, ref.V, 22);
  std::vector<float> want = ref.logits(X);
  std::string many = buildC(dir, dir / "ext/m.o", "ext/m.h", kSource + "/tests/aot/forward_many.c",
                            "forward_many_ext");
  checkForwardMany(dir, many, {dir / "ext/m.bin"}, X, want, ref.T, ref.V);

  // New weights without recompiling: b2 + 1 shifts every logit by 1.
  int64_t b2 = headerDefine(header, "makemore_WEIGHT_OFFSET_b2");
  for (int64_t k = 0; k < ref.V; ++k) {
    float x;
    std::memcpy(&x, blob.data() + (b2 + k) * 4, 4);
    x += 1.0f;
    std::memcpy(blob.data() + (b2 + k) * 4, &x, 4);
  }
  writeFile(dir / "ext/shifted.bin", blob);
  for (float &x : want)
    x += 1.0f;
  checkForwardMany(dir, many, {dir / "ext/shifted.bin"}, X, want, ref.T, ref.V);
}

TEST_CASE("aot: the header compiles as C++ and rejects NULL pointers", "[aot][cxx]") {
  TempDir dir;
  Reference ref("makemore", dir / "ckpt.safetensors", 31);
  Ran c = runMlpc(dir, {"compile", compileArgsModel("makemore"), "--weights",
                        dir / "ckpt.safetensors", "-o", dir / "m.o"});
  REQUIRE(c.rc == 0);
  writeFile(dir / "use.cpp",
            "#include \"m.h\"\n#include <cstdio>\n"
            "int main() {\n"
            "  int32_t X[MLPC_MODEL_CONTEXT] = {0};\n"
            "  float logits[MLPC_MODEL_VOCAB_SIZE];\n"
            "  int bad = makemore_forward(nullptr, 1, logits) + makemore_forward(X, 1, nullptr)"
            " + makemore_forward(X, -5, logits);\n"
            "  int ok = makemore_forward(X, 1, logits);\n"
            "  std::printf(\"%d %d %c\\n\", bad, ok, MLPC_MODEL_VOCAB[1]);\n"
            "  return 0;\n}\n");
  Ran cxx = run(dir, MLPC_TEST_CXX,
                {"-Wall", "-Wextra", "-Werror", "-I", dir.path, dir / "use.cpp", dir / "m.o", "-o",
                 dir / "use"});
  INFO(cxx.err);
  REQUIRE(cxx.rc == 0);
  Ran use = run(dir, dir / "use", {});
  CHECK(use.out == "-3 0 a\n");
}

TEST_CASE("aot: --target and --cpu", "[aot][target]") {
  TempDir dir;
  Reference ref("makemore", dir / "ckpt.safetensors", 41);
  std::vector<std::string> base = {"compile", compileArgsModel("makemore"), "--weights",
                                   dir / "ckpt.safetensors"};
  auto compile = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return runMlpc(dir, args);
  };
  // A cross target: an AArch64 ELF object (e_machine 183).
  Ran arm = compile({"-o", dir / "arm.o", "--target", "aarch64-linux-gnu", "--cpu", "neoverse-v1"});
  INFO(arm.err);
  REQUIRE(arm.rc == 0);
  std::string elf = readFile(dir / "arm.o");
  REQUIRE(elf.size() > 20);
  CHECK(elf.substr(0, 4) == "\x7f"
                            "ELF");
  CHECK(static_cast<unsigned char>(elf[18]) == 183);

  Ran unknown = compile({"-o", dir / "bad.o", "--cpu", "no-such-cpu"});
  CHECK(unknown.rc == 1);
  CHECK(unknown.err.find("unknown cpu 'no-such-cpu'") != std::string::npos);
  CHECK(!exists(dir / "bad.o"));

#if defined(__x86_64__)
  // Baseline x86-64 (SSE2 only: 4-lane kernels, no FMA) still matches.
  Ran sse = compile({"-o", dir / "sse.o", "--cpu", "x86-64"});
  INFO(sse.err);
  REQUIRE(sse.rc == 0);
  std::vector<int32_t> X = randomContexts(77, ref.T, ref.V, 42);
  std::string many =
      buildC(dir, dir / "sse.o", "sse.h", kSource + "/tests/aot/forward_many.c", "many_sse");
  checkForwardMany(dir, many, {}, X, ref.logits(X), ref.T, ref.V);
#endif
}

TEST_CASE("aot: errors are reported and leave no partial output", "[aot][errors]") {
  TempDir dir;
  Reference ref("makemore", dir / "ckpt.safetensors", 51);
  Reference other("mlp3_bn", dir / "other.safetensors", 52);
  const std::string model = compileArgsModel("makemore");
  auto noOutput = [&](const std::string &stem) {
    return !exists(dir / (stem + ".o")) && !exists(dir / (stem + ".h")) &&
           !exists(dir / (stem + ".bin"));
  };
  auto requireError = [&](const Ran &r, const std::string &message) {
    INFO(r.err);
    CHECK(r.rc == 1);
    CHECK(r.err.find("mlpc: error: ") != std::string::npos);
    CHECK(r.err.find(message) != std::string::npos);
  };

  requireError(
      runMlpc(dir, {"compile", model, "--weights", dir / "missing.safetensors", "-o", dir / "a.o"}),
      "missing.safetensors");
  CHECK(noOutput("a"));
  requireError(
      runMlpc(dir, {"compile", model, "--weights", dir / "other.safetensors", "-o", dir / "b.o"}),
      "other.safetensors");
  CHECK(noOutput("b"));
  requireError(runMlpc(dir, {"compile", model, "-o", dir / "c.o"}), "--weights");
  requireError(runMlpc(dir, {"compile", model, "--weights", dir / "ckpt.safetensors"}), "-o");
  requireError(
      runMlpc(dir, {"compile", model, "--weights", dir / "ckpt.safetensors", "-o", dir / "d.h"}),
      "would be overwritten");
  CHECK(noOutput("d"));
  requireError(runMlpc(dir, {"compile", model, "--weights", dir / "ckpt.safetensors", "-o",
                             dir / "no/such/dir/e.o"}),
               "cannot write");
  // A names file with another vocabulary than the checkpoint's.
  writeFile(dir / "names.txt", "abc\nbcd\n");
  requireError(runMlpc(dir, {"compile", model, "--weights", dir / "ckpt.safetensors", "--data",
                             dir / "names.txt", "-o", dir / "f.o"}),
               "vocabulary");
  CHECK(noOutput("f"));

  // A batchnorm that is not after a Linear layer cannot be folded.
  writeFile(dir / "bnemb.mlp", "model bnemb\ndim V = vocab\ndim T = 3\ndim N = batch\n"
                               "input X : i32[N, T]\ntarget Y : i32[N]\n"
                               "param C : [V, 4] = randn\nparam g : [T*4] = ones\n"
                               "param be : [T*4] = zeros\nparam W : [T*4, V] = randn\n"
                               "forward {\n  x = batchnorm(reshape(C[X], [N, T*4]), g, be)\n"
                               "  logits = tanh(x) @ W\n  loss = cross_entropy(logits, Y)\n}\n"
                               "train {\n  batch 8\n}\n");
  Reference unfoldable("bnemb", dir / "bnemb.safetensors", 53, dir / "bnemb.mlp");
  requireError(runMlpc(dir, {"compile", dir / "bnemb.mlp", "--weights", dir / "bnemb.safetensors",
                             "-o", dir / "g.o"}),
               "batchnorm 'x' was not folded into a Linear layer");
  CHECK(noOutput("g"));

  // A failed compile leaves existing outputs as they were.
  writeFile(dir / "keep.o", "old object");
  writeFile(dir / "keep.h", "old header");
  requireError(runMlpc(dir, {"compile", model, "--weights", dir / "other.safetensors", "-o",
                             dir / "keep.o"}),
               "other.safetensors");
  CHECK(readFile(dir / "keep.o") == "old object");
  CHECK(readFile(dir / "keep.h") == "old header");
  // ... and a successful one replaces them, leaving no temporaries behind.
  Ran ok =
      runMlpc(dir, {"compile", model, "--weights", dir / "ckpt.safetensors", "-o", dir / "keep.o"});
  REQUIRE(ok.rc == 0);
  CHECK(readFile(dir / "keep.h").find("makemore_forward") != std::string::npos);
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(dir.path, ec), end; it != end && !ec; it.increment(ec))
    CHECK(it->path().find(".tmp-") == std::string::npos);
}

TEST_CASE("aot: mlpc emit --emit=llvm|asm --weights prints the inference module", "[aot][emit]") {
  TempDir dir;
  Reference ref("makemore", dir / "ckpt.safetensors", 61);
  const std::string model = compileArgsModel("makemore");
  Ran ir = runMlpc(dir, {"emit", model, "--emit=llvm", "--weights", dir / "ckpt.safetensors"});
  INFO(ir.err);
  REQUIRE(ir.rc == 0);
  // The definition line of each function: the entry is exported, the kernels internal.
  auto definition = [&](const std::string &function) {
    std::istringstream lines(ir.out);
    for (std::string line; std::getline(lines, line);)
      if (line.rfind("define ", 0) == 0 && line.find("@" + function + "(") != std::string::npos)
        return line;
    return std::string();
  };
  CHECK(definition("makemore_forward").find("i32 @makemore_forward(ptr") != std::string::npos);
  CHECK(definition("makemore_forward").find("internal") == std::string::npos);
  CHECK(definition("makemore_block_kernel.body").find("define internal ") == 0);
  CHECK(definition("makemore_row_kernel.body").find("define internal ") == 0);
  CHECK(ir.out.find("private unnamed_addr constant [6000 x float]") != std::string::npos); // W1'
  Ran asmText = runMlpc(dir, {"emit", model, "--emit=asm", "--weights", dir / "ckpt.safetensors"});
  REQUIRE(asmText.rc == 0);
  CHECK(asmText.out.find("makemore_forward:") != std::string::npos);
  Ran wrongStage =
      runMlpc(dir, {"emit", model, "--emit=ir", "--weights", dir / "ckpt.safetensors"});
  CHECK(wrongStage.rc == 1);
  CHECK(wrongStage.err.find("only apply to --emit=llvm") != std::string::npos);
}
