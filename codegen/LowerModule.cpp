// Graph -> LLVM module(s): checks, buffer planning, and the split of a big
// graph into separately compiled modules (GraphSplit in Lowering.h).
#include "codegen/Lowering.h"

#include "ir/ShapeRules.h"

#include <llvm/IR/Verifier.h>
#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

using namespace llvm;

namespace mlpc::codegen {
namespace {

Error fail(std::string message) {
  return createStringError(inconvertibleErrorCode(), message);
}

Expected<BufferPlan> checkAndPlan(const Graph &g, const std::string &name,
                                  const CompileOptions &options) {
  if (!isCIdentifier(name))
    return fail(fmt::format("function name '{}' is not a C identifier", name));
  std::vector<std::string> problems = verifyGraph(g);
  if (!problems.empty())
    return fail("invalid graph: " + problems.front());
  return planBuffers(g, options.sgdUpdate, options.parallel);
}

// The JIT's modules drop the names of instructions, arguments and blocks
// (function names stay): nobody reads them, and naming costs the lowering
// ~10% (string building and the symbol table). `mlpc emit` keeps them.
LoweredModule emptyModule(const std::string &name, TargetMachine &tm, bool valueNames) {
  LoweredModule out;
  out.context = std::make_unique<LLVMContext>();
  out.context->setDiscardValueNames(!valueNames);
  out.module = std::make_unique<Module>(name, *out.context);
  out.module->setDataLayout(tm.createDataLayout());
  out.module->setTargetTriple(tm.getTargetTriple().str());
  return out;
}

Error verify(LoweredModule &out, const std::string &name) {
  std::string message;
  raw_string_ostream os(message);
  if (verifyModule(*out.module, &os))
    return fail("internal error: invalid LLVM IR for '" + name + "': " + os.str());
  return Error::success();
}

// The profile counters follow the planned workspace, 64-byte aligned.
std::optional<size_t> profileOffset(const BufferPlan &plan, const CompileOptions &options) {
  if (!options.profileNodes)
    return std::nullopt;
  return static_cast<size_t>(roundUpTo(plan.workspaceBytes, kBufferAlign));
}

template <typename Out> // LoweredModule or GraphSplit
void describeBindings(const Graph &g, const BufferPlan &plan, const CompileOptions &options,
                      Out &out) {
  out.workspaceBytes = static_cast<size_t>(plan.workspaceBytes);
  out.profileOffset = profileOffset(plan, options);
  if (out.profileOffset)
    out.workspaceBytes = *out.profileOffset + 8 * g.size() * CompileOptions::kProfileCounters;
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node &n = g[v];
    if (!isBindingLeaf(n.op))
      continue;
    BindingInfo::Kind kind = n.op == Op::Input   ? BindingInfo::Kind::Input
                             : n.op == Op::Param ? BindingInfo::Kind::Param
                                                 : BindingInfo::Kind::State;
    out.bindings.push_back({kind, n.name, n.type, false, OutputRole::Value, {}});
  }
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    const GraphOutput &o = g.outputs[i];
    std::vector<std::string> subjects;
    for (std::optional<ValueId> s : {o.subject, o.subject2})
      if (s)
        subjects.push_back(g[*s].name);
    out.bindings.push_back({BindingInfo::Kind::Output, o.name, g[o.value].type,
                            plan.outputs[i].optional, o.role, std::move(subjects)});
  }
}

} // namespace

bool isCIdentifier(const std::string &s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0])))
    return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_')
      return false;
  return true;
}

Expected<LoweredModule> lowerGraph(const Graph &g, const std::string &name,
                                   const CompileOptions &options, TargetMachine &tm) {
  Expected<BufferPlan> plan = checkAndPlan(g, name, options);
  if (!plan)
    return plan.takeError();
  LoweredModule out = emptyModule(name, tm, /*valueNames=*/true);
  GraphLowering lowering(g, *plan, *out.module, tm, options.vectorBits);
  lowering.setProfileOffset(profileOffset(*plan, options));
  lowering.setParallel(options.parallel);
  lowering.setTraceLines(options.traceLines);
  lowering.emit(name);
  if (Error e = verify(out, name))
    return e;
  describeBindings(g, *plan, options, out);
  out.rowUses = lowering.rowUses();
  return out;
}

