//===- Safetensors.cpp - Checkpoint files in the safetensors format -------===//

#include "runtime/Safetensors.h"

#include "runtime/InputFile.h"
#include "runtime/OutputFiles.h" // isSpecialFile

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SwapByteOrder.h"
#include "llvm/Support/raw_ostream.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <unistd.h>

using namespace mlpc;

static_assert(llvm::sys::IsLittleEndianHost,
              "safetensors data is little-endian; big-endian hosts are not supported");

namespace {

llvm::Error makeError(const std::string &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

/// numel * itemSize with overflow checks; nullopt on a negative dim or
/// overflow, because a hostile shape like [2^40, 2^40] must not wrap around
/// into a small, "valid" size.
std::optional<uint64_t> checkedByteSize(const std::vector<int64_t> &shape, uint64_t itemSize) {
  uint64_t n = itemSize;
  for (int64_t d : shape) {
    if (d < 0)
      return std::nullopt;
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n))
      return std::nullopt;
  }
  // Byte counts must also fit in int64_t for numel() and size arithmetic.
  if (n > static_cast<uint64_t>(INT64_MAX))
    return std::nullopt;
  return n;
}

/// The dtypes of the reference implementation we know about but do not load,
/// so the message can say "unsupported" rather than "unknown".
bool isKnownUnsupportedDType(llvm::StringRef s) {
  static const char *const Known[] = {"BOOL",    "U8",  "I8",      "I16",     "U16",     "F16",
                                      "BF16",    "I64", "U64",     "F64",     "U32",     "F8_E4M3",
                                      "F8_E5M2", "F4",  "F6_E2M3", "F6_E3M2", "F8_E8M0", "E8M0"};
  return std::any_of(std::begin(Known), std::end(Known), [&](const char *k) { return s == k; });
}

/// A safetensors header nests 3 levels deep ({name: {shape: [..]}}); allow
/// some slack for metadata, but no more: llvm::json::parse recurses once per
/// level, so a header of 100k '[' would overflow the stack before it fails.
constexpr unsigned MaxHeaderNesting = 64;

