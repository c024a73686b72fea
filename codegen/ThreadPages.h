// Thread-private pages for a team of two: which workspace pages thread 1
// may map privately (runtime/ThreadWorkspace.h) without changing a bit of
// the results.
//
// Why: on a host whose two cores are far apart (vCPUs ~230 ns from each
// other), two threads that share the workspace's physical memory ran the
// parallel step barely faster than one thread, even in nodes where they
// never touch the same cache line; with thread 1 on pages of its own the
// same code ran 1.45x faster than one thread at makemore H = 1024 / B =
// 256 (bench/PERFORMANCE.md, "Vector width and threads", the session of 2026-12-03 from
// 20:11 UTC). The cause below the guest is unknown; keeping each thread's
// rows on pages only it maps is what the measurements say works.
//
// When it is right: parallel code splits the trips of every shared loop
// between the threads by their parts (ThreadContext::shareBegin / End). With
// two threads and equal parts many kernels split a value's elements exactly
// at the middle: thread 0 touches only the first half, thread 1 only the
// second (a matmul's row tiles when the tiles divide the rows into an even
// count, an elementwise loop whose trips do, the four row blocks of the
// batch statistics...). Lowering records, per workspace value (its root),
// every node whose code touched it (GraphLowering::buf) and the nodes that
// declared such a split for it (GraphLowering::splitsAtMiddle). A value is
// halved when every node that touched it declared the split. A page is
// thread 1's when every region of the plan that covers any byte of it
// (values reusing the bytes at other times, scratch, statistics, thread
// slots) is a halved value's and the page lies in that value's second half.
// Thread 0 then never touches the page, and thread 1 writes every byte it
// reads there earlier in the same step (workspace values do not outlive a
// step). A kernel that touches a value without declaring a split keeps it
// shared: a missed declaration costs speed, never bits.
//
// The runtime uses the pages only for a team of exactly two threads with
// equal, fixed parts (runtime/BoundFunction.cpp); any other team, and every
// one-thread call of the code, uses the one shared mapping.
#pragma once

#include "codegen/BufferPlan.h"
#include "codegen/Compiler.h"
#include "ir/Graph.h"

#include <cstdint>
#include <set>
#include <utility>
#include <vector>

namespace mlpc::codegen {

// What lowering recorded: (value root, node) pairs.
struct RowUses {
  std::set<std::pair<ValueId, ValueId>> touched, halved;
  void merge(const RowUses &other) {
    touched.insert(other.touched.begin(), other.touched.end());
    halved.insert(other.halved.begin(), other.halved.end());
  }
};

// The mapping granularity the runtime assumes (x86-64 and AArch64 Linux
// both map 4 KB pages; a larger page size only makes fewer pages private).
constexpr int64_t kThreadPageBytes = 4096;

// Thread 1's pages, as merged byte ranges relative to the workspace start
// (which the runtime aligns to a page).
std::vector<ByteRange> secondThreadPages(const Graph &g, const BufferPlan &plan,
                                         const RowUses &uses);

} // namespace mlpc::codegen
