// Tests for runtime/Safetensors.h: round trips, the exact byte layout, atomic
// replacement, and hostile files that must produce errors rather than crashes.
#include "runtime/Safetensors.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>
#include <sstream>

using namespace mlpc;

namespace {

struct TempDir {
  llvm::SmallString<128> path;
  TempDir() {
    std::error_code ec = llvm::sys::fs::createUniqueDirectory("mlpc-safetensors-test", path);
    REQUIRE(!ec);
  }
  ~TempDir() { llvm::sys::fs::remove_directories(path); }
  std::string at(const std::string &name) const {
    llvm::SmallString<128> p(path);
    llvm::sys::path::append(p, name);
    return std::string(p);
  }
  std::string raw(const std::string &name, const std::string &bytes) const {
    std::string p = at(name);
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  /// A file with the given header text, its true length, and `data`.
  std::string withHeader(const std::string &name, const std::string &header,
                         const std::string &data = "") const {
    uint64_t n = header.size();
    std::string bytes(8, '\0');
    std::memcpy(&bytes[0], &n, 8);
    return raw(name, bytes + header + data);
  }
  size_t entries() const {
    std::error_code ec;
    size_t n = 0;
    for (llvm::sys::fs::directory_iterator it(path, ec), end; it != end && !ec; it.increment(ec))
      ++n;
    return n;
  }
};

std::string slurp(const std::string &p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// "" on success, else the error text (consuming the error, so an unchecked
/// llvm::Expected never aborts a debug build). Catch cannot test an Expected
/// directly because its operator bool is non-const.
template <class T> std::string errText(llvm::Expected<T> &r) {
  if (r)
    return "";
  return llvm::toString(r.takeError());
}
template <class T> std::string errText(llvm::Expected<T> &&r) {
  return errText(r);
}
std::string errText(llvm::Error e) {
  return e ? llvm::toString(std::move(e)) : "";
}

std::string readError(const std::string &p) {
  return errText(readSafetensors(p));
}

TensorData f32Tensor(std::vector<int64_t> shape, std::vector<float> values) {
  TensorData t;
  t.dtype = TensorDType::F32;
  t.shape = std::move(shape);
  t.bytes.resize(values.size() * 4);
  if (!values.empty()) // memcpy from a null pointer is UB even for 0 bytes
    std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

TensorData i32Tensor(std::vector<int64_t> shape, std::vector<int32_t> values) {
  TensorData t;
  t.dtype = TensorDType::I32;
  t.shape = std::move(shape);
  t.bytes.resize(values.size() * 4);
  if (!values.empty()) // memcpy from a null pointer is UB even for 0 bytes
    std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

} // namespace

TEST_CASE("safetensors round trip", "[safetensors]") {
  TempDir d;
  TensorFile f;
  f.tensors["W1"] = f32Tensor({2, 3}, {1, -2, 3.5f, 0, 1e-30f, -0.0f});
  f.tensors["b1"] = f32Tensor({}, {42});
  f.tensors["idx"] = i32Tensor({4}, {-1, 0, 7, 2147483647});
  f.tensors["empty"] = f32Tensor({0, 5}, {});
  f.metadata["format"] = "pt";
  f.metadata["note"] = "quotes \" and \\ and \xc3\xa9";
  std::string p = d.at("model.safetensors");
  REQUIRE("" == errText(writeSafetensors(p, f)));

  auto r = readSafetensors(p);
  REQUIRE(errText(r) == "");
  CHECK(r->metadata == f.metadata);
  REQUIRE(r->tensors.size() == 4u);
  for (const auto &[name, t] : f.tensors) {
    INFO(name);
    const TensorData &u = r->tensors.at(name);
    CHECK(u.dtype == t.dtype);
    CHECK(u.shape == t.shape);
    CHECK(u.bytes == t.bytes);
  }
  CHECK(r->tensors.at("W1").numel() == 6);
  CHECK(r->tensors.at("W1").f32()[2] == 3.5f);
  CHECK(r->tensors.at("W1").i32() == nullptr);
  CHECK(r->tensors.at("idx").i32()[3] == 2147483647);
  CHECK(r->tensors.at("b1").numel() == 1);
  CHECK(r->tensors.at("empty").numel() == 0);
  CHECK(d.entries() == 1u); // no temp file left behind
}

TEST_CASE("safetensors writer output is byte-exact and deterministic", "[safetensors]") {
  TempDir d;
  TensorFile f;
  f.tensors["b"] = i32Tensor({1}, {7});
  f.tensors["a"] = f32Tensor({2}, {1.0f, 2.0f});
  std::string p1 = d.at("one.safetensors"), p2 = d.at("two.safetensors");
  REQUIRE("" == errText(writeSafetensors(p1, f)));
  REQUIRE("" == errText(writeSafetensors(p2, f)));
  std::string bytes = slurp(p1);
  CHECK(bytes == slurp(p2));

  std::string json = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}})";
  std::string padded = json + std::string((8 - json.size() % 8) % 8, ' ');
  uint64_t n = 0;
  REQUIRE(bytes.size() >= 8);
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n == padded.size());
  CHECK(n % 8 == 0);
  CHECK(bytes.substr(8, n) == padded);
  CHECK(bytes.size() == 8 + n + 12);
}

