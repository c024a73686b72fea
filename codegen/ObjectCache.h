// A persistent on-disk cache of the JIT's machine code, one object file per
// compiled module, so that a second run of the same model skips the IR
// passes and the code generator (most of the compile time; see
// codegen/PassSchedule.cpp for the breakdown). It is an addition: the cold
// compile is what `mlpc bench` reports with --no-cache.
//
// Key: BLAKE3 of the lowered module's bitcode (before the IR passes, so a
// hit skips them too; ~1 ms for the makemore training step's larger module,
// where printing its IR text took 10-30 ms), the target triple, CPU and feature string, the LLVM
// version, the pass schedule and optimisation level, and kFormat (bumped
// whenever the key or the file layout changes). The IR carries everything
// the lowering decided, so a different mlpc build that lowers differently
// gets a different key; one that lowers the same gets the same code.
// llvm::ObjectCache keys by the module handed to the code generator, i.e.
// after the IR passes; this class keeps its interface (look up, store) but
// takes the key explicitly.
//
// Files: DIR/<32 hex digits>.o holding "MLPCOBJ1", the payload size (u64
// little-endian), BLAKE3 of the payload (32 bytes), then the object. Writes
// go to a unique temporary file in DIR and are renamed into place, so
// readers never see a partial file; a file that fails the checks (short,
// wrong magic or size, checksum mismatch) is reported through `warn`,
// removed and recompiled. Errors writing the cache are reported once and
// never fail a compile. Safe to use from several threads and processes.
#pragma once

#include <llvm/Support/MemoryBuffer.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace llvm {
class Module;
class TargetMachine;
} // namespace llvm

namespace mlpc {

// Where and whether JitEngine caches machine code (JitEngine::create).
struct JitCacheOptions {
  std::string directory; // empty: no cache
  // Called (from any compiling thread, one call at a time) for a cache file
  // that was ignored or could not be written; the compile goes on.
  std::function<void(const std::string &)> warn;
};

// $MLPC_CACHE_DIR, else $XDG_CACHE_HOME/mlpc, else $HOME/.cache/mlpc; empty
// (no cache) when MLPC_NO_CACHE is set to anything but "" or "0", or when
// none of the variables is set.
std::string defaultJitCacheDirectory();

namespace codegen {

class ObjectCache {
public:
  static constexpr const char *kFormat = "mlpc-object-cache-1";

  explicit ObjectCache(JitCacheOptions options) : options_(std::move(options)) {}

  // The key of `m` (lowered, before the IR passes) compiled by `tm` with
  // `pipeline` at `optLevel`.
  std::string key(const llvm::Module &m, const llvm::TargetMachine &tm, const std::string &pipeline,
                  unsigned optLevel) const;
  // The object stored under `key`, or null (missing, or corrupt: warned and removed).
  std::unique_ptr<llvm::MemoryBuffer> lookup(const std::string &key);
  void store(const std::string &key, llvm::MemoryBufferRef object);

  unsigned hits() const { return hits_; }
  unsigned misses() const { return misses_; }

private:
  std::string path(const std::string &key) const;
  void warn(const std::string &message);

  JitCacheOptions options_;
  std::mutex warnMutex_;
  bool warnedWrite_ = false;
  std::atomic<unsigned> hits_{0}, misses_{0};
};

} // namespace codegen
} // namespace mlpc
