// A fixed sequence of minibatches (`mlpc train --batches FILE`): a
// safetensors file with the model's input as i32[S, N, T] and its target as
// i32[S, N] (tensor names = the model's input and target names). Replaying
// it instead of sampling makes a run a function of two files (this one and
// the `--init` parameters), which is what a step-by-step comparison with
// another framework needs (scripts/torch_optim_crosscheck.py).
#pragma once

#include "ir/Graph.h"

#include <llvm/Support/Error.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mlpc {

struct BatchSequence {
  int64_t steps = 0, rows = 0, context = 0;
  std::vector<int32_t> X; // steps * rows * context
  std::vector<int32_t> Y; // steps * rows
  const int32_t *x(int64_t step) const { return X.data() + step * rows * context; }
  const int32_t *y(int64_t step) const { return Y.data() + step * rows; }
};

// Reads and validates the file against the forward graph `g` (its Input
// leaves: one [N, T] input, one [N] target) and the vocabulary size: every
// index must be in [0, vocab).
llvm::Expected<BatchSequence> readBatchSequence(const std::string &path, const Graph &g,
                                                int64_t vocab);

} // namespace mlpc
