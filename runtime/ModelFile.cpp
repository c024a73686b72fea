#include "runtime/ModelFile.h"

#include "frontend/Parser.h"
#include "runtime/InputFile.h"

#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

namespace mlpc {

// Model files are small; refusing huge ones keeps a mistaken path (a dataset,
// a binary) from being lexed for minutes.
constexpr uint64_t kMaxModelFileBytes = 16u << 20;

llvm::Expected<std::unique_ptr<ModelFile>> ModelFile::open(const std::string &path,
                                                           llvm::ArrayRef<Override> overrides) {
  auto buffer = readInputFile(path);
  if (!buffer)
    return buffer.takeError();
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
  if (file->parseOk_ && !overrides.empty())
    if (llvm::Error e = applyOverrides(file->ast_, overrides))
      return e;
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
  // Errors after --set: say which dims the shapes came from.
  if (diags_->hasErrors() && !ast_.overrides.empty() && !notedOverrides_) {
    notedOverrides_ = true;
    llvm::errs() << fmt::format("mlpc: note: with --set {} the model's dims are {}\n",
                                fmt::join(ast_.overrides, " --set "), describeDims(ast_));
  }
  llvm::errs().flush();
}

} // namespace mlpc
