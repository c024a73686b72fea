// mlpc compile MODEL --weights CKPT -o OUT.o: see tools/CompileCommand.h and
// codegen/InferenceObject.h. Everything is built in memory first; the output
// files are written to temporaries next to them and renamed into place only
// when all of them were written, so a failure leaves no partial output.
#include "tools/CompileCommand.h"

#include "passes/FoldBatchNorm.h"
#include "runtime/Safetensors.h"

#include <llvm/Support/FileSystem.h>
#include <llvm/Support/Path.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/TargetParser/Host.h>

#include <fmt/format.h>

namespace mlpc {
namespace {

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
  weights = params;
  PassContext ctx{&file.diags(), false};
  materializeConstantSubgraphs(*folded, weights, ctx);
  if (file.diags().hasErrors())
    return std::nullopt;
  return folded;
}

// The vocabulary: the checkpoint's metadata (written by `mlpc train`) or the
// names file given with --data; both must agree when both exist.
std::optional<std::string> vocabulary(const ParsedArgs &args, const std::string &weightsPath,
                                      const TensorFile &checkpoint) {
  auto it = checkpoint.metadata.find("vocab");
  std::optional<std::string> fromCheckpoint;
  if (it != checkpoint.metadata.end() && !it->second.empty() && it->second[0] == '.')
    fromCheckpoint = it->second;
  if (auto data = args.get("--data")) {
    auto words = readWords(*data);
    if (!words) {
      reportError(words.takeError());
      return std::nullopt;
    }
    std::string fromData = buildVocabulary(*words).itos;
    if (fromCheckpoint && *fromCheckpoint != fromData) {
      reportError(fmt::format("the vocabulary of {} (\"{}\") differs from the one {} was trained "
                              "with (\"{}\")",
                              *data, fromData, weightsPath, *fromCheckpoint));
      return std::nullopt;
    }
    return fromData;
  }
  if (!fromCheckpoint)
    reportError(fmt::format("{} has no vocabulary metadata; pass --data FILE", weightsPath));
  return fromCheckpoint;
}

// A file written next to its destination, renamed over it by commit().
class PendingFile {
public:
  PendingFile(std::string path) : path_(std::move(path)) {}
  PendingFile(PendingFile &&o) noexcept : path_(std::move(o.path_)), temp_(std::move(o.temp_)) {
    o.temp_.clear();
  }
  ~PendingFile() {
    if (!temp_.empty())
      llvm::sys::fs::remove(temp_);
  }

  llvm::Error write(llvm::StringRef bytes) {
    llvm::SmallString<256> model(path_);
    model += ".tmp-%%%%%%";
    int fd = -1;
    llvm::SmallString<256> temp;
    if (std::error_code ec = llvm::sys::fs::createUniqueFile(model, fd, temp))
      return cannotWrite(ec.message());
    temp_ = std::string(temp.str());
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    os << bytes;
    os.close();
    if (os.has_error()) {
      std::string message = os.error().message();
      os.clear_error();
      return cannotWrite(message);
    }
    return llvm::Error::success();
  }

  llvm::Error commit() {
    if (std::error_code ec = llvm::sys::fs::rename(temp_, path_))
      return cannotWrite(ec.message());
    temp_.clear();
    return llvm::Error::success();
  }

private:
  llvm::Error cannotWrite(const std::string &why) const {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "cannot write '%s': %s",
                                   path_.c_str(), why.c_str());
  }
  std::string path_, temp_;
};

std::string withExtension(const std::string &path, const char *ext) {
  llvm::SmallString<256> p(path);
  llvm::sys::path::replace_extension(p, ext);
  return std::string(p.str());
}

} // namespace

