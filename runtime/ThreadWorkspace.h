// A compiled function's workspace as each thread of its team sees it.
//
// One allocation that every thread uses, unless privatize() is given the
// pages that thread 1 of a team of two may keep to itself
// (codegen/ThreadPages.h): then the workspace is a memfd mapped twice,
// thread 0's mapping (also every one-thread call's) all of it, thread 1's
// the same memory except in those pages, which are anonymous pages of its
// own. The code reads and writes the same offsets from either base, so
// nothing but the memory behind those pages changes: on a host whose two
// cores are far apart, two threads sharing the physical pages of their own
// rows ran the step barely faster than one (bench/PERFORMANCE.md, "Vector width and
// threads", the session of 2026-12-03 from 20:11 UTC).
#pragma once

#include "codegen/Compiler.h"

#include <llvm/ADT/ArrayRef.h>

#include <cstddef>

namespace mlpc {

class ThreadWorkspace {
public:
  // `bytes` (at least 64), 64-byte aligned, shared by every thread.
  explicit ThreadWorkspace(size_t bytes);
  ~ThreadWorkspace();
  ThreadWorkspace(const ThreadWorkspace &) = delete;
  ThreadWorkspace &operator=(const ThreadWorkspace &) = delete;

  // Remaps the workspace so that thread 1 has `pages` (byte ranges of whole
  // pages from the start) to itself. The contents are lost (a workspace
  // holds nothing between calls). False, with the shared allocation kept,
  // where the system cannot (no memfd, a failed mapping, a page size other
  // than codegen::kThreadPageBytes).
  bool privatize(llvm::ArrayRef<ByteRange> pages);
  bool privatized() const { return second_ != nullptr; }
  // The base thread `index` passes to the compiled code.
  void *forThread(unsigned index) const { return index == 1 && second_ ? second_ : base_; }
  // Thread 0's mapping: the one every thread shares.
  void *shared() const { return base_; }

private:
  void release();
  size_t bytes_ = 0, mapped_ = 0;
  void *base_ = nullptr, *second_ = nullptr; // second_: set by privatize()
};

} // namespace mlpc
