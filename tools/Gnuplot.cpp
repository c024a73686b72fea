#include "tools/Gnuplot.h"

#include <llvm/Support/FileSystem.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/Program.h>
#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

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

llvm::Error runGnuplot(const std::string &script, const std::string &scriptPath) {
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
  int rc = llvm::sys::ExecuteAndWait(*gnuplot, {*gnuplot, scriptPath}, std::nullopt, redirects, 120,
                                     0, &message);
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
