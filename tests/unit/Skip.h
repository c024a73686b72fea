// Tests that cannot run: a test case that lacks something it needs (names.txt)
// calls skipTest() and returns. The binary then exits with kSkipExitCode
// instead of 0 (main.cpp), which CTest reports as skipped, not passed
// (SKIP_RETURN_CODE in tests/CMakeLists.txt); .ci/run fails on any skipped
// test. Tests that need names.txt are tagged [names] and run as their own
// CTest entry, `unit.names`, so a missing file skips exactly those.
#pragma once

#include <catch2/catch.hpp>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include <llvm/Support/FileSystem.h>

namespace mlpc::test {

constexpr int kSkipExitCode = 77;

// The number of test cases skipped in this run (defined in main.cpp).
int &skippedTestCount();

inline void skipTest(const std::string &reason) {
  ++skippedTestCount();
  WARN("SKIPPED: " << reason);
}

// names.txt for the tests: $MLPC_DATA when it is set (a file or a directory;
// if it names nothing, the tests that need names.txt skip, which is how to
// see the skip reporting: `MLPC_DATA=/nonexistent ctest -R names`), else
// data/names.txt in the source tree, else ../shared/data/names.txt next to
// it, the places scripts/setup.sh looks.
inline std::optional<std::string> namesFile() {
  std::string source = MLPC_SOURCE_DIR;
  std::vector<std::string> candidates = {source + "/data/names.txt",
                                         source + "/../shared/data/names.txt"};
  if (const char *env = std::getenv("MLPC_DATA"); env && *env)
    candidates = {env, std::string(env) + "/names.txt"};
  for (const std::string &c : candidates)
    if (llvm::sys::fs::is_regular_file(c))
      return c;
  return std::nullopt;
}

// namesFile(), or skips the test case (the caller returns on nullopt).
inline std::optional<std::string> namesFileOrSkip() {
  std::optional<std::string> path = namesFile();
  if (!path)
    skipTest("names.txt not found in $MLPC_DATA, data/ or ../shared/data/ "
             "(scripts/setup.sh downloads it)");
  return path;
}

} // namespace mlpc::test
