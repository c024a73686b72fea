// The IR optimisation schedule for lowered kernels, and the JIT's concurrent
// machine-code generation.
//
// Pass schedule. The lowering already writes what -O3 would otherwise have to
// discover: explicit <VW x float> vectors, register-blocked loops with
// constant trip counts, noalias arguments and alias scopes, fused loops. On
// the makemore training step (6.3k IR instructions) the O3 pipeline cost
// ~190 ms of CPU and unrolled the code to 13k instructions (64 KB of machine
// code, another ~220 ms in the backend), with no measurable gain: the step
// ran at 19.5-20.4 us with O3, with this schedule and with no IR passes at
// all (tests/unit/test_codegen_makemore.cpp [.bench], thread CPU time).
// What remains is cheap and shrinks what the backend has to select:
//   early-cse<memssa>  repeated address arithmetic and reloads of the same
//                      element across fused expressions: -16% instructions
//                      (6352 -> 5328) for ~5 ms
//   licm               loop-invariant loads/splats (broadcast leaves of
//                      elementwise loops, bias rows in matmul epilogues)
//   simplifycfg        the empty blocks left by loop construction
// Not run: instcombine and gvn (~30 ms each on the training step, nothing the
// DAG combiner and MachineCSE do not also catch here), the loop unrollers and
// vectorisers (the kernels are vectorised and blocked by construction;
// unrolling doubled compile time), the inliner (one call per function).
// optLevel 0 runs nothing (for debugging the lowering).
//
// Concurrent compilation: lowerGraphParts splits a big graph into modules
// with their own contexts; part 0 is compiled on the calling thread, each
// other part on a thread of its own with its own TargetMachine (a target
// machine caches subtargets and is not thread-safe). Machine-code
// generation is ~85% of the compile time and scales with code size; the
// makemore step in two parts (~2.7k + 2.1k IR instructions) takes ~87 ms of
// CPU in ~49 ms of wall time on the two cores of the development machine
// (repeat compiles; the first compile in a process adds ~25 ms of cold
// caches and one-time LLVM initialisation).
#include "codegen/Lowering.h"
#include "codegen/ObjectCache.h"

#include <llvm/ExecutionEngine/Orc/CompileUtils.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/Error.h>
#include <llvm/Support/thread.h>

#include <optional>

using namespace llvm;

namespace mlpc::codegen {
namespace {
const char *const kPassPipeline = "function(early-cse<memssa>,loop-mssa(licm),simplifycfg)";
} // namespace

void runModulePipeline(Module &m, TargetMachine &tm,
                       function_ref<ModulePassManager(PassBuilder &)> buildPipeline) {
  LoopAnalysisManager lam;
  FunctionAnalysisManager fam;
  CGSCCAnalysisManager cgam;
  ModuleAnalysisManager mam;
  PassBuilder pb(&tm);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  ModulePassManager mpm = buildPipeline(pb);
  mpm.run(m, mam);
}

void runPassSchedule(Module &m, TargetMachine &tm, unsigned optLevel) {
  if (optLevel == 0)
    return;
  runModulePipeline(m, tm, [](PassBuilder &pb) {
    ModulePassManager mpm;
    cantFail(pb.parsePassPipeline(mpm, kPassPipeline));
    return mpm;
  });
}

Expected<std::vector<std::unique_ptr<MemoryBuffer>>>
compileModules(unsigned count, TargetMachine &tm, unsigned optLevel,
               function_ref<Expected<std::unique_ptr<TargetMachine>>()> makeTm,
               function_ref<Expected<LoweredModule>(unsigned, TargetMachine &)> lower,
               ObjectCache *cache) {
  auto compileOne = [&](unsigned index,
                        TargetMachine &machine) -> Expected<std::unique_ptr<MemoryBuffer>> {
    Expected<LoweredModule> part = lower(index, machine);
    if (!part)
      return part.takeError();
    std::string key;
    if (cache) {
      key = cache->key(*part->module, machine, kPassPipeline, optLevel);
      if (auto object = cache->lookup(key))
        return std::move(object);
    }
    runPassSchedule(*part->module, machine, optLevel);
    orc::SimpleCompiler compiler(machine);
    auto object = compiler(*part->module);
    if (cache && object)
      cache->store(key, (*object)->getMemBufferRef());
    return object;
  };
  // Worker results; each slot is written by its own thread only.
  std::vector<std::optional<Expected<std::unique_ptr<MemoryBuffer>>>> results(count);
  std::vector<llvm::thread> workers;
  for (unsigned p = 1; p < count; ++p)
    workers.emplace_back([&, p] {
      auto machine = makeTm();
      if (!machine)
        results[p].emplace(machine.takeError());
      else
        results[p].emplace(compileOne(p, **machine));
    });
  results[0].emplace(compileOne(0, tm));
  for (llvm::thread &w : workers)
    w.join();

  std::vector<std::unique_ptr<MemoryBuffer>> objects;
  Error errors = Error::success();
  for (auto &r : results) {
    if (*r)
      objects.push_back(std::move(**r));
    else
      errors = joinErrors(std::move(errors), r->takeError());
  }
  if (errors)
    return errors;
  return objects;
}

} // namespace mlpc::codegen
