// Tests for runtime/Dataset.h. Expected splits, rows and checksums were
// produced with CPython 3 running the seed notebook's build_dataset on the
// same input, and are hard-coded so the tests do not need Python.
#include "runtime/BatchSampler.h"
#include "runtime/Dataset.h"

#include "Skip.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <numeric>

using namespace mlpc;

namespace {

/// A fresh directory per test case, removed at the end.
struct TempDir {
  llvm::SmallString<128> path;
  TempDir() {
    std::error_code ec = llvm::sys::fs::createUniqueDirectory("mlpc-dataset-test", path);
    REQUIRE(!ec);
  }
  ~TempDir() { llvm::sys::fs::remove_directories(path); }
  std::string file(const std::string &name, const std::string &contents) const {
    llvm::SmallString<128> p(path);
    llvm::sys::path::append(p, name);
    std::ofstream(std::string(p), std::ios::binary) << contents;
    return std::string(p);
  }
};

/// "" on success, else the error text (consuming the error, so an unchecked
/// llvm::Expected never aborts a debug build). Catch cannot test an Expected
/// directly because its operator bool is non-const.
template <class T> std::string errText(llvm::Expected<T> &r) {
  if (r)
    return "";
  return llvm::toString(r.takeError());
}
template <class T> std::string errText(llvm::Expected<T> &&r) {
  return errText(r);
}

int64_t sum(const std::vector<int32_t> &v) {
  return std::accumulate(v.begin(), v.end(), int64_t(0));
}

} // namespace

TEST_CASE("readWords reads names, strips CR and skips blank lines", "[dataset]") {
  TempDir d;
  auto words = readWords(d.file("n.txt", "emma\r\n\nolivia\n\r\nava"));
  REQUIRE(errText(words) == "");
  CHECK(*words == std::vector<std::string>{"emma", "olivia", "ava"});
}

TEST_CASE("readWords rejects bad input with clear errors", "[dataset]") {
  TempDir d;
  std::string missing = std::string(d.path) + "/nope.txt";
  std::string e = errText(readWords(missing));
  CHECK(e.find(missing) != std::string::npos);
  CHECK(e.find("No such file") != std::string::npos);

  CHECK(errText(readWords(std::string(d.path))).find("directory") != std::string::npos);
  CHECK(errText(readWords(d.file("empty.txt", ""))).find("no names") != std::string::npos);
  CHECK(errText(readWords(d.file("blank.txt", "\n\r\n\n"))).find("no names") != std::string::npos);

  e = errText(readWords(d.file("dot.txt", "emma\nan.na\n")));
  CHECK(e.find(":2:3:") != std::string::npos);
  CHECK(e.find("'.'") != std::string::npos);

  e = errText(readWords(d.file("space.txt", "emma\nmary ann\n")));
  CHECK(e.find(":2:5:") != std::string::npos);
  CHECK(e.find("0x20") != std::string::npos);

  e = errText(readWords(d.file("utf8.txt", "a\nb\n\xc3\xa9mile\n")));
  CHECK(e.find(":3:1:") != std::string::npos);
  CHECK(e.find("0xc3") != std::string::npos);

  e = errText(readWords(d.file("nul.txt", std::string("ab\0c\n", 5))));
  CHECK(e.find("0x00") != std::string::npos);

  e = errText(readWords(d.file("cr.txt", "a\rb\n")));
  CHECK(e.find("0x0d") != std::string::npos);

  e = errText(readWords(d.file("long.txt", "ok\n" + std::string(1001, 'a') + "\n")));
  CHECK(e.find(":2:") != std::string::npos);
  CHECK(e.find("1001") != std::string::npos);
  CHECK(errText(readWords(d.file("max.txt", std::string(1000, 'a')))) == "");
}

TEST_CASE("buildVocabulary puts '.' first then sorted characters", "[dataset]") {
  Vocabulary v = buildVocabulary({"emma", "ava", "Zoe"});
  CHECK(v.itos == ".Zaemov");
  CHECK(v.size() == 7u);
  CHECK(v.index('.') == 0);
  CHECK(v.index('Z') == 1);
  CHECK(v.index('v') == 6);
  CHECK(v.index('q') == -1);
}

