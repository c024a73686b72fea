// runtime/BatchSampler.h.
#include "runtime/BatchSampler.h"

#include <algorithm>

namespace mlpc {

BatchSampler::BatchSampler(const Split &split, int64_t context) : split_(split), context_(context) {
  auto fitsByte = [](int32_t id) { return id >= 0 && id < 256; };
  if (!std::all_of(split.X.begin(), split.X.end(), fitsByte) ||
      !std::all_of(split.Y.begin(), split.Y.end(), fitsByte))
    return;
  const int64_t rows = split.rows(), width = context + 1;
  packed_.resize(static_cast<size_t>(rows * width));
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t *row = packed_.data() + r * width;
    for (int64_t t = 0; t < context; ++t)
      row[t] = static_cast<uint8_t>(split.X[r * context + t]);
    row[context] = static_cast<uint8_t>(split.Y[r]);
  }
}

void BatchSampler::sample(Rng &stream, int64_t batch, int32_t *X, int32_t *Y) const {
  // The draws from a copy, handed back at the end: with the caller's Rng,
  // whose words the compiler must assume X and Y may overwrite, every draw
  // stored the four words and the next loaded them back, a store-to-load
  // round trip on the generator's dependency chain (~10 cycles a draw; Zen
  // 5, 256 draws: 0.73 -> 0.62 us). The same stream.
  Rng rng = stream;
  const uint64_t rows = static_cast<uint64_t>(split_.rows());
  if (packed_.empty()) {
    for (int64_t r = 0; r < batch; ++r) {
      const int64_t row = static_cast<int64_t>(rng.below(rows));
      std::copy_n(split_.X.data() + row * context_, context_, X + r * context_);
      Y[r] = split_.Y[row];
    }
    stream = rng;
    return;
  }
  // Row r + kDrawsAhead is drawn (in order: the same stream) and its bytes
  // prefetched before row r is copied, so that the rows' cache misses
  // overlap instead of following each other.
  const int64_t width = context_ + 1;
  const uint8_t *ahead[kDrawsAhead];
  auto draw = [&] {
    const uint8_t *row = packed_.data() + static_cast<int64_t>(rng.below(rows)) * width;
    __builtin_prefetch(row);
    return row;
  };
  for (int64_t r = 0; r < std::min<int64_t>(batch, kDrawsAhead); ++r)
    ahead[r] = draw();
  for (int64_t r = 0; r < batch; ++r) {
    const uint8_t *row = ahead[r % kDrawsAhead];
    if (r + kDrawsAhead < batch)
      ahead[r % kDrawsAhead] = draw();
    for (int64_t t = 0; t < context_; ++t)
      X[r * context_ + t] = row[t];
    Y[r] = row[context_];
  }
  stream = rng;
}

} // namespace mlpc
