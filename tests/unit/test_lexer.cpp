#include "frontend/Lexer.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace mlpc;

namespace {

struct Lexed {
  std::vector<Token> toks;
  std::string diags;
};

// The source must outlive the tokens (they are views into it), hence the reference.
Lexed lex(const std::string &src) {
  DiagnosticEngine diags("t.mlp", src);
  Lexed out;
  out.toks = tokenize(src, diags);
  out.diags = diags.render();
  return out;
}

std::vector<TokenKind> kinds(const std::vector<Token> &toks) {
  std::vector<TokenKind> out;
  for (const Token &t : toks)
    out.push_back(t.kind);
  return out;
}

} // namespace

using K = TokenKind;

TEST_CASE("lexer: every token kind", "[lexer]") {
  std::string src = "W1 = (a[i] + b, c) * d / e @ f ^ -g : {}\n";
  Lexed l = lex(src);
  CHECK(l.diags.empty());
  CHECK(kinds(l.toks) == std::vector<K>{K::Ident, K::Equal,    K::LParen, K::Ident,  K::LBracket,
                                        K::Ident, K::RBracket, K::Plus,   K::Ident,  K::Comma,
                                        K::Ident, K::RParen,   K::Star,   K::Ident,  K::Slash,
                                        K::Ident, K::At,       K::Ident,  K::Caret,  K::Minus,
                                        K::Ident, K::Colon,    K::LBrace, K::RBrace, K::Newline,
                                        K::Eof});
  CHECK(l.toks[0].text == "W1");
}

TEST_CASE("lexer: locations are 1-based and count bytes", "[lexer]") {
  std::string src = "model m\n\tdim T = 3 # comment\n  x\n";
  Lexed l = lex(src);
  REQUIRE(l.toks.size() == 11);
  CHECK(l.toks[0].loc.line == 1);
  CHECK(l.toks[0].loc.col == 1);
  CHECK(l.toks[1].loc.col == 7); // m
  CHECK(l.toks[2].kind == K::Newline);
  CHECK(l.toks[2].loc.col == 8);
  CHECK(l.toks[3].text == "dim");
  CHECK(l.toks[3].loc.line == 2);
  CHECK(l.toks[3].loc.col == 2); // a tab is one column
  CHECK(l.toks[6].text == "3");
  CHECK(l.toks[6].loc.col == 10);
  CHECK(l.toks[7].kind == K::Newline); // the comment is skipped
  CHECK(l.toks[8].text == "x");
  CHECK(l.toks[8].loc.line == 3);
  CHECK(l.toks[8].loc.col == 3);
  // Eof sits just after the last real character, not on the empty line after it.
  CHECK(l.toks[10].kind == K::Eof);
  CHECK(l.toks[10].loc.line == 3);
  CHECK(l.toks[10].loc.col == 4);
}

TEST_CASE("lexer: CRLF is one newline", "[lexer]") {
  std::string src = "a\r\nb # c\r\n";
  Lexed l = lex(src);
  CHECK(l.diags.empty());
  CHECK(kinds(l.toks) == std::vector<K>{K::Ident, K::Newline, K::Ident, K::Newline, K::Eof});
  CHECK(l.toks[1].text == "\r\n");
  CHECK(l.toks[2].loc.line == 2);
  CHECK(l.toks[2].loc.col == 1);
  CHECK(l.toks[3].loc.col == 6); // at the '\r'
}

TEST_CASE("lexer: empty input is just Eof at 1:1", "[lexer]") {
  Lexed l = lex("");
  REQUIRE(l.toks.size() == 1);
  CHECK(l.toks[0].kind == K::Eof);
  CHECK(l.toks[0].loc.line == 1);
  CHECK(l.toks[0].loc.col == 1);
}

TEST_CASE("lexer: numbers", "[lexer]") {
  std::string src = "123 0.1 1e-5 2.5E+3 7e2 0 9223372036854775807 9223372036854775808";
  Lexed l = lex(src);
  CHECK(l.diags.empty());
  REQUIRE(l.toks.size() == 9);
  CHECK(l.toks[0].isInteger);
  CHECK(l.toks[0].integer == 123);
  CHECK(l.toks[0].number == 123.0);
  CHECK_FALSE(l.toks[1].isInteger);
  CHECK(l.toks[1].number == 0.1);
  CHECK(l.toks[2].number == 1e-5);
  CHECK_FALSE(l.toks[2].isInteger);
  CHECK(l.toks[3].number == 2500.0);
  CHECK(l.toks[3].text == "2.5E+3");
  CHECK_FALSE(l.toks[4].isInteger); // an exponent makes it a non-integer literal
  CHECK(l.toks[4].number == 700.0);
  CHECK(l.toks[5].isInteger);
  CHECK(l.toks[6].isInteger);
  CHECK(l.toks[6].integer == INT64_MAX);
  // Too big for int64: still a number, but not an integer (lowering rejects it
  // where an integer is needed).
  CHECK(l.toks[7].kind == K::Number);
  CHECK_FALSE(l.toks[7].isInteger);
  CHECK(l.toks[7].number == 9223372036854775808.0);
}

