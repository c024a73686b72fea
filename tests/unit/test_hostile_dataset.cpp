// Hostile names files (issue 8), through parseWords: the entry point the
// fuzzer uses. Every case must be an error naming the file, line and column,
// or a dataset that keeps the data contract.
#include "runtime/Dataset.h"

#include <catch2/catch.hpp>

#include <string>

using namespace mlpc;

namespace {

std::string parseError(const std::string &text) {
  auto r = parseWords(text, "n.txt");
  if (r)
    return "";
  return llvm::toString(r.takeError());
}

} // namespace

TEST_CASE("hostile: names files with bad bytes and lines", "[hostile][dataset]") {
  CHECK(parseError("") == "names file 'n.txt' contains no names");
  CHECK(parseError("\n\r\n\n") == "names file 'n.txt' contains no names");
  // A 1 MB line: refused at its length, without being copied.
  CHECK(parseError("emma\n" + std::string(1 << 20, 'a') + "\nava\n") ==
        "n.txt:2: name is 1048576 characters long; the limit is 1000");
  CHECK(parseError("emma\nzo\xc3\xab\n") ==
        "n.txt:2:3: invalid byte 0xc3 in name; only printable ASCII without spaces (0x21..0x7e) "
        "is allowed");
  CHECK(parseError(std::string("em\0ma\n", 6)).find("n.txt:1:3: invalid byte 0x00") == 0);
  CHECK(parseError("mary ann\n").find("n.txt:1:5: invalid byte 0x20") == 0);
  CHECK(parseError("emma\rava\n").find("n.txt:1:5: invalid byte 0x0d") == 0);
  CHECK(parseError("st.john\n").find("n.txt:1:3: name contains '.'") == 0);
}

TEST_CASE("hostile: CRLF files give the same dataset as LF files", "[hostile][dataset]") {
  auto lf = parseWords("emma\nolivia\nava\nmia\n", "n.txt");
  auto crlf = parseWords("emma\r\nolivia\r\nava\r\nmia", "n.txt");
  REQUIRE(!!lf);
  REQUIRE(!!crlf);
  CHECK(*lf == *crlf);
}

TEST_CASE("hostile: characters outside a-z are vocabulary like any other", "[hostile][dataset]") {
  // Printable ASCII beyond the names.txt alphabet is accepted; the
  // vocabulary (and so the model's V) grows to cover it.
  auto words = parseWords("Emma\nx_y\n0123\n~!@#\nava\n", "n.txt");
  REQUIRE(!!words);
  auto ds = buildDataset(*words, 3);
  REQUIRE(!!ds);
  CHECK(ds->vocab.itos == ".!#0123@E_amvxy~");
  for (const Split *s : {&ds->train, &ds->val, &ds->test})
    for (int32_t ix : s->Y)
      CHECK((ix >= 0 && static_cast<size_t>(ix) < ds->vocab.size()));
  CHECK(ds->vocab.index('z') == -1);
}

TEST_CASE("hostile: datasets too large for memory are refused before allocating",
          "[hostile][dataset]") {
  // 2.2 million rows of context 1024 would be 9 GB of indices.
  std::vector<std::string> words(200000, "abcdefghij");
  auto ds = buildDataset(words, 1024);
  REQUIRE(!ds);
  CHECK(llvm::toString(ds.takeError()) ==
        "dataset is too large: 2200000 rows of context 1024 exceed the limit of 2147483648 "
        "indices");
}
