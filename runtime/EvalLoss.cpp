#include "runtime/EvalLoss.h"

#include "ir/ShapeRules.h"
#include "runtime/BoundFunction.h"
#include "runtime/ModelRuntime.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <thread>

namespace mlpc {
namespace {

llvm::Error fail(std::string message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

// Below this many full blocks a second thread costs more than it saves.
constexpr int64_t kMinBlocksPerThread = 4;

} // namespace

llvm::Expected<std::unique_ptr<SplitLoss>> SplitLoss::create(JitEngine &jit, int64_t blockRows,
                                                             int64_t classes) {
  // loss = cross_entropy(logits, Y) over one block.
  Graph g;
  auto add = [&](Node n) -> llvm::Expected<ValueId> {
    std::string error;
    std::optional<TensorType> type = inferType(g, n, error);
    if (!type)
      return fail("internal error: cross-entropy kernel: " + error);
    n.type = *type;
    return g.add(std::move(n));
  };
  Node logits(Op::Param);
  logits.name = "logits";
  logits.type = {DType::F32, {blockRows, classes}};
  ValueId l = g.add(std::move(logits));
  Node y(Op::Input);
  y.name = "Y";
  y.isTarget = true;
  y.type = {DType::I32, {blockRows}};
  ValueId t = g.add(std::move(y));
  auto loss = add(Node(Op::CrossEntropy, {l, t}));
  if (!loss)
    return loss.takeError();
  g.setOutput("loss", *loss, OutputRole::Loss);
  auto fn = jit.compile(g, fmt::format("split_loss_{}x{}", blockRows, classes), CompileOptions{});
  if (!fn)
    return fn.takeError();
  std::unique_ptr<SplitLoss> s(new SplitLoss());
  s->crossEntropy_ = std::move(*fn);
  s->blockRows_ = blockRows;
  s->classes_ = classes;
  return s;
}

llvm::Expected<double> SplitLoss::run(const CompiledFunction &eval, const TensorMap &params,
                                      const Split &split, int64_t context) const {
  const int64_t rows = split.rows(), blocks = (rows + blockRows_ - 1) / blockRows_;
  std::vector<double> blockLoss(static_cast<size_t>(blocks), 0.0); // sum over the block's rows
  unsigned threads = std::max(1u, std::min(2u, std::thread::hardware_concurrency()));
  if (blocks < int64_t(threads) * kMinBlocksPerThread)
    threads = 1;

  // Blocks [first, last) on one thread: its own bound functions and buffers.
  auto work = [&](int64_t first, int64_t last) -> llvm::Error {
    BoundFunction forward(eval), ce(crossEntropy_);
    std::vector<int32_t> X(static_cast<size_t>(blockRows_ * context)), Y(blockRows_);
    for (const BindingInfo &b : eval.bindings()) {
      if (b.kind == BindingInfo::Kind::Input) {
        if (llvm::Error e = forward.bind(b.name, X.data()))
          return e;
      } else if (b.kind == BindingInfo::Kind::Param || b.kind == BindingInfo::Kind::State) {
        auto it = params.find(b.name);
        if (it == params.end() || static_cast<int64_t>(it->second.size()) != b.type.numel())
          return fail(fmt::format("internal error: no buffer for '{}'", b.name));
        // The eval function only reads its parameters and statistics.
        if (llvm::Error e = forward.bind(b.name, const_cast<float *>(it->second.data())))
          return e;
      }
    }
    const float *logits = forward.output(OutputRole::Logits);
    if (!logits)
      return fail("internal error: the eval function has no 'logits' output");
    if (llvm::Error e = ce.bind("logits", const_cast<float *>(logits)))
      return e;
    if (llvm::Error e = ce.bind("Y", Y.data()))
      return e;
    if (llvm::Error e = forward.ready())
      return e;
    if (llvm::Error e = ce.ready())
      return e;
    for (int64_t b = first; b < last; ++b) {
      const int64_t row = b * blockRows_, n = std::min(blockRows_, rows - row);
      std::memcpy(X.data(), split.X.data() + row * context, n * context * sizeof(int32_t));
      std::fill(X.begin() + n * context, X.end(), 0);
      forward.run();
      if (n == blockRows_) {
        std::memcpy(Y.data(), split.Y.data() + row, n * sizeof(int32_t));
        ce.run();
        blockLoss[b] = double(ce.output(OutputRole::Loss)[0]) * n;
      } else {
        blockLoss[b] = crossEntropy(logits, split.Y.data() + row, n, classes_) * n;
      }
    }
    return llvm::Error::success();
  };

  std::optional<llvm::Error> other;
  std::thread helper;
  const int64_t split0 = threads > 1 ? blocks / 2 : blocks;
  if (threads > 1)
    helper = std::thread([&] { other.emplace(work(split0, blocks)); });
  llvm::Error mine = work(0, split0);
  if (helper.joinable())
    helper.join();
  if (other)
    mine = llvm::joinErrors(std::move(mine), std::move(*other));
  if (mine)
    return mine;
  double total = 0;
  for (double l : blockLoss)
    total += l;
  return rows ? total / rows : 0.0;
}

} // namespace mlpc
