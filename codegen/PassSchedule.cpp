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
// Where the JIT's time goes (makemore training step, `mlpc bench
// examples/makemore.mlp --threads 1`, 2-core Sapphire Rapids KVM guest,
// LLVM 19; this host's speed drifts by up to 1.7x within minutes, and one
// vCPU is at times 1.45x slower than the other, so min / median of 16
// runs in a quiet stretch): compile_ms 54-65 ms cold (57 / 82 over 40 runs
// in a loaded hour), of which
//   ModelRuntime::create     1.1-1.6 ms: frontend lowering, graph passes,
//                            the target check. The JIT (LLJIT) and one
//                            target machine per compile thread, with the
//                            two subtargets each the lowering asks for
//                            (~2 ms a machine: instruction and lowering
//                            tables), are made on background threads
//                            started there (codegen/TargetPool.h), done
//                            before the first compile (which waits for
//                            them) while the caller initialises the
//                            parameters and reads the data
//   splitGraph               1.9-2.2 ms, serial: buffer plan and a trial
//                            lowering that weighs each node (LowerGraph.cpp)
//   per module, 2 modules on 2 threads at once (the module with the
//   function head has the most lowering; the other the most machine code):
//     lowering               1.2-2.0 ms
//     IR passes (below)      2.3-3.2 ms
//     machine code           41-51 ms each on a quiet host, 60-80 loaded.
//                            Of it (llc-19 -time-passes on the whole step,
//                            90-100 ms on one core): instruction selection
//                            40% (half of that the DAG combiner), loop
//                            strength reduction + IV users 17%, greedy
//                            register allocation 8%, the machine scheduler
//                            6%, no other pass over 4%; malloc/free ~6% of
//                            the samples (perf), nothing of mlpc's own over
//                            0.2%
//   linking (JITLink)        0.25-0.3 ms; the first step ~0.03 ms
// The lowered modules carry no value names (LowerModule.cpp: ~10% of the
// lowering and passes). Before the target-machine pool the worker thread
// made its own target machine and subtargets inside every compile (~2.3 ms
// before its first instruction) and the trial lowering built the engine
// machine's subtargets (3.5-5 ms in all): compile_ms min / median 64.6 /
// 90.0 ms before, 57.2 / 82.5 after (40 interleaved runs each, loaded
// host). The machine code is byte-identical (the same objects in the
// on-disk cache), so the step's speed cannot change.
// The step is 3455 IR instructions after the passes (4017 before index
// arithmetic kept constant offsets outward and loads and stores took them
// as a second GEP, KernelBuilder::add / gep: the DAG combiner's work on i64
// adds, LSR's and the register allocator's all shrank; llc-style work on
// the whole step, callgrind's count of `mlpc emit --emit=asm --train-step`,
// 524 -> 484 M instructions, wavenet's 896 -> 824 M; machine code 2607 ->
// 2419 lines, leaq 145 -> 60 and imulq 81 -> 15). With it and the refitted
// split weights (LowerGraph.cpp, backendWeight), 20 interleaved cold runs:
// compile_ms min / median 59.3 / 78.6 -> 44.4 / 66.3, first_step_ms 66.6 /
// 87.4 -> 57.9 / 75.0. Still tried and not kept (callgrind): dropping licm
// (-2.3% work, the step's speed unresolved on this host), memoising index
// arithmetic per block (-0.8%, what early-cse does anyway). Not compile time: reading and windowing
// the names (6-9 ms, bench's data_ms); eval (512 rows, ~900 IR instructions, two modules, ~20 ms)
// and the split loss (~330, ~15 ms) compile on first use, after training. Tried and not kept:
// -disable-lsr (-11..-13% compile; the inner matmul loops get an imul and four leas per iteration,
// and the step's best of 72 reps was 4.5% slower) and -enable-misched=false (-6%, step 4% slower),
// both also process-wide LLVM options; CodeGenOptLevel::Less or Default (no faster); evaluating the
// 4-vector interleaved elementwise trees as four <16 x float> trees instead of one <64 x float>
// (the same time); the IR passes: by callgrind's instruction counts each of early-cse and licm
// costs about what it saves the backend (+-1% of the total), so the schedule below stays; more,
// smaller modules than threads taken from the queue (2, 3 or 4 per thread: +1-2 ms of fixed cost
// per module, never faster even with one vCPU slower than the other); the trial lowering cut in two
// ranges on two threads (each half took 1.0-2.2 ms, about what the whole
// takes on one thread); a warm-up compile of a small kernel on each pooled
// machine (the background threads then ran past the start of the compile:
// slower); malloc tunables (top_pad 64 MiB, trim_threshold 1 GiB:
// -1.8 ms median, within the noise).
// The cross-entropy kernel was the costliest per step microsecond (412 IR
// instructions, ~16 ms of machine code in a module of its own, for 0.8 us
// of the step): its two straight-line shuffle trees, which reduced 16 rows'
// vectors at once, are now short trees inside the row loops
// (KernelBuilder::reduceRowsAcross; same pairs, same bits): 269
// instructions, ~10 ms; the step 3618 -> 3492 IR instructions after the
// passes, 2649 -> 2549 machine instructions, step time unchanged
// (interleaved, 15 x 3 x 2000 steps: min 25.34 vs 25.46 us, median 26.46
// vs 26.25). The matmul nodes are the rest's bulk: in one-node modules the
// six matmul kernels (with their fused epilogues) are ~half of all machine
// code time, ~40% of theirs in the edge tiles and the two operand
// transposes (one 212-instruction block each).
// Callers that will train start the step's compile in the background right
// after ModelRuntime::create (ModelRuntime::prepareTraining: bench, train,
// lr-find), so it runs while the caller initialises the parameters and
// reads the data; on 2 cores those already keep both busy (the data, the
// pool's machines, LLJIT), so little was idle: compile_ms min / median
// 61.6 / 81.1 and 57.1 / 69.5 -> 54.0 / 81.3 and 54.6 / 71.0 ms (two sets
// of 40 interleaved runs, loaded host, with the cross-entropy change);
// create to the end of the first step, data included, 63.4 / 77.4 ->
// 61.7 / 79.8 (bench's first_step_ms); warm cache 8.0 / 9.7 -> 6.3 / 7.1.
// Under `chrt -f 50` (the bench lock) the compile thread queues behind the
// pool's threads anyway, as FIFO threads do not preempt each other.
// A repeated run loads the machine code from the on-disk cache instead
// (codegen/ObjectCache.h): compile_ms 8-9 ms (13-16 before the pool), most
// of it the trial lowering and lowering that the key needs.
//
// Concurrent compilation: splitGraph cuts a big graph into node ranges,
// each its own function, spread over up to 8 modules (one per core, at
// least ~400 weighted instructions each) with their own contexts. Each
// compile thread (the calling thread and one more per extra module) has a
// target machine of its own from the engine's pool (a target machine caches
// subtargets and is not thread-safe) and takes the next module, costliest
// first, from a shared counter, then lowers, optimises and compiles it.
// The ranges are arcs of the node sequence read as a cycle, which balances
// the modules far better than contiguous halves (LowerModule.cpp); the
// weights come from timing one-node modules. The old contiguous split of
// the step put 40 ms of machine code on one thread and 80-90 on the other;
// balanced, both take 40-50 ms (same total work; on this noisy host the
// median compile_ms of interleaved runs moved by less than the noise).
#include "codegen/LineTrace.h"
#include "codegen/Lowering.h"
#include "codegen/ObjectCache.h"