/// Whether the JSON text nests at most `limit` arrays/objects deep; brackets
/// inside strings do not count. Malformed JSON is left to the parser.
bool nestingWithin(llvm::StringRef json, unsigned limit) {
  unsigned depth = 0;
  bool inString = false, escaped = false;
  for (char c : json) {
    if (inString) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        inString = false;
    } else if (c == '"') {
      inString = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit)
        return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

struct Entry {
  std::string name;
  uint64_t begin, end;
};

/// Parses one tensor entry of the header into `out` and its offsets.
llvm::Error parseEntry(const std::string &path, const std::string &name, const llvm::json::Value &v,
                       uint64_t dataSize, TensorData &out, Entry &entry) {
  auto fail = [&](const std::string &what) {
    return makeError(fmt::format("{}: tensor '{}': {}", path, name, what));
  };
  const llvm::json::Object *obj = v.getAsObject();
  if (!obj)
    return fail("header entry is not a JSON object");

  const llvm::json::Value *dt = obj->get("dtype");
  if (!dt)
    return fail("missing 'dtype'");
  std::optional<llvm::StringRef> dts = dt->getAsString();
  if (!dts)
    return fail("'dtype' is not a string");
  if (*dts == "F32")
    out.dtype = TensorDType::F32;
  else if (*dts == "I32")
    out.dtype = TensorDType::I32;
  else if (isKnownUnsupportedDType(*dts))
    return fail(
        fmt::format("dtype '{}' is unsupported (only F32 and I32 can be loaded)", dts->str()));
  else
    return fail(fmt::format("unknown dtype '{}'", dts->str()));

  const llvm::json::Value *sh = obj->get("shape");
  if (!sh)
    return fail("missing 'shape'");
  const llvm::json::Array *shArr = sh->getAsArray();
  if (!shArr)
    return fail("'shape' is not an array");
  out.shape.clear();
  for (size_t i = 0; i < shArr->size(); ++i) {
    const llvm::json::Value &d = (*shArr)[i];
    std::optional<int64_t> si = d.getAsInteger();
    if (si && *si < 0)
      return fail(fmt::format("shape dimension {} is negative ({})", i, *si));
    // getAsUINT64 rejects doubles such as 3.5 or 1e3, which getAsInteger
    // would accept when integral; a shape must be written as an integer.
    std::optional<uint64_t> du = d.getAsUINT64();
    if (!du)
      return fail(fmt::format("shape dimension {} is not a non-negative integer", i));
    if (*du > static_cast<uint64_t>(INT64_MAX))
      return fail(fmt::format("shape dimension {} is too large ({})", i, *du));
    out.shape.push_back(static_cast<int64_t>(*du));
  }
  std::optional<uint64_t> nbytes = checkedByteSize(out.shape, dtypeSize(out.dtype));
  if (!nbytes)
    return fail("shape is too large (element count overflows)");

  const llvm::json::Value *off = obj->get("data_offsets");
  if (!off)
    return fail("missing 'data_offsets'");
  const llvm::json::Array *offArr = off->getAsArray();
  if (!offArr || offArr->size() != 2)
    return fail("'data_offsets' is not an array [begin, end]");
  std::optional<uint64_t> b = (*offArr)[0].getAsUINT64();
  std::optional<uint64_t> e = (*offArr)[1].getAsUINT64();
  if (!b || !e)
    return fail("'data_offsets' entries must be non-negative integers");
  if (*b > *e)
    return fail(fmt::format("data_offsets [{}, {}] has begin after end", *b, *e));
  if (*e > dataSize)
    return fail(
        fmt::format("data_offsets end {} is beyond the data section ({} bytes)", *e, dataSize));
  if (*e - *b != *nbytes)
    return fail(
        fmt::format("data_offsets span {} bytes but shape and dtype need {}", *e - *b, *nbytes));
  entry = Entry{name, *b, *e};
  return llvm::Error::success();
}

/// write(2) until done, retrying on EINTR and short writes.
bool writeAll(int fd, const void *data, size_t size) {
  const char *p = static_cast<const char *>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

/// Validates what the writer is given, so it cannot emit a file the reader
/// (or PyTorch) would reject.
llvm::Error checkForWrite(const std::string &path, const TensorFile &file) {
  for (const auto &[name, t] : file.tensors) {
    if (name.empty() || name == "__metadata__" || !llvm::json::isUTF8(name))
      return makeError(fmt::format("{}: invalid tensor name '{}'", path, name));
    std::optional<uint64_t> nbytes = checkedByteSize(t.shape, dtypeSize(t.dtype));
    if (!nbytes)
      return makeError(
          fmt::format("{}: tensor '{}': shape has a negative or overflowing dim", path, name));
    if (*nbytes != t.bytes.size())
      return makeError(fmt::format("{}: tensor '{}': has {} bytes but its shape needs {}", path,
                                   name, t.bytes.size(), *nbytes));
  }
  for (const auto &[k, v] : file.metadata)
    if (!llvm::json::isUTF8(k) || !llvm::json::isUTF8(v))
      return makeError(fmt::format("{}: metadata entry '{}' is not valid UTF-8", path, k));
  return llvm::Error::success();
}

/// Compact JSON header, keys in a fixed order, padded with spaces to a
/// multiple of 8 like the reference writer so the data section is aligned.
std::string buildHeader(const TensorFile &file) {
  std::string header;
  llvm::raw_string_ostream os(header);
  llvm::json::OStream j(os);
  j.objectBegin();
  if (!file.metadata.empty()) {
    j.attributeObject("__metadata__", [&] {
      for (const auto &[k, v] : file.metadata)
        j.attribute(k, v);
    });
  }
  uint64_t offset = 0;
  for (const auto &entry : file.tensors) {
    // Not a structured binding: lambdas cannot capture those before C++20.
    const TensorData &t = entry.second;
    j.attributeObject(entry.first, [&] {
      j.attribute("dtype", dtypeName(t.dtype));
      j.attributeArray("shape", [&] {
        for (int64_t d : t.shape)
          j.value(d);
      });
      j.attributeArray("data_offsets", [&] {
        j.value(offset);
        j.value(offset + t.bytes.size());
      });
    });
    offset += t.bytes.size();
  }
  j.objectEnd();
  os.flush();
  header.append((8 - header.size() % 8) % 8, ' ');
  return header;
}

std::string errnoText() {
  return std::strerror(errno);
}

} // namespace

const char *mlpc::dtypeName(TensorDType dt) {
  return dt == TensorDType::F32 ? "F32" : "I32";
}
size_t mlpc::dtypeSize(TensorDType) {
  return 4;
}

const float *TensorData::f32() const {
  return dtype == TensorDType::F32 ? reinterpret_cast<const float *>(bytes.data()) : nullptr;
}
const int32_t *TensorData::i32() const {
  return dtype == TensorDType::I32 ? reinterpret_cast<const int32_t *>(bytes.data()) : nullptr;
}
float *TensorData::f32() {
  return dtype == TensorDType::F32 ? reinterpret_cast<float *>(bytes.data()) : nullptr;
}
int32_t *TensorData::i32() {
  return dtype == TensorDType::I32 ? reinterpret_cast<int32_t *>(bytes.data()) : nullptr;
}
int64_t TensorData::numel() const {
  // Hand-built shapes are not validated, so guard the product here too.
  int64_t n = 1;
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(n, d, &n))
      return -1;
  return n;
}

