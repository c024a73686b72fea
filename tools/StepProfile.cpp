// Per-node timing of the training step. The generated code adds the cycle
// counter difference around each node's code to a counter per node; the
// host converts cycles to microseconds with the same counter (x86: the
// time-stamp counter, which ticks at a constant rate) against the wall clock.
// The two counter reads per node cost a little; the report states the
// instrumented step time so the overhead is visible.
#include "tools/StepProfile.h"

#include "tools/BenchSteps.h"

#include "codegen/BufferPlan.h"
#include "ir/Type.h"
#include "runtime/ModelRuntime.h"
#include "runtime/Trainer.h"

#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <numeric>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define MLPC_HAVE_TSC 1
#endif

namespace mlpc {
namespace {

// The ops fused into node v's code: its operands (transitively) that ran no
// code of their own, e.g. "add <- matmul" for a matmul with a bias epilogue;
// then, in brackets, the nodes whose values v's kernel computes as well
// (codegen/KernelFills.cpp), e.g. "cross_entropy [+ cross_entropy_grad]".
std::string fusedLabel(const Graph &g, ValueId v, const uint64_t *counters,
                       const std::vector<int64_t> &filledBy) {
  std::vector<std::string> fused, filled;
  std::vector<ValueId> work(g[v].operands.begin(), g[v].operands.end());
  std::vector<bool> seen(g.size(), false);
  while (!work.empty()) {
    ValueId o = work.back();
    work.pop_back();
    const Node &n = g[o];
    if (seen[o] || counters[o] || filledBy[o] >= 0 || opInfo(n.op).kind == OpKind::Leaf)
      continue;
    seen[o] = true;
    std::string name = opInfo(n.op).name;
    if (std::find(fused.begin(), fused.end(), name) == fused.end())
      fused.push_back(name);
    work.insert(work.end(), n.operands.begin(), n.operands.end());
  }
  for (ValueId w = 0; w < g.size(); ++w)
    if (filledBy[w] == static_cast<int64_t>(v))
      filled.push_back(opInfo(g[w].op).name);
  std::string label = opInfo(g[v].op).name;
  for (size_t i = 0; i < fused.size(); ++i)
    label += (i ? "," : " <- ") + fused[i];
  for (size_t i = 0; i < filled.size(); ++i)
    label += (i ? "," : " [+ ") + filled[i] + (i + 1 == filled.size() ? "]" : "");
  return label;
}

// The per-node counters of `steps` profiled steps, per step in
// microseconds: thread t's time in node v (barrier waits included), and of
// it the time it waited in barriers (CompileOptions::profileNodes).
struct NodeTimes {
  const uint64_t *counters;
  size_t values;
  double ticksPerUs;
  int64_t steps;
  double us(ValueId v, unsigned t = 0) const {
    return counters[v + values * t] / ticksPerUs / steps;
  }
  double waited(ValueId v, unsigned t) const { return us(v, CompileOptions::kProfileThreads + t); }
};

// The table on `os` (the nodes by time, one column per thread and per
// thread's waits) and its rows as JSON.
llvm::json::Array printNodes(llvm::raw_ostream &os, const Graph &g,
                             const std::vector<int64_t> &filledBy, const NodeTimes &times,
                             llvm::ArrayRef<ValueId> nodes, unsigned threads, double stepUs) {
  std::string columns;
  for (unsigned t = 1; t < threads; ++t)
    columns += fmt::format(" {:>7}", fmt::format("thread{}", t));
  for (unsigned t = 0; t < threads && threads > 1; ++t)
    columns += fmt::format(" {:>6}", fmt::format("wait{}", t));
  os << fmt::format("{:>7}{} {:>6}  {:<5} {:<16} {:<36} {}\n", "us/step", columns, "share", "node",
                    "type", "op (<- ops fused into its loop)", "name");
  llvm::json::Array rows;
  for (ValueId v : nodes) {
    const Node &n = g[v];
    const double us = times.us(v);
    const std::string label = fusedLabel(g, v, times.counters, filledBy);
    columns.clear();
    llvm::json::Array byThread{us}, waitByThread;
    for (unsigned t = 1; t < threads; ++t) {
      columns += fmt::format(" {:>7.2f}", times.us(v, t));
      byThread.push_back(times.us(v, t));
    }
    for (unsigned t = 0; t < threads && threads > 1; ++t) {
      columns += fmt::format(" {:>6.2f}", times.waited(v, t));
      waitByThread.push_back(times.waited(v, t));
    }
    os << fmt::format("{:>7.2f}{} {:>5.1f}%  %{:<4} {:<16} {:<36} {}\n", us, columns,
                      100 * us / stepUs, v, toString(n.type), label, n.name);
    rows.push_back(llvm::json::Object{{"node", static_cast<int64_t>(v)},
                                      {"op", label},
                                      {"type", toString(n.type)},
                                      {"name", n.name},
                                      {"us_per_step", us},
                                      {"us_per_step_by_thread", std::move(byThread)},
                                      {"barrier_wait_us_by_thread", std::move(waitByThread)}});
  }
  return rows;
}

} // namespace

llvm::Expected<llvm::json::Object> profileTrainStep(const ModelAST &ast, const Vocabulary &vocab,
                                                    DiagnosticEngine &diags, const Split &train,
                                                    int64_t steps,
                                                    const ExecutionOptions &execution) {
#ifndef MLPC_HAVE_TSC
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "--profile needs an x86 host (it reads the time-stamp counter)");
#else
  auto runtime = ModelRuntime::create(ast, vocab, diags, {}, execution);
  if (!runtime)
    return runtime.takeError();
  ModelRuntime &model = **runtime;
  model.enableProfiling();
  model.initParams(42);
  const BatchSampler sampler(train, model.context());
  Rng rng(1);
  auto runSteps = [&](int64_t n) { return runTrainSteps(model, sampler, rng, n); };
  if (llvm::Error e = runSteps(std::max<int64_t>(steps / 4, 10))) // compiles, warms up
    return e;
  const Graph &g = model.trainingGraph();
  auto plan =
      codegen::planBuffers(g, /*sgdUpdate=*/false); // for filledBy (the same in a parallel plan)
  if (!plan)
    return plan.takeError();
  uint64_t *counters = model.trainProfileCounters();
  if (!counters)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "internal error: the train step has no profile counters");
  const unsigned threads = std::min(model.threads(), CompileOptions::kProfileThreads);
  std::fill(counters, counters + g.size() * CompileOptions::kProfileCounters, 0);

  auto wallStart = std::chrono::steady_clock::now();
  uint64_t ticksStart = __rdtsc();
  if (llvm::Error e = runSteps(steps))
    return e;
  uint64_t ticks = __rdtsc() - ticksStart;
  double wallUs =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - wallStart)
          .count();
  const NodeTimes times{counters, g.size(), ticks / wallUs, steps};
  const double stepUs = wallUs / steps;

  std::vector<ValueId> nodes;
  for (ValueId v = 0; v < g.size(); ++v)
    if (counters[v])
      nodes.push_back(v);
  std::sort(nodes.begin(), nodes.end(),
            [&](ValueId a, ValueId b) { return counters[a] > counters[b]; });
  double nodesUs = 0;
  for (ValueId v : nodes)
    nodesUs += times.us(v);

  llvm::raw_ostream &os = llvm::errs(); // stdout carries the one JSON line
  os << fmt::format("profile of {} train_step over {} steps on {} thread{} (instrumented: {:.2f} "
                    "us/step; the nodes account for {:.2f} us, sampling and call overhead for the "
                    "rest){}\n",
                    model.module().name, steps, model.threads(), model.threads() == 1 ? "" : "s",
                    stepUs, nodesUs,
                    model.threads() == 1 ? ""
                                         : "; per thread, barrier waits included, and the "
                                           "waits alone (wait0, wait1, ...)");
  llvm::json::Array rows = printNodes(os, g, plan->filledBy, times, nodes, threads, stepUs);
  return llvm::json::Object{{"profile_steps", steps},
                            {"profile_threads", static_cast<int64_t>(model.threads())},
                            {"profile_step_us", stepUs},
                            {"profile_nodes_us", nodesUs},
                            {"profile", std::move(rows)}};
#endif
}

} // namespace mlpc