#include <llvm/ExecutionEngine/Orc/CompileUtils.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/Error.h>
#include <llvm/Support/thread.h>

#include <atomic>
#include <numeric>
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
compileModules(ArrayRef<size_t> cost, unsigned threads, unsigned optLevel,
               function_ref<Expected<TargetMachine *>(unsigned)> machineFor,
               function_ref<Expected<LoweredModule>(unsigned, TargetMachine &)> lower,
               ObjectCache *cache, bool traceLines) {
  const unsigned count = static_cast<unsigned>(cost.size());
  auto compileOne = [&](unsigned index,
                        TargetMachine &machine) -> Expected<std::unique_ptr<MemoryBuffer>> {
    Expected<LoweredModule> part = lower(index, machine);
    if (!part)
      return part.takeError();
    std::string key;
    if (cache) {
      key = cache->key(*part->module, machine, kPassPipeline, optLevel);
      if (auto object = cache->lookup(key))
        return object;
    }
    runPassSchedule(*part->module, machine, optLevel);
    if (traceLines)
      if (Error e = instrumentLineTrace(*part->module))
        return e;
    orc::SimpleCompiler compiler(machine);
    auto object = compiler(*part->module);
    if (cache && object)
      cache->store(key, (*object)->getMemBufferRef());
    return object;
  };
  // The most expensive modules first (longest processing time first): the
  // last ones to start are small, so the threads finish close together even
  // when one core is slower than the other (a busy neighbour on a VM).
  std::vector<unsigned> order(count);
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(),
                   [&](unsigned a, unsigned b) { return cost[a] > cost[b]; });
  std::atomic<unsigned> next{0};
  // Each result slot is written by the one thread that took that module;
  // each thread's error slot by that thread.
  std::vector<std::optional<Expected<std::unique_ptr<MemoryBuffer>>>> results(count);
  std::vector<Error> machineErrors;
  for (unsigned t = 0; t < threads; ++t)
    machineErrors.push_back(Error::success());
  auto work = [&](unsigned thread) {
    auto machine = machineFor(thread);
    if (!machine) {
      machineErrors[thread] = machine.takeError();
      return;
    }
    for (unsigned k; (k = next.fetch_add(1)) < count;)
      results[order[k]].emplace(compileOne(order[k], **machine));
  };
  std::vector<llvm::thread> workers;
  for (unsigned t = 1; t < std::min(threads, count); ++t)
    workers.emplace_back([&work, t] { work(t); });
  work(0);
  for (llvm::thread &w : workers)
    w.join();

  std::vector<std::unique_ptr<MemoryBuffer>> objects;
  Error errors = Error::success();
  for (Error &e : machineErrors)
    errors = joinErrors(std::move(errors), std::move(e));
  for (auto &r : results) {
    if (!r) // every thread that could take it failed to get a machine
      continue;
    if (*r)
      objects.push_back(std::move(**r));
    else
      errors = joinErrors(std::move(errors), r->takeError());
  }
  if (errors)
    return errors;
  if (objects.size() != count)
    return createStringError(inconvertibleErrorCode(), "internal error: a module was not compiled");
  return objects;
}

} // namespace mlpc::codegen
