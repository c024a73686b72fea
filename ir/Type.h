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

std::string toString(DType t);
std::string toString(const Shape &s);      // "[32, 30]"
std::string toString(const TensorType &t); // "f32[32, 30]"

// Largest element count of any one tensor; lowering rejects bigger shapes
// (and any dimension product that would overflow) before anything is allocated.
constexpr int64_t kMaxTensorElements = int64_t(1) << 31;

} // namespace mlpc
