// Numerical gradient checking with the f64 interpreter (the oracle for the
// autodiff and fusion passes).
#pragma once

#include "ir/Interpreter.h"

namespace mlpc {

using LeafValues = std::map<std::string, std::vector<double>>;

// Central finite differences of the scalar output "loss" of `g` with respect
// to the given elements of leaf `leaf` (step h, in f64). Returns one
// derivative per element index.
llvm::Expected<std::vector<double>> finiteDifferences(const Graph &g, LeafValues leaves,
                                                      const std::string &leaf,
                                                      const std::vector<size_t> &elements,
                                                      double h = 1e-6);

struct Discrepancy {
  double maxAbs = 0; // max |a - b|
  double maxRel = 0; // max |a - b| / max(|a|, |b|, floor): 0 for two exact zeros
};
// Compares a[indices[i]] (or a[i] when indices is empty) with b[i].
Discrepancy compareValues(const std::vector<double> &a, const std::vector<double> &b,
                          const std::vector<size_t> &indices = {}, double floor = 1e-6);

} // namespace mlpc
