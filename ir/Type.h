// Static tensor types: a dtype and a shape known at compile time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mlpc {

enum class DType { F32, I32 };

using Shape = std::vector<int64_t>;

struct TensorType {
  DType dtype = DType::F32;
  Shape shape; // empty = scalar

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    return n;
  }
  int rank() const { return static_cast<int>(shape.size()); }
  bool operator==(const TensorType &o) const { return dtype == o.dtype && shape == o.shape; }
  bool operator!=(const TensorType &o) const { return !(*this == o); }
};

// A shape seen as outer x size x inner around `axis` (-1: everything is
// `size`), the view every reduction over one axis iterates in (the f64
// interpreter and the generated kernels alike).
struct AxisSplit {
  int64_t outer = 1, size = 1, inner = 1;
  AxisSplit(const Shape &s, int axis) {
    if (axis < 0) {
      for (int64_t d : s)
        size *= d;
      return;
    }
    for (int i = 0; i < axis; ++i)
      outer *= s[i];
    size = s[axis];
    for (size_t i = axis + 1; i < s.size(); ++i)
      inner *= s[i];
  }
};

std::string toString(DType t);
std::string toString(const Shape &s);      // "[32, 30]"
std::string toString(const TensorType &t); // "f32[32, 30]"

// Largest element count of any one tensor; lowering rejects bigger shapes
// (and any dimension product that would overflow) before anything is allocated.
constexpr int64_t kMaxTensorElements = int64_t(1) << 31;

} // namespace mlpc
