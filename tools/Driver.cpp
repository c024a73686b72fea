#include "tools/Driver.h"

#include "frontend/Parser.h"
#include "runtime/Dataset.h"

#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

namespace mlpc {

// Model files are small; refusing huge ones keeps a mistaken path (a dataset,
// a binary) from being lexed for minutes.
constexpr uint64_t kMaxModelFileBytes = 16u << 20;

llvm::Expected<std::unique_ptr<ModelFile>> ModelFile::open(const std::string &path) {
  auto buffer =
      llvm::MemoryBuffer::getFile(path, /*IsText=*/false, /*RequiresNullTerminator=*/false);
  if (!buffer)
    return llvm::createStringError(buffer.getError(), "cannot read '%s': %s", path.c_str(),
                                   buffer.getError().message().c_str());
  if ((*buffer)->getBufferSize() > kMaxModelFileBytes)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "'%s' is too large for a model file (%llu bytes)", path.c_str(),
                                   static_cast<unsigned long long>((*buffer)->getBufferSize()));
  auto file = std::make_unique<ModelFile>();
  file->path_ = path;
  file->source_ = std::make_unique<std::string>((*buffer)->getBuffer().str());
  file->diags_ = std::make_unique<DiagnosticEngine>(path, *file->source_);
  file->ast_ = parseModel(*file->source_, *file->diags_);
  file->parseOk_ = !file->diags_->hasErrors();
  return file;
}

std::optional<Module> ModelFile::lower(const LoweringOptions &options) {
  if (!parseOk_)
    return std::nullopt;
  return lowerModel(ast_, options, *diags_);
}

std::string ModelFile::batchDimName() const {
  for (const TensorDecl &t : ast_.tensors)
    if (!t.shape.empty() && t.shape[0]->kind == ExprKind::Ident)
      return t.shape[0]->name;
  return "";
}

void ModelFile::flushDiagnostics() {
  const auto &all = diags_->diagnostics();
  for (; printed_ < all.size(); ++printed_)
    llvm::errs() << diags_->render(all[printed_]);
  llvm::errs().flush();
}

int reportError(llvm::Error error) {
  std::string message = llvm::toString(std::move(error));
  return reportError(message);
}

int reportError(const std::string &message) {
  llvm::errs() << "mlpc: error: " << message << "\n";
  return kExitUserError;
}

llvm::Expected<std::string> namesFilePath(const ParsedArgs &args) {
  if (auto path = args.get("--data"))
    return *path;
  if (auto found = findNamesFile())
    return *found;
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "no names file found in data/, $MLPC_DATA or ../shared/data/; "
                                 "pass --data FILE (scripts/setup.sh downloads names.txt)");
}

std::optional<LoweringOptions> loweringOptions(const ParsedArgs &args, int64_t vocab) {
  LoweringOptions options;
  std::string error;
  auto v = args.getInt("--vocab", vocab, error);
  if (!v || *v <= 0 || *v > (1 << 24)) {
    reportError(error.empty() ? fmt::format("--vocab must be in [1, 16777216], got {}", *v)
                              : error);
    return std::nullopt;
  }
  options.vocab = *v;
  return options;
}

} // namespace mlpc