namespace {

// The split of `cost` (per node) into `modules` groups of contiguous ranges
// that minimises the most expensive group. The node sequence is read as a
// cycle and cut into `modules` arcs, so a group is one range, or two when
// its arc wraps from the last node to the first (the middle of the graph on
// one thread, both ends on the other: the makemore training step's best
// 2-way cut is 2384 : 2334 IR instructions this way, against 2566 : 2152
// for the best cut into two contiguous halves). For each starting node, the
// smallest feasible per-arc cap is found by bisection (greedy packing is
// exact for a fixed cap); ties prefer no wrap (fewer ranges).
void planRanges(const std::vector<size_t> &cost, unsigned modules, GraphSplit &split) {
  const size_t n = cost.size();
  size_t total = 0, largest = 0;
  for (size_t c : cost) {
    total += c;
    largest = std::max(largest, c);
  }
  // Arcs used when packing from `start` with at most `cap` per arc; the
  // start (rotated position) of every arc when `starts` is given.
  auto pack = [&](size_t start, size_t cap, std::vector<size_t> *starts) {
    unsigned arcs = 1;
    size_t load = 0;
    if (starts)
      starts->assign(1, 0);
    for (size_t i = 0; i < n; ++i) {
      size_t c = cost[(start + i) % n];
      if (load + c > cap && load > 0) {
        ++arcs;
        load = 0;
        if (starts)
          starts->push_back(i);
      }
      load += c;
    }
    return arcs;
  };
  size_t bestCap = total, bestStart = 0;
  for (size_t start = 0; start < n; ++start) {
    if (start > 0 && cost[start - 1] == 0)
      continue; // the same arcs as an earlier start
    size_t lo = std::max(largest, (total + modules - 1) / modules), hi = bestCap;
    if (pack(start, hi, nullptr) > modules)
      continue;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (pack(start, mid, nullptr) <= modules)
        hi = mid;
      else
        lo = mid + 1;
    }
    if (hi < bestCap) {
      bestCap = hi;
      bestStart = start;
    }
  }
  std::vector<size_t> starts;
  pack(bestStart, bestCap, &starts);
  // Arcs -> ranges in node order; the group holding node 0 becomes module 0.
  std::vector<std::pair<size_t, unsigned>> rangeStarts; // (first node, arc)
  for (unsigned a = 0; a < starts.size(); ++a) {
    size_t first = (bestStart + starts[a]) % n;
    size_t last = a + 1 < starts.size() ? starts[a + 1] : n; // rotated end
    rangeStarts.push_back({first, a});
    if (bestStart + starts[a] < n && bestStart + last > n)
      rangeStarts.push_back({0, a}); // wraps: the arc continues at node 0
  }
  std::sort(rangeStarts.begin(), rangeStarts.end());
  const unsigned firstArc = rangeStarts.front().second;
  split.bounds.clear();
  split.moduleOf.clear();
  split.moduleCost.assign(starts.size(), 0);
  for (const auto &[first, arc] : rangeStarts) {
    unsigned module = arc == firstArc ? 0 : arc < firstArc ? arc + 1 : arc;
    split.bounds.push_back(first);
    split.moduleOf.push_back(module);
  }
  split.bounds.push_back(n);
  for (size_t r = 0; r + 1 < split.bounds.size(); ++r)
    for (size_t v = split.bounds[r]; v < split.bounds[r + 1]; ++v)
      split.moduleCost[split.moduleOf[r]] += cost[v];
}

std::string rangeName(const std::string &name, size_t range) {
  return fmt::format("{}.part{}", name, range);
}

} // namespace

Expected<GraphSplit> splitGraph(const Graph &g, const std::string &name,
                                const CompileOptions &options, TargetMachine &tm,
                                unsigned maxModules, size_t minModuleWeight) {
  Expected<BufferPlan> plan = checkAndPlan(g, name, options);
  if (!plan)
    return plan.takeError();
  GraphSplit split;
  // Costs from a trial lowering (a few ms): a node's IR instructions,
  // weighed by what each kind costs the backend (LowerGraph.cpp:
  // backendWeight), predict what its machine code costs to generate.
  std::vector<size_t> cost;
  {
    LoweredModule trial = emptyModule(name, tm, /*valueNames=*/false);
    cost = GraphLowering(g, *plan, *trial.module, tm, options.vectorBits).emitMeasured(name);
  }
  size_t total = 0;
  for (size_t c : cost)
    total += c;
  size_t modules = std::clamp<size_t>(total / std::max<size_t>(minModuleWeight, 1), 1, maxModules);
  if (modules > 1 && g.size() > 1) {
    planRanges(cost, static_cast<unsigned>(modules), split);
  } else {
    split.bounds = {0, g.size()};
    split.moduleOf = {0};
    split.moduleCost = {total};
  }
  describeBindings(g, *plan, options, split);
  split.plan = std::move(*plan);
  return split;
}

Expected<LoweredModule> lowerSplitModule(const Graph &g, const std::string &name,
                                         const CompileOptions &options, const GraphSplit &split,
                                         unsigned index, TargetMachine &tm) {
  // Range 0 is module 0's (planRanges): the body runs it, then calls the others.
  const size_t ranges = split.moduleOf.size();
  LoweredModule out =
      emptyModule(index == 0 ? name : rangeName(name, index), tm, /*valueNames=*/false);
  GraphLowering lowering(g, split.plan, *out.module, tm, options.vectorBits);
  lowering.setProfileOffset(split.profileOffset);
  lowering.setParallel(options.parallel);
  lowering.setTraceLines(options.traceLines);
  for (size_t r = 1; r < ranges; ++r)
    if (split.moduleOf[r] == index)
      lowering.emitPart(rangeName(name, r), split.bounds[r], split.bounds[r + 1]);
  if (index == 0) {
    std::vector<std::string> calls;
    for (size_t r = 1; r < ranges; ++r)
      calls.push_back(rangeName(name, r));
    lowering.emitHead(name, split.bounds[1], calls);
  }
  if (Error e = verify(out, name))
    return e;
  out.rowUses = lowering.rowUses();
  if (index == 0) {
    out.workspaceBytes = split.workspaceBytes;
    out.bindings = split.bindings;
    out.profileOffset = split.profileOffset;
  }
  return out;
}

} // namespace mlpc::codegen
