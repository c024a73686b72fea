// Text for the C headers that go with emitted objects (InferenceHeader.cpp,
// TrainingHeader.cpp).
#pragma once

#include <fmt/format.h>

#include <cctype>
#include <initializer_list>
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

// A header's include-guard macro: prefix, then the model's name upper-cased
// with every character that is not a letter or digit as '_', then "_H".
inline std::string guardMacro(const std::string &prefix, const std::string &name) {
  std::string out = prefix;
  for (char c : name)
    out += std::isalnum(static_cast<unsigned char>(c))
               ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
               : '_';
  return out + "_H";
}

// What follows a header's opening comment: the include guard, the includes
// and, for C++, extern "C" (each line ending in a newline, a blank one last).
inline std::string headerOpening(const std::string &guard,
                                 std::initializer_list<const char *> includes) {
  std::string out = "#ifndef " + guard + "\n#define " + guard + "\n\n";
  for (const char *include : includes)
    out += fmt::format("#include <{}>\n", include);
  return out + "\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n";
}

// The end of what headerOpening opened.
inline std::string headerClosing(const std::string &guard) {
  return "#ifdef __cplusplus\n} /* extern \"C\" */\n#endif\n\n#endif /* " + guard + " */\n";
}

} // namespace mlpc::ctext
