// The unit tests' main: Catch2's, except that a run in which some test case
// skipped itself (Skip.h) and none failed exits with kSkipExitCode, so that
// CTest reports it as skipped rather than passed.
#define CATCH_CONFIG_RUNNER
#include "Skip.h"

#include <cstdio>

int &mlpc::test::skippedTestCount() {
  static int count = 0;
  return count;
}

int main(int argc, char **argv) {
  int rc = Catch::Session().run(argc, argv);
  int skipped = mlpc::test::skippedTestCount();
  if (rc == 0 && skipped > 0) {
    std::fprintf(stderr, "%d test case(s) SKIPPED (see the warnings above); exit %d\n", skipped,
                 mlpc::test::kSkipExitCode);
    return mlpc::test::kSkipExitCode;
  }
  return rc;
}
