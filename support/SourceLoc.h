// A position in a model file. Line and column are 1-based; 0 means "unknown"
// (e.g. values the compiler synthesised, such as gradients).
#pragma once
#include <cstdint>

namespace mlpc {

struct SourceLoc {
  uint32_t line = 0;
  uint32_t col = 0;
  bool isValid() const { return line != 0; }
};

} // namespace mlpc
