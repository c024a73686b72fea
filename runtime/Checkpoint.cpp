#include "runtime/Checkpoint.h"

#include <llvm/ADT/SmallVector.h>
#include <llvm/ADT/StringRef.h>

#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <set>

namespace mlpc {
namespace {

llvm::Error fail(std::string message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

std::string shapeText(const std::vector<int64_t> &s) {
  return fmt::format("[{}]", fmt::join(s, ", "));
}

llvm::Error checkTensor(const TensorData &t, const std::string &path, const Node &leaf,
                        TensorDType dtype) {
  if (t.dtype != dtype)
    return fail(fmt::format("{}: tensor '{}' has dtype {}, expected {}", path, leaf.name,
                            dtypeName(t.dtype), dtypeName(dtype)));
  if (t.shape != leaf.type.shape)
    return fail(fmt::format("{}: tensor '{}' has shape {}, the model expects {}", path, leaf.name,
                            shapeText(t.shape), shapeText(leaf.type.shape)));
  return llvm::Error::success();
}

// A NaN or an infinity is a corrupt or diverged checkpoint: every use of it
// (eval, sample, compile, resume) would silently compute garbage.
llvm::Error checkFinite(const TensorData &t, const std::string &path, const Node &leaf) {
  const float *data = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i)
    if (!std::isfinite(data[i]))
      return fail(fmt::format("{}: tensor '{}' holds {} at element {}: not a usable checkpoint",
                              path, leaf.name, data[i], i));
  return llvm::Error::success();
}

} // namespace

TensorData makeF32Tensor(const Shape &shape, const std::vector<float> &values) {
  TensorData t;
  t.dtype = TensorDType::F32;
  t.shape = shape;
  t.bytes.resize(values.size() * sizeof(float));
  if (!values.empty())
    std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

llvm::Expected<TensorMap> extractLeaves(const TensorFile &file, const std::string &path,
                                        const Graph &g, Op kind, bool allowExtra) {
  TensorMap result;
  std::set<std::string> known;
  std::vector<std::string> missing;
  for (const Node &n : g.nodes) {
    if (n.op == Op::Param || n.op == Op::State)
      known.insert(n.name);
    if (n.op != kind)
      continue;
    auto it = file.tensors.find(n.name);
    if (it == file.tensors.end()) {
      missing.push_back(n.name);
      continue;
    }
    if (llvm::Error e = checkTensor(it->second, path, n, TensorDType::F32))
      return e;
    if (llvm::Error e = checkFinite(it->second, path, n))
      return e;
    const float *data = it->second.f32();
    result[n.name].assign(data, data + it->second.numel());
  }
  if (!missing.empty())
    return fail(fmt::format("{}: missing tensor{} {}", path, missing.size() > 1 ? "s" : "",
                            fmt::join(missing, ", ")));
  if (!allowExtra)
    for (const auto &[name, tensor] : file.tensors)
      if (!known.count(name))
        return fail(fmt::format("{}: unexpected tensor '{}' {} (the model has no such {})", path,
                                name, shapeText(tensor.shape),
                                kind == Op::Param ? "parameter" : "state"));
  return result;
}

llvm::Expected<IndexMap> extractInputs(const TensorFile &file, const std::string &path,
                                       const Graph &g) {
  IndexMap result;
  std::set<std::string> known;
  for (const Node &n : g.nodes) {
    if (n.op != Op::Input)
      continue;
    known.insert(n.name);
    auto it = file.tensors.find(n.name);
    if (it == file.tensors.end())
      return fail(fmt::format("{}: missing tensor '{}' (expected i32{})", path, n.name,
                              shapeText(n.type.shape)));
    if (llvm::Error e = checkTensor(it->second, path, n, TensorDType::I32))
      return e;
    const int32_t *data = it->second.i32();
    result[n.name].assign(data, data + it->second.numel());
  }
  for (const auto &[name, tensor] : file.tensors)
    if (!known.count(name))
      return fail(fmt::format("{}: unexpected tensor '{}' {} (the model has no such input)", path,
                              name, shapeText(tensor.shape)));
  return result;
}

namespace {

bool isStepScalar(const Node &n) {
  return n.op == Op::State &&
         (n.stateRole == StateRole::LearningRate || n.stateRole == StateRole::StepCount);
}

} // namespace

llvm::Error saveCheckpoint(const std::string &path, const Graph &g, const TensorMap &tensors,
                           const std::map<std::string, std::string> &metadata) {
  TensorFile file;
  file.metadata = metadata;
  std::vector<std::string> optimizerState;
  for (const Node &n : g.nodes) {
    if ((n.op != Op::Param && n.op != Op::State) || isStepScalar(n))
      continue;
    auto it = tensors.find(n.name);
    if (it == tensors.end())
      return fail(fmt::format("internal error: no values for '{}' to save", n.name));
    file.tensors[n.name] = makeF32Tensor(n.type.shape, it->second);
    if (n.op == Op::State && n.stateRole == StateRole::Optimizer)
      optimizerState.push_back(n.name);
  }
  if (!optimizerState.empty())
    file.metadata["optimizer_state"] = fmt::format("{}", fmt::join(optimizerState, ","));
  return writeSafetensors(path, file);
}

llvm::Expected<TensorMap> loadCheckpoint(const std::string &path, const Graph &g,
                                         std::map<std::string, std::string> *metadata,
                                         CheckpointUse use) {
  auto file = readSafetensors(path);
  if (!file)
    return file.takeError();
  // Optimizer state the file holds: dropped for --init and when the graph has
  // no such leaf (another optimizer); required for --resume.
  std::set<std::string> listed;
  if (auto it = file->metadata.find("optimizer_state"); it != file->metadata.end()) {
    llvm::SmallVector<llvm::StringRef> names;
    llvm::StringRef(it->second).split(names, ',', -1, false);
    for (llvm::StringRef name : names)
      listed.insert(name.str());
  }
  TensorMap result;
  std::vector<std::string> missing;
  for (const Node &n : g.nodes) {
    if ((n.op != Op::Param && n.op != Op::State) || isStepScalar(n))
      continue;
    bool optimizer = n.op == Op::State && n.stateRole == StateRole::Optimizer;
    if (optimizer && use == CheckpointUse::Init)
      continue;
    auto it = file->tensors.find(n.name);
    if (it == file->tensors.end()) {
      if (!optimizer || use == CheckpointUse::Resume)
        missing.push_back(n.name);
      continue;
    }
    if (llvm::Error e = checkTensor(it->second, path, n, TensorDType::F32))
      return e;
    if (llvm::Error e = checkFinite(it->second, path, n))
      return e;
    const float *data = it->second.f32();
    result[n.name].assign(data, data + it->second.numel());
  }
  if (!missing.empty())
    return fail(fmt::format(
        "{}: missing tensor{} {}{}", path, missing.size() > 1 ? "s" : "", fmt::join(missing, ", "),
        use == CheckpointUse::Resume ? " (resuming needs the optimizer state; --init starts fresh)"
                                     : ""));
  for (const auto &[name, tensor] : file->tensors) {
    std::optional<ValueId> leaf = g.findLeaf(Op::Param, name);
    if (!leaf)
      leaf = g.findLeaf(Op::State, name);
    if (!leaf && !listed.count(name))
      return fail(fmt::format("{}: unexpected tensor '{}' {} (the model has no such parameter "
                              "or state)",
                              path, name, shapeText(tensor.shape)));
  }
  if (metadata)
    *metadata = file->metadata;
  return result;
}

} // namespace mlpc
