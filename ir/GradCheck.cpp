#include "ir/GradCheck.h"

#include <cmath>

namespace mlpc {

llvm::Expected<std::vector<double>> finiteDifferences(const Graph &g, LeafValues leaves,
                                                      const std::string &leaf,
                                                      const std::vector<size_t> &elements,
                                                      double h) {
  std::optional<ValueId> loss = g.output(OutputRole::Loss);
  if (!loss)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "graph has no loss output");
  auto lossAt = [&]() -> llvm::Expected<double> {
    auto values = interpret(g, leaves);
    if (!values)
      return values.takeError();
    return (*values)[*loss][0];
  };
  std::vector<double> result;
  std::vector<double> &x = leaves[leaf];
  for (size_t i : elements) {
    double saved = x[i];
    x[i] = saved + h;
    auto plus = lossAt();
    if (!plus)
      return plus.takeError();
    x[i] = saved - h;
    auto minus = lossAt();
    if (!minus)
      return minus.takeError();
    x[i] = saved;
    result.push_back((*plus - *minus) / (2 * h));
  }
  return result;
}

Discrepancy compareValues(const std::vector<double> &a, const std::vector<double> &b,
                          const std::vector<size_t> &indices, double floor) {
  Discrepancy d;
  for (size_t i = 0; i < b.size(); ++i) {
    double x = indices.empty() ? a[i] : a[indices[i]], y = b[i];
    double diff = std::fabs(x - y);
    if (!(diff == diff)) // NaN on either side is a total mismatch
      diff = INFINITY;
    d.maxAbs = std::max(d.maxAbs, diff);
    double scale = std::max({std::fabs(x), std::fabs(y), floor});
    d.maxRel = std::max(d.maxRel, diff / scale);
  }
  return d;
}

} // namespace mlpc
