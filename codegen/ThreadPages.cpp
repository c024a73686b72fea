// Thread-private pages for a team of two (ThreadPages.h says when and why).
#include "codegen/ThreadPages.h"

#include <algorithm>
#include <map>

namespace mlpc::codegen {
namespace {

// The values whose every toucher declared a split at the middle.
std::vector<bool> halvedValues(const Graph &g, const BufferPlan &plan, const RowUses &uses) {
  std::vector<bool> halved(g.size(), false), undeclared(g.size(), false);
  for (const auto &[value, node] : uses.touched)
    if (uses.halved.count({value, node}) == 0)
      undeclared[value] = true;
  for (const auto &[value, node] : uses.touched)
    halved[value] = !undeclared[value] && plan.storage[value] == Storage::Workspace &&
                    plan.region[value] >= 0 && g[value].type.numel() % 2 == 0;
  return halved;
}

} // namespace

std::vector<ByteRange> secondThreadPages(const Graph &g, const BufferPlan &plan,
                                         const RowUses &uses) {
  const std::vector<bool> halved = halvedValues(g, plan, uses);
  // Per region of the plan: the second half of the halved value that owns
  // it, or an empty range (the region stays shared).
  std::vector<ByteRange> ownHalf(plan.regions.size());
  for (ValueId v = 0; v < g.size(); ++v)
    if (halved[v]) {
      const int64_t begin = plan.offset[v], bytes = g[v].type.numel() * kElemBytes;
      ownHalf[plan.region[v]] = {begin + bytes / 2, begin + bytes};
    }
  const int64_t pages = plan.workspaceBytes / kThreadPageBytes;
  std::vector<char> covered(pages, 0), shared(pages, 0);
  for (size_t r = 0; r < plan.regions.size(); ++r) {
    const Region &region = plan.regions[r];
    if (region.end <= region.begin)
      continue;
    const int64_t first = region.begin / kThreadPageBytes,
                  last = std::min(pages, (region.end + kThreadPageBytes - 1) / kThreadPageBytes);
    for (int64_t p = first; p < last; ++p) {
      covered[p] = 1;
      const int64_t a = p * kThreadPageBytes, b = a + kThreadPageBytes;
      // Shared unless the page lies in this region's own second half, or
      // the region does not reach into it (it ends or begins at the page's
      // edge) - regions are rounded up to 64 bytes, pages are 4 KB.
      const bool overlaps = region.begin < b && region.end > a;
      if (overlaps && !(ownHalf[r].begin <= a && b <= ownHalf[r].end))
        shared[p] = 1;
    }
  }
  std::vector<ByteRange> out;
  for (int64_t p = 0; p < pages; ++p) {
    if (!covered[p] || shared[p])
      continue;
    const int64_t a = p * kThreadPageBytes;
    if (!out.empty() && out.back().end == a)
      out.back().end = a + kThreadPageBytes;
    else
      out.push_back({a, a + kThreadPageBytes});
  }
  return out;
}

} // namespace mlpc::codegen
