#include "python/Arrays.h"

#include <fmt/format.h>

namespace mlpc::python {

namespace {

std::string shapeOf(const py::array &a) {
  std::string s = "[";
  for (py::ssize_t i = 0; i < a.ndim(); ++i)
    s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + "]";
}

} // namespace

IndexArray indexArray(py::handle obj, const char *name, int64_t rows, int64_t cols, int64_t limit) {
  py::array a = py::array::ensure(obj);
  if (!a)
    throw py::value_error(fmt::format("{} must be a numpy array of int32 indices", name));
  char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw py::value_error(fmt::format("{} must hold integer indices (int32), got dtype {}", name,
                                      std::string(py::str(a.dtype()))));
  const py::ssize_t ndim = cols > 0 ? 2 : 1;
  std::string want = cols > 0 ? fmt::format("[{}, {}]", rows < 0 ? "n" : std::to_string(rows), cols)
                              : fmt::format("[{}]", rows < 0 ? "n" : std::to_string(rows));
  if (a.ndim() != ndim || (cols > 0 && a.shape(1) != cols) || (rows >= 0 && a.shape(0) != rows))
    throw py::value_error(fmt::format("{} must have shape {}, got {}", name, want, shapeOf(a)));
  // int64 holds every value of every integer dtype but uint64's top half,
  // which is out of range anyway (checked as negative below).
  auto values = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
  if (!values)
    throw py::error_already_set();
  IndexArray out;
  out.rows = a.shape(0);
  out.values.resize(values.size());
  const int64_t *data = values.data();
  for (py::ssize_t i = 0; i < values.size(); ++i) {
    if (data[i] < 0 || data[i] >= limit)
      throw py::value_error(fmt::format("{} holds the index {} at flat position {}, outside the "
                                        "vocabulary [0, {})",
                                        name, data[i], i, limit));
    out.values[i] = static_cast<int32_t>(data[i]);
  }
  return out;
}

} // namespace mlpc::python
