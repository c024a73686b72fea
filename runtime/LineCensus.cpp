// runtime/LineCensus.h.
#include "runtime/LineCensus.h"

#include "codegen/BufferPlan.h"
#include "runtime/BoundFunction.h"

#include <algorithm>
#include <optional>

namespace mlpc {

namespace {
constexpr uintptr_t kLineBytes = 64;
} // namespace

void LineCensus::describe(BoundFunction &fn) {
  std::lock_guard<std::mutex> lock(mutex_);
  const CompiledFunction &f = fn.function();
  bindings_.clear();
  for (size_t i = 0; i < f.bindings().size(); ++i) {
    const BindingInfo &b = f.bindings()[i];
    if (auto p = reinterpret_cast<uintptr_t>(fn.arguments()[i]))
      bindings_.push_back({p, p + static_cast<uintptr_t>(b.type.numel() * codegen::kElemBytes),
                           "binding " + b.name});
  }
  workspace_ = reinterpret_cast<uintptr_t>(fn.workspace());
  workspaceEnd_ = workspace_ + f.workspaceBytes();
  nodeRegions_ = f.nodeRegions();
}

void LineCensus::startCounting() {
  std::lock_guard<std::mutex> lock(mutex_);
  counts_.clear();
  counting_ = true;
  steps_ = 0;
}

void LineCensus::record(void *census, int64_t thread, const void *address, int64_t bytes,
                        int64_t kind) {
  auto *self = static_cast<LineCensus *>(census);
  const unsigned t = static_cast<unsigned>(thread) % kMaxThreads;
  if (kind == ThreadContext::kTraceNode) {
    std::lock_guard<std::mutex> lock(self->mutex_);
    self->currentNode_[t] = bytes;
    return;
  }
  self->access(t, reinterpret_cast<uintptr_t>(address), bytes, kind == ThreadContext::kTraceStore);
}

int LineCensus::intern(const std::string &name) {
  auto it = std::find(names_.begin(), names_.end(), name);
  if (it != names_.end())
    return static_cast<int>(it - names_.begin());
  names_.push_back(name);
  return static_cast<int>(names_.size() - 1);
}

// The buffer holding `address` as node `node` sees it: a binding, else one
// of the node's workspace regions (the bytes are reused by other values at
// other times), else the workspace at large.
int LineCensus::bufferOf(int64_t node, uintptr_t address) {
  for (const Range &r : bindings_)
    if (address >= r.begin && address < r.end)
      return intern(r.name);
  if (address < workspace_ || address >= workspaceEnd_)
    return intern("(outside the function's buffers)");
  const int64_t offset = static_cast<int64_t>(address - workspace_);
  if (node >= 0 && static_cast<size_t>(node) < nodeRegions_.size())
    for (const WorkspaceRegion &r : nodeRegions_[node])
      if (offset >= r.offset && offset < r.offset + r.bytes)
        return intern(r.label);
  return intern("(workspace, not this node's)");
}

void LineCensus::access(unsigned t, uintptr_t address, int64_t bytes, bool store) {
  std::lock_guard<std::mutex> lock(mutex_);
  const uint64_t self = uint64_t(1) << t;
  const uintptr_t first = address / kLineBytes,
                  last = (address + static_cast<uintptr_t>(bytes) - 1) / kLineBytes;
  for (uintptr_t l = first; l <= last; ++l) {
    Line &line = lines_[l];
    // `readers` leaves out the writer: after a store only it holds the line.
    const bool otherWriter = line.writer >= 0 && line.writer != static_cast<int16_t>(t);
    const bool heldModified = otherWriter && !(line.readers & self);
    std::optional<Crossing> crossing;
    if (store) {
      if (heldModified)
        crossing = Crossing::WriteAfterWrite;
      else if ((line.readers & ~self) || otherWriter)
        crossing = Crossing::WriteAfterRead;
      line.writer = static_cast<int16_t>(t);
      line.readers = 0;
    } else {
      if (heldModified)
        crossing = Crossing::ReadAfterWrite;
      if (line.writer != static_cast<int16_t>(t))
        line.readers |= self;
    }
    if (crossing && counting_) {
      const int64_t node = currentNode_[t];
      // Named by the bytes accessed, not the line's start: a line may begin in
      // the allocation before (parameters are not 64-byte aligned).
      const uintptr_t at = std::max(address, l * kLineBytes);
      ++counts_[{node, bufferOf(node, at), static_cast<int>(*crossing)}];
    }
  }
}

std::vector<LineCensus::Row> LineCensus::rows() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Row> out;
  for (const auto &[key, lines] : counts_)
    out.push_back({std::get<0>(key), names_[std::get<1>(key)],
                   static_cast<Crossing>(std::get<2>(key)), lines});
  std::stable_sort(out.begin(), out.end(),
                   [](const Row &a, const Row &b) { return a.lines > b.lines; });
  return out;
}

uint64_t LineCensus::total(Crossing c) const {
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t sum = 0;
  for (const auto &[key, lines] : counts_)
    if (std::get<2>(key) == static_cast<int>(c))
      sum += lines;
  return sum;
}

} // namespace mlpc
