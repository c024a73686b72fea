// The cache lines that pass between the threads of a team while a step runs
// (`mlpc bench --line-census`), counted from the step's own loads and stores
// (CompileOptions::traceLines, codegen/LineTrace.h).
//
// Why count them: a line that one core writes while another holds a copy,
// or reads while another holds it modified, moves between the cores, and on
// a host whose cores are far apart that costs far more than the access
// (bench/peak/cross_core_writes.c: ~9 us per 64 KB written after the other
// core read it, against ~1 us; bench/PERFORMANCE.md, "Threads"). The census says which
// node and which buffer each crossing comes from, so that a split can be
// checked to keep each thread on its own rows.
//
// What is counted, per 64-byte line, with the line's last writer and the
// threads that read it since: a store by thread t to a line another thread
// has read since it was last written (WriteAfterRead: the readers' copies
// must go first), else to a line another thread wrote and t has not read
// (WriteAfterWrite: the line moves, modified); a load by t of a line another
// thread wrote and t has not read since (ReadAfterWrite). A line first
// touched during the count is not a crossing. Only the generated code's
// accesses are seen: the team's barrier flags and the hardware prefetchers'
// fetches are not.
#pragma once

#include "codegen/Compiler.h"

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace mlpc {

class BoundFunction;

class LineCensus {
public:
  enum class Crossing { WriteAfterRead, WriteAfterWrite, ReadAfterWrite };
  static constexpr unsigned kMaxThreads = 64;

  // What addresses are reported against: the function's workspace regions
  // (CompiledFunction::nodeRegions) and its bound leaves and outputs, by
  // name. Call before the traced function runs.
  void describe(BoundFunction &fn);
  // Counts from now on (what happened before still sets each line's state).
  void startCounting();
  // The caller ran one more step since startCounting().
  void countStep() { ++steps_; }
  int64_t steps() const { return steps_; }

  // ThreadContext::traceAccess (pass the LineCensus as `tracer`); threads
  // 0 .. kMaxThreads - 1.
  static void record(void *census, int64_t thread, const void *address, int64_t bytes,
                     int64_t kind);

  struct Row {
    int64_t node;       // value id of the node whose code crossed
    std::string buffer; // "binding W1", "%16 hprebn", "scratch of %40", ...
    Crossing crossing;
    uint64_t lines; // since startCounting()
  };
  // Every (node, buffer, crossing) counted, most lines first.
  std::vector<Row> rows() const;
  uint64_t total(Crossing c) const;

private:
  struct Line {
    int16_t writer = -1;  // the last thread that stored to it
    uint64_t readers = 0; // the other threads that loaded it since, a bit each
  };
  struct Range {
    uintptr_t begin, end;
    std::string name;
  };
  void access(unsigned thread, uintptr_t address, int64_t bytes, bool store);
  int bufferOf(int64_t node, uintptr_t address);
  int intern(const std::string &name);

  mutable std::mutex mutex_;
  std::unordered_map<uintptr_t, Line> lines_;
  std::vector<int64_t> currentNode_ = std::vector<int64_t>(kMaxThreads, -1);
  std::vector<Range> bindings_;
  uintptr_t workspace_ = 0, workspaceEnd_ = 0;
  std::vector<std::vector<WorkspaceRegion>> nodeRegions_;
  std::vector<std::string> names_;
  std::map<std::tuple<int64_t, int, int>, uint64_t> counts_; // (node, buffer, crossing)
  bool counting_ = false;
  int64_t steps_ = 0;
};

} // namespace mlpc
