// Training minibatches: rows of a split drawn uniformly with replacement.
#pragma once

#include "runtime/Dataset.h"
#include "runtime/Rng.h"

#include <cstdint>
#include <vector>

namespace mlpc {

// Draws `batch` rows of `split` per call, one rng.below(rows) each, in order:
// the contexts into X (batch x context) and the targets into Y. The same rng
// state gives the same rows whatever the storage below.
//
// Why a class: a random row of names.txt's training split (182625 rows of 3
// + 1 int32s, 2.9 MB) misses the 2 MB L2 of the hosts we measure on, and the
// draws are the only access the step cannot hide. When every token id fits
// in a byte (27 tokens here), the rows are packed once, context + 1 bytes
// each (0.7 MB, which stays in L2 between steps): a standalone loop of the
// draws on the Sapphire Rapids host, with 256 KB of other data touched
// between batches as a step does, took 0.63 -> 0.22 us at batch 32 and
// 2.9 -> 1.0 us at batch 256. Larger ids read the split's int32s.
// On the Zen 4 host (1 MB L2, which the step's own data fills) the packed
// rows were still missed, each draw waiting for the last: timed inside
// `mlpc bench`'s loop, 8.5-12.4 us per batch of 256 (4-5% of the step) and
// 1.2-1.6 us per batch of 32. Drawing kDrawsAhead rows ahead (the same
// draws in the same order) and prefetching them overlaps the misses:
// 2.9-3.9 and 0.38-0.48 us (16 ahead: 3.4-4.6 and 0.56-0.75).
// The split must outlive the sampler and stay unchanged.
class BatchSampler {
public:
  BatchSampler(const Split &split, int64_t context);
  void sample(Rng &rng, int64_t batch, int32_t *X, int32_t *Y) const;

private:
  static constexpr int64_t kDrawsAhead = 32;
  const Split &split_;
  int64_t context_;
  std::vector<uint8_t> packed_; // rows x (context + 1) bytes, or empty
};

} // namespace mlpc
