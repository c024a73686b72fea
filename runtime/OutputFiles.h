// Output files of long runs: checked before any work, written atomically,
// and never lost when the write fails at the end.
//
// A command checks every output path it was given with checkOutputPath /
// checkOutputDir right after parsing its flags, so a mistyped directory is
// an error at once, not after hours of training. A result computed at the
// end (a checkpoint, metrics) is written with writeWithFallback: if its own
// path cannot be written (disk full, the directory removed meanwhile), it
// goes to a new file in a fallback directory ($TMPDIR, then next to the model
// file), and the error says where. The command still exits non-zero.
//
// The one place the driver's commands (train, compile, emit, grad, plot, and
// later ones) get this behaviour from; tests: tests/unit/test_output_files.cpp
// and tests/reliability/.
#pragma once

#include <llvm/ADT/ArrayRef.h>
#include <llvm/ADT/STLFunctionalExtras.h>
#include <llvm/ADT/StringRef.h>
#include <llvm/Support/Error.h>
#include <llvm/Support/FileSystem.h>

#include <string>
#include <vector>

namespace mlpc {

/// Checks that a file can be written at `path`, whose name `flag` gave
/// ("--out"): `path` is not a directory, its directory exists and a file can
/// be created in it (a probe file is created and removed at once, so
/// read-only file systems and permissions are caught, also for root).
/// The error reads "--out: cannot write 'd/x.safetensors': the directory 'd'
/// does not exist".
llvm::Error checkOutputPath(llvm::StringRef path, llvm::StringRef flag);

/// Checks an output directory (`mlpc plot -o DIR`): it is a writable
/// directory, or it does not exist and its nearest existing ancestor is a
/// writable directory (the command creates it).
llvm::Error checkOutputDir(llvm::StringRef dir, llvm::StringRef flag);

/// Whether `path` exists as something other than a regular file or a
/// directory (/dev/null, /dev/stdout, a FIFO): such a path is written in
/// place, since renaming a temporary file over it would replace it.
/// Inline: the fuzz targets link the checkpoint writer without this file's .cpp.
inline bool isSpecialFile(llvm::StringRef path) {
  llvm::sys::fs::file_status status;
  return !llvm::sys::fs::status(path, status) && llvm::sys::fs::exists(status) &&
         !llvm::sys::fs::is_regular_file(status) && !llvm::sys::fs::is_directory(status);
}

/// Writes `bytes` to `path` atomically: a temporary file next to it
/// (`path.tmp.<pid>`), fsync, rename. On failure the temporary is removed and
/// `path` is unchanged. An existing `path` that is not a regular file
/// (/dev/stdout, a FIFO) is written directly instead of being replaced.
llvm::Error writeFileAtomically(llvm::StringRef path, llvm::StringRef bytes);

/// Where results go when their own path cannot be written: $TMPDIR (else
/// /tmp), then the directory of `besides` (the model file) when given.
std::vector<std::string> fallbackDirectories(llvm::StringRef besides = "");

/// Writes a result to `path` with `write`. If that fails, writes it with
/// `write` to a new file in each of `fallbackDirs` in turn until one works,
/// named after `path` (`x.safetensors` -> `x.recovered-1a2b3c.safetensors`).
/// Returns success only when `path` itself was written; otherwise an error
/// with the original failure and where the `what` ("checkpoint") was saved
/// instead ("cannot write 'd/x.safetensors': writing header: No space left on
/// device; saved the checkpoint to '/tmp/x.recovered-1a2b3c.safetensors'
/// instead"), or "...; the checkpoint is lost: no fallback file could be
/// written either; <why, per directory>". No fallback file is left behind
/// when its write fails.
llvm::Error writeWithFallback(llvm::StringRef path, llvm::StringRef what,
                              llvm::function_ref<llvm::Error(const std::string &path)> write,
                              llvm::ArrayRef<std::string> fallbackDirs);

} // namespace mlpc
