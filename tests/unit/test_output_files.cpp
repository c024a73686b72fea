// runtime/OutputFiles.h: output paths are checked before any work, and a
// result whose write fails is saved to a fallback file (the failure is
// injected here; tests/reliability/full_disk.sh fills a real file system).
// Also the loss log of a training run on a full device (/dev/full).
#include "TrainingFixture.h"
#include "runtime/OutputFiles.h"
#include "runtime/Trainer.h"

#include <catch2/catch.hpp>

#include <llvm/Support/FileSystem.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace mlpc;
namespace fs = std::filesystem;

namespace {

struct ScratchDir {
  fs::path path;
  ScratchDir() {
    llvm::SmallString<128> p;
    REQUIRE(!llvm::sys::fs::createUniqueDirectory("mlpc-output-test", p));
    path = std::string(p.str());
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string &name) const { return (path / name).string(); }
};

std::vector<std::string> listDir(const fs::path &dir) {
  std::vector<std::string> names;
  for (const auto &e : fs::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string slurp(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string errorText(llvm::Error e) {
  return e ? llvm::toString(std::move(e)) : std::string();
}

bool contains(const std::string &text, const std::string &part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("output paths are checked before any work", "[output]") {
  ScratchDir d;
  CHECK(errorText(checkOutputPath(d / "x.safetensors", "--out")) == "");
  CHECK(listDir(d.path).empty()); // the probe file is gone

  std::string missing = errorText(checkOutputPath(d / "nodir/x.safetensors", "--out"));
  CHECK(contains(missing, "--out: cannot write '" + d / "nodir/x.safetensors" + "'"));
  CHECK(contains(missing, "the directory '" + d / "nodir" + "' does not exist"));

  CHECK(contains(errorText(checkOutputPath(d.path.string(), "--metrics")), "is a directory"));
  CHECK(contains(errorText(checkOutputPath(d / "sub/", "--log")), "is a directory"));

  std::ofstream(d / "file") << "x";
  CHECK(contains(errorText(checkOutputPath(d / "file/x.json", "--stats")),
                 "'" + d / "file" + "' is not a directory"));
  // An existing file is replaced, so it is fine.
  CHECK(errorText(checkOutputPath(d / "file", "--stats")) == "");
  CHECK(contains(errorText(checkOutputPath("", "-o")), "-o: the path is empty"));
  // A directory nobody can create files in, not even root.
  if (fs::exists("/proc/self"))
    CHECK(contains(errorText(checkOutputPath("/proc/x.json", "--metrics")),
                   "cannot create files in '/proc'"));
}

TEST_CASE("output directories are checked before any work", "[output]") {
  ScratchDir d;
  CHECK(errorText(checkOutputDir(d.path.string(), "-o")) == "");
  CHECK(errorText(checkOutputDir(d / "new/nested", "-o")) == ""); // created later
  CHECK(listDir(d.path).empty());
  std::ofstream(d / "file") << "x";
  CHECK(contains(errorText(checkOutputDir(d / "file", "-o")), "it is not a directory"));
  CHECK(contains(errorText(checkOutputDir(d / "file/plots", "-o")),
                 "'" + d / "file" + "' is not a directory"));
  if (fs::exists("/proc/self"))
    CHECK(contains(errorText(checkOutputDir("/proc/plots", "-o")), "cannot create files"));
}

TEST_CASE("files are written atomically and leave no temporaries", "[output]") {
  ScratchDir d;
  REQUIRE(errorText(writeFileAtomically(d / "m.json", "{}\n")) == "");
  CHECK(slurp(d / "m.json") == "{}\n");
  REQUIRE(errorText(writeFileAtomically(d / "m.json", "[1]\n")) == "");
  CHECK(slurp(d / "m.json") == "[1]\n");
  CHECK(listDir(d.path) == std::vector<std::string>{"m.json"});
  CHECK(contains(errorText(writeFileAtomically(d / "nodir/m.json", "x")),
                 "cannot write '" + d / "nodir/m.json" + "'"));
  // A device is written in place, not replaced: /dev/full reports the full disk.
  if (fs::exists("/dev/full"))
    CHECK(contains(errorText(writeFileAtomically("/dev/full", "x")), "No space left on device"));
}

TEST_CASE("a result that cannot be written goes to a fallback file", "[output]") {
  ScratchDir d;
  const std::string target = d / "out/metrics.json";
  fs::create_directories(d.path / "out");
  fs::create_directories(d.path / "second");
  int attempts = 0;
  // Fails (like a full disk) for the result's own directory, works elsewhere.
  auto write = [&](const std::string &path) -> llvm::Error {
    ++attempts;
    if (fs::path(path).parent_path() == d.path / "out")
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "cannot write '%s': No space left on device (injected)",
                                     path.c_str());
    return writeFileAtomically(path, "{\"loss\": 2}\n");
  };

  SECTION("the first fallback directory that works is used and named") {
    // The first fallback does not exist: the second takes the result.
    std::string message =
        errorText(writeWithFallback(target, "metrics", write, {d / "missing", d / "second"}));
    CHECK(attempts == 2);
    CHECK(contains(message, "No space left on device (injected)"));
    std::vector<std::string> saved = listDir(d.path / "second");
    REQUIRE(saved.size() == 1);
    CHECK(saved[0].rfind("metrics.recovered-", 0) == 0);
    CHECK(fs::path(saved[0]).extension() == ".json");
    CHECK(contains(message, "; saved the metrics to '" + d / "second/" + saved[0] + "' instead"));
    CHECK(slurp(d / "second/" + saved[0]) == "{\"loss\": 2}\n");
    CHECK(listDir(d.path / "out").empty());
    CHECK(!fs::exists(d.path / "missing"));
  }
  SECTION("when every fallback fails, the error says the result is lost and no file is left") {
    auto failing = [&](const std::string &path) -> llvm::Error {
      ++attempts;
      return llvm::createStringError(llvm::inconvertibleErrorCode(), "cannot write '%s': full",
                                     path.c_str());
    };
    std::string message =
        errorText(writeWithFallback(target, "checkpoint", failing, {d / "second"}));
    CHECK(attempts == 2);
    CHECK(contains(message, "the checkpoint is lost: no fallback file could be written either"));
    CHECK(listDir(d.path / "second").empty());
  }
  SECTION("a result written where asked needs no fallback") {
    REQUIRE(errorText(writeWithFallback(d / "second/m.json", "metrics", write, {d / "out"})) == "");
    CHECK(attempts == 1);
    CHECK(listDir(d.path / "second") == std::vector<std::string>{"m.json"});
  }
}

TEST_CASE("fallback directories: $TMPDIR, then next to the model", "[output]") {
  ScratchDir d;
  const char *old = std::getenv("TMPDIR");
  std::string saved = old ? old : "";
  ::setenv("TMPDIR", d.path.c_str(), 1);
  std::vector<std::string> dirs = fallbackDirectories("examples/makemore.mlp");
  std::vector<std::string> alone = fallbackDirectories(d / "model.mlp");
  if (old)
    ::setenv("TMPDIR", saved.c_str(), 1);
  else
    ::unsetenv("TMPDIR");
  CHECK(dirs == std::vector<std::string>{d.path.string(), "examples"});
  CHECK(alone == std::vector<std::string>{d.path.string()}); // the same directory once
}

TEST_CASE("a loss log on a full disk is reported, and training still finishes",
          "[output][training][names]") {
  if (!fs::exists("/dev/full"))
    return test::skipTest("/dev/full is not available");
  test::TrainingFixture f("makemore.mlp");
  if (!f.ready())
    return;
  TrainOptions options;
  options.steps = 600; // ~11 KB of log: more than stdio buffers
  options.reportEvery = 1000000;
  options.logCsvPath = "/dev/full";
  std::string out;
  llvm::raw_string_ostream progress(out);
  auto model = f.runtime();
  model->initParams(1);
  auto summary = trainModel(*model, f.data->train, options, progress);
  REQUIRE(bool(summary));
  CHECK(summary->nextStep == 600);
  CHECK(summary->logError ==
        "cannot write log '/dev/full': No space left on device; the log is incomplete");
}
