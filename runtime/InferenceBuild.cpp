#include "runtime/InferenceBuild.h"

#include "passes/BatchNormState.h"
#include "passes/FoldBatchNorm.h"
#include "passes/Pipeline.h"
#include "runtime/OutputFiles.h"

#include <llvm/Support/FileSystem.h>
#include <llvm/Support/Path.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/TargetParser/Host.h>

#include <fmt/format.h>

#include <optional>

namespace mlpc {
namespace {

llvm::Error fail(const std::string &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

// The folded inference graph at `rows` rows, its constant subgraphs (W', b')
// evaluated with `params` into `weights` (a copy of params plus the new leaves).
std::optional<Graph> foldedGraph(ModelFile &file, const std::string &batchDim, int64_t vocab,
                                 int64_t rows, const TensorMap &params, TensorMap &weights) {
  LoweringOptions options;
  options.vocab = vocab;
  options.dimOverrides[batchDim] = rows;
  options.inferenceOnly = true;
  std::optional<Module> lowered = file.lower(options);
  if (!lowered)
    return std::nullopt;
  std::optional<Graph> folded = runPipeline(lowered->graph, Stage::Folded, {}, file.diags());
  if (!folded)
    return std::nullopt;
  if (!folded->output(OutputRole::Logits)) {
    file.diags().error(lowered->graph[*lowered->graph.output(OutputRole::Loss)].loc,
                       std::string("mlpc compile emits a function from contexts to logits, and "
                                   "this model has no recognisable logits: ") +
                           kLogitsHelp);
    return std::nullopt;
  }
  weights = params;
  PassContext ctx{&file.diags(), false};
  materializeConstantSubgraphs(*folded, weights, ctx);
  if (file.diags().hasErrors())
    return std::nullopt;
  return folded;
}

// A file written next to its destination, renamed over it by commit().
class PendingFile {
public:
  PendingFile(std::string path) : path_(std::move(path)) {}
  PendingFile(PendingFile &&o) noexcept
      : path_(std::move(o.path_)), temp_(std::move(o.temp_)), inPlace_(std::move(o.inPlace_)) {
    o.temp_.clear();
  }
  ~PendingFile() {
    if (!temp_.empty())
      llvm::sys::fs::remove(temp_);
  }

  llvm::Error write(llvm::StringRef bytes) {
    // A device or a pipe (-o /dev/null) is written in place at commit():
    // renaming over it would replace it with a regular file.
    if (isSpecialFile(path_)) {
      inPlace_ = bytes.str();
      return llvm::Error::success();
    }
    llvm::SmallString<256> model(path_);
    model += ".tmp-%%%%%%";
    int fd = -1;
    llvm::SmallString<256> temp;
    if (std::error_code ec = llvm::sys::fs::createUniqueFile(model, fd, temp))
      return cannotWrite(ec.message());
    temp_ = std::string(temp.str());
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    return finish(os, bytes);
  }

  llvm::Error commit() {
    if (inPlace_) {
      std::error_code ec;
      llvm::raw_fd_ostream os(path_, ec);
      if (ec)
        return cannotWrite(ec.message());
      return finish(os, *inPlace_);
    }
    if (std::error_code ec = llvm::sys::fs::rename(temp_, path_))
      return cannotWrite(ec.message());
    temp_.clear();
    return llvm::Error::success();
  }

private:
  // Writes `bytes` to `os` and closes it.
  llvm::Error finish(llvm::raw_fd_ostream &os, llvm::StringRef bytes) const {
    os << bytes;
    os.close();
    if (!os.has_error())
      return llvm::Error::success();
    std::string message = os.error().message();
    os.clear_error();
    return cannotWrite(message);
  }

  llvm::Error cannotWrite(const std::string &why) const {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "cannot write '%s': %s",
                                   path_.c_str(), why.c_str());
  }
  std::string path_, temp_;
  std::optional<std::string> inPlace_; // the bytes, for a path that is not a regular file
};

std::string withExtension(const std::string &path, const char *ext) {
  llvm::SmallString<256> p(path);
  llvm::sys::path::replace_extension(p, ext);
  return std::string(p.str());
}

} // namespace

llvm::Expected<FoldedInference> foldInference(ModelFile &file, ModelRuntime &runtime,
                                              bool externalWeights) {
  FoldedInference p;
  p.externalWeights = externalWeights;
  p.vocab = runtime.vocab().itos;
  p.modelName = runtime.module().name;
  const std::string batchDim = runtime.module().batchDim;
  const TensorMap &params = runtime.params();
  const int64_t vocabSize = static_cast<int64_t>(p.vocab.size());

  TensorMap rowWeights;
  std::optional<Graph> row = foldedGraph(file, batchDim, vocabSize, 1, params, rowWeights);
  std::optional<Graph> block;
  for (p.blockRows = kInferenceBlockRows; row; p.blockRows /= 2) {
    block = foldedGraph(file, batchDim, vocabSize, p.blockRows, params, p.weights);
    if (!block)
      break;
    InferenceModel m = p.model();
    m.block = &*block;
    m.row = &*row;
    auto iface = checkInferenceModel(m);
    if (!iface)
      return iface.takeError();
    if (iface->stackBytes <= kMaxInferenceStackBytes || p.blockRows == 1)
      break;
  }
  if (!row || !block)
    return fail("the model has errors");
  // Both row counts materialize the same W' and b' (same interpreter, same
  // weights); the module keeps one copy, so they must agree bit for bit.
  for (const auto &[name, values] : rowWeights) {
    auto it = p.weights.find(name);
    if (it == p.weights.end() || it->second != values)
      return fail(fmt::format("internal error: the folded '{}' differs between the block and "
                              "1-row graphs",
                              name));
  }
  p.block = std::move(*block);
  p.row = std::move(*row);
  return p;
}

llvm::Error writeInferenceFiles(const FoldedInference &folded, const std::string &out,
                                const CompileOptions &options, HeaderInfo info) {
  const bool external = folded.externalWeights;
  const std::string headerPath = withExtension(out, "h");
  const std::string binPath = withExtension(out, "bin");
  if (headerPath == out || (external && binPath == out))
    return fail(fmt::format("-o {} would be overwritten by the header or weights file; "
                            "name the object OUT.o",
                            out));
  InferenceModel model = folded.model();
  auto iface = checkInferenceModel(model);
  if (!iface)
    return iface.takeError();
  auto object = emitInferenceModule(model, options, InferenceEmit::Object);
  if (!object)
    return object.takeError();

  info.vocab = folded.vocab;
  info.headerFile = llvm::sys::path::filename(headerPath).str();
  info.objectFile = llvm::sys::path::filename(out).str();
  info.weightsFile = llvm::sys::path::filename(binPath).str();
  info.target = fmt::format(
      "{}, cpu {}", options.triple.empty() ? llvm::sys::getProcessTriple() : options.triple,
      !options.cpu.empty()     ? options.cpu
      : options.triple.empty() ? llvm::sys::getHostCPUName().str() + " (and the host's features)"
                               : std::string("generic"));

  std::vector<std::pair<PendingFile, std::string>> files;
  files.emplace_back(PendingFile(out), std::move(*object));
  files.emplace_back(PendingFile(headerPath), inferenceHeader(model, *iface, info));
  if (external)
    files.emplace_back(PendingFile(binPath), weightsBlob(model, iface->layout));
  for (auto &[file, bytes] : files)
    if (llvm::Error e = file.write(bytes))
      return e;
  for (auto &[file, bytes] : files)
    if (llvm::Error e = file.commit())
      return e;
  return llvm::Error::success();
}

llvm::Error writeFilesAtomically(std::vector<std::pair<std::string, std::string>> files) {
  std::vector<PendingFile> pending;
  pending.reserve(files.size());
  for (auto &[path, bytes] : files) {
    pending.emplace_back(path);
    if (llvm::Error e = pending.back().write(bytes))
      return e;
  }
  for (PendingFile &file : pending)
    if (llvm::Error e = file.commit())
      return e;
  return llvm::Error::success();
}

std::string replaceExtension(const std::string &path, const char *ext) {
  return withExtension(path, ext);
}

} // namespace mlpc
