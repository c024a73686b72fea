// Parameter initialisation from the model's init expressions.
#pragma once

#include "ir/Graph.h"
#include "runtime/Rng.h"

#include <map>
#include <string>
#include <vector>

namespace mlpc {

using TensorMap = std::map<std::string, std::vector<float>>;

// Evaluates every Param leaf's init expression once per element (row-major),
// parameters in declaration order, all from one stream: the same seed gives
// the same parameters. State leaves (BatchNorm running statistics) start as
// PyTorch's do: mean 0, variance 1.
TensorMap initParameters(const Graph &g, Rng &rng);

double evalInit(const InitExpr &e, Rng &rng);

} // namespace mlpc
