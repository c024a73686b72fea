// A model file, parsed once and lowered on demand (e.g. once for training at
// the batch size, once for sampling at one row). Diagnostics collect in
// diags(); the driver prints them, the Python module raises them.
#pragma once

#include "frontend/AST.h"
#include "frontend/Lowering.h"
#include "frontend/Overrides.h"
#include "support/Diagnostics.h"

#include <llvm/Support/Error.h>

#include <memory>
#include <optional>
#include <string>

namespace mlpc {

class ModelFile {
public:
  // Parses the file and applies `overrides` (`--set`) to its AST.
  static llvm::Expected<std::unique_ptr<ModelFile>> open(const std::string &path,
                                                         llvm::ArrayRef<Override> overrides = {});

  // Reports errors to diags(); nullopt if the model does not lower.
  std::optional<Module> lower(const LoweringOptions &options);
  // The batch dimension name, for dimOverrides.
  std::string batchDimName() const;

  DiagnosticEngine &diags() { return *diags_; }
  const ModelAST &ast() const { return ast_; }
  bool parsedCleanly() const { return parseOk_; }
  // Prints diagnostics collected so far to stderr (once each).
  void flushDiagnostics();

private:
  std::string path_;
  std::unique_ptr<std::string> source_;
  std::unique_ptr<DiagnosticEngine> diags_;
  ModelAST ast_;
  bool parseOk_ = false;
  size_t printed_ = 0;
  bool notedOverrides_ = false;
};

} // namespace mlpc
