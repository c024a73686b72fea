// Diagnostics: every user-facing error is located and collected here, then
// printed as
//
//   model.mlp:12:9: error: <lower-case message, no trailing period>
//     hpreact = batchnorm(hprebn, bngain)
//           ^
//
// Library code reports into a DiagnosticEngine and keeps going (so all errors
// of a file are reported); only the driver turns `hasErrors()` into an exit code.
#pragma once

#include "support/SourceLoc.h"

#include <string>
#include <string_view>
#include <vector>

namespace mlpc {

enum class Severity { Error, Warning, Note };

struct Diagnostic {
  Severity severity;
  SourceLoc loc;
  std::string message;
};

class DiagnosticEngine {
public:
  DiagnosticEngine(std::string fileName, std::string_view source)
      : fileName_(std::move(fileName)), source_(source) {}

  void error(SourceLoc loc, std::string message) {
    report(Severity::Error, loc, std::move(message));
  }
  void warning(SourceLoc loc, std::string message) {
    report(Severity::Warning, loc, std::move(message));
  }
  void note(SourceLoc loc, std::string message) { report(Severity::Note, loc, std::move(message)); }

  bool hasErrors() const { return errorCount_ > 0; }
  unsigned errorCount() const { return errorCount_; }
  const std::vector<Diagnostic> &diagnostics() const { return diags_; }
  const std::string &fileName() const { return fileName_; }

  // Renders every diagnostic in report order (deterministic: golden tests diff it).
  std::string render() const;
  std::string render(const Diagnostic &d) const;

private:
  void report(Severity s, SourceLoc loc, std::string message);

  std::string fileName_;
  std::string_view source_;
  std::vector<Diagnostic> diags_;
  unsigned errorCount_ = 0;
  // A pathological file could produce an error per byte; beyond this many we
  // stop recording and say so once.
  static constexpr unsigned kMaxErrors = 100;
};

} // namespace mlpc
