// Hostile safetensors bytes (issue 8), through parseSafetensors: the entry
// point the fuzzer uses. Cases the fuzzer or review found; the broader list
// of malformed headers is in test_safetensors.cpp.
#include "runtime/Safetensors.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <string>

using namespace mlpc;

namespace {

std::string file(const std::string &header, const std::string &data = "") {
  uint64_t n = header.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

std::string parseError(const std::string &bytes) {
  auto r = parseSafetensors(bytes, "x.safetensors");
  if (r)
    return "";
  return llvm::toString(r.takeError());
}

} // namespace

TEST_CASE("hostile: deeply nested JSON headers are refused before parsing",
          "[hostile][safetensors]") {
  // llvm::json::parse recurses once per level: 100k levels (200 KB, well
  // under the 100 MB header limit) overflowed the stack.
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  CHECK(parseError(file(deep)) == "x.safetensors: header nests JSON more than 64 levels deep");
  std::string deepObject = "{\"__metadata__\": ";
  for (int i = 0; i < 100000; ++i)
    deepObject += "{\"a\": ";
  CHECK(parseError(file(deepObject)).find("more than 64 levels deep") != std::string::npos);
  // Brackets inside strings do not count, escaped quotes do not end them.
  std::string inString = "{\"__metadata__\": {\"k\": \"" + std::string(1000, '[') + "\\\"]\"}}";
  auto r = parseSafetensors(file(inString), "x.safetensors");
  REQUIRE(!!r);
  CHECK(r->metadata.at("k") == std::string(1000, '[') + "\"]");
}

TEST_CASE("hostile: parseSafetensors reads what readSafetensors reads", "[hostile][safetensors]") {
  std::string header = "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
                       "\"i\": {\"dtype\": \"I32\", \"shape\": [], \"data_offsets\": [8, 12]}}";
  float w[2] = {1.5f, -2.0f};
  int32_t i = 7;
  std::string data(12, '\0');
  std::memcpy(data.data(), w, 8);
  std::memcpy(data.data() + 8, &i, 4);
  auto r = parseSafetensors(file(header, data), "x.safetensors");
  REQUIRE(!!r);
  CHECK(r->tensors.at("w").f32()[1] == -2.0f);
  CHECK(r->tensors.at("i").i32()[0] == 7);
  // Truncated by one byte: the offsets now point past the data section.
  CHECK(parseError(file(header, data.substr(0, 11))).find("beyond the data section") !=
        std::string::npos);
  // A header length that covers the whole file leaves no data section.
  std::string bytes = file(header, data);
  uint64_t all = bytes.size() - 8;
  std::memcpy(bytes.data(), &all, 8);
  CHECK(!parseError(bytes).empty());
}
