#include "runtime/BatchSequence.h"

#include "runtime/Safetensors.h"

#include <fmt/format.h>

namespace mlpc {
namespace {

llvm::Error fail(const std::string &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s", message.c_str());
}

std::string shapeText(const std::vector<int64_t> &shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

llvm::Error checkIndices(const std::vector<int32_t> &values, int64_t vocab, const std::string &path,
                         const std::string &name) {
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i] < 0 || values[i] >= vocab)
      return fail(fmt::format("{}: '{}' holds {} at element {}, outside the vocabulary [0, {})",
                              path, name, values[i], i, vocab));
  return llvm::Error::success();
}

} // namespace

llvm::Expected<BatchSequence> readBatchSequence(const std::string &path, const Graph &g,
                                                int64_t vocab) {
  const Node *input = nullptr, *target = nullptr;
  for (ValueId v : g.leaves(Op::Input))
    (g[v].isTarget ? target : input) = &g[v];
  if (!input || !target || input->type.rank() != 2 || target->type.rank() != 1)
    return fail("--batches needs a model with one [N, T] input and one [N] target");
  auto file = readSafetensors(path);
  if (!file)
    return file.takeError();
  BatchSequence s;
  s.rows = input->type.shape[0];
  s.context = input->type.shape[1];
  auto tensor = [&](const Node &leaf, int rank) -> llvm::Expected<const TensorData *> {
    auto it = file->tensors.find(leaf.name);
    if (it == file->tensors.end())
      return fail(fmt::format("{}: missing tensor '{}' (i32[S, {}])", path, leaf.name,
                              rank == 3 ? fmt::format("{}, {}", s.rows, s.context)
                                        : std::to_string(s.rows)));
    const TensorData &t = it->second;
    std::vector<int64_t> want = {t.shape.empty() ? 0 : t.shape[0], s.rows};
    if (rank == 3)
      want.push_back(s.context);
    if (t.dtype != TensorDType::I32 || t.shape != want || want[0] < 1)
      return fail(fmt::format("{}: '{}' must be i32[S, {}{}] with S >= 1, got {} {}", path,
                              leaf.name, s.rows, rank == 3 ? fmt::format(", {}", s.context) : "",
                              dtypeName(t.dtype), shapeText(t.shape)));
    return &t;
  };
  auto x = tensor(*input, 3);
  if (!x)
    return x.takeError();
  auto y = tensor(*target, 2);
  if (!y)
    return y.takeError();
  if ((*x)->shape[0] != (*y)->shape[0])
    return fail(fmt::format("{}: '{}' has {} steps but '{}' has {}", path, input->name,
                            (*x)->shape[0], target->name, (*y)->shape[0]));
  for (const auto &[name, t] : file->tensors)
    if (name != input->name && name != target->name)
      return fail(fmt::format("{}: unexpected tensor '{}' (expected only '{}' and '{}')", path,
                              name, input->name, target->name));
  s.steps = (*x)->shape[0];
  s.X.assign((*x)->i32(), (*x)->i32() + (*x)->numel());
  s.Y.assign((*y)->i32(), (*y)->i32() + (*y)->numel());
  if (llvm::Error e = checkIndices(s.X, vocab, path, input->name))
    return e;
  if (llvm::Error e = checkIndices(s.Y, vocab, path, target->name))
    return e;
  return s;
}

} // namespace mlpc
