// End-to-end tests of `mlpc compile` (issue 5): a checkpoint with random
// weights and random (non-trivial) BatchNorm running statistics is compiled
// to an object file, linked with the system C compiler into
// examples/sample_names.c and tests/aot/forward_many.c, and the logits those
// programs print must equal the JIT's unfolded inference forward
// (ModelRuntime::logits) within 1e-5 relative to max(1, |logit|).
// Nothing is trained, so the whole binary runs in seconds.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include "AotTestUtil.h"

#include <llvm/Object/ObjectFile.h>

namespace {

using namespace mlpc::aot_test;

template <typename T> T unwrap(llvm::Expected<T> value) {
  if (!value)
    FAIL(llvm::toString(value.takeError()));
  return *value;
}

// What `nm -u` and `objdump -h` would show: no undefined symbols (no library
// needed, not even memcpy) and no writable data (nothing shared between calls).
void checkSelfContained(const std::string &object) {
  auto file = llvm::object::ObjectFile::createObjectFile(object);
  if (!file)
    FAIL(llvm::toString(file.takeError()));
  const llvm::object::ObjectFile &obj = *file->getBinary();
  for (const llvm::object::SymbolRef &sym : obj.symbols()) {
    uint32_t flags = unwrap(sym.getFlags());
    INFO("undefined symbol " << unwrap(sym.getName()).str());
    CHECK(!(flags & llvm::object::SymbolRef::SF_Undefined));
  }
  for (const llvm::object::SectionRef &section : obj.sections()) {
    llvm::StringRef name = unwrap(section.getName());
    INFO("section " << name.str());
    if (section.getSize() > 0)
      CHECK(!(name.starts_with(".data") || section.isBSS()));
  }
}

void checkEmbedded(const std::string &model, unsigned seed) {
  TempDir dir;
  Reference ref(model, dir / "ckpt.safetensors", seed);
  Ran c = runMlpc(dir, {"compile", kSource + "/examples/" + model + ".mlp", "--weights",
                        dir / "ckpt.safetensors", "-o", dir / "m.o"});
  INFO(c.err);
  REQUIRE(c.rc == 0);
  REQUIRE(exists(dir / "m.h"));
  REQUIRE(!exists(dir / "m.bin"));
  checkSelfContained(dir / "m.o");
  std::string header = readFile(dir / "m.h");
  CHECK(header.find("int " + model + "_forward(const int32_t *X, int64_t n, float *logits);") !=
        std::string::npos);
  CHECK(header.find("#define " + model + "_CONTEXT " + std::to_string(ref.T)) != std::string::npos);
  CHECK(header.find("static const char " + model + "_vocab[] = \"" + kVocab + "\";") !=
        std::string::npos);

  std::vector<int32_t> X = randomContexts(77, ref.T, ref.V, seed + 1);
  std::vector<float> want = ref.logits(X);

  // sample_names --logits: one row per call.
  std::string sampler =
      buildC(dir, dir / "m.o", "m.h", kSource + "/examples/sample_names.c", "sample_names");
  std::string lines;
  for (size_t i = 0; i < X.size(); ++i)
    lines += std::to_string(X[i]) + ((i + 1) % ref.T ? " " : "\n");
  Ran s = run(dir, sampler, {"--logits"}, lines);
  INFO(s.err);
  REQUIRE(s.rc == 0);
  std::istringstream sampled(s.out);
  requireClose(parseFloats(sampled, want.size()), want);
  std::string outOfRange;
  for (int64_t i = 0; i + 1 < ref.T; ++i)
    outOfRange += "1 ";
  Ran bad = run(dir, sampler, {"--logits"}, outOfRange + std::to_string(ref.V) + "\n");
  CHECK(bad.rc == 1);
  Ran names = run(dir, sampler, {"5", "42"});
  CHECK(names.rc == 0);
  CHECK(std::count(names.out.begin(), names.out.end(), '\n') == 5);

  // forward_many: many rows per call (block kernel + 1-row tail).
  std::string many =
      buildC(dir, dir / "m.o", "m.h", kSource + "/tests/aot/forward_many.c", "forward_many");
  checkForwardMany(dir, many, {}, X, want, ref.T, ref.V);
}

} // namespace

TEST_CASE("aot: makemore object + sample_names match the JIT forward", "[aot][makemore]") {
  checkEmbedded("makemore", 11);
}

TEST_CASE("aot: mlp3_bn (two folded batchnorms) matches the JIT forward", "[aot][mlp3_bn]") {
  checkEmbedded("mlp3_bn", 12);
}

TEST_CASE("aot: makemore_atomic (the chains fused at one row too) matches the JIT forward",
          "[aot][atomic]") {
  checkEmbedded("makemore_atomic", 13);
}
