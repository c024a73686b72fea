// Loading a model for the commands that run it on names: the parsed file,
// the runtime and (optionally) the dataset.
#include "tools/Driver.h"

#include <llvm/ADT/SmallVector.h>
#include <llvm/ADT/StringRef.h>
#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

#include <cmath>

namespace mlpc {

namespace {
// `--shares A,B,...`: one non-negative part per thread of `--threads N`,
// not all zero (ExecutionOptions::shares).
std::optional<std::vector<double>> parseShares(const std::string &text, unsigned threads) {
  auto bad = [&](const std::string &why) {
    reportError(fmt::format("--shares {} (got '{}')", why, text));
    return std::nullopt;
  };
  if (threads < 2)
    return bad("needs --threads N with N of 2 or more, and one part per thread");
  llvm::SmallVector<llvm::StringRef> fields;
  llvm::StringRef(text).split(fields, ',');
  std::vector<double> shares;
  double total = 0;
  for (llvm::StringRef field : fields) {
    double part = 0;
    if (field.trim().getAsDouble(part) || !std::isfinite(part) || part < 0)
      return bad("takes non-negative numbers separated by commas");
    shares.push_back(part);
    total += part;
  }
  if (shares.size() != threads)
    return bad(fmt::format("needs {} parts, one per thread", threads));
  if (!(total > 0))
    return bad("needs a part above zero");
  return shares;
}
} // namespace

std::optional<ExecutionOptions> executionOptions(const ParsedArgs &args) {
  ExecutionOptions execution;
  std::string bits = args.getOr("--vector-bits", "");
  if (!bits.empty()) {
    if (bits != "128" && bits != "256" && bits != "512") {
      reportError("--vector-bits must be 128, 256 or 512 (got '" + bits + "')");
      return std::nullopt;
    }
    execution.vectorBits = static_cast<unsigned>(std::stoul(bits));
  }
  std::string threads = args.getOr("--threads", "auto");
  if (threads != "auto") {
    std::string error;
    auto n = args.getInt("--threads", 0, error);
    if (!n || *n < 1 || *n > kMaxThreads) {
      reportError(fmt::format("--threads must be auto or a number from 1 to {} (got '{}')",
                              kMaxThreads, threads));
      return std::nullopt;
    }
    execution.threads = static_cast<unsigned>(*n);
    if (unsigned cores = availableCores(); execution.threads > cores)
      llvm::errs() << fmt::format("mlpc: warning: --threads {} is more than the {} cores this "
                                  "process may use: the threads will wait for each other\n",
                                  execution.threads, cores);
  }
  if (args.has("--shares")) {
    auto shares = parseShares(args.getOr("--shares", ""), execution.threads);
    if (!shares)
      return std::nullopt;
    execution.shares = std::move(*shares);
  }
  if (!args.has("--no-cache")) {
    execution.cache.directory = defaultJitCacheDirectory();
    execution.cache.warn = [](const std::string &message) {
      llvm::errs() << "mlpc: warning: " << message << "\n";
    };
  }
  return execution;
}

// Parses the model (with the overrides recorded in `checkpoint`, if any, and
// --set), reads the names (if `needData`), binds V to the vocabulary and
// prepares the runtime. Returns nullopt after reporting.
std::optional<Loaded> loadModel(const ParsedArgs &args, bool needData,
                                const std::string &checkpoint, const Vocabulary *vocab,
                                bool willTrain) {
  Loaded l;
  auto file = openModel(args, checkpoint);
  if (!file) {
    reportError(file.takeError());
    return std::nullopt;
  }
  l.file = std::move(*file);
  if (!l.file->parsedCleanly()) {
    l.file->flushDiagnostics();
    return std::nullopt;
  }
  std::vector<std::string> words;
  Vocabulary v;
  if (needData) {
    auto read = readNamesFile(args);
    if (!read) {
      reportError(read.takeError());
      return std::nullopt;
    }
    words = std::move(*read);
    v = buildVocabulary(words);
  } else {
    v = *vocab;
  }
  PipelineOptions pipeline;
  pipeline.fuse = !args.has("--no-fuse");
  pipeline.verbose = args.has("--verbose");
  std::optional<ExecutionOptions> execution = executionOptions(args);
  if (!execution)
    return std::nullopt;
  auto runtime = ModelRuntime::create(l.file->ast(), v, l.file->diags(), pipeline, *execution);
  l.file->flushDiagnostics();
  if (!runtime) {
    reportError(runtime.takeError());
    return std::nullopt;
  }
  l.runtime = std::move(*runtime);
  if (willTrain)
    l.runtime->prepareTraining();
  if (needData) {
    auto data = buildDataset(std::move(words), static_cast<int>(l.runtime->context()));
    if (!data) {
      reportError(data.takeError());
      return std::nullopt;
    }
    l.data = std::move(*data);
  }
  return l;
}

} // namespace mlpc
