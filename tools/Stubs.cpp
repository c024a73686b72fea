#include "tools/Driver.h"
namespace mlpc {
static int notYet() { return reportError("not implemented yet"); }
int runCompile(const ParsedArgs &) { return notYet(); }
} // namespace mlpc
