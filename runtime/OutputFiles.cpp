// See OutputFiles.h.
#include "runtime/OutputFiles.h"

#include <llvm/ADT/SmallString.h>
#include <llvm/Support/FileSystem.h>
#include <llvm/Support/Path.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

using namespace mlpc;

namespace {

llvm::Error makeError(const std::string &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

// The directory a file at `path` goes into ("." for a bare name).
std::string parentDirectory(llvm::StringRef path) {
  llvm::StringRef dir = llvm::sys::path::parent_path(path);
  return dir.empty() ? std::string(".") : dir.str();
}

// "" if a file can be created (and is removed again) in the directory `dir`,
// else why not.
std::string probeDirectory(const std::string &dir) {
  llvm::SmallString<256> model(dir);
  llvm::sys::path::append(model, ".mlpc-probe-%%%%%%");
  llvm::SmallString<256> probe;
  int fd = -1;
  if (std::error_code ec = llvm::sys::fs::createUniqueFile(model, fd, probe))
    return fmt::format("cannot create files in '{}': {}", dir, ec.message());
  ::close(fd);
  llvm::sys::fs::remove(probe);
  return "";
}

bool writeAll(int fd, const char *data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Writes `bytes` into an existing special file (/dev/stdout, a FIFO).
llvm::Error writeInPlace(llvm::StringRef path, llvm::StringRef bytes) {
  int fd = ::open(path.str().c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return makeError(fmt::format("cannot write '{}': {}", path, std::strerror(errno)));
  bool ok = writeAll(fd, bytes.data(), bytes.size());
  std::string why = ok ? "" : std::strerror(errno);
  if (::close(fd) != 0 && ok) {
    ok = false;
    why = std::strerror(errno);
  }
  return ok ? llvm::Error::success() : makeError(fmt::format("cannot write '{}': {}", path, why));
}

} // namespace

llvm::Error mlpc::checkOutputPath(llvm::StringRef path, llvm::StringRef flag) {
  auto fail = [&](const std::string &why) {
    return makeError(fmt::format("{}: cannot write '{}': {}", flag, path, why));
  };
  if (path.empty())
    return makeError(fmt::format("{}: the path is empty", flag));
  if (llvm::sys::fs::is_directory(path) || llvm::sys::path::is_separator(path.back()))
    return fail("it is a directory; give a file name");
  std::string dir = parentDirectory(path);
  if (!llvm::sys::fs::exists(dir))
    return fail(fmt::format("the directory '{}' does not exist", dir));
  if (!llvm::sys::fs::is_directory(dir))
    return fail(fmt::format("'{}' is not a directory", dir));
  std::string why = probeDirectory(dir);
  return why.empty() ? llvm::Error::success() : fail(why);
}

llvm::Error mlpc::checkOutputDir(llvm::StringRef dir, llvm::StringRef flag) {
  auto fail = [&](const std::string &why) {
    return makeError(fmt::format("{}: cannot write to the directory '{}': {}", flag, dir, why));
  };
  if (dir.empty())
    return makeError(fmt::format("{}: the path is empty", flag));
  // The directory itself, or the nearest ancestor that exists (the command
  // creates the rest).
  std::string existing = dir.str();
  while (!llvm::sys::fs::exists(existing)) {
    std::string parent = llvm::sys::path::parent_path(existing).str();
    existing = parent.empty() ? "." : parent;
  }
  if (!llvm::sys::fs::is_directory(existing))
    return fail(existing == dir ? std::string("it is not a directory")
                                : fmt::format("'{}' is not a directory", existing));
  std::string why = probeDirectory(existing);
  return why.empty() ? llvm::Error::success() : fail(why);
}

llvm::Error mlpc::writeFileAtomically(llvm::StringRef path, llvm::StringRef bytes) {
  if (isSpecialFile(path))
    return writeInPlace(path, bytes);
  // The pid keeps concurrent writers (two runs, one directory) apart.
  std::string tmp = fmt::format("{}.tmp.{}", path, static_cast<long>(::getpid()));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return makeError(
        fmt::format("cannot write '{}': cannot create '{}': {}", path, tmp, std::strerror(errno)));
  auto abandon = [&](const char *what) {
    std::string message =
        fmt::format("cannot write '{}': {}: {}", path, what, std::strerror(errno));
    if (fd >= 0)
      ::close(fd);
    ::unlink(tmp.c_str());
    return makeError(message);
  };
  if (!writeAll(fd, bytes.data(), bytes.size()))
    return abandon("write");
  // fsync before rename: otherwise a crash can leave a renamed but empty file.
  if (::fsync(fd) != 0)
    return abandon("fsync");
  int rc = ::close(fd);
  fd = -1;
  if (rc != 0)
    return abandon("close");
  if (::rename(tmp.c_str(), path.str().c_str()) != 0)
    return abandon("rename");
  return llvm::Error::success();
}

std::vector<std::string> mlpc::fallbackDirectories(llvm::StringRef besides) {
  std::vector<std::string> dirs;
  llvm::SmallString<256> temp;
  llvm::sys::path::system_temp_directory(/*ErasedOnReboot=*/true, temp);
  dirs.push_back(temp.str().str());
  if (!besides.empty()) {
    std::string dir = parentDirectory(besides);
    if (!llvm::sys::fs::equivalent(dir, dirs[0]))
      dirs.push_back(dir);
  }
  return dirs;
}

llvm::Error mlpc::writeWithFallback(llvm::StringRef path, llvm::StringRef what,
                                    llvm::function_ref<llvm::Error(const std::string &)> write,
                                    llvm::ArrayRef<std::string> fallbackDirs) {
  llvm::Error primary = write(path.str());
  if (!primary)
    return llvm::Error::success();
  const std::string why = llvm::toString(std::move(primary));
  llvm::StringRef name = llvm::sys::path::filename(path);
  const std::string stem = llvm::sys::path::stem(name).str();
  const std::string ext = llvm::sys::path::extension(name).str();
  std::vector<std::string> failures;
  for (const std::string &dir : fallbackDirs) {
    // Reserve a fresh name, then let `write` replace the empty file.
    llvm::SmallString<256> model(dir);
    llvm::sys::path::append(model, stem + ".recovered-%%%%%%" + ext);
    llvm::SmallString<256> reserved;
    int fd = -1;
    if (std::error_code ec = llvm::sys::fs::createUniqueFile(model, fd, reserved)) {
      failures.push_back(fmt::format("cannot create a file in '{}': {}", dir, ec.message()));
      continue;
    }
    ::close(fd);
    const std::string fallback = reserved.str().str();
    if (llvm::Error e = write(fallback)) {
      failures.push_back(llvm::toString(std::move(e)));
      llvm::sys::fs::remove(fallback);
      continue;
    }
    return makeError(fmt::format("{}; saved the {} to '{}' instead", why, what, fallback));
  }
  std::string tried;
  for (const std::string &f : failures)
    tried += "; " + f;
  return makeError(fmt::format("{}; the {} is lost: no fallback file could be written either{}",
                               why, what, tried));
}
