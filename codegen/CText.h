// Text for the C headers that go with emitted objects (InferenceHeader.cpp,
// TrainingHeader.cpp).
#pragma once

#include <fmt/format.h>

#include <string>

namespace mlpc::ctext {

// A C string literal's contents. '?' is escaped so no "??x" trigraph forms.
inline std::string escape(const std::string &s) {
  std::string out;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\' || c == '?')
      out += std::string("\\") + c;
    else if (u < 0x20 || u >= 0x7f)
      out += fmt::format("\\{:03o}", u);
    else
      out += c;
  }
  return out;
}

// Text inside a /* */ comment: no "*/" may end it early.
inline std::string commentSafe(std::string s) {
  for (size_t at = s.find("*/"); at != std::string::npos; at = s.find("*/", at))
    s.replace(at, 2, "* /");
  return s;
}

} // namespace mlpc::ctext
