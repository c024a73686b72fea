// The lexer turns a model file into tokens, each located at its first byte
// (1-based line and column; the column counts bytes, so a tab is one column and
// so is every byte of a UTF-8 sequence).
//
// Newlines are tokens because statements end at a newline. Whether a newline
// inside ( ) or [ ] is insignificant is decided by the parser, not here: an
// unclosed bracket would otherwise swallow every following line and hide the
// real error far away from where it is.
//
// Lexical errors are reported into the DiagnosticEngine and become an Error
// token; the parser never reports a second error at an Error token, so a bad
// byte costs the user one message, not a cascade.
#pragma once

#include "support/Diagnostics.h"
#include "support/SourceLoc.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mlpc {

enum class TokenKind {
  Ident,    // [A-Za-z_][A-Za-z0-9_]*  (keywords are identifiers; the parser decides)
  Number,   // 123, 0.1, 1e-5, 2.5E+3
  LParen,   // (
  RParen,   // )
  LBracket, // [
  RBracket, // ]
  LBrace,   // {
  RBrace,   // }
  Comma,    // ,
  Colon,    // :
  Equal,    // =
  Plus,     // +
  Minus,    // -
  Star,     // *
  Slash,    // /
  At,       // @
  Caret,    // ^
  Newline,  // \n or \r\n
  Error,    // bytes the lexer rejected (already diagnosed)
  Eof,
};

struct Token {
  TokenKind kind = TokenKind::Eof;
  SourceLoc loc;
  std::string_view text;  // the bytes as written (a view into the source); empty for Eof
  double number = 0;      // Number
  bool isInteger = false; // Number: only digits, and fits in int64
  int64_t integer = 0;    // Number, when isInteger
};

class Lexer {
public:
  // `source` must outlive the lexer and its tokens (tokens are views into it).
  Lexer(std::string_view source, DiagnosticEngine &diags);

  // The next token; after the end of input, Eof forever.
  Token next();

private:
  Token make(TokenKind kind, SourceLoc loc, size_t start);
  Token lexNumber();
  Token lexInvalid();
  void advance(size_t n); // within one line only
  SourceLoc here() const { return {line_, col_}; }

  std::string_view src_;
  DiagnosticEngine &diags_;
  size_t pos_ = 0;
  uint32_t line_ = 1;
  uint32_t col_ = 1;
  // Just after the last byte that was neither whitespace nor a newline. Eof is
  // located here rather than after the trailing newline so that "found end of
  // file" errors show the last real line of the file under the message.
  SourceLoc endLoc_{1, 1};
};

// Lexes the whole source; the result always ends with exactly one Eof token.
std::vector<Token> tokenize(std::string_view source, DiagnosticEngine &diags);

// How error messages name a token: `'('`, `identifier 'foo'`, `number '3'`,
// `newline`, `end of file`.
std::string describeToken(const Token &tok);

} // namespace mlpc
