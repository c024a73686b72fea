// The training loop allocates nothing per step: every buffer (parameters,
// gradients, activations, the minibatch) is allocated once when the step is
// compiled. Checked by counting every global operator new of this test binary
// over two runs of the real loop (trainModel: batch sampling, the JIT step,
// the schedule, divergence snapshots) that differ only in their step count;
// the allocation counts must be equal.
#include "TrainingFixture.h"
#include "frontend/Overrides.h"
#include "runtime/Trainer.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <new>

namespace {
std::atomic<long> allocations{0};

void *countedAllocate(std::size_t size, std::size_t alignment) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (size == 0)
    size = 1;
  void *p = alignment > alignof(std::max_align_t)
                ? std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment)
                : std::malloc(size);
  return p;
}
} // namespace

// Replacements of the global allocation functions (all of them forward to the
// C allocator, so every delete form matches every new form). GCC's
// -Wmismatched-new-delete cannot see that and flags the free() in the
// deletes once it inlines them (the sanitizer build); the pairing is right.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void *operator new(std::size_t n) {
  if (void *p = countedAllocate(n, 0))
    return p;
  throw std::bad_alloc();
}
void *operator new[](std::size_t n) {
  return operator new(n);
}
void *operator new(std::size_t n, const std::nothrow_t &) noexcept {
  return countedAllocate(n, 0);
}
void *operator new[](std::size_t n, const std::nothrow_t &) noexcept {
  return countedAllocate(n, 0);
}
void *operator new(std::size_t n, std::align_val_t a) {
  if (void *p = countedAllocate(n, static_cast<std::size_t>(a)))
    return p;
  throw std::bad_alloc();
}
void *operator new[](std::size_t n, std::align_val_t a) {
  return operator new(n, a);
}
void operator delete(void *p) noexcept {
  std::free(p);
}
void operator delete[](void *p) noexcept {
  std::free(p);
}
void operator delete(void *p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void *p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void *p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void *p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void *p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void *p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}

using namespace mlpc;

TEST_CASE("the training loop allocates nothing per step", "[training][memory][names]") {
  // Every optimizer: the seed's SGD, SGD with momentum, and AdamW with
  // warmup, cosine decay and clipping (its state must be saved and restored).
  auto [example, setting] = GENERATE(table<const char *, const char *>(
      {{"makemore.mlp", ""},
       {"makemore.mlp", "sgd=lr 0.1 momentum 0.9 nesterov weight_decay 1e-4"},
       {"makemore_adamw.mlp", ""}}));
  INFO(example << " " << setting);
  test::TrainingFixture f(example);
  if (!f.ready())
    return;
  if (*setting) {
    auto o = parseOverride(setting);
    REQUIRE(bool(o));
    REQUIRE_FALSE(bool(applyOverrides(f.ast, {*o})));
  }
  auto model = f.runtime();
  model->initParams(42);

  std::string out;
  llvm::raw_string_ostream progress(out);
  out.reserve(1 << 16);
  auto allocationsOfRun = [&](int64_t steps) {
    TrainOptions options;
    options.steps = steps;
    options.reportEvery = 1000000;
    long before = allocations.load();
    auto summary = trainModel(*model, f.data->train, options, progress);
    long counted = allocations.load() - before;
    REQUIRE(bool(summary));
    REQUIRE(summary->steps == steps);
    return counted;
  };
  allocationsOfRun(1); // compiles train_step on first use
  // 2,500 steps include two refreshes of the divergence snapshot (every 1000).
  long small = allocationsOfRun(500), large = allocationsOfRun(2500);
  INFO("allocations: " << small << " for 500 steps, " << large << " for 2500 steps");
  CHECK(small == large);
}
