#include "runtime/BoundFunction.h"

#include <chrono>
#include <cstdlib>
#include <fmt/format.h>

namespace mlpc {

void BoundFunction::setTeam(ThreadTeam *team, bool chooseThreads) {
  team_ = team;
  choice_.reset();
  if (team && team->size() > 1 && chooseThreads)
    choice_.emplace();
  // Thread 1's own pages are right only while the team's two threads split
  // every shared loop into equal halves (codegen/ThreadPages.h): the team
  // stops balancing once the pages exist (not where the system cannot map
  // them), and ownPagesNow() checks the parts at every call.
  if (team && team->size() == 2 && !fn_.secondThreadPages().empty() && !workspace_->privatized() &&
      workspace_->privatize(fn_.secondThreadPages()))
    team->keepEqualParts();
}

void BoundFunction::run(float lr) {
  auto onTeam = [&] {
    const bool own = ownPagesNow();
    team_->run([&](const ThreadContext &thread) {
      void *workspace =
          own ? workspace_->forThread(static_cast<unsigned>(thread.index)) : workspace_->shared();
      fn_.run(args_.data(), lr, workspace, &thread);
    });
  };
  if (!team_ || team_->size() == 1)
    return fn_.run(args_.data(), lr, workspace_->shared());
  if (!choice_)
    return onTeam();
  // Parallel code called without a context runs as one thread.
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  if (choice_->useTeam())
    onTeam();
  else
    fn_.run(args_.data(), lr, workspace_->shared());
  choice_->record(std::chrono::duration<double>(Clock::now() - start).count());
}

BoundFunction::BoundFunction(CompiledFunction fn) : fn_(std::move(fn)) {
  const auto &bindings = fn_.bindings();
  args_.assign(bindings.size(), nullptr);
  owned_.resize(bindings.size());
  for (size_t i = 0; i < bindings.size(); ++i)
    if (bindings[i].kind == BindingInfo::Kind::Output && !bindings[i].optional) {
      owned_[i].assign(bindings[i].type.numel(), 0.0f);
      args_[i] = owned_[i].data();
    }
  workspace_ = std::make_unique<ThreadWorkspace>(fn_.workspaceBytes());
}

int64_t BoundFunction::threadOwnBytes() const {
  int64_t bytes = 0;
  if (ownPagesNow())
    for (const ByteRange &r : fn_.secondThreadPages())
      bytes += r.end - r.begin;
  return bytes;
}

llvm::Error BoundFunction::bind(const std::string &name, void *data) {
  const auto &bindings = fn_.bindings();
  for (size_t i = 0; i < bindings.size(); ++i)
    if (bindings[i].name == name) {
      args_[i] = data;
      return llvm::Error::success();
    }
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 fmt::format("internal error: no binding named '{}'", name));
}

float *BoundFunction::output(const std::string &name) {
  const auto &bindings = fn_.bindings();
  for (size_t i = 0; i < bindings.size(); ++i)
    if (bindings[i].kind == BindingInfo::Kind::Output && bindings[i].name == name)
      return owned_[i].empty() ? nullptr : owned_[i].data();
  return nullptr;
}

float *BoundFunction::output(OutputRole role) {
  const auto &bindings = fn_.bindings();
  for (size_t i = 0; i < bindings.size(); ++i)
    if (bindings[i].kind == BindingInfo::Kind::Output && bindings[i].role == role)
      return owned_[i].empty() ? nullptr : owned_[i].data();
  return nullptr;
}

const TensorType *BoundFunction::typeOf(const std::string &name) const {
  for (const BindingInfo &b : fn_.bindings())
    if (b.name == name)
      return &b.type;
  return nullptr;
}

llvm::Error BoundFunction::ready() const {
  const auto &bindings = fn_.bindings();
  for (size_t i = 0; i < bindings.size(); ++i)
    if (!args_[i] && !bindings[i].optional)
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(),
          fmt::format("internal error: '{}' is not bound", bindings[i].name));
  return llvm::Error::success();
}

} // namespace mlpc
