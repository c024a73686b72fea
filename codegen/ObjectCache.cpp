// The JIT's on-disk object cache (ObjectCache.h says what and why).
#include "codegen/ObjectCache.h"

#include <llvm/ADT/StringExtras.h>
#include <llvm/Bitcode/BitcodeWriter.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/BLAKE3.h>
#include <llvm/Support/Endian.h>
#include <llvm/Support/FileSystem.h>
#include <llvm/Support/Path.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>

#include <cstdlib>
#include <cstring>

using namespace llvm;

namespace mlpc {

std::string defaultJitCacheDirectory() {
  auto env = [](const char *name) -> std::string {
    const char *v = std::getenv(name);
    return v ? v : "";
  };
  std::string off = env("MLPC_NO_CACHE");
  if (!off.empty() && off != "0")
    return "";
  if (std::string dir = env("MLPC_CACHE_DIR"); !dir.empty())
    return dir;
  SmallString<256> path;
  if (std::string xdg = env("XDG_CACHE_HOME"); !xdg.empty())
    sys::path::append(path, xdg, "mlpc");
  else if (std::string home = env("HOME"); !home.empty())
    sys::path::append(path, home, ".cache", "mlpc");
  return std::string(path.str());
}

namespace codegen {
namespace {

constexpr char kMagic[8] = {'M', 'L', 'P', 'C', 'O', 'B', 'J', '1'};
constexpr size_t kHeaderBytes = sizeof(kMagic) + 8 + 32;

// Feeds everything written to it into a BLAKE3 hasher (no copy of the text).
class HashStream : public raw_ostream {
public:
  explicit HashStream(BLAKE3 &hasher) : hasher_(hasher) { SetUnbuffered(); }

private:
  void write_impl(const char *p, size_t n) override {
    hasher_.update(ArrayRef<uint8_t>(reinterpret_cast<const uint8_t *>(p), n));
    pos_ += n;
  }
  uint64_t current_pos() const override { return pos_; }
  BLAKE3 &hasher_;
  uint64_t pos_ = 0;
};

} // namespace

std::string ObjectCache::key(const Module &m, const TargetMachine &tm, const std::string &pipeline,
                             unsigned optLevel) const {
  BLAKE3 hasher;
  // Each field ends with a NUL so that no two field lists hash the same text.
  for (const std::string &field :
       {std::string(kFormat), std::string(LLVM_VERSION_STRING), tm.getTargetTriple().str(),
        tm.getTargetCPU().str(), tm.getTargetFeatureString().str(), pipeline,
        std::to_string(optLevel), std::to_string(static_cast<int>(tm.getRelocationModel())),
        std::to_string(static_cast<int>(tm.getCodeModel()))}) {
    hasher.update(field);
    hasher.update(StringRef("\0", 1));
  }
  {
    HashStream os(hasher);
    WriteBitcodeToFile(m, os);
  }
  return toHex(hasher.final<16>(), /*LowerCase=*/true);
}

std::string ObjectCache::path(const std::string &key) const {
  SmallString<256> p(options_.directory);
  sys::path::append(p, key + ".o");
  return std::string(p.str());
}

void ObjectCache::warn(const std::string &message) {
  std::lock_guard<std::mutex> lock(warnMutex_);
  if (options_.warn)
    options_.warn(message);
}

std::unique_ptr<MemoryBuffer> ObjectCache::lookup(const std::string &key) {
  std::string file = path(key);
  auto buffer = MemoryBuffer::getFile(file, /*IsText=*/false, /*RequiresNullTerminator=*/false);
  if (!buffer) {
    ++misses_;
    return nullptr; // not cached (or unreadable: it will be rewritten)
  }
  StringRef bytes = (*buffer)->getBuffer();
  std::string problem;
  if (bytes.size() < kHeaderBytes || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    problem = "not an mlpc cache file";
  } else {
    uint64_t size = support::endian::read64le(bytes.data() + sizeof(kMagic));
    StringRef payload = bytes.drop_front(kHeaderBytes);
    if (payload.size() != size)
      problem = "truncated or padded";
    else if (BLAKE3::hash<32>(arrayRefFromStringRef(payload)) !=
             *reinterpret_cast<const BLAKE3Result<32> *>(bytes.data() + sizeof(kMagic) + 8))
      problem = "checksum mismatch";
  }
  if (!problem.empty()) {
    warn("ignoring corrupt JIT cache file '" + file + "' (" + problem + "); recompiling");
    sys::fs::remove(file);
    ++misses_;
    return nullptr;
  }
  ++hits_;
  return MemoryBuffer::getMemBufferCopy(bytes.drop_front(kHeaderBytes), file);
}

void ObjectCache::store(const std::string &key, MemoryBufferRef object) {
  auto fail = [&](const std::string &what, std::error_code ec) {
    std::lock_guard<std::mutex> lock(warnMutex_);
    if (warnedWrite_ || !options_.warn)
      return;
    warnedWrite_ = true;
    options_.warn("cannot write the JIT cache in '" + options_.directory + "' (" + what + ": " +
                  ec.message() + "); compiling without it");
  };
  if (std::error_code ec = sys::fs::create_directories(options_.directory))
    return fail("create directory", ec);
  SmallString<256> model(options_.directory), tmp;
  sys::path::append(model, key + ".tmp-%%%%%%%%");
  int fd = -1;
  if (std::error_code ec = sys::fs::createUniqueFile(model, fd, tmp))
    return fail("create file", ec);
  StringRef payload = object.getBuffer();
  char size[8];
  support::endian::write64le(size, payload.size());
  BLAKE3Result<32> sum = BLAKE3::hash<32>(arrayRefFromStringRef(payload));
  {
    raw_fd_ostream os(fd, /*shouldClose=*/true);
    os.write(kMagic, sizeof(kMagic));
    os.write(size, sizeof(size));
    os.write(reinterpret_cast<const char *>(sum.data()), sum.size());
    os << payload;
    os.close();
    if (os.has_error()) {
      std::error_code ec = os.error();
      os.clear_error();
      sys::fs::remove(tmp);
      return fail("write", ec);
    }
  }
  if (std::error_code ec = sys::fs::rename(tmp, path(key))) {
    sys::fs::remove(tmp);
    return fail("rename", ec);
  }
}

} // namespace codegen
} // namespace mlpc
