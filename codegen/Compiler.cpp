// Target selection, the optimisation pipeline, the JIT and the emitters.
#include "codegen/Compiler.h"

#include "codegen/LineTrace.h"
#include "codegen/Lowering.h"
#include "codegen/Target.h"
#include "codegen/TargetPool.h"
#include "codegen/VectorShape.h"

#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Verifier.h>
#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/FileSystem.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/TargetParser/Host.h>
#include <llvm/TargetParser/SubtargetFeature.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>

using namespace llvm;

namespace mlpc {
namespace {

Error fail(std::string message) {
  return createStringError(inconvertibleErrorCode(), message);
}

void initNativeTarget() {
  static std::once_flag once;
  std::call_once(once, [] {
    InitializeNativeTarget();
    InitializeNativeTargetAsmPrinter();
    InitializeNativeTargetAsmParser();
  });
}

struct TargetSpec {
  std::string triple, cpu, features;
};

// Empty cpu on the host triple means the host CPU *and* its feature list:
// the CPU name alone can lag behind what the machine has (and without it
// LLVM would target baseline x86-64, i.e. no AVX-512).
TargetSpec resolveTarget(const CompileOptions &o) {
  TargetSpec t;
  std::string host = sys::getProcessTriple();
  t.triple = o.triple.empty() ? host : Triple::normalize(o.triple);
  bool isHost = Triple::normalize(t.triple) == Triple::normalize(host);
  if (!o.cpu.empty()) {
    t.cpu = o.cpu;
  } else if (isHost) {
    t.cpu = sys::getHostCPUName().str();
    SubtargetFeatures features;
    for (const auto &f : sys::getHostCPUFeatures())
      features.AddFeature(f.first(), f.second);
    t.features = features.getString();
  } else {
    t.cpu = "generic";
  }
  return t;
}

orc::JITTargetMachineBuilder targetBuilder(const TargetSpec &t, unsigned optLevel, bool pic) {
  orc::JITTargetMachineBuilder jtmb{Triple(t.triple)};
  jtmb.setCPU(t.cpu);
  jtmb.setFeatures(t.features);
  jtmb.setCodeGenOptLevel(optLevel == 0   ? CodeGenOptLevel::None
                          : optLevel == 1 ? CodeGenOptLevel::Less
                          : optLevel == 2 ? CodeGenOptLevel::Default
                                          : CodeGenOptLevel::Aggressive);
  if (pic) { // object files for ordinary (PIE) executables
    jtmb.setRelocationModel(Reloc::PIC_);
    jtmb.setCodeModel(CodeModel::Small);
  }
  return jtmb;
}

Error checkTarget(const TargetSpec &t) {
  initNativeTarget();
  std::string error;
  const Target *target = TargetRegistry::lookupTarget(t.triple, error);
  if (!target)
    return fail("cannot compile for '" + t.triple + "': " + error);
  // Checked up front: LLVM would only warn on stderr and use a generic CPU.
  std::unique_ptr<MCSubtargetInfo> sti(target->createMCSubtargetInfo(t.triple, "", ""));
  if (!sti || !sti->isCPUStringValid(t.cpu))
    return fail("unknown cpu '" + t.cpu + "' for '" + t.triple + "'");
  return Error::success();
}

Expected<std::unique_ptr<TargetMachine>> createTargetMachine(const TargetSpec &t, unsigned optLevel,
                                                             bool pic) {
  if (Error e = checkTarget(t))
    return e;
  auto tm = targetBuilder(t, optLevel, pic).createTargetMachine();
  if (!tm)
    return fail("cannot create a target machine for '" + t.triple + "' (cpu '" + t.cpu +
                "'): " + toString(tm.takeError()));
  return tm;
}

// The kernels' pass schedule (codegen/PassSchedule.cpp says what it runs and why).
void optimize(Module &m, TargetMachine &tm, unsigned optLevel) {
  codegen::runPassSchedule(m, tm, optLevel);
}

// Lowered and optimised module plus the target machine that made it.
struct Built {
  codegen::LoweredModule lowered;
  std::unique_ptr<TargetMachine> tm;
};

Expected<Built> build(const Graph &g, const std::string &name, const CompileOptions &options) {
  // Object files and text dumps have no way to report the profile counters'
  // extra workspace: profiling is JIT-only.
  if (options.profileNodes || options.traceLines)
    return fail("per-node profiling and line tracing are only available in the JIT");
  auto tm = createTargetMachine(resolveTarget(options), options.optLevel, /*pic=*/true);
  if (!tm)
    return tm.takeError();
  auto lowered = codegen::lowerGraph(g, name, options, **tm);
  if (!lowered)
    return lowered.takeError();
  optimize(*lowered->module, **tm, options.optLevel);
  return Built{std::move(*lowered), std::move(*tm)};
}

} // namespace

JitEngine::~JitEngine() {
  if (pendingJit_.valid()) { // never compiled
    auto jit = pendingJit_.get();
    if (!jit)
      consumeError(jit.takeError());
  }
}

namespace {
// Big graphs are split so that every core generates machine code (see
// codegen/PassSchedule.cpp): at most this many modules, one per thread.
unsigned compileThreads() {
  return std::clamp(std::thread::hardware_concurrency(), 1u, 8u);
}
} // namespace

Expected<std::unique_ptr<JitEngine>> JitEngine::create(const CompileOptions &options,
                                                       JitCacheOptions cache) {
  initNativeTarget();
  TargetSpec spec = resolveTarget(options);
  // Only the check stays on the caller's thread (an unknown CPU is the
  // caller's error); the target machines and the JIT itself (~1.5 ms) are
  // made on background threads, and the first compile() waits for them.
  if (Error e = checkTarget(spec))
    return e;
  std::unique_ptr<JitEngine> engine(new JitEngine());
  engine->pendingJit_ = std::async(std::launch::async, [spec, optLevel = options.optLevel] {
    return orc::LLJITBuilder()
        .setJITTargetMachineBuilder(targetBuilder(spec, optLevel, false))
        .create();
  });
  engine->optLevel_ = options.optLevel;
  engine->targets_ = std::make_unique<codegen::TargetPool>(
      [spec, optLevel = options.optLevel] {
        return createTargetMachine(spec, optLevel, /*pic=*/false);
      },
      compileThreads(), options.vectorBits);
  engine->triple_ = options.triple;
  engine->cpu_ = options.cpu;
  if (!cache.directory.empty())
    engine->cache_ = std::make_unique<codegen::ObjectCache>(std::move(cache));
  return engine;
}

Error JitEngine::jitReady() {
  if (pendingJit_.valid()) {
    auto jit = pendingJit_.get();
    if (!jit)
      return jit.takeError();
    jit_ = std::move(*jit);
  }
  if (!jit_)
    return fail("the JIT could not be created (see the first compile's error)");
  return Error::success();
}

namespace {

// What a JIT compile cannot do with these options, as an error.
Error checkJitOptions(const CompileOptions &options, const std::string &cpu,
                      const std::string &triple) {
  if ((!options.cpu.empty() && options.cpu != cpu) ||
      (!options.triple.empty() && options.triple != triple))
    return fail("compile options name a different target than the JIT engine was created for");
  // The counters read the x86 time-stamp counter; elsewhere llvm.readcyclecounter
  // may trap (AArch64 PMCCNTR_EL0 is not readable from user space by default).
  if (options.profileNodes && !Triple(sys::getProcessTriple()).isX86())
    return fail("per-node profiling needs an x86 host");
  if (options.traceLines && !options.parallel)
    return fail("line tracing needs parallel code (a ThreadContext to report to)");
  return Error::success();
}

// Thread 1's own pages (codegen/ThreadPages.h) from every module's record of
// its nodes' touches; none for serial code, nor for traced code, which
// reports thread 1's accesses by address (one mapping for all).
std::vector<ByteRange> secondThreadPages(const Graph &g, const codegen::BufferPlan &plan,
                                         llvm::ArrayRef<codegen::RowUses> rowUses,
                                         const CompileOptions &options) {
  if (!options.parallel || options.traceLines)
    return {};
  codegen::RowUses merged;
  for (const codegen::RowUses &uses : rowUses)
    merged.merge(uses);
  return codegen::secondThreadPages(g, plan, merged);
}

} // namespace

Expected<CompiledFunction> JitEngine::compile(const Graph &g, const std::string &name,
                                              const CompileOptions &options) {
  auto start = std::chrono::steady_clock::now();
  if (Error e = checkJitOptions(options, cpu_, triple_))
    return e;
  // Machine 0 makes the lowering's decisions (the trial lowering of the
  // split first); the other threads wait for their own machine when they
  // start, and the JIT (~1.5 ms to make) is only needed to link.
  const unsigned threads = targets_->size();
  auto first = targets_->machine(0);
  if (!first)
    return first.takeError();
  // One module per thread: more, smaller modules (taken from a queue, so a
  // slow core would take fewer) cost ~1-2 ms each in fixed costs and were
  // not faster on the 2-core VM, even with one core 1.5x slower than the
  // other; below ~2000 units of backendWeight per module (~20 M instructions
  // of machine-code generation, ~5 ms) the fixed cost of a module outweighs
  // the gain.
  auto split = codegen::splitGraph(g, name, options, **first, threads, 2000);
  if (!split)
    return split.takeError();
  // The pool's machines generate code at the engine's optimisation level; a
  // compile at another level makes its own for threads 1.. (thread 0 always
  // uses the engine's, as before).
  CompileOptions targetOptions;
  targetOptions.cpu = cpu_;
  targetOptions.triple = triple_;
  targetOptions.optLevel = options.optLevel;
  TargetSpec spec = resolveTarget(targetOptions);
  std::vector<std::unique_ptr<TargetMachine>> own(threads);
  // Each module's lowering records how its nodes touch the workspace
  // (codegen/ThreadPages.h); each slot is written by the thread lowering it.
  std::vector<codegen::RowUses> rowUses(split->modules());
  auto objects = codegen::compileModules(
      split->moduleCost, threads, options.optLevel,
      [&](unsigned thread) -> Expected<TargetMachine *> {
        if (thread == 0 || options.optLevel == optLevel_)
          return targets_->machine(thread);
        auto made = createTargetMachine(spec, options.optLevel, /*pic=*/false);
        if (!made)
          return made.takeError();
        own[thread] = std::move(*made);
        return own[thread].get();
      },
      [&](unsigned index, TargetMachine &tm) {
        auto lowered = codegen::lowerSplitModule(g, name, options, *split, index, tm);
        if (lowered)
          rowUses[index] = lowered->rowUses;
        return lowered;
      },
      options.traceLines ? nullptr : cache_.get(), options.traceLines);
  if (!objects)
    return objects.takeError();
  if (Error e = jitReady())
    return e;
  for (auto &object : *objects)
    if (Error e = jit_->addObjectFile(std::move(object)))
      return e;
  auto symbol = jit_->lookup(name); // links the objects
  if (!symbol)
    return symbol.takeError();
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::vector<std::vector<WorkspaceRegion>> regions;
  if (options.traceLines)
    regions = codegen::nodeWorkspaceRegions(g, split->plan);
  std::vector<ByteRange> ownPages = secondThreadPages(g, split->plan, rowUses, options);
  return CompiledFunction(symbol->toPtr<CompiledFunction::Fn>(), split->workspaceBytes, ms,
                          std::move(split->bindings), split->profileOffset, std::move(regions),
                          std::move(ownPages));
}

Expected<TargetDescription> describeTarget(const CompileOptions &options) {
  initNativeTarget();
  TargetSpec spec = resolveTarget(options);
  auto tm = createTargetMachine(spec, options.optLevel, /*pic=*/false);
  if (!tm)
    return tm.takeError();
  codegen::VectorShape shape = codegen::chooseVectorShape(**tm, options.vectorBits);
  return TargetDescription{spec.cpu, shape.bits, shape.registers};
}

Expected<std::string> emitLLVMText(const Graph &g, const std::string &name,
                                   const CompileOptions &options) {
  auto b = build(g, name, options);
  if (!b)
    return b.takeError();
  std::string text;
  raw_string_ostream os(text);
  b->lowered.module->print(os, nullptr);
  return os.str();
}

Expected<std::string> emitAssembly(const Graph &g, const std::string &name,
                                   const CompileOptions &options) {
  auto b = build(g, name, options);
  if (!b)
    return b.takeError();
  SmallString<0> text;
  raw_svector_ostream os(text);
  if (Error e = emitMachineCode(*b->lowered.module, *b->tm, os, CodeGenFileType::AssemblyFile))
    return e;
  return std::string(text.str());
}

Error emitObjectFile(const Graph &g, const std::string &name, const CompileOptions &options,
                     const std::string &path) {
  auto b = build(g, name, options);
  if (!b)
    return b.takeError();
  std::error_code ec;
  raw_fd_ostream os(path, ec, sys::fs::OF_None);
  if (ec)
    return fail("cannot write '" + path + "': " + ec.message());
  if (Error e = emitMachineCode(*b->lowered.module, *b->tm, os, CodeGenFileType::ObjectFile))
    return e;
  os.close();
  if (os.has_error())
    return fail("cannot write '" + path + "': " + os.error().message());
  return Error::success();
}

// codegen/Target.h.
Error verifyModuleIR(const Module &m, const std::string &what) {
  std::string message;
  raw_string_ostream os(message);
  if (verifyModule(m, &os))
    return fail("internal error: invalid LLVM IR for '" + what + "': " + os.str());
  return Error::success();
}

Error emitMachineCode(Module &m, TargetMachine &tm, raw_pwrite_stream &os, CodeGenFileType type) {
  legacy::PassManager pm;
  if (tm.addPassesToEmitFile(pm, os, nullptr, type))
    return fail("the target cannot emit this file type");
  pm.run(m);
  return Error::success();
}

Expected<std::string> moduleOutput(Module &m, TargetMachine &tm,
                                   std::optional<CodeGenFileType> machineCode) {
  std::string out;
  if (!machineCode) {
    raw_string_ostream text(out);
    m.print(text, nullptr);
    return out;
  }
  SmallString<0> bytes;
  raw_svector_ostream stream(bytes);
  if (Error e = emitMachineCode(m, tm, stream, *machineCode))
    return e;
  return std::string(bytes.str());
}

// Cross targets need every backend registered, not only the
// native one (registration is idempotent, so this may follow initNativeTarget).
Expected<std::unique_ptr<TargetMachine>> createObjectTargetMachine(const CompileOptions &options) {
  static std::once_flag once;
  std::call_once(once, [] {
    InitializeAllTargetInfos();
    InitializeAllTargets();
    InitializeAllTargetMCs();
    InitializeAllAsmPrinters();
  });
  return createTargetMachine(resolveTarget(options), options.optLevel, /*pic=*/true);
}

} // namespace mlpc