TEST_CASE("buildDataset matches the Python notebook on a small list", "[dataset]") {
  // random.seed(42); random.shuffle(words) -> isabella olivia ava sophia emma
  auto ds = buildDataset({"emma", "olivia", "ava", "isabella", "sophia"}, 2);
  REQUIRE(errText(ds) == "");
  CHECK(ds->vocab.itos == ".abehilmopsv");
  CHECK(ds->context == 2);
  CHECK(ds->numWords == 5u);
  CHECK(ds->train.rows() == 27);
  CHECK(ds->val.rows() == 0);
  CHECK(ds->test.rows() == 5);
  CHECK(ds->train.X == std::vector<int32_t>{0,  0,  0,  5, 5, 10, 10, 1, 1, 2,  2,  3, 3, 6,
                                            6,  6,  6,  1, 0, 0,  0,  8, 8, 6,  6,  5, 5, 11,
                                            11, 5,  5,  1, 0, 0,  0,  1, 1, 11, 11, 1, 0, 0,
                                            0,  10, 10, 8, 8, 9,  9,  4, 4, 5,  5,  1});
  CHECK(ds->train.Y == std::vector<int32_t>{5, 10, 1, 2,  3, 6, 6,  1, 0, 8, 6, 5, 11, 5,
                                            1, 0,  1, 11, 1, 0, 10, 8, 9, 4, 5, 1, 0});
  CHECK(ds->test.X == std::vector<int32_t>{0, 0, 0, 3, 3, 7, 7, 7, 7, 1});
  CHECK(ds->test.Y == std::vector<int32_t>{3, 7, 7, 1, 0});
}

TEST_CASE("buildDataset rejects bad arguments", "[dataset]") {
  auto err = [](llvm::Expected<Dataset> r) { return errText(r); };
  CHECK(err(buildDataset({"ab", "cd"}, 0)).find("context") != std::string::npos);
  CHECK(err(buildDataset({"ab", "cd"}, -3)).find("context") != std::string::npos);
  CHECK(err(buildDataset({"ab", "cd"}, 5000)).find("context") != std::string::npos);
  CHECK(err(buildDataset({"ab", ""}, 3)).find("empty") != std::string::npos);
  CHECK(err(buildDataset({"ab", "c.d"}, 3)).find("'.'") != std::string::npos);
  CHECK(err(buildDataset({"ab"}, 3)).find("too few") != std::string::npos);
  CHECK(err(buildDataset({}, 3)).find("too few") != std::string::npos);
  CHECK(err(buildDataset({"ab", "cd"}, 3)) == "");
}

TEST_CASE("findNamesFile honours MLPC_DATA", "[dataset]") {
  // data/names.txt in the working directory would take precedence: run in
  // the (empty) temporary directory, so the test runs wherever it is started.
  TempDir d;
  llvm::SmallString<256> cwd;
  REQUIRE(!llvm::sys::fs::current_path(cwd));
  REQUIRE(!llvm::sys::fs::set_current_path(d.path));
  std::string file = d.file("names.txt", "emma\n");
  const char *old = std::getenv("MLPC_DATA");
  std::string saved = old ? old : "";
  ::setenv("MLPC_DATA", std::string(d.path).c_str(), 1);
  auto fromDir = findNamesFile();
  ::setenv("MLPC_DATA", file.c_str(), 1);
  auto fromFile = findNamesFile();
  if (old)
    ::setenv("MLPC_DATA", saved.c_str(), 1);
  else
    ::unsetenv("MLPC_DATA");
  REQUIRE(!llvm::sys::fs::set_current_path(cwd));
  REQUIRE(fromDir);
  CHECK(*fromDir == file);
  REQUIRE(fromFile);
  CHECK(*fromFile == file);
}

