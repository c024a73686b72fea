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

// Strides of `operand` broadcast into `out` (trailing axes aligned): per
// axis of `out`, the operand's stride, 0 where the operand has size 1 or no
// axis. Shared by the f64 interpreter (BroadcastIndexer) and the generated
// elementwise loops.
inline std::vector<int64_t> broadcastStrides(const Shape &operand, const Shape &out) {
  std::vector<int64_t> strides(out.size(), 0);
  int64_t stride = 1;
  for (size_t i = 0; i < operand.size(); ++i) {
    size_t axis = operand.size() - 1 - i, outAxis = out.size() - 1 - i;
    if (operand[axis] != 1)
      strides[outAxis] = stride;
    stride *= operand[axis];
  }
  return strides;
}

std::string toString(DType t);
std::string toString(const Shape &s);      // "[32, 30]"
std::string toString(const TensorType &t); // "f32[32, 30]"

// Largest element count of any one tensor; lowering rejects bigger shapes
// (and any dimension product that would overflow) before anything is allocated.
constexpr int64_t kMaxTensorElements = int64_t(1) << 31;

} // namespace mlpc
