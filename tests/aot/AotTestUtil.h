// Helpers of the `mlpc compile` end-to-end tests (test_aot*.cpp): running
// programs, building C against an emitted object, and the JIT reference.
#pragma once

#include <catch2/catch.hpp>

#include "frontend/Parser.h"
#include "runtime/ModelRuntime.h"

#include <llvm/Support/FileSystem.h>
#include <llvm/Support/Program.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

namespace mlpc::aot_test {

inline const std::string kSource = MLPC_SOURCE_DIR;
inline const char *kVocab = ".abcdefghijklmnopqrstuvwxyz";

inline std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void writeFile(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

inline bool exists(const std::string &path) {
  return llvm::sys::fs::exists(path);
}

struct TempDir {
  std::string path;
  mutable int files = 0; // names the stdin/stdout/stderr files of run()
  TempDir() {
    llvm::SmallString<128> p;
    REQUIRE(!llvm::sys::fs::createUniqueDirectory("mlpc-aot", p));
    path = std::string(p.str());
  }
  ~TempDir() { llvm::sys::fs::remove_directories(path); }
  std::string operator/(const std::string &name) const { return path + "/" + name; }
};

struct Ran {
  int rc;
  std::string out, err;
};

// Runs `program args...` with `input` on stdin; captures stdout and stderr.
inline Ran run(const TempDir &dir, const std::string &program, const std::vector<std::string> &args,
               const std::string &input = "") {
  std::string base = dir / ("io" + std::to_string(dir.files++));
  writeFile(base + ".in", input);
  std::vector<llvm::StringRef> argv{program};
  for (const std::string &a : args)
    argv.push_back(a);
  std::string in = base + ".in", out = base + ".out", err = base + ".err";
  std::optional<llvm::StringRef> redirects[] = {llvm::StringRef(in), llvm::StringRef(out),
                                                llvm::StringRef(err)};
  std::string message;
  int rc = llvm::sys::ExecuteAndWait(program, argv, std::nullopt, redirects, 120, 0, &message);
  INFO(program << ": " << message);
  return {rc, readFile(out), readFile(err)};
}

inline Ran runMlpc(const TempDir &dir, const std::vector<std::string> &args) {
  return run(dir, MLPC_BIN, args);
}

// Builds a C program from `sources` against the object/header pair OUT.o/OUT.h.
inline std::string buildC(const TempDir &dir, const std::string &object, const std::string &header,
                          const std::string &source, const std::string &exe,
                          std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {
      "-std=c99", "-O2",    "-Wall", "-Wextra", "-Werror", "-DMLPC_MODEL_HEADER=\"" + header + "\"",
      "-I",       dir.path, source,  object,    "-lm",     "-o",
      dir / exe};
  args.insert(args.begin(), extra.begin(), extra.end());
  Ran cc = run(dir, MLPC_TEST_CC, args);
  INFO(cc.err);
  REQUIRE(cc.rc == 0);
  return dir / exe;
}

// A model with random weights and statistics, saved as a checkpoint, and its
// JIT runtime as the reference.
struct Reference {
  std::string source;
  std::unique_ptr<DiagnosticEngine> diags;
  ModelAST ast;
  std::unique_ptr<ModelRuntime> runtime;
  int64_t T = 0, V = 0;

  // `model` names examples/<model>.mlp unless `path` gives the model file.
  Reference(const std::string &model, const std::string &checkpoint, unsigned seed,
            const std::string &path = "") {
    source = readFile(path.empty() ? kSource + "/examples/" + model + ".mlp" : path);
    diags = std::make_unique<DiagnosticEngine>(model, source);
    ast = parseModel(source, *diags);
    Vocabulary vocab;
    vocab.itos = kVocab;
    auto rt = ModelRuntime::create(ast, vocab, *diags);
    if (!rt)
      FAIL(llvm::toString(rt.takeError()));
    runtime = std::move(*rt);
    runtime->initParams(seed);
    std::mt19937 rng(seed);
    std::normal_distribution<float> noise(0.0f, 1.0f);
    std::uniform_real_distribution<float> variance(0.3f, 2.5f);
    auto endsWith = [](const std::string &s, const std::string &suffix) {
      return s.size() >= suffix.size() &&
             s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    // Statistics far from (0, 1) and gains/biases away from their (1, 0)
    // initialisation, so folding changes every weight it touches.
    for (auto &[name, values] : runtime->params())
      for (float &x : values)
        x = endsWith(name, ".running_var")    ? variance(rng)
            : endsWith(name, ".running_mean") ? 0.5f * noise(rng)
                                              : x + 0.05f * noise(rng);
    if (llvm::Error e = runtime->saveParams(checkpoint, {}))
      FAIL(llvm::toString(std::move(e)));
    T = runtime->context();
    V = static_cast<int64_t>(vocab.size());
  }

  std::vector<float> logits(const std::vector<int32_t> &X) {
    int64_t rows = static_cast<int64_t>(X.size()) / T;
    REQUIRE(rows <= ModelRuntime::kEvalRows);
    auto out = runtime->logits(X.data(), rows);
    if (!out)
      FAIL(llvm::toString(out.takeError()));
    return std::vector<float>(*out, *out + rows * V);
  }
};

inline std::vector<float> parseFloats(std::istream &in, size_t count) {
  std::vector<float> v(count);
  for (float &x : v)
    REQUIRE(in >> x);
  return v;
}

inline void requireClose(const std::vector<float> &got, const std::vector<float> &want) {
  REQUIRE(got.size() == want.size());
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, std::fabs(double(got[i]) - want[i]) /
                                std::max(1.0, std::fabs(double(want[i]))));
  INFO("max relative logit difference " << worst);
  REQUIRE(worst <= 1e-5);
}

inline std::string rowsText(const std::vector<int32_t> &X, int64_t begin, int64_t n, int64_t T) {
  std::string s = std::to_string(n) + "\n";
  for (int64_t i = begin * T; i < (begin + n) * T; ++i)
    s += std::to_string(X[i]) + ((i + 1) % T ? " " : "\n");
  return s;
}

// Row counts for forward_many (blocks of 32 rows; tails of 16 or more rows
// run as a padded block, shorter ones row by row): one row, 15 single rows,
// one padded block, exact blocks, 50 = a block + a padded 18-row tail, and
// 77 = 2 blocks + 13 single rows.
inline const std::vector<int64_t> kRowCounts = {1, 15, 31, 32, 50, 64, 77};

// Runs forward_many with every row count over `X` (each request from row 0)
// plus three invalid requests; checks return codes and the logits.
inline void checkForwardMany(const TempDir &dir, const std::string &exe,
                             const std::vector<std::string> &args, const std::vector<int32_t> &X,
                             const std::vector<float> &want, int64_t T, int64_t V) {
  std::string input;
  for (int64_t n : kRowCounts)
    input += rowsText(X, 0, n, T);
  std::vector<int32_t> bad(2 * T, 1);
  input += "0\n";
  bad[T + 1 < 2 * T ? T + 1 : 0] = static_cast<int32_t>(V);
  input += rowsText(bad, 0, 2, T);
  bad.assign(2 * T, 1);
  bad[2 * T - 1] = -1;
  input += rowsText(bad, 0, 2, T);
  Ran r = run(dir, exe, args, input);
  INFO(r.err);
  REQUIRE(r.rc == 0);
  std::istringstream out(r.out);
  std::string word;
  int rc = 0, untouched = 0;
  for (int64_t n : kRowCounts) {
    INFO("n = " << n);
    REQUIRE((out >> word >> rc >> word >> untouched));
    REQUIRE(rc == 0);
    REQUIRE(untouched == 0);
    requireClose(parseFloats(out, n * V), std::vector<float>(want.begin(), want.begin() + n * V));
  }
  for (const char *what : {"n = 0", "an index equal to V", "a negative index"}) {
    INFO(what);
    REQUIRE((out >> word >> rc >> word >> untouched));
    REQUIRE(rc == -1);
    REQUIRE(untouched == 1);
  }
}

inline std::vector<int32_t> randomContexts(int64_t rows, int64_t T, int64_t V, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> index(0, static_cast<int32_t>(V - 1));
  std::vector<int32_t> X(rows * T);
  for (int32_t &x : X)
    x = index(rng);
  std::fill(X.begin(), X.begin() + T, 0);                                   // the start of a name
  std::fill(X.begin() + T, X.begin() + 2 * T, static_cast<int32_t>(V - 1)); // the last index
  return X;
}

} // namespace mlpc::aot_test
