#pragma once

#include "passes/Pass.h"

namespace mlpc {

// See passes/FoldBatchNorm.cpp for the contract and the derivation.
bool foldBatchNorm(Graph &g, PassContext &ctx);

} // namespace mlpc

#include <map>
#include <string>
#include <vector>

namespace mlpc {

// materialize-constants: every maximal subgraph computed only from Param,
// State and Const values (e.g. fold-batchnorm's W * s) is evaluated once, in
// f64 with the interpreter, and replaced by a new Param leaf (named after the
// subgraph's value) whose f32 values are added to `weights`. Leaves that end
// up unused are dropped. Returns true if anything was materialized; errors
// (a missing weight) go to ctx.diags.
bool materializeConstantSubgraphs(Graph &g, std::map<std::string, std::vector<float>> &weights,
                                  PassContext &ctx);

} // namespace mlpc
