// The JIT engine's target machines, one per compile thread
// (codegen/PassSchedule.cpp; machine 0 also answers the lowering's
// questions to the target), created once per engine and reused by every
// compile, instead of one new target machine per thread per compile.
//
// Why: a fresh X86 target machine is cheap (~0.3 ms), but the first function
// it sees builds a subtarget (instruction info, lowering tables, the
// legaliser), ~1 ms for each distinct set of vector-width attributes, and the
// lowering asks for two (codegen/VectorShape.cpp): ~2 ms per thread before
// the first instruction is lowered, on the critical path of every compile.
// The pool makes the machines and builds those subtargets on background
// threads started with the engine, while the caller does other work
// (initialising the parameters, reading the data); machine(i) waits for
// machine i only, so a compile's first step (the trial lowering, on machine
// 0) does not wait for the last machine to be warmed.
//
// Not thread-safe itself: one compile at a time (as JitEngine::compile), but
// that compile may use machine(i) from thread i while other threads use
// theirs; one thread only asks for a given i at a time.
#pragma once

#include <llvm/Support/Error.h>
#include <llvm/Support/thread.h>
#include <llvm/Target/TargetMachine.h>

#include <functional>
#include <memory>
#include <vector>

namespace mlpc::codegen {

class TargetPool {
public:
  using Factory = std::function<llvm::Expected<std::unique_ptr<llvm::TargetMachine>>()>;
  // `count` machines, made by `make` on background threads (one per
  // machine), which also build their subtargets for kernels of `vectorBits`
  // (CompileOptions::vectorBits).
  TargetPool(Factory make, unsigned count, unsigned vectorBits);
  ~TargetPool();
  TargetPool(const TargetPool &) = delete;
  TargetPool &operator=(const TargetPool &) = delete;

  unsigned size() const { return static_cast<unsigned>(machines_.size()); }
  // Machine i < size(), once its background thread is done; one the
  // background could not make (an error it reports here) is made now.
  // Different i may be asked for concurrently.
  llvm::Expected<llvm::TargetMachine *> machine(unsigned i);

private:
  Factory make_;
  std::vector<std::unique_ptr<llvm::TargetMachine>> machines_;
  std::vector<llvm::thread> warming_;
};

} // namespace mlpc::codegen
