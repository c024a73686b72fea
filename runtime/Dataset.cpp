//===- Dataset.cpp - names.txt loading and context-window datasets --------===//

#include "runtime/Dataset.h"
#include "runtime/InputFile.h"
#include "runtime/Rng.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdlib>

using namespace mlpc;

namespace {

llvm::Error makeError(const std::string &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

constexpr int MaxContext = 1024;

/// Appends the windows of `words` to `out`, exactly like the notebook loop:
/// context = [0]*T; for ch in w + '.': X.append(context); Y.append(ix);
/// context = context[1:] + [ix].
void buildSplit(const std::vector<std::string> &words, size_t begin, size_t end, int context,
                const std::array<int32_t, 256> &stoi, Split &out) {
  size_t rows = 0;
  for (size_t w = begin; w < end; ++w)
    rows += words[w].size() + 1;
  const size_t ctx = static_cast<size_t>(context);
  out.X.assign(rows * ctx, 0);
  out.Y.resize(rows);
  // Row i of a name holds its characters i - context .. i - 1 (0, the '.'
  // token, before its start) and targets character i (the final '.' for
  // i = size): written in place, as the rolling window of the seed's
  // Python builds them (this runs while the step compiles, so it is kept
  // cheap: ~5x fewer instructions than appending window copies).
  size_t row = 0;
  for (size_t w = begin; w < end; ++w) {
    const std::string &word = words[w];
    for (size_t i = 0; i <= word.size(); ++i, ++row) {
      int32_t *x = out.X.data() + row * ctx;
      for (size_t j = i < ctx ? ctx - i : 0; j < ctx; ++j)
        x[j] = stoi[static_cast<unsigned char>(word[i - ctx + j])];
      out.Y[row] = i < word.size() ? stoi[static_cast<unsigned char>(word[i])] : 0;
    }
  }
}

} // namespace

int Vocabulary::index(char c) const {
  size_t pos = itos.find(c);
  return pos == std::string::npos ? -1 : static_cast<int>(pos);
}

llvm::Expected<std::vector<std::string>> mlpc::readWords(const std::string &path) {
  auto bufOr = readInputFile(path, "names file ");
  if (!bufOr)
    return bufOr.takeError();
  return parseWords((*bufOr)->getBuffer(), path);
}

llvm::Expected<std::vector<std::string>> mlpc::parseWords(llvm::StringRef text,
                                                          llvm::StringRef name) {
  const std::string path = name.str();
  std::vector<std::string> words;
  size_t lineNo = 0;
  while (!text.empty()) {
    ++lineNo;
    auto [line, rest] = text.split('\n');
    text = rest;
    if (line.ends_with("\r"))
      line = line.drop_back();
    if (line.empty())
      continue;
    if (line.size() > MaxWordLength)
      return makeError(fmt::format("{}:{}: name is {} characters long; the limit is {}", path,
                                   lineNo, line.size(), MaxWordLength));
    for (size_t i = 0; i < line.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(line[i]);
      if (c == '.')
        return makeError(fmt::format("{}:{}:{}: name contains '.', which is reserved as the "
                                     "start/end token",
                                     path, lineNo, i + 1));
      if (c < 0x21 || c > 0x7e)
        return makeError(fmt::format("{}:{}:{}: invalid byte 0x{:02x} in name; only printable "
                                     "ASCII without spaces (0x21..0x7e) is allowed",
                                     path, lineNo, i + 1, c));
    }
    words.push_back(line.str());
  }
  if (words.empty())
    return makeError(fmt::format("names file '{}' contains no names", path));
  return words;
}

Vocabulary mlpc::buildVocabulary(const std::vector<std::string> &words) {
  std::array<bool, 256> seen{};
  for (const std::string &w : words)
    for (char c : w)
      seen[static_cast<unsigned char>(c)] = true;
  Vocabulary v;
  v.itos.push_back('.');
  // Iterating byte values in order gives Python's sorted(set(...)) order.
  for (int c = 0; c < 256; ++c)
    if (seen[c] && c != '.')
      v.itos.push_back(static_cast<char>(c));
  return v;
}

llvm::Expected<Dataset> mlpc::buildDataset(std::vector<std::string> words, int context,
                                           uint64_t shuffleSeed) {
  if (context < 1 || context > MaxContext)
    return makeError(
        fmt::format("context length must be between 1 and {}, got {}", MaxContext, context));
  for (size_t i = 0; i < words.size(); ++i) {
    if (words[i].empty())
      return makeError(fmt::format("name {} is empty", i + 1));
    if (words[i].find('.') != std::string::npos)
      return makeError(fmt::format("name {} ('{}') contains '.', which is reserved as the "
                                   "start/end token",
                                   i + 1, words[i]));
  }

  // Checked before shuffling or allocating: every name is one row per
  // character plus its final '.', each row `context` indices.
  uint64_t rows = 0;
  for (const std::string &w : words)
    rows += w.size() + 1;
  if (rows > MaxDatasetTokens / static_cast<uint64_t>(context))
    return makeError(fmt::format("dataset is too large: {} rows of context {} exceed the limit of "
                                 "{} indices",
                                 rows, context, MaxDatasetTokens));

  Dataset ds;
  ds.context = context;
  ds.numWords = words.size();
  ds.vocab = buildVocabulary(words);

  Mt19937Py rng = Mt19937Py::fromMagnitude(shuffleSeed);
  rng.shuffle(words);

  // Same double arithmetic as Python's int(0.8 * n), so the splits agree.
  const size_t n = words.size();
  const size_t n1 = static_cast<size_t>(0.8 * static_cast<double>(n));
  const size_t n2 = static_cast<size_t>(0.9 * static_cast<double>(n));
  if (n1 == 0)
    return makeError(fmt::format("too few names ({}) to form a training split", n));

  std::array<int32_t, 256> stoi{};
  for (size_t i = 0; i < ds.vocab.itos.size(); ++i)
    stoi[static_cast<unsigned char>(ds.vocab.itos[i])] = static_cast<int32_t>(i);

  buildSplit(words, 0, n1, context, stoi, ds.train);
  buildSplit(words, n1, n2, context, stoi, ds.val);
  buildSplit(words, n2, n, context, stoi, ds.test);
  return ds;
}

std::optional<std::string> mlpc::findNamesFile() {
  if (llvm::sys::fs::is_regular_file("data/names.txt"))
    return std::string("data/names.txt");
  if (const char *env = std::getenv("MLPC_DATA"); env && *env) {
    std::string p = env;
    if (llvm::sys::fs::is_regular_file(p))
      return p;
    if (llvm::sys::fs::is_directory(p)) {
      llvm::SmallString<256> joined(p);
      llvm::sys::path::append(joined, "names.txt");
      if (llvm::sys::fs::is_regular_file(joined))
        return std::string(joined.str());
    }
  }
  if (llvm::sys::fs::is_regular_file("../shared/data/names.txt"))
    return std::string("../shared/data/names.txt");
  return std::nullopt;
}
