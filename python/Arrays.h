// numpy index arrays (contexts X, targets Y) checked before they reach
// compiled code, which indexes embedding tables with them unchecked: a
// wrong dtype, shape or out-of-range index is a ValueError, never a crash.
#pragma once

#include <pybind11/numpy.h>

#include <cstdint>
#include <vector>

namespace mlpc::python {

namespace py = pybind11;

struct IndexArray {
  std::vector<int32_t> values; // row-major
  int64_t rows = 0;
};

// `obj`: an integer numpy array (any integer dtype; a list of ints is
// converted) of shape [rows, cols], or [rows] when cols == 0, with every
// entry in [0, limit). `rows` < 0 accepts any row count. `name` ("X", "Y")
// names the argument in errors.
IndexArray indexArray(py::handle obj, const char *name, int64_t rows, int64_t cols, int64_t limit);

} // namespace mlpc::python
