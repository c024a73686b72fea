//===- Dataset.h - names.txt loading and context-window datasets -*- C++ -*-===//
//
// Reproduces the data pipeline of the makemore seed notebooks exactly:
// vocabulary '.' = 0 then the sorted characters, `random.seed(42);
// random.shuffle(words)`, an 80/10/10 split by word, and one example per
// character plus the final '.', with the context padded by '.' (index 0).
// Exact reproduction matters because losses are compared with the notebooks.
//
//===----------------------------------------------------------------------===//
#ifndef MLPC_RUNTIME_DATASET_H
#define MLPC_RUNTIME_DATASET_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlpc {

/// Longest accepted name; longer lines are almost certainly not a names file.
constexpr size_t MaxWordLength = 1000;
/// Most context-window entries (rows * context, all splits) buildDataset
/// builds: 8 GiB of i32 indices; a larger names file or context is an error
/// instead of an allocation failure.
constexpr uint64_t MaxDatasetTokens = uint64_t(1) << 31;

struct Vocabulary {
  /// index -> character; itos[0] == '.', the start/end separator token.
  std::string itos;

  /// Index of `c`, or -1 if it is not in the vocabulary.
  int index(char c) const;
  size_t size() const { return itos.size(); }
};

struct Split {
  /// rows() * context token indices, row-major.
  std::vector<int32_t> X;
  /// rows() target indices.
  std::vector<int32_t> Y;
  int64_t rows() const { return static_cast<int64_t>(Y.size()); }
};

struct Dataset {
  Vocabulary vocab;
  int context = 0;
  Split train, val, test;
  /// Number of names the splits were built from.
  size_t numWords = 0;
};

/// Reads one name per line. Strips a trailing '\r', skips empty lines, and
/// rejects unreadable files, files without names, names containing '.' or
/// bytes outside printable ASCII 0x21..0x7e, and lines over MaxWordLength.
llvm::Expected<std::vector<std::string>> readWords(const std::string &path);

/// readWords on the contents of a names file; `name` (its path) prefixes
/// every error message. The fuzzer calls this directly.
llvm::Expected<std::vector<std::string>> parseWords(llvm::StringRef text, llvm::StringRef name);

/// '.' = 0, then the sorted distinct characters of `words` ('.' excluded).
Vocabulary buildVocabulary(const std::vector<std::string> &words);

/// Shuffles `words` like Python `random.seed(shuffleSeed);
/// random.shuffle(words)`, splits at int(0.8*n) and int(0.9*n) into
/// train/val/test and builds the context windows. Fails for context outside
/// [1, 1024], for empty names or names containing '.', when the windows would
/// exceed MaxDatasetTokens, and when the train split would be empty; val and
/// test may be empty for tiny inputs.
llvm::Expected<Dataset> buildDataset(std::vector<std::string> words, int context,
                                     uint64_t shuffleSeed = 42);

/// First existing file among: data/names.txt (relative to the working
/// directory), $MLPC_DATA (a file, or a directory containing names.txt), and
/// ../shared/data/names.txt.
std::optional<std::string> findNamesFile();

} // namespace mlpc

#endif // MLPC_RUNTIME_DATASET_H
