// What every pass sees: the graph it rewrites and a place to explain itself.
// A pass returns true when it changed the graph.
#pragma once

#include "ir/Graph.h"
#include "support/Diagnostics.h"

namespace mlpc {

struct PassContext {
  DiagnosticEngine *diags = nullptr; // where located errors and --verbose remarks go
  bool verbose = false;

  void remark(SourceLoc loc, std::string message) const {
    if (verbose && diags)
      diags->note(loc, std::move(message));
  }
};

// Uses of each value inside the graph, as user lists (outputs excluded).
std::vector<std::vector<ValueId>> userLists(const Graph &g);

// Cleanup: CSE, constant folding, algebraic identities, dead-code elimination.
bool simplify(Graph &g, PassContext &ctx);
// The same, but reductions over size-1 axes stay (for the fusion patterns).
bool simplifyBeforeFusion(Graph &g, PassContext &ctx);

// Atomic softmax-cross-entropy chains -> one cross_entropy op.
bool fuseCrossEntropy(Graph &g, PassContext &ctx);

// Atomic BatchNorm chains (batch mean, Bessel variance) -> one batchnorm op.
bool fuseBatchNorm(Graph &g, PassContext &ctx);

} // namespace mlpc
