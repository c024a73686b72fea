#include "support/Diagnostics.h"

#include <fmt/format.h>

namespace mlpc {

void DiagnosticEngine::report(Severity s, SourceLoc loc, std::string message) {
  if (s == Severity::Error) {
    ++errorCount_;
    if (errorCount_ == kMaxErrors + 1)
      diags_.push_back({Severity::Error, loc, "too many errors, stopping here"});
    if (errorCount_ > kMaxErrors)
      return;
  }
  diags_.push_back({s, loc, std::move(message)});
}

static std::string_view lineOf(std::string_view source, uint32_t line) {
  size_t start = 0;
  for (uint32_t l = 1; l < line; ++l) {
    size_t nl = source.find('\n', start);
    if (nl == std::string_view::npos)
      return {};
    start = nl + 1;
  }
  size_t end = source.find('\n', start);
  std::string_view text = source.substr(start, end == std::string_view::npos ? end : end - start);
  if (!text.empty() && text.back() == '\r')
    text.remove_suffix(1);
  return text;
}

std::string DiagnosticEngine::render(const Diagnostic &d) const {
  const char *kind = d.severity == Severity::Error     ? "error"
                     : d.severity == Severity::Warning ? "warning"
                                                       : "note";
  if (!d.loc.isValid())
    return fmt::format("{}: {}: {}\n", fileName_, kind, d.message);
  std::string out =
      fmt::format("{}:{}:{}: {}: {}\n", fileName_, d.loc.line, d.loc.col, kind, d.message);
  std::string_view text = lineOf(source_, d.loc.line);
  // Non-printable bytes (binary garbage) are shown as '?' so the caret lines up
  // and the terminal is not corrupted.
  std::string shown;
  for (char c : text)
    shown += (c == '\t' ||
              (static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f))
                 ? c
                 : '?';
  if (shown.size() > 200)
    shown = shown.substr(0, 200) + "...";
  out += shown + "\n";
  std::string caret;
  for (uint32_t i = 1; i < d.loc.col && i - 1 < shown.size(); ++i)
    caret += shown[i - 1] == '\t' ? '\t' : ' ';
  out += caret + "^\n";
  return out;
}

std::string DiagnosticEngine::render() const {
  std::string out;
  for (const Diagnostic &d : diags_)
    out += render(d);
  return out;
}

} // namespace mlpc
