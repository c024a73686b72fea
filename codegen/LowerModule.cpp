// Graph -> LLVM module(s): checks, buffer planning, and the split of a big
// graph into separately compiled parts (see lowerGraphParts in Lowering.h).
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
  // Every thread would add to the same per-node counters.
  if (options.parallel && options.profileNodes)
    return fail("per-node profiling needs code for one thread (no CompileOptions::parallel)");
  return planBuffers(g, options.sgdUpdate);
}

LoweredModule emptyModule(const std::string &name, TargetMachine &tm) {
  LoweredModule out;
  out.context = std::make_unique<LLVMContext>();
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
  return (static_cast<size_t>(plan.workspaceBytes) + 63) / 64 * 64;
}

void describeBindings(const Graph &g, const BufferPlan &plan, const CompileOptions &options,
                      LoweredModule &out) {
  out.workspaceBytes = static_cast<size_t>(plan.workspaceBytes);
  out.profileOffset = profileOffset(plan, options);
  if (out.profileOffset)
    out.workspaceBytes = *out.profileOffset + 8 * g.size();
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
  LoweredModule out = emptyModule(name, tm);
  GraphLowering lowering(g, *plan, *out.module, tm, options.vectorBits);
  lowering.setProfileOffset(profileOffset(*plan, options));
  lowering.setParallel(options.parallel);
  lowering.emit(name);
  if (Error e = verify(out, name))
    return e;
  describeBindings(g, *plan, options, out);
  return out;
}

Expected<std::vector<LoweredModule>> lowerGraphParts(const Graph &g, const std::string &name,
                                                     const CompileOptions &options,
                                                     TargetMachine &tm, unsigned maxParts,
                                                     size_t minPartInstructions) {
  Expected<BufferPlan> plan = checkAndPlan(g, name, options);
  if (!plan)
    return plan.takeError();
  // Split points from a trial lowering (a few ms): contiguous node ranges
  // with about equal IR instruction counts, which is roughly what their
  // machine code costs to generate.
  std::vector<size_t> cost;
  {
    LoweredModule trial = emptyModule(name, tm);
    cost = GraphLowering(g, *plan, *trial.module, tm, options.vectorBits).emitMeasured(name);
  }
  size_t total = 0;
  for (size_t c : cost)
    total += c;
  size_t parts = std::clamp<size_t>(total / std::max<size_t>(minPartInstructions, 1), 1, maxParts);
  std::vector<size_t> bounds{0};
  size_t running = 0;
  for (ValueId v = 0; v < g.size() && bounds.size() < parts; ++v) {
    running += cost[v];
    if (running * parts >= total * bounds.size() && v + 1 < g.size())
      bounds.push_back(v + 1);
  }
  bounds.push_back(g.size());

  std::vector<std::string> partNames;
  for (size_t p = 1; p + 1 < bounds.size(); ++p)
    partNames.push_back(fmt::format("{}.part{}", name, p));
  std::vector<LoweredModule> out;
  for (size_t p = 0; p + 1 < bounds.size(); ++p) {
    out.push_back(emptyModule(p ? partNames[p - 1] : name, tm));
    GraphLowering lowering(g, *plan, *out.back().module, tm, options.vectorBits);
    lowering.setProfileOffset(profileOffset(*plan, options));
    lowering.setParallel(options.parallel);
    if (p == 0)
      lowering.emitHead(name, bounds[1], partNames);
    else
      lowering.emitPart(partNames[p - 1], bounds[p], bounds[p + 1]);
    if (Error e = verify(out.back(), name))
      return e;
  }
  describeBindings(g, *plan, options, out.front());
  return out;
}

} // namespace mlpc::codegen
