// The first-fit arena BufferPlan.cpp places workspace buffers with.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace mlpc::codegen {

// First-fit arena allocator over [0, inf): the live blocks are kept sorted by
// offset; a request takes the lowest gap that fits. Graphs have at most a few
// hundred buffers, so the linear scans are cheaper than anything smarter.
class Arena {
public:
  int64_t allocate(int64_t bytes, int id) {
    int64_t at = 0;
    auto it = live_.begin();
    for (; it != live_.end(); ++it) {
      if (it->begin - at >= bytes)
        break;
      at = std::max(at, it->end);
    }
    live_.insert(it, Block{at, at + bytes, id});
    high_ = std::max(high_, at + bytes);
    return at;
  }
  // The block of `from` now belongs to `to` (a value written over another).
  void hand(int from, int to) {
    for (Block &b : live_)
      if (b.id == from)
        b.id = to;
  }
  void release(int id) {
    live_.erase(
        std::remove_if(live_.begin(), live_.end(), [&](const Block &b) { return b.id == id; }),
        live_.end());
  }
  int64_t highWater() const { return high_; }

private:
  struct Block {
    int64_t begin, end;
    int id;
  };
  std::vector<Block> live_;
  int64_t high_ = 0;
};

} // namespace mlpc::codegen