TEST_CASE("names.txt gives the notebook's splits", "[dataset][names]") {
  std::optional<std::string> names = mlpc::test::namesFileOrSkip();
  if (!names)
    return;
  auto words = readWords(*names);
  REQUIRE(errText(words) == "");
  CHECK(words->size() == 32033u);

  auto ds = buildDataset(*words, 3);
  REQUIRE(errText(ds) == "");
  CHECK(ds->vocab.itos == ".abcdefghijklmnopqrstuvwxyz");
  CHECK(ds->numWords == 32033u);
  CHECK(ds->train.rows() == 182625);
  CHECK(ds->val.rows() == 22655);
  CHECK(ds->test.rows() == 22866);
  REQUIRE(ds->train.X.size() == 182625u * 3);

  // First shuffled name is "yuheng": X rows ..., .y, .yu, yuh, ...
  std::vector<int32_t> firstX(ds->train.X.begin(), ds->train.X.begin() + 24);
  std::vector<int32_t> firstY(ds->train.Y.begin(), ds->train.Y.begin() + 8);
  CHECK(firstX == std::vector<int32_t>{0,  0, 0, 0, 0, 25, 0, 25, 21, 25, 21, 8,
                                       21, 8, 5, 8, 5, 14, 5, 14, 7,  0,  0,  0});
  CHECK(firstY == std::vector<int32_t>{25, 21, 8, 5, 14, 7, 0, 4});
  std::vector<int32_t> valX(ds->val.X.begin(), ds->val.X.begin() + 15);
  CHECK(valX == std::vector<int32_t>{0, 0, 0, 0, 0, 1, 0, 1, 13, 1, 13, 1, 13, 1, 25});
  std::vector<int32_t> testY(ds->test.Y.begin(), ds->test.Y.begin() + 8);
  CHECK(testY == std::vector<int32_t>{13, 21, 19, 20, 1, 6, 1, 0});
  // Last train row: the end of "holdan".
  std::vector<int32_t> lastX(ds->train.X.end() - 3, ds->train.X.end());
  CHECK(lastX == std::vector<int32_t>{4, 1, 14});
  CHECK(ds->train.Y.back() == 0);

  // Whole-split checksums from Python: sum of all X entries and of all Y.
  CHECK(sum(ds->train.X) == 4262158);
  CHECK(sum(ds->train.Y) == 1688642);
  CHECK(sum(ds->val.X) == 527735);
  CHECK(sum(ds->val.Y) == 209217);
  CHECK(sum(ds->test.X) == 534472);
  CHECK(sum(ds->test.Y) == 211375);

  auto ds8 = buildDataset(*words, 8);
  REQUIRE(errText(ds8) == "");
  CHECK(ds8->train.rows() == 182625);
  CHECK(sum(ds8->train.X) == 6205747);
  CHECK(sum(ds8->val.X) == 762787);
  CHECK(sum(ds8->test.X) == 780091);
}

// The sampler against the draw it must reproduce: one rng.below(rows) per row,
// in order, copying that row's context and target. Both storages: ids that
// fit a byte (packed rows) and an id of 300 (the split's int32s).
TEST_CASE("BatchSampler draws the same rows as a direct draw", "[dataset]") {
  for (int32_t largest : {26, 300}) {
    const int64_t context = 3, rows = 1000;
    Split split;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t t = 0; t < context; ++t)
        split.X.push_back(static_cast<int32_t>((r * 7 + t * 13) % 27));
      split.Y.push_back(static_cast<int32_t>((r * 11) % 27));
    }
    split.Y[rows / 2] = largest;
    const BatchSampler sampler(split, context);
    Rng drawn(5), expected(5);
    // Batches below, at and above the draws the sampler makes ahead (32).
    for (int64_t size : {1, 5, 31, 32, 33, 64, 100}) {
      std::vector<int32_t> X(size * context), Y(size);
      for (int batch = 0; batch < 20; ++batch) {
        sampler.sample(drawn, size, X.data(), Y.data());
        for (int64_t i = 0; i < size; ++i) {
          const int64_t row = static_cast<int64_t>(expected.below(rows));
          for (int64_t t = 0; t < context; ++t)
            REQUIRE(X[i * context + t] == split.X[row * context + t]);
          REQUIRE(Y[i] == split.Y[row]);
        }
      }
    }
  }
}
