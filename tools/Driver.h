// Shared driver plumbing: reading and lowering a model file, printing its
// diagnostics. Only the driver turns errors into exit codes.
#pragma once

#include "frontend/AST.h"
#include "frontend/Lowering.h"
#include "frontend/Overrides.h"
#include "passes/Pipeline.h"
#include "runtime/ModelFile.h"
#include "runtime/ModelRuntime.h"
#include "support/Diagnostics.h"
#include "tools/Args.h"

#include <llvm/Support/Error.h>

#include <csignal>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlpc {

constexpr int kExitOk = 0;
constexpr int kExitUserError = 1;

// The flag every model-reading command takes.
extern const FlagSpec kSetFlag;

// The overrides for a command: those recorded in `checkpoint` (when non-empty;
// a checkpoint of an overridden model rebuilds its shapes), then the command
// line's `--set` values (a later one wins).
llvm::Expected<std::vector<Override>> commandOverrides(const ParsedArgs &args,
                                                       const std::string &checkpoint = "");
// ModelFile::open of the command's MODEL with commandOverrides(args, checkpoint).
llvm::Expected<std::unique_ptr<ModelFile>> openModel(const ParsedArgs &args,
                                                     const std::string &checkpoint = "");

// A model ready to run on names (tools/LoadModel.cpp).
struct Loaded {
  std::unique_ptr<ModelFile> file;
  std::unique_ptr<ModelRuntime> runtime;
  std::optional<Dataset> data;
};
// Parses the model (with the overrides recorded in `checkpoint`, if any, and
// --set), reads the names (if `needData`, else binds V to `*vocab`) and
// prepares the runtime (--no-fuse, --verbose). With `willTrain`, the training
// step starts compiling before the names are read (ModelRuntime::prepareTraining).
// Returns nullopt after reporting.
std::optional<Loaded> loadModel(const ParsedArgs &args, bool needData,
                                const std::string &checkpoint, const Vocabulary *vocab = nullptr,
                                bool willTrain = false);

// --vector-bits (and the other ExecutionOptions flags); nullopt after reporting.
std::optional<ExecutionOptions> executionOptions(const ParsedArgs &args);

// Makes SIGINT and SIGTERM set the returned flag (to the signal's number)
// instead of ending the process.
const volatile std::sig_atomic_t &installStopHandlers();

// A command-line mistake as an llvm::Error (for the option parsers that
// return Expected), which reportError prints.
llvm::Error usageError(const std::string &message);

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
int runLrFind(const ParsedArgs &args);
int runSweep(const ParsedArgs &args);
int runPlotEmbedding(const ParsedArgs &args);

// The names file: --data, else data/names.txt, $MLPC_DATA, ../shared/data/names.txt.
llvm::Expected<std::string> namesFilePath(const ParsedArgs &args);
// The names in that file (runtime/Dataset.h: readWords).
llvm::Expected<std::vector<std::string>> readNamesFile(const ParsedArgs &args);

// Common flag handling: --vocab N (default 27 when no dataset binds it).
std::optional<LoweringOptions> loweringOptions(const ParsedArgs &args, int64_t vocab);

} // namespace mlpc
