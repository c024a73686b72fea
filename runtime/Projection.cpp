#include "runtime/Projection.h"

#include <cmath>

namespace mlpc {
namespace {

using Matrix = std::vector<std::vector<double>>;

// The dominant eigenvector of the symmetric `m` (power iteration from a fixed
// start, enough iterations for plotting accuracy), and its eigenvalue.
std::vector<double> dominant(const Matrix &m, double &eigenvalue) {
  size_t n = m.size();
  std::vector<double> v(n), next(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = 1.0 + 0.1 * static_cast<double>(i); // not orthogonal to any axis in practice
  eigenvalue = 0;
  for (int iter = 0; iter < 500; ++iter) {
    double norm = 0;
    for (size_t i = 0; i < n; ++i) {
      next[i] = 0;
      for (size_t j = 0; j < n; ++j)
        next[i] += m[i][j] * v[j];
      norm += next[i] * next[i];
    }
    norm = std::sqrt(norm);
    if (norm == 0)
      break;
    for (size_t i = 0; i < n; ++i)
      v[i] = next[i] / norm;
    eigenvalue = norm;
  }
  size_t big = 0;
  for (size_t i = 0; i < n; ++i)
    if (std::fabs(v[i]) > std::fabs(v[big]))
      big = i;
  if (v[big] < 0)
    for (double &x : v)
      x = -x;
  return v;
}

} // namespace

Projection2D project2D(const float *table, int64_t rows, int64_t cols) {
  Projection2D p;
  p.x.resize(rows);
  p.y.resize(rows);
  if (cols <= 2) {
    for (int64_t r = 0; r < rows; ++r) {
      p.x[r] = table[r * cols];
      p.y[r] = cols == 2 ? table[r * cols + 1] : 0.0;
    }
    return p;
  }
  p.principal = true;
  std::vector<double> mean(cols, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      mean[c] += table[r * cols + c] / static_cast<double>(rows);
  Matrix cov(cols, std::vector<double>(cols, 0.0));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < cols; ++i)
      for (int64_t j = 0; j < cols; ++j)
        cov[i][j] += (table[r * cols + i] - mean[i]) * (table[r * cols + j] - mean[j]);
  double total = 0;
  for (int64_t i = 0; i < cols; ++i)
    total += cov[i][i];
  double l1 = 0, l2 = 0;
  std::vector<double> a = dominant(cov, l1);
  for (int64_t i = 0; i < cols; ++i) // deflate: remove the first component
    for (int64_t j = 0; j < cols; ++j)
      cov[i][j] -= l1 * a[i] * a[j];
  std::vector<double> b = dominant(cov, l2);
  for (int64_t r = 0; r < rows; ++r) {
    double x = 0, y = 0;
    for (int64_t c = 0; c < cols; ++c) {
      x += (table[r * cols + c] - mean[c]) * a[c];
      y += (table[r * cols + c] - mean[c]) * b[c];
    }
    p.x[r] = x;
    p.y[r] = y;
  }
  if (total > 0) {
    p.explained[0] = l1 / total;
    p.explained[1] = l2 / total;
  }
  return p;
}

} // namespace mlpc
