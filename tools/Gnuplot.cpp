#include "tools/Gnuplot.h"

#include <llvm/Support/FileSystem.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/Program.h>
#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

#include <unistd.h>

namespace mlpc {
namespace {
llvm::Error fail(const std::string &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s", message.c_str());
}
} // namespace

std::string gnuplotQuote(llvm::StringRef s) {
  std::string out = "'";
  for (char c : s)
    out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

llvm::Error runGnuplot(const std::string &script, const std::string &scriptPath,
                       const std::string &outputPath) {
  auto gnuplot = llvm::sys::findProgramByName("gnuplot");
  if (!gnuplot)
    return fail("gnuplot not found on PATH: mlpc renders its plots with it "
                "(Debian: apt-get install gnuplot-nox, or run scripts/setup.sh)");
  if (llvm::Error e = writeFileAtomically(scriptPath, script))
    return e;
  std::string logPath = scriptPath + ".log";
  std::optional<llvm::StringRef> redirects[] = {llvm::StringRef("/dev/null"),
                                                llvm::StringRef(logPath), llvm::StringRef(logPath)};
  std::string message;
  const std::string kept = fmt::format("{}.kept.{}", outputPath, static_cast<long>(::getpid()));
  const bool keeping =
      llvm::sys::fs::is_regular_file(outputPath) && !llvm::sys::fs::rename(outputPath, kept);
  int rc = llvm::sys::ExecuteAndWait(*gnuplot, {*gnuplot, scriptPath}, std::nullopt, redirects, 120,
                                     0, &message);
  if (keeping) {
    if (rc != 0)
      (void)llvm::sys::fs::rename(kept, outputPath); // the earlier image, as it was
    else
      llvm::sys::fs::remove(kept);
  }
  if (rc != 0) {
    auto log = llvm::MemoryBuffer::getFile(logPath);
    return fail(fmt::format("gnuplot failed ({}) on {}:\n{}",
                            message.empty() ? fmt::format("exit {}", rc) : message, scriptPath,
                            log ? (*log)->getBuffer().str() : ""));
  }
  llvm::sys::fs::remove(logPath);
  return llvm::Error::success();
}

} // namespace mlpc