TEST_CASE("lexer: a minus sign is a separate token", "[lexer]") {
  Lexed l = lex("-1 x-1");
  CHECK(kinds(l.toks) ==
        std::vector<K>{K::Minus, K::Number, K::Ident, K::Minus, K::Number, K::Eof});
}

TEST_CASE("lexer: number out of range", "[lexer]") {
  Lexed l = lex("x = 1e999\n");
  CHECK(l.diags == "t.mlp:1:5: error: number '1e999' is out of range\n"
                   "x = 1e999\n"
                   "    ^\n");
  CHECK(l.toks[2].kind == K::Error);
  CHECK(lex("1e-999").diags.find("number '1e-999' is out of range") != std::string::npos);
}

TEST_CASE("lexer: malformed numbers are one error each", "[lexer]") {
  Lexed l = lex("3abc 1. 1e 1.2.3 .5");
  CHECK(l.diags == "t.mlp:1:1: error: malformed number '3abc'\n"
                   "3abc 1. 1e 1.2.3 .5\n"
                   "^\n"
                   "t.mlp:1:6: error: malformed number '1.'\n"
                   "3abc 1. 1e 1.2.3 .5\n"
                   "     ^\n"
                   "t.mlp:1:9: error: malformed number '1e'\n"
                   "3abc 1. 1e 1.2.3 .5\n"
                   "        ^\n"
                   "t.mlp:1:12: error: malformed number '1.2.3'\n"
                   "3abc 1. 1e 1.2.3 .5\n"
                   "           ^\n"
                   "t.mlp:1:18: error: unexpected character '.'\n"
                   "3abc 1. 1e 1.2.3 .5\n"
                   "                 ^\n");
  CHECK(kinds(l.toks) ==
        std::vector<K>{K::Error, K::Error, K::Error, K::Error, K::Error, K::Number, K::Eof});
}

TEST_CASE("lexer: unexpected characters and bytes", "[lexer]") {
  std::string src = "a $ b;\x01 c\n\xc3\xa9t\xe9\n";
  Lexed l = lex(src);
  CHECK(l.diags == "t.mlp:1:3: error: unexpected character '$'\n"
                   "a $ b;? c\n"
                   "  ^\n"
                   "t.mlp:1:6: error: unexpected character ';'\n"
                   "a $ b;? c\n"
                   "     ^\n"
                   "t.mlp:2:1: error: unexpected byte 0xc3\n"
                   "??t?\n" // non-ASCII bytes are shown as '?'
                   "^\n"
                   "t.mlp:2:4: error: unexpected byte 0xe9\n"
                   "??t?\n"
                   "   ^\n");
  // Lexing continues after a bad byte; a run of bad bytes is one Error token.
  CHECK(kinds(l.toks) == std::vector<K>{K::Ident, K::Error, K::Ident, K::Error, K::Ident,
                                        K::Newline, K::Error, K::Ident, K::Error, K::Newline,
                                        K::Eof});
}

TEST_CASE("lexer: a lone carriage return is not a newline", "[lexer]") {
  std::string src = "a\rb";
  Lexed l = lex(src);
  CHECK(l.diags.find("t.mlp:1:2: error: unexpected byte 0x0d\n") == 0);
  CHECK(kinds(l.toks) == std::vector<K>{K::Ident, K::Error, K::Ident, K::Eof});
}

TEST_CASE("lexer: NUL bytes do not end the input", "[lexer]") {
  std::string src("a\0b", 3);
  Lexed l = lex(src);
  CHECK(kinds(l.toks) == std::vector<K>{K::Ident, K::Error, K::Ident, K::Eof});
  CHECK(l.diags.find("t.mlp:1:2: error: unexpected byte 0x00\n") == 0);
}

TEST_CASE("lexer: describeToken", "[lexer]") {
  std::string src = "foo 3.5 ( \n";
  Lexed l = lex(src);
  CHECK(describeToken(l.toks[0]) == "identifier 'foo'");
  CHECK(describeToken(l.toks[1]) == "number '3.5'");
  CHECK(describeToken(l.toks[2]) == "'('");
  CHECK(describeToken(l.toks[3]) == "newline");
  CHECK(describeToken(l.toks[4]) == "end of file");
  std::string longName(100, 'x');
  Lexed l2 = lex(longName);
  CHECK(describeToken(l2.toks[0]) == "identifier '" + std::string(32, 'x') + "...'");
}
