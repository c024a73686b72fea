//===- Safetensors.h - Checkpoint files in the safetensors format -*- C++ -*-===//
//
// Layout: 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
//    ..., "__metadata__": {"key": "value", ...}}
// then the data section; offsets are relative to its start. PyTorch, numpy
// (via the safetensors package) and our own tools read these files, so the
// writer follows the reference implementation's conventions (header padded
// with spaces to a multiple of 8, little-endian data).
//
// The reader treats its input as hostile: every length, offset and shape is
// checked before use, and problems are returned as llvm::Error naming the
// file and the tensor.
//
//===----------------------------------------------------------------------===//
#ifndef MLPC_RUNTIME_SAFETENSORS_H
#define MLPC_RUNTIME_SAFETENSORS_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mlpc {

/// Only the element types the compiler produces; others are rejected.
enum class TensorDType { F32, I32 };

/// "F32" / "I32", as spelled in the header.
const char *dtypeName(TensorDType dt);
/// Bytes per element (4 for both supported types).
size_t dtypeSize(TensorDType dt);

struct TensorData {
  TensorDType dtype = TensorDType::F32;
  std::vector<int64_t> shape;
  /// numel() * dtypeSize(dtype) bytes in host order (little-endian hosts only
  /// are supported, like the rest of mlpc).
  std::vector<uint8_t> bytes;

  /// Typed views of `bytes`; nullptr when the dtype does not match.
  const float *f32() const;
  const int32_t *i32() const;
  float *f32();
  int32_t *i32();
  /// Product of the dims (1 for a scalar, shape == {}); -1 if a dim is
  /// negative or the product overflows.
  int64_t numel() const;
};

struct TensorFile {
  std::map<std::string, TensorData> tensors;
  std::map<std::string, std::string> metadata;
};

/// Hard cap on the JSON header; the reference implementation uses the same.
constexpr uint64_t MaxSafetensorsHeader = 100u * 1000u * 1000u;

/// Reads and fully validates a safetensors file.
llvm::Expected<TensorFile> readSafetensors(const std::string &path);

/// Parses and fully validates the bytes of a safetensors file; `name` (the
/// file's path) prefixes every error message. readSafetensors reads the file
/// and calls this; the fuzzer calls it directly.
llvm::Expected<TensorFile> parseSafetensors(llvm::StringRef bytes, llvm::StringRef name);

/// Writes `file` deterministically (tensors and metadata sorted by name) and
/// atomically: a temp file next to `path` is written, fsync'ed and renamed
/// over `path`, then the directory is fsync'ed. On failure the temp file is
/// removed and an existing `path` is left untouched. Tensors whose byte size
/// does not match their shape, or names that are empty, "__metadata__" or not
/// valid UTF-8, are rejected before anything is written.
llvm::Error writeSafetensors(const std::string &path, const TensorFile &file);

} // namespace mlpc

#endif // MLPC_RUNTIME_SAFETENSORS_H
