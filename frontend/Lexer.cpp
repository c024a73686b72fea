#include "frontend/Lexer.h"

#include <fmt/format.h>

#include <charconv>

namespace mlpc {

namespace {

// Hand-written classifiers instead of <cctype>: those depend on the C locale
// and are undefined for negative chars, and the language is ASCII-only.
bool isDigit(char c) {
  return c >= '0' && c <= '9';
}
bool isIdentStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool isIdentChar(char c) {
  return isIdentStart(c) || isDigit(c);
}

TokenKind punctuation(char c) {
  switch (c) {
  case '(':
    return TokenKind::LParen;
  case ')':
    return TokenKind::RParen;
  case '[':
    return TokenKind::LBracket;
  case ']':
    return TokenKind::RBracket;
  case '{':
    return TokenKind::LBrace;
  case '}':
    return TokenKind::RBrace;
  case ',':
    return TokenKind::Comma;
  case ':':
    return TokenKind::Colon;
  case '=':
    return TokenKind::Equal;
  case '+':
    return TokenKind::Plus;
  case '-':
    return TokenKind::Minus;
  case '*':
    return TokenKind::Star;
  case '/':
    return TokenKind::Slash;
  case '@':
    return TokenKind::At;
  case '^':
    return TokenKind::Caret;
  default:
    return TokenKind::Error;
  }
}

// Bytes that can start some token or are skipped; anything else is invalid.
bool isValidStart(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '#' || isIdentChar(c) ||
         punctuation(c) != TokenKind::Error;
}

} // namespace

Lexer::Lexer(std::string_view source, DiagnosticEngine &diags) : src_(source), diags_(diags) {}

void Lexer::advance(size_t n) {
  pos_ += n;
  col_ += static_cast<uint32_t>(n);
}

Token Lexer::make(TokenKind kind, SourceLoc loc, size_t start) {
  Token tok;
  tok.kind = kind;
  tok.loc = loc;
  tok.text = src_.substr(start, pos_ - start);
  endLoc_ = here();
  return tok;
}

Token Lexer::next() {
  while (pos_ < src_.size()) {
    char c = src_[pos_];
    char c1 = pos_ + 1 < src_.size() ? src_[pos_ + 1] : '\0';
    if (c == ' ' || c == '\t') {
      advance(1);
      continue;
    }
    if (c == '\n' || (c == '\r' && c1 == '\n')) {
      Token tok;
      tok.kind = TokenKind::Newline;
      tok.loc = here();
      tok.text = src_.substr(pos_, c == '\n' ? 1 : 2);
      pos_ += tok.text.size();
      ++line_;
      col_ = 1;
      return tok;
    }
    if (c == '#') {
      // Stop before "\r\n" too, so the newline token sits at the same column
      // whatever the file's line endings are.
      while (pos_ < src_.size() && src_[pos_] != '\n' &&
             !(src_[pos_] == '\r' && pos_ + 1 < src_.size() && src_[pos_ + 1] == '\n'))
        advance(1);
      endLoc_ = here();
      continue;
    }
    size_t start = pos_;
    SourceLoc loc = here();
    if (isIdentStart(c)) {
      while (pos_ < src_.size() && isIdentChar(src_[pos_]))
        advance(1);
      return make(TokenKind::Ident, loc, start);
    }
    if (isDigit(c))
      return lexNumber();
    TokenKind kind = punctuation(c);
    if (kind != TokenKind::Error) {
      advance(1);
      return make(kind, loc, start);
    }
    return lexInvalid();
  }
  Token eof;
  eof.kind = TokenKind::Eof;
  eof.loc = endLoc_;
  eof.text = src_.substr(src_.size());
  return eof;
}

// A run of consecutive invalid bytes is reported once, at its first byte: a
// UTF-8 character or a stretch of binary garbage is one mistake, not one per byte.
Token Lexer::lexInvalid() {
  size_t start = pos_;
  SourceLoc loc = here();
  unsigned char first = static_cast<unsigned char>(src_[pos_]);
  while (pos_ < src_.size() && !isValidStart(src_[pos_]) &&
         !(src_[pos_] == '\r' && pos_ + 1 < src_.size() && src_[pos_ + 1] == '\n'))
    advance(1);
  if (first > 0x20 && first < 0x7f)
    diags_.error(loc, fmt::format("unexpected character '{}'", static_cast<char>(first)));
  else
    diags_.error(loc, fmt::format("unexpected byte 0x{:02x}", first));
  return make(TokenKind::Error, loc, start);
}

Token Lexer::lexNumber() {
  size_t start = pos_;
  SourceLoc loc = here();
  auto at = [&](size_t i) { return pos_ + i < src_.size() ? src_[pos_ + i] : '\0'; };
  bool integral = true;
  while (isDigit(at(0)))
    advance(1);
  if (at(0) == '.' && isDigit(at(1))) {
    integral = false;
    advance(1);
    while (isDigit(at(0)))
      advance(1);
  }
  if ((at(0) == 'e' || at(0) == 'E') &&
      (isDigit(at(1)) || ((at(1) == '+' || at(1) == '-') && isDigit(at(2))))) {
    integral = false;
    advance(2);
    while (isDigit(at(0)))
      advance(1);
  }
  // `3abc`, `1.`, `1.2.3`, `1e`: swallow the rest of the word so the user sees
  // one error naming the whole thing, instead of a number followed by a
  // confusing identifier.
  if (isIdentChar(at(0)) || at(0) == '.') {
    while (isIdentChar(at(0)) || at(0) == '.')
      advance(1);
    Token tok = make(TokenKind::Error, loc, start);
    diags_.error(loc, fmt::format("malformed number '{}'", tok.text));
    return tok;
  }
  Token tok = make(TokenKind::Number, loc, start);
  const char *first = tok.text.data();
  const char *last = first + tok.text.size();
  // from_chars, not strtod: it ignores the locale and reports overflow directly.
  auto [end, ec] = std::from_chars(first, last, tok.number);
  if (ec != std::errc() || end != last) {
    diags_.error(loc, fmt::format("number '{}' is out of range", tok.text));
    tok.kind = TokenKind::Error;
    return tok;
  }
  // An integer too large for int64 stays a valid (inexact) number: only the
  // places that need an integer reject it, with a better message than here.
  if (integral) {
    auto [iend, iec] = std::from_chars(first, last, tok.integer);
    tok.isInteger = iec == std::errc() && iend == last;
    if (!tok.isInteger)
      tok.integer = 0;
  }
  return tok;
}

std::vector<Token> tokenize(std::string_view source, DiagnosticEngine &diags) {
  Lexer lexer(source, diags);
  std::vector<Token> toks;
  do
    toks.push_back(lexer.next());
  while (toks.back().kind != TokenKind::Eof);
  return toks;
}

std::string describeToken(const Token &tok) {
  // Quote at most this many bytes, so a megabyte-long identifier does not
  // become a megabyte-long message.
  constexpr size_t kMaxQuoted = 32;
  std::string text(tok.text.substr(0, kMaxQuoted));
  if (tok.text.size() > kMaxQuoted)
    text += "...";
  switch (tok.kind) {
  case TokenKind::Ident:
    return fmt::format("identifier '{}'", text);
  case TokenKind::Number:
    return fmt::format("number '{}'", text);
  case TokenKind::Newline:
    return "newline";
  case TokenKind::Eof:
    return "end of file";
  case TokenKind::Error:
    return fmt::format("invalid token '{}'", text);
  default:
    return fmt::format("'{}'", text);
  }
}

} // namespace mlpc