TEST_CASE("safetensors reads a hand-written file", "[safetensors]") {
  TempDir d;
  float vals[3] = {0.5f, -1.0f, 2.0f};
  std::string data(reinterpret_cast<const char *>(vals), 12);
  // Gap before the tensor, whitespace in the header: both legal.
  std::string p = d.withHeader(
      "hand.safetensors",
      R"( {"__metadata__": {"k": "v"}, "x": {"data_offsets": [4, 16], "shape": [3], "dtype": "F32"}}  )",
      std::string(4, '\0') + data);
  auto r = readSafetensors(p);
  REQUIRE(errText(r) == "");
  CHECK(r->metadata.at("k") == "v");
  CHECK(r->tensors.at("x").f32()[1] == -1.0f);

  CHECK(readError(d.withHeader("empty.safetensors", "{}")) == "");
}

TEST_CASE("safetensors writes replace the old file atomically", "[safetensors]") {
  TempDir d;
  std::string p = d.at("ckpt.safetensors");
  TensorFile v1, v2;
  v1.tensors["w"] = f32Tensor({1}, {1});
  v2.tensors["w"] = f32Tensor({2}, {2, 3});
  REQUIRE("" == errText(writeSafetensors(p, v1)));
  std::string old = slurp(p);
  REQUIRE("" == errText(writeSafetensors(p, v2)));
  CHECK(slurp(p) != old);
  auto v2read = readSafetensors(p);
  REQUIRE(errText(v2read) == "");
  CHECK(v2read->tensors.at("w").numel() == 2);

  // A tensor whose bytes do not match its shape is rejected up front.
  TensorFile bad;
  bad.tensors["w"] = f32Tensor({3}, {1, 2});
  std::string current = slurp(p);
  CHECK(errText(writeSafetensors(p, bad)).find("'w'") != std::string::npos);
  CHECK(slurp(p) == current);

  TensorFile badName;
  badName.tensors["__metadata__"] = f32Tensor({1}, {1});
  CHECK(errText(writeSafetensors(p, badName)).find("invalid tensor name") != std::string::npos);

  // Renaming over a directory fails: the temp file must be cleaned up.
  std::string dirTarget = d.at("adir");
  REQUIRE(!llvm::sys::fs::create_directory(dirTarget));
  CHECK(errText(writeSafetensors(dirTarget, v1)).find("rename") != std::string::npos);
  CHECK(llvm::sys::fs::is_directory(dirTarget));
  CHECK(d.entries() == 2u); // ckpt.safetensors and adir only

  // A missing directory fails cleanly at temp-file creation.
  CHECK(errText(writeSafetensors(d.at("no/such/dir/x.safetensors"), v1)).find("cannot create") !=
        std::string::npos);
}

