// A compiled function's workspace as each thread sees it (ThreadWorkspace.h).
#include "runtime/ThreadWorkspace.h"

#include "codegen/ThreadPages.h"

#include <llvm/Support/ErrorHandling.h>

#include <cstdlib>
#include <cstring>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace mlpc {

ThreadWorkspace::ThreadWorkspace(size_t bytes) : bytes_(bytes < 64 ? 64 : bytes) {
  bytes_ = (bytes_ + 63) / 64 * 64;
  base_ = std::aligned_alloc(64, bytes_);
  if (!base_)
    llvm::report_bad_alloc_error("mlpc: cannot allocate a workspace");
}

ThreadWorkspace::~ThreadWorkspace() {
  release();
}

void ThreadWorkspace::release() {
#if defined(__linux__)
  if (second_) { // privatize() replaced the allocation by two mappings
    munmap(base_, mapped_);
    munmap(second_, mapped_);
    base_ = second_ = nullptr;
    return;
  }
#endif
  std::free(base_);
  base_ = nullptr;
}

bool ThreadWorkspace::privatize(llvm::ArrayRef<ByteRange> pages) {
#if defined(__linux__)
  const int64_t page = codegen::kThreadPageBytes;
  if (pages.empty() || privatized() || sysconf(_SC_PAGESIZE) != page)
    return false;
  const size_t size = (bytes_ + page - 1) / page * page;
  for (const ByteRange &r : pages)
    if (r.begin < 0 || r.begin % page || r.end % page || r.end <= r.begin || size_t(r.end) > size)
      return false;
  const int fd = memfd_create("mlpc-workspace", MFD_CLOEXEC);
  if (fd < 0)
    return false;
  void *first = MAP_FAILED, *second = MAP_FAILED;
  if (ftruncate(fd, off_t(size)) == 0) {
    first = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    second = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  }
  close(fd); // the mappings keep the memory
  bool ok = first != MAP_FAILED && second != MAP_FAILED;
  for (const ByteRange &r : pages) {
    if (!ok)
      break;
    void *at = static_cast<char *>(second) + r.begin;
    ok = mmap(at, size_t(r.end - r.begin), PROT_READ | PROT_WRITE,
              MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == at;
  }
  if (!ok) {
    if (first != MAP_FAILED)
      munmap(first, size);
    if (second != MAP_FAILED)
      munmap(second, size);
    return false;
  }
  std::free(base_);
  base_ = first;
  second_ = second;
  mapped_ = size;
  return true;
#else
  (void)pages;
  return false;
#endif
}

} // namespace mlpc
