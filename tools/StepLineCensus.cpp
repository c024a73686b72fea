// tools/StepLineCensus.h.
#include "tools/StepLineCensus.h"

#include "tools/BenchSteps.h"

#include "runtime/LineCensus.h"
#include "runtime/ThreadTeam.h"
#include "runtime/Trainer.h"

#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

namespace mlpc {
namespace {

const char *crossingName(LineCensus::Crossing c) {
  switch (c) {
  case LineCensus::Crossing::WriteAfterRead:
    return "write after read";
  case LineCensus::Crossing::WriteAfterWrite:
    return "write after write";
  case LineCensus::Crossing::ReadAfterWrite:
    return "read after write";
  }
  return "?";
}

llvm::Error fail(const std::string &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

} // namespace

llvm::Expected<llvm::json::Object> lineCensus(const ModelAST &ast, const Vocabulary &vocab,
                                              DiagnosticEngine &diags, const Split &train,
                                              int64_t warmup, int64_t steps,
                                              const ExecutionOptions &execution) {
  if (execution.threads == 1)
    return fail("--line-census counts the lines that pass between threads: give --threads 2 or "
                "more (the default, auto, runs 2 for it)");
  if (execution.threads > LineCensus::kMaxThreads)
    return fail(fmt::format("--line-census counts at most {} threads", LineCensus::kMaxThreads));
  ExecutionOptions options = execution;
  options.threads = std::max(options.threads, 2u); // auto: two threads
  auto runtime = ModelRuntime::create(ast, vocab, diags, {}, options);
  if (!runtime)
    return runtime.takeError();
  ModelRuntime &model = **runtime;
  ThreadTeam *team = model.threadTeam();
  if (!team)
    return fail("internal error: --line-census has no thread team");
  LineCensus census;
  team->setTracer(&LineCensus::record, &census);
  // Equal parts (or --shares), not balanced: the counts then do not depend
  // on which core was faster, and a run can be compared with the next.
  if (execution.shares.empty())
    team->fixShares(std::vector<double>(team->size(), 1.0));
  model.enableLineTrace();
  model.initParams(42);
  const BatchSampler sampler(train, model.context());
  Rng rng(1);
  if (llvm::Error e = runTrainSteps(model, sampler, rng, 1)) // compiles and binds the step
    return e;
  census.describe(*model.trainBound());
  if (llvm::Error e = runTrainSteps(model, sampler, rng, warmup))
    return e;
  census.startCounting();
  for (int64_t s = 0; s < steps; ++s) {
    if (llvm::Error e = runTrainSteps(model, sampler, rng, 1))
      return e;
    census.countStep();
  }

  const Graph &g = model.trainingGraph();
  const double perStep = 1.0 / static_cast<double>(steps);
  using C = LineCensus::Crossing;
  llvm::raw_ostream &os = llvm::errs(); // stdout carries the one JSON line
  os << fmt::format(
      "cache lines crossing between {} threads per step of {} train_step ({} steps "
      "after {}, equal parts): {:.0f} written after another thread read them, "
      "{:.0f} after another wrote them, {:.0f} read after another wrote them\n",
      team->size(), model.module().name, steps, warmup, census.total(C::WriteAfterRead) * perStep,
      census.total(C::WriteAfterWrite) * perStep, census.total(C::ReadAfterWrite) * perStep);
  os << fmt::format("{:>9}  {:<18} {:<5} {:<24} {}\n", "lines", "crossing", "node", "op", "buffer");
  llvm::json::Array rows;
  for (const LineCensus::Row &r : census.rows()) {
    const bool known = r.node >= 0 && static_cast<size_t>(r.node) < g.size();
    std::string op = known ? opInfo(g[r.node].op).name : "(before the first node)";
    if (known && !g[r.node].name.empty())
      op += " " + g[r.node].name;
    os << fmt::format("{:>9.1f}  {:<18} %{:<4} {:<24} {}\n", r.lines * perStep,
                      crossingName(r.crossing), r.node, op, r.buffer);
    rows.push_back(llvm::json::Object{{"node", r.node},
                                      {"op", op},
                                      {"buffer", r.buffer},
                                      {"crossing", crossingName(r.crossing)},
                                      {"lines_per_step", r.lines * perStep}});
  }
  return llvm::json::Object{
      {"census_threads", static_cast<int64_t>(team->size())},
      {"census_steps", steps},
      {"census_lines_per_step",
       llvm::json::Object{{"write_after_read", census.total(C::WriteAfterRead) * perStep},
                          {"write_after_write", census.total(C::WriteAfterWrite) * perStep},
                          {"read_after_write", census.total(C::ReadAfterWrite) * perStep}}},
      {"census", std::move(rows)}};
}

} // namespace mlpc