std::optional<PreparedInference> prepareInference(const ParsedArgs &args, bool externalWeights) {
  auto weightsPath = args.get("--weights");
  if (!weightsPath) {
    reportError("mlpc compile needs --weights CKPT");
    return std::nullopt;
  }
  PreparedInference p;
  p.externalWeights = externalWeights;
  auto file = openModel(args, *weightsPath);
  if (!file) {
    reportError(file.takeError());
    return std::nullopt;
  }
  p.file = std::move(*file);
  ModelFile &model = *p.file;
  if (!model.parsedCleanly()) {
    model.flushDiagnostics();
    return std::nullopt;
  }
  auto checkpoint = readSafetensors(*weightsPath);
  if (!checkpoint) {
    reportError(checkpoint.takeError());
    return std::nullopt;
  }
  std::optional<std::string> vocab = vocabulary(args, *weightsPath, *checkpoint);
  if (!vocab)
    return std::nullopt;
  p.vocab = *vocab;
  Vocabulary v;
  v.itos = p.vocab;
  // The runtime validates the checkpoint against the model (every tensor
  // present, with its shape) exactly as `mlpc sample` and `mlpc eval` do.
  auto runtime = ModelRuntime::create(model.ast(), v, model.diags());
  model.flushDiagnostics();
  if (!runtime) {
    reportError(runtime.takeError());
    return std::nullopt;
  }
  if (llvm::Error e = (*runtime)->loadParams(*weightsPath)) {
    reportError(std::move(e));
    return std::nullopt;
  }
  auto context = checkpoint->metadata.find("context");
  if (context != checkpoint->metadata.end() &&
      context->second != std::to_string((*runtime)->context())) {
    reportError(fmt::format("{} was trained with a context of {}, but the model reads {}",
                            *weightsPath, context->second, (*runtime)->context()));
    return std::nullopt;
  }
  p.modelName = (*runtime)->module().name;
  const std::string batchDim = (*runtime)->module().batchDim;
  const TensorMap &params = (*runtime)->params();
  const int64_t vocabSize = static_cast<int64_t>(p.vocab.size());

  TensorMap rowWeights;
  std::optional<Graph> row = foldedGraph(model, batchDim, vocabSize, 1, params, rowWeights);
  std::optional<Graph> block;
  for (p.blockRows = kInferenceBlockRows; row; p.blockRows /= 2) {
    block = foldedGraph(model, batchDim, vocabSize, p.blockRows, params, p.weights);
    if (!block)
      break;
    InferenceModel m = p.model();
    m.block = &*block;
    m.row = &*row;
    auto iface = checkInferenceModel(m);
    if (!iface) {
      model.flushDiagnostics();
      reportError(iface.takeError());
      return std::nullopt;
    }
    if (iface->stackBytes <= kMaxInferenceStackBytes || p.blockRows == 1)
      break;
  }
  model.flushDiagnostics();
  if (!row || !block)
    return std::nullopt;
  // Both row counts materialize the same W' and b' (same interpreter, same
  // weights); the module keeps one copy, so they must agree bit for bit.
  for (const auto &[name, values] : rowWeights) {
    auto it = p.weights.find(name);
    if (it == p.weights.end() || it->second != values) {
      reportError(fmt::format("internal error: the folded '{}' differs between the block and "
                              "1-row graphs",
                              name));
      return std::nullopt;
    }
  }
  p.block = std::move(*block);
  p.row = std::move(*row);
  return p;
}

std::optional<std::string> inferenceModuleText(const ParsedArgs &args, InferenceEmit kind) {
  std::optional<PreparedInference> prepared = prepareInference(args, /*externalWeights=*/false);
  if (!prepared)
    return std::nullopt;
  auto text = emitInferenceModule(prepared->model(), CompileOptions{}, kind);
  if (!text) {
    reportError(text.takeError());
    return std::nullopt;
  }
  return std::move(*text);
}

int runCompile(const ParsedArgs &args) {
  auto out = args.get("-o");
  if (!out)
    return reportError("mlpc compile needs -o OUT.o");
  const bool external = args.has("--weights-external");
  const std::string headerPath = withExtension(*out, "h");
  const std::string binPath = withExtension(*out, "bin");
  if (headerPath == *out || (external && binPath == *out))
    return reportError(fmt::format("-o {} would be overwritten by the header or weights file; "
                                   "name the object OUT.o",
                                   *out));
  std::optional<PreparedInference> prepared = prepareInference(args, external);
  if (!prepared)
    return kExitUserError;
  InferenceModel model = prepared->model();
  auto iface = checkInferenceModel(model);
  if (!iface)
    return reportError(iface.takeError());
  CompileOptions options;
  options.triple = args.getOr("--target", "");
  options.cpu = args.getOr("--cpu", "");
  auto object = emitInferenceModule(model, options, InferenceEmit::Object);
  if (!object)
    return reportError(object.takeError());

  HeaderInfo info;
  info.vocab = prepared->vocab;
  info.modelPath = args.positional[0];
  info.weightsPath = *args.get("--weights");
  info.headerFile = llvm::sys::path::filename(headerPath).str();
  info.objectFile = llvm::sys::path::filename(*out).str();
  info.weightsFile = llvm::sys::path::filename(binPath).str();
  info.target = fmt::format(
      "{}, cpu {}", options.triple.empty() ? llvm::sys::getProcessTriple() : options.triple,
      !options.cpu.empty()     ? options.cpu
      : options.triple.empty() ? llvm::sys::getHostCPUName().str() + " (and the host's features)"
                               : std::string("generic"));

  std::vector<std::pair<PendingFile, std::string>> files;
  files.emplace_back(PendingFile(*out), std::move(*object));
  files.emplace_back(PendingFile(headerPath), inferenceHeader(model, *iface, info));
  if (external)
    files.emplace_back(PendingFile(binPath), weightsBlob(model, iface->layout));
  for (auto &[file, bytes] : files)
    if (llvm::Error e = file.write(bytes))
      return reportError(std::move(e));
  for (auto &[file, bytes] : files)
    if (llvm::Error e = file.commit())
      return reportError(std::move(e));
  return kExitOk;
}

} // namespace mlpc
