// tools/BenchThreads.h.
#include "tools/BenchThreads.h"

#include "tools/BenchSteps.h"

#include <algorithm>
#include <chrono>
#include <memory>

namespace mlpc {
namespace {

using Clock = std::chrono::steady_clock;

llvm::json::Array toJson(const std::vector<double> &v) {
  llvm::json::Array a;
  for (double x : v)
    a.push_back(x);
  return a;
}

} // namespace

llvm::Expected<llvm::json::Object> compareThreads(const ModelAST &ast, const Vocabulary &vocab,
                                                  DiagnosticEngine &diags, const Split &train,
                                                  int64_t steps, int64_t rounds, unsigned threads,
                                                  ExecutionOptions execution) {
  // [0]: one thread, [1]: `threads`; the same parameters and batches.
  std::unique_ptr<ModelRuntime> models[2];
  for (int i = 0; i < 2; ++i) {
    execution.threads = i == 0 ? 1 : threads;
    auto model = ModelRuntime::create(ast, vocab, diags, {}, execution);
    if (!model)
      return model.takeError();
    models[i] = std::move(*model);
    models[i]->initParams(42);
  }
  const BatchSampler sampler(train, models[0]->context());
  auto run = [&](ModelRuntime &model, int64_t n, uint64_t seed) -> llvm::Expected<double> {
    Rng rng(seed);
    auto start = Clock::now();
    if (llvm::Error e = runTrainSteps(model, sampler, rng, n))
      return e;
    return std::chrono::duration<double, std::micro>(Clock::now() - start).count() / n;
  };
  for (auto &model : models) // compiles and warms up
    if (auto warm = run(*model, std::max<int64_t>(steps / 4, 10), 1); !warm)
      return warm.takeError();
  std::vector<double> us[2], ratios;
  for (int64_t r = 0; r < rounds; ++r) {
    // Alternate which goes first, so a drift within a round favours neither.
    for (int j = 0; j < 2; ++j) {
      int i = (r + j) % 2;
      auto t = run(*models[i], steps, r + 2);
      if (!t)
        return t.takeError();
      us[i].push_back(*t);
    }
    ratios.push_back(us[0].back() / us[1].back());
  }
  return llvm::json::Object{
      {"threads", static_cast<int64_t>(threads)},
      {"rounds", rounds},
      {"steps_per_round", steps},
      {"us_per_step_one_thread", toJson(us[0])},
      {"us_per_step_threads", toJson(us[1])},
      {"speedup_median", median(ratios)},
      {"speedup_of_minimums", *std::min_element(us[0].begin(), us[0].end()) /
                                  *std::min_element(us[1].begin(), us[1].end())}};
}

} // namespace mlpc
