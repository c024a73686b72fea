// Deterministic textual and Graphviz renderings of a graph (the `ir`, `fused`,
// `grad`, `infer` and `dot` stages of `mlpc emit`).
#pragma once

#include "ir/Graph.h"

#include <string>

namespace mlpc {

std::string printGraph(const Graph &g);
std::string printNode(const Graph &g, ValueId v); // one line, without newline
std::string printDot(const Graph &g);

} // namespace mlpc
