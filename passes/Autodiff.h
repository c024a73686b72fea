#pragma once

#include "passes/Pass.h"

#include <optional>

namespace mlpc {

// See passes/Autodiff.cpp for the contract. Errors go to ctx.diags.
std::optional<Graph> buildTrainingGraph(const Graph &forward, PassContext &ctx);

} // namespace mlpc
