// The reference interpreter: evaluates any graph in double precision with
// plain loops. It is the oracle the fused gradients, the JIT and the folded
// inference graph are tested against, so it favours obviousness over speed.
#pragma once

#include "ir/Graph.h"

#include <llvm/Support/Error.h>

#include <map>
#include <string>
#include <vector>

namespace mlpc {

using Values = std::vector<std::vector<double>>; // one flat row-major buffer per node

// Leaves (inputs, params, state) are bound by name; i32 inputs hold exact
// integers. Returns every node's value, or an error for a missing or
// mis-sized binding or an out-of-range index.
llvm::Expected<Values> interpret(const Graph &g,
                                 const std::map<std::string, std::vector<double>> &leaves);

} // namespace mlpc
