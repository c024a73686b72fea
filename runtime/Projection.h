// Two-dimensional views of an embedding table for plotting: the raw
// coordinates when it has two columns (as in the seed's plot), else its first
// two principal components.
#pragma once

#include <cstdint>
#include <vector>

namespace mlpc {

struct Projection2D {
  std::vector<double> x, y;     // one point per row
  bool principal = false;       // the principal components, not raw columns
  double explained[2] = {1, 0}; // fraction of the total variance on each axis
};

// `table` is rows x cols, row-major (cols >= 1). Principal components come
// from the covariance of the mean-centred rows by power iteration with
// deflation (cols is small: an embedding width); each axis's sign is fixed so
// that its largest-magnitude loading is positive (deterministic plots).
Projection2D project2D(const float *table, int64_t rows, int64_t cols);

} // namespace mlpc
