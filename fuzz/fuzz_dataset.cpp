// libFuzzer target: the names-file reader and the dataset builder on
// arbitrary bytes (empty files, CRLF, NUL and non-ASCII bytes, over-long
// lines, '.' and other characters outside the vocabulary a model expects).
//
// parseWords must either fail with a message or return names that
// buildDataset accepts; the dataset must then satisfy the data contract of
// DESIGN.md: '.' = 0 then the sorted characters, one row per character plus
// the final '.', every index inside the vocabulary, splits covering all rows.
// The first input byte picks the context length (1..16), the rest is the file.
#include "runtime/Dataset.h"

#include <cstdio>
#include <cstdlib>

using namespace mlpc;

namespace {

[[noreturn]] void fail(const char *what) {
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

void checkSplit(const Split &s, int context, size_t vocab) {
  if (s.X.size() != static_cast<size_t>(s.rows()) * static_cast<size_t>(context))
    fail("X and Y disagree on the number of rows");
  for (int32_t ix : s.X)
    if (ix < 0 || static_cast<size_t>(ix) >= vocab)
      fail("context index outside the vocabulary");
  for (int32_t ix : s.Y)
    if (ix < 0 || static_cast<size_t>(ix) >= vocab)
      fail("target index outside the vocabulary");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  const int context = 1 + data[0] % 16;
  llvm::StringRef text(reinterpret_cast<const char *>(data + 1), size - 1);
  llvm::Expected<std::vector<std::string>> words = parseWords(text, "fuzz.txt");
  if (!words) {
    llvm::consumeError(words.takeError());
    return 0;
  }
  size_t rows = 0;
  for (const std::string &w : *words) {
    if (w.empty() || w.size() > MaxWordLength)
      fail("parseWords returned an empty or over-long name");
    for (char c : w)
      if (c == '.' || static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e)
        fail("parseWords returned a name with a forbidden byte");
    rows += w.size() + 1;
  }

  Vocabulary vocab = buildVocabulary(*words);
  if (vocab.itos.empty() || vocab.itos[0] != '.' || vocab.index('.') != 0)
    fail("'.' is not index 0");
  for (size_t i = 2; i < vocab.itos.size(); ++i)
    if (static_cast<unsigned char>(vocab.itos[i - 1]) >= static_cast<unsigned char>(vocab.itos[i]))
      fail("vocabulary is not sorted and distinct");
  // Characters the names do not use are outside the vocabulary.
  for (int c = 0; c < 256; ++c) {
    int ix = vocab.index(static_cast<char>(c));
    if (ix >= 0 && vocab.itos[static_cast<size_t>(ix)] != static_cast<char>(c))
      fail("index() and itos disagree");
  }

  llvm::Expected<Dataset> ds = buildDataset(*words, context);
  if (!ds) {
    // Only a file too small for a training split may be refused here.
    if (words->size() >= 2)
      fail("buildDataset refused names that parseWords accepted");
    llvm::consumeError(ds.takeError());
    return 0;
  }
  if (ds->vocab.itos != vocab.itos || ds->numWords != words->size())
    fail("dataset vocabulary or word count differs");
  if (static_cast<size_t>(ds->train.rows() + ds->val.rows() + ds->test.rows()) != rows)
    fail("splits do not cover every row");
  for (const Split *s : {&ds->train, &ds->val, &ds->test})
    checkSplit(*s, context, vocab.size());
  return 0;
}
