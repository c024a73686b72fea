#include "tools/Driver.h"
namespace mlpc {
static int notYet() { return reportError("not implemented yet"); }
int runTrain(const ParsedArgs &) { return notYet(); }
int runEval(const ParsedArgs &) { return notYet(); }
int runSample(const ParsedArgs &) { return notYet(); }
int runCompile(const ParsedArgs &) { return notYet(); }
int runFoldCheck(const ParsedArgs &) { return notYet(); }
} // namespace mlpc