llvm::Expected<TensorFile> mlpc::readSafetensors(const std::string &path) {
  auto bufOr = readInputFile(path);
  if (!bufOr)
    return bufOr.takeError();
  return parseSafetensors((*bufOr)->getBuffer(), path);
}

llvm::Expected<TensorFile> mlpc::parseSafetensors(llvm::StringRef buf, llvm::StringRef name) {
  const std::string path = name.str();
  if (buf.size() < 8)
    return makeError(
        fmt::format("{}: file is {} bytes, too short for a safetensors header", path, buf.size()));
  uint64_t headerLen = 0;
  std::memcpy(&headerLen, buf.data(), 8); // little-endian host, checked above
  if (headerLen > MaxSafetensorsHeader)
    return makeError(fmt::format("{}: header length {} exceeds the {} byte limit", path, headerLen,
                                 MaxSafetensorsHeader));
  if (headerLen > buf.size() - 8)
    return makeError(fmt::format("{}: header length {} is larger than the rest of the file ({} "
                                 "bytes)",
                                 path, headerLen, buf.size() - 8));
  llvm::StringRef headerText = buf.substr(8, headerLen);
  llvm::StringRef data = buf.drop_front(8 + headerLen);

  if (!nestingWithin(headerText, MaxHeaderNesting))
    return makeError(
        fmt::format("{}: header nests JSON more than {} levels deep", path, MaxHeaderNesting));
  llvm::Expected<llvm::json::Value> root = llvm::json::parse(headerText);
  if (!root)
    return makeError(
        fmt::format("{}: header is not valid JSON: {}", path, llvm::toString(root.takeError())));
  const llvm::json::Object *top = root->getAsObject();
  if (!top)
    return makeError(fmt::format("{}: header is not a JSON object", path));

  TensorFile result;
  std::vector<Entry> entries;
  for (const auto &kv : *top) {
    std::string name = kv.first.str();
    if (name == "__metadata__") {
      const llvm::json::Object *meta = kv.second.getAsObject();
      if (!meta)
        return makeError(fmt::format("{}: '__metadata__' is not a JSON object", path));
      for (const auto &m : *meta) {
        std::optional<llvm::StringRef> s = m.second.getAsString();
        if (!s)
          return makeError(
              fmt::format("{}: metadata value for '{}' is not a string", path, m.first.str()));
        result.metadata[m.first.str()] = s->str();
      }
      continue;
    }
    if (name.empty())
      return makeError(fmt::format("{}: tensor with an empty name", path));
    TensorData t;
    Entry e{};
    if (llvm::Error err = parseEntry(path, name, kv.second, data.size(), t, e))
      return err;
    entries.push_back(e);
    result.tensors.emplace(name, std::move(t));
  }

  // Overlapping tensors would alias; a well-formed file never has them.
  // Empty tensors occupy no bytes and cannot overlap anything.
  std::sort(entries.begin(), entries.end(), [](const Entry &a, const Entry &b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const Entry *prev = nullptr;
  for (const Entry &e : entries) {
    if (e.begin == e.end)
      continue;
    if (prev && e.begin < prev->end)
      return makeError(fmt::format("{}: tensors '{}' [{}, {}] and '{}' [{}, {}] overlap", path,
                                   prev->name, prev->begin, prev->end, e.name, e.begin, e.end));
    prev = &e;
  }

  for (const Entry &e : entries) {
    TensorData &t = result.tensors[e.name];
    t.bytes.assign(data.bytes_begin() + e.begin, data.bytes_begin() + e.end);
  }
  return result;
}

llvm::Error mlpc::writeSafetensors(const std::string &path, const TensorFile &file) {
  if (llvm::Error err = checkForWrite(path, file))
    return err;
  std::string header = buildHeader(file);
  uint64_t headerLen = header.size();
  unsigned char lenBytes[8];
  std::memcpy(lenBytes, &headerLen, 8);
  auto writeBody = [&](int fd) -> std::optional<std::string> { // what failed, if anything
    if (!writeAll(fd, lenBytes, 8) || !writeAll(fd, header.data(), header.size()))
      return std::string("writing header");
    for (const auto &[name, t] : file.tensors)
      if (!writeAll(fd, t.bytes.data(), t.bytes.size()))
        return fmt::format("writing tensor '{}'", name);
    return std::nullopt;
  };

  // A path that exists and is neither a regular file nor a directory
  // (/dev/null, a FIFO) is written in place: renaming a temporary file over
  // it would replace the device or pipe with a regular file.
  if (isSpecialFile(path)) {
    int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0)
      return makeError(fmt::format("cannot write '{}': {}", path, errnoText()));
    std::optional<std::string> failed = writeBody(fd);
    std::string why = failed ? errnoText() : std::string();
    ::close(fd);
    if (failed)
      return makeError(fmt::format("cannot write '{}': {}: {}", path, *failed, why));
    return llvm::Error::success();
  }

  // The pid keeps concurrent writers (two trainers, one directory) apart.
  std::string tmp = path + ".tmp." + std::to_string(static_cast<long>(::getpid()));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return makeError(fmt::format("cannot create '{}': {}", tmp, errnoText()));

  auto abandon = [&](const std::string &what) {
    std::string msg = fmt::format("cannot write '{}': {}: {}", path, what, errnoText());
    if (fd >= 0)
      ::close(fd);
    ::unlink(tmp.c_str());
    return makeError(msg);
  };

  if (std::optional<std::string> failed = writeBody(fd))
    return abandon(*failed);
  // fsync before rename: otherwise a crash can leave a renamed but empty file.
  if (::fsync(fd) != 0)
    return abandon("fsync");
  int rc = ::close(fd);
  fd = -1;
  if (rc != 0)
    return abandon("close");
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return abandon("rename");

  // Persist the rename itself.
  llvm::SmallString<256> dir(path);
  llvm::sys::path::remove_filename(dir);
  if (dir.empty())
    dir = ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return makeError(
        fmt::format("wrote '{}' but cannot open its directory to fsync: {}", path, errnoText()));
  rc = ::fsync(dfd);
  std::string fsyncErr = rc != 0 ? errnoText() : std::string();
  ::close(dfd);
  if (rc != 0)
    return makeError(
        fmt::format("wrote '{}' but fsync of its directory failed: {}", path, fsyncErr));
  return llvm::Error::success();
}
