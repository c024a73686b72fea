// A compiled function together with its argument array: leaves are bound by
// name to caller-owned buffers once, outputs get buffers owned here, and the
// workspace is allocated once. Calling it afterwards does no allocation.
#pragma once

#include "codegen/Compiler.h"
#include "runtime/ThreadChoice.h"
#include "runtime/ThreadTeam.h"
#include "runtime/ThreadWorkspace.h"

#include <llvm/Support/Error.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlpc {

class BoundFunction {
public:
  explicit BoundFunction(CompiledFunction fn);

  // Binds a leaf (input, parameter, state) or an output to caller memory of
  // the right size (the caller keeps it alive).
  llvm::Error bind(const std::string &name, void *data);
  // The buffer of an output this object owns (nullptr if the name is unknown
  // or the output is a write-back / SGD output that has no buffer).
  float *output(const std::string &name);
  // The buffer of the first output with this role (Loss, Logits), or nullptr.
  float *output(OutputRole role);
  const TensorType *typeOf(const std::string &name) const;
  // Errors if any required binding is missing.
  llvm::Error ready() const;

  // A function compiled with CompileOptions::parallel runs on every thread
  // of `team` (the caller's thread included); null: on the caller's thread.
  // `chooseThreads` (`--threads auto`): each call runs on the team or on the
  // caller's thread alone, whichever the calls' own timings favour
  // (runtime/ThreadChoice.h); the results are the same bits either way.
  // A team of two keeps equal parts when the function has pages its thread
  // 1 may keep to itself (codegen/ThreadPages.h), and gets them
  // (runtime/ThreadWorkspace.h); the bits are the same.
  void setTeam(ThreadTeam *team, bool chooseThreads = false);
  void run(float lr = 0.0f);
  // The adaptive choice's record, or null when the thread count is fixed.
  const ThreadChoice *threadChoice() const { return choice_ ? &*choice_ : nullptr; }
  const CompiledFunction &function() const { return fn_; }
  // Thread 0's workspace (the one all threads share but for thread 1's own pages).
  void *workspace() { return workspace_->shared(); }
  // Workspace bytes thread 1 of the team keeps to itself now (ThreadWorkspace); 0 when none.
  int64_t threadOwnBytes() const;
  // The bindings array as run() passes it (CompiledFunction::bindings order).
  void *const *arguments() const { return args_.data(); }

private:
  // Whether this call's thread 1 may use its own pages: only while the team
  // of two still splits every shared loop into equal halves (a later
  // ThreadTeam::fixShares with other parts makes every thread share again).
  bool ownPagesNow() const {
    return workspace_->privatized() && team_ && team_->size() == 2 && team_->equalFixedParts();
  }
  CompiledFunction fn_;
  std::vector<void *> args_;
  std::vector<std::vector<float>> owned_; // one per non-optional output
  std::unique_ptr<ThreadWorkspace> workspace_;
  ThreadTeam *team_ = nullptr;
  std::optional<ThreadChoice> choice_;
};

} // namespace mlpc
