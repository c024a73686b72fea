// Shared driver plumbing: reading and lowering a model file, printing its
// diagnostics. Only the driver turns errors into exit codes.
#pragma once

#include "frontend/AST.h"
#include "frontend/Diagnostics.h"
#include "ir/Module.h"
#include "passes/Pipeline.h"
#include "tools/Args.h"

#include <llvm/Support/Error.h>

#include <memory>
#include <optional>
#include <string>

namespace mlpc {

constexpr int kExitOk = 0;
constexpr int kExitUserError = 1;

// A model file, parsed once and lowered on demand (e.g. once for training at
// the batch size, once for sampling at one row).
class ModelFile {
public:
  static llvm::Expected<std::unique_ptr<ModelFile>> open(const std::string &path);

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
};

// Prints "mlpc: error: <message>" for errors that have no source location.
int reportError(llvm::Error error);
int reportError(const std::string &message);

// Every subcommand: spec + implementation.
struct Command {
  CommandSpec spec;
  int (*run)(const ParsedArgs &args);
};
const std::vector<Command> &allCommands();

// Commands grouped by file.
int runCheck(const ParsedArgs &args);
int runEmit(const ParsedArgs &args);
int runGradcheck(const ParsedArgs &args);
int runGrad(const ParsedArgs &args);
int runTrain(const ParsedArgs &args);
int runEval(const ParsedArgs &args);
int runSample(const ParsedArgs &args);
int runCompile(const ParsedArgs &args);
int runFoldCheck(const ParsedArgs &args);
int runBench(const ParsedArgs &args);
int runPlot(const ParsedArgs &args);

// The names file: --data, else data/names.txt, $MLPC_DATA, ../shared/data/names.txt.
llvm::Expected<std::string> namesFilePath(const ParsedArgs &args);

// Common flag handling: --vocab N (default 27 when no dataset binds it).
std::optional<LoweringOptions> loweringOptions(const ParsedArgs &args, int64_t vocab);

} // namespace mlpc
