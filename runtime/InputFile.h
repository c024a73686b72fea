// Reading an input file whole (a model file, a names file, a checkpoint).
#pragma once

#include <llvm/Support/Error.h>
#include <llvm/Support/FileSystem.h>
#include <llvm/Support/MemoryBuffer.h>

#include <fmt/format.h>

#include <memory>
#include <string>

namespace mlpc {

// The bytes of `path`, or "cannot read <what>'path': why". Refused before
// reading: a directory (reading one fails later with a vaguer error) and a
// device, which has no end (--data /dev/zero was read until memory ran
// out). Regular files and pipes are read. Header-only: the fuzz targets
// link the readers without the rest of the runtime.
inline llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>> readInputFile(const std::string &path,
                                                                         const char *what = "") {
  auto fail = [&](const std::string &why) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   fmt::format("cannot read {}'{}': {}", what, path, why));
  };
  llvm::sys::fs::file_status status;
  if (!llvm::sys::fs::status(path, status)) {
    if (llvm::sys::fs::is_directory(status))
      return fail("Is a directory");
    const llvm::sys::fs::file_type type = status.type();
    if (type == llvm::sys::fs::file_type::character_file ||
        type == llvm::sys::fs::file_type::block_file)
      return fail("not a regular file (a device)");
  }
  auto buffer =
      llvm::MemoryBuffer::getFile(path, /*IsText=*/false, /*RequiresNullTerminator=*/false);
  if (!buffer)
    return fail(buffer.getError().message());
  return std::move(*buffer);
}

} // namespace mlpc
