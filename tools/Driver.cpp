#include "tools/Driver.h"

#include "runtime/Dataset.h"
#include "runtime/Safetensors.h"

#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

#include <csignal>

namespace mlpc {

const FlagSpec kSetFlag{"--set", "NAME=VALUE",
                        "override a dim (H=300) or a train setting (steps=50000, batch=64, "
                        "lr=0.05, \"sgd=lr 0.1, 0.01 after 50000\")",
                        /*repeatable=*/true};

llvm::Expected<std::vector<Override>> commandOverrides(const ParsedArgs &args,
                                                       const std::string &checkpoint) {
  std::vector<Override> overrides;
  if (!checkpoint.empty()) {
    auto file = readSafetensors(checkpoint);
    if (!file)
      return file.takeError();
    if (auto it = file->metadata.find("overrides"); it != file->metadata.end()) {
      auto recorded = decodeOverrides(it->second);
      if (!recorded)
        return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                       "%s: bad 'overrides' metadata: %s", checkpoint.c_str(),
                                       llvm::toString(recorded.takeError()).c_str());
      overrides = std::move(*recorded);
    }
  }
  for (const std::string &text : args.getAll("--set")) {
    auto o = parseOverride(text);
    if (!o)
      return o.takeError();
    overrides.push_back(std::move(*o));
  }
  return overrides;
}

llvm::Expected<std::unique_ptr<ModelFile>> openModel(const ParsedArgs &args,
                                                     const std::string &checkpoint) {
  auto overrides = commandOverrides(args, checkpoint);
  if (!overrides)
    return overrides.takeError();
  return ModelFile::open(args.positional[0], *overrides);
}

namespace {
// SIGINT / SIGTERM only set this flag; long-running commands poll it (the
// training loop between steps, a sweep between its runs' polls). A signal
// handler can do nothing else safely, which is why this one piece of mutable
// global state exists.
volatile std::sig_atomic_t stopSignal = 0;
extern "C" void requestStop(int signal) {
  stopSignal = signal;
}
} // namespace

const volatile std::sig_atomic_t &installStopHandlers() {
  struct sigaction action = {};
  action.sa_handler = requestStop;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  return stopSignal;
}

llvm::Error usageError(const std::string &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
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

llvm::Expected<std::vector<std::string>> readNamesFile(const ParsedArgs &args) {
  auto path = namesFilePath(args);
  if (!path)
    return path.takeError();
  return readWords(*path);
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