TEST_CASE("safetensors rejects hostile files", "[safetensors]") {
  TempDir d;
  auto expectError = [&](const std::string &path, const std::string &needle) {
    std::string e = readError(path);
    INFO("error: " << e);
    CHECK(!e.empty());
    CHECK(e.find(needle) != std::string::npos);
    CHECK(e.find(path) != std::string::npos);
  };
  auto entry = [](const std::string &body) { return "{\"t\": {" + body + "}}"; };
  const std::string data8(8, '\0');

  expectError(d.at("missing.safetensors"), "No such file");
  expectError(d.raw("empty", ""), "too short");
  expectError(d.raw("short", "abc"), "too short");

  std::string huge(8, '\xff'); // header length 2^64-1
  expectError(d.raw("hugelen", huge + "{}"), "exceeds");
  std::string past(8, '\0');
  past[0] = 100; // claims 100 header bytes, has 2
  expectError(d.raw("pastend", past + "{}"), "larger than the rest");

  expectError(d.withHeader("badjson", "{\"t\": "), "not valid JSON");
  expectError(d.withHeader("badutf8", "{\"t\xff\": 1}"), "not valid JSON");
  expectError(d.withHeader("array", "[1, 2]"), "not a JSON object");
  expectError(d.withHeader("nonobj", "{\"t\": 3}"), "'t': header entry is not a JSON object");
  expectError(d.withHeader("meta", "{\"__metadata__\": [1]}"), "__metadata__");
  expectError(d.withHeader("metaval", "{\"__metadata__\": {\"k\": 1}}"), "not a string");

  const std::string okShape = "\"shape\": [2], \"data_offsets\": [0, 8]";
  expectError(d.withHeader("nodtype", entry(okShape), data8), "missing 'dtype'");
  expectError(d.withHeader("dtnum", entry("\"dtype\": 5, " + okShape), data8), "not a string");
  expectError(d.withHeader("f16", entry("\"dtype\": \"F16\", " + okShape), data8),
              "'F16' is unsupported");
  expectError(d.withHeader("q7", entry("\"dtype\": \"Q7\", " + okShape), data8),
              "unknown dtype 'Q7'");

  const std::string f32 = "\"dtype\": \"F32\", ";
  expectError(d.withHeader("noshape", entry(f32 + "\"data_offsets\": [0, 8]"), data8),
              "missing 'shape'");
  expectError(
      d.withHeader("shapeobj", entry(f32 + "\"shape\": {}, \"data_offsets\": [0, 8]"), data8),
      "not an array");
  expectError(
      d.withHeader("negdim", entry(f32 + "\"shape\": [-2], \"data_offsets\": [0, 8]"), data8),
      "negative");
  expectError(
      d.withHeader("fracdim", entry(f32 + "\"shape\": [2.5], \"data_offsets\": [0, 8]"), data8),
      "not a non-negative integer");
  expectError(d.withHeader("bigdim",
                           entry(f32 + "\"shape\": [18446744073709551615], "
                                       "\"data_offsets\": [0, 8]"),
                           data8),
              "too large");
  expectError(d.withHeader("overflow", entry(f32 + "\"shape\": [1099511627776, 1099511627776, "
                                                   "1099511627776], \"data_offsets\": [0, 0]")),
              "overflows");
  // 2^62 * 4 bytes wraps to 0 in unchecked 64-bit arithmetic.
  expectError(d.withHeader("wrap", entry(f32 + "\"shape\": [4611686018427387904], "
                                               "\"data_offsets\": [0, 0]")),
              "overflows");

  const std::string shp = f32 + "\"shape\": [2], ";
  expectError(d.withHeader("nooff", entry(f32 + "\"shape\": [2]"), data8),
              "missing 'data_offsets'");
  expectError(d.withHeader("off1", entry(shp + "\"data_offsets\": [0]"), data8), "[begin, end]");
  expectError(d.withHeader("offneg", entry(shp + "\"data_offsets\": [-8, 0]"), data8),
              "non-negative integers");
  expectError(d.withHeader("offrev", entry(shp + "\"data_offsets\": [8, 0]"), data8),
              "begin after end");
  expectError(d.withHeader("offpast", entry(shp + "\"data_offsets\": [0, 8]"), "abcd"),
              "beyond the data section");
  expectError(
      d.withHeader("offhuge", entry(shp + "\"data_offsets\": [0, 18446744073709551615]"), data8),
      "beyond the data section");
  expectError(d.withHeader("size", entry(shp + "\"data_offsets\": [0, 4]"), data8), "need 8");

  expectError(d.withHeader("overlap",
                           "{\"a\": {" + shp + "\"data_offsets\": [0, 8]}, \"b\": {" + shp +
                               "\"data_offsets\": [4, 12]}}",
                           std::string(12, '\0')),
              "overlap");
  expectError(d.withHeader("emptyname", "{\"\": {" + shp + "\"data_offsets\": [0, 8]}}", data8),
              "empty name");
  // A truncated data section after a valid header.
  expectError(d.withHeader("trunc", entry(shp + "\"data_offsets\": [0, 8]")), "beyond");
}
