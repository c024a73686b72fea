#include "frontend/Parser.h"

#include "frontend/ParserImpl.h"

#include <fmt/format.h>

namespace mlpc {

namespace detail {

// ----------------------------------------------------------------------------
// Token access

const Token &Parser::peek() {
  if (bracketDepth_ > 0)
    while (toks_[pos_].kind == TokenKind::Newline)
      ++pos_;
  return toks_[pos_];
}

Token Parser::take() {
  Token t = peek();
  if (t.kind != TokenKind::Eof) // Eof is sticky: the last token is never passed
    ++pos_;
  return t;
}

// ----------------------------------------------------------------------------
// Errors

void Parser::report(const Token &at, std::string message) {
  // The lexer already explained an Error token; a second message about the
  // same bytes would only be noise.
  if (at.kind != TokenKind::Error)
    diags_.error(at.loc, std::move(message));
}

void Parser::failExpected(const std::string &expected) {
  const Token &t = peek();
  report(t, fmt::format("{}, found {}", expected, describeToken(t)));
  throw SyntaxError{};
}

// For a missing ')' or ']': if newlines were skipped before the offending
// token, the user almost certainly forgot the bracket at the end of the line,
// so point there (and resume from there) rather than at the next line.
void Parser::failExpectedCloser(const std::string &expected) {
  peek();
  size_t p = pos_;
  while (p > 0 && toks_[p - 1].kind == TokenKind::Newline)
    --p;
  if (p != pos_) {
    pos_ = p;
    report(toks_[p], fmt::format("{}, found newline", expected));
    throw SyntaxError{};
  }
  failExpected(expected);
}

Token Parser::expect(TokenKind k, const std::string &expected) {
  if (!at(k))
    failExpected(expected);
  return take();
}

Token Parser::expectInteger(const std::string &expected) {
  if (!at(TokenKind::Number) || !peek().isInteger)
    failExpected(expected);
  return take();
}

void Parser::expectCloser(TokenKind k, const std::string &expected) {
  if (!at(k))
    failExpectedCloser(expected);
  take();
}

void Parser::endStatement(Block block) {
  if (at(TokenKind::Newline))
    take();
  else if (!at(TokenKind::Eof) && !(block != Block::None && at(TokenKind::RBrace)))
    failExpected("expected newline after statement");
}

// Skips the rest of a statement after an error. Brackets opened after the
// error keep a newline from ending the statement (a wrapped expression), but a
// line that looks like a new statement always ends it, so one stray '(' cannot
// swallow the rest of the file. Inside a block, its '}' always ends it.
void Parser::sync(Block block) {
  bracketDepth_ = 0;
  nesting_ = 0;
  int depth = 0;
  for (;; ++pos_) {
    const Token &t = toks_[pos_];
    switch (t.kind) {
    case TokenKind::Eof:
      return;
    case TokenKind::RBrace:
      if (block != Block::None)
        return;
      break;
    case TokenKind::LParen:
    case TokenKind::LBracket:
      ++depth;
      break;
    case TokenKind::RParen:
    case TokenKind::RBracket:
      depth -= depth > 0;
      break;
    case TokenKind::Newline: {
      const Token &next = tokAt(pos_ + 1);
      bool newStatement = next.kind == TokenKind::Ident &&
                          (isReserved(next.text) || tokAt(pos_ + 2).kind == TokenKind::Equal);
      if (depth == 0 || newStatement || next.kind == TokenKind::RBrace) {
        ++pos_;
        return;
      }
      break;
    }
    default:
      break;
    }
  }
}

// ----------------------------------------------------------------------------
// Statements

ModelAST Parser::run() {
  while (peek().kind == TokenKind::Newline)
    take();
  header();
  while (!at(TokenKind::Eof)) {
    size_t before = pos_;
    statement();
    if (pos_ == before) // cannot happen; a guarantee that the loop terminates
      take();
  }
  return std::move(ast_);
}

void Parser::header() {
  if (atWord("model"))
    return;
  report(peek(), fmt::format("expected 'model' declaration, found {}", describeToken(peek())));
  // A file that starts with a declaration just lacks its header; anything
  // else on that line would only produce a second error at the same place.
  if (!(at(TokenKind::Ident) && isReserved(peek().text)))
    sync(Block::None);
}

void Parser::statement() {
  try {
    const Token &t = peek();
    if (t.kind == TokenKind::Newline) {
      take();
      return;
    }
    if (t.kind != TokenKind::Ident)
      failExpected("expected declaration");
    if (t.text == "model")
      modelDecl();
    else if (t.text == "dim")
      dimDecl();
    else if (t.text == "input" || t.text == "target")
      tensorDecl();
    else if (t.text == "param")
      paramDecl();
    else if (t.text == "forward")
      forwardBlock();
    else if (t.text == "train")
      trainBlock();
    else {
      report(t, fmt::format("unknown declaration '{}' (expected 'dim', 'input', 'target', "
                            "'param', 'forward' or 'train')",
                            t.text));
      throw SyntaxError{};
    }
  } catch (SyntaxError &) {
    sync(Block::None);
  }
}

void Parser::modelDecl() {
  Token keyword = take();
  Token name = expect(TokenKind::Ident, "expected model name after 'model'");
  // After a missing header (already reported), a later `model` line is
  // accepted silently: one error for one mistake.
  if (!ast_.name.empty()) {
    report(keyword, "duplicate 'model' declaration");
  } else {
    ast_.name = std::string(name.text);
    ast_.loc = name.loc;
  }
  endStatement(Block::None);
}

void Parser::dimDecl() {
  take();
  Token name = expect(TokenKind::Ident, "expected dimension name after 'dim'");
  expect(TokenKind::Equal, "expected '=' after dimension name");
  DimDecl dim;
  dim.name = std::string(name.text);
  dim.loc = name.loc;
  // `vocab` / `batch` are bindings only when they are the whole value; in
  // `dim X = vocab * 2` it is an ordinary identifier (lowering rejects it).
  TokenKind after = peekRaw(1).kind;
  if ((atWord("vocab") || atWord("batch")) &&
      (after == TokenKind::Newline || after == TokenKind::Eof))
    dim.binding = std::string(take().text);
  else
    dim.value = expr();
  endStatement(Block::None);
  ast_.dims.push_back(std::move(dim));
}

void Parser::tensorDecl() {
  Token keyword = take();
  std::string role(keyword.text);
  TensorDecl tensor;
  tensor.role = role == "input" ? TensorDecl::Role::Input : TensorDecl::Role::Target;
  Token name = expect(TokenKind::Ident, fmt::format("expected {} name after '{}'", role, role));
  expect(TokenKind::Colon, fmt::format("expected ':' after {} name", role));
  Token dtype = expect(TokenKind::Ident, "expected element type after ':'");
  expect(TokenKind::LBracket, "expected '[' after element type");
  tensor.name = std::string(name.text);
  tensor.loc = name.loc;
  tensor.dtype = std::string(dtype.text);
  tensor.dtypeLoc = dtype.loc;
  tensor.shape = shape();
  endStatement(Block::None);
  ast_.tensors.push_back(std::move(tensor));
}

void Parser::paramDecl() {
  take();
  Token name = expect(TokenKind::Ident, "expected parameter name after 'param'");
  expect(TokenKind::Colon, "expected ':' after parameter name");
  expect(TokenKind::LBracket, "expected '[' after ':'");
  ParamDecl param;
  param.name = std::string(name.text);
  param.loc = name.loc;
  param.shape = shape();
  expect(TokenKind::Equal, "expected '=' after parameter shape");
  param.init = expr();
  endStatement(Block::None);
  ast_.params.push_back(std::move(param));
}

// After the '[': `expr { "," expr } "]"`.
std::vector<ExprPtr> Parser::shape() {
  std::vector<ExprPtr> dims;
  ++bracketDepth_;
  dims.push_back(expr());
  while (at(TokenKind::Comma)) {
    take();
    dims.push_back(expr());
  }
  expectCloser(TokenKind::RBracket, "expected ',' or ']' in shape");
  --bracketDepth_;
  return dims;
}

void Parser::openBlock(const Token &keyword) {
  if (at(TokenKind::LBrace)) {
    take();
    return;
  }
  std::string message =
      fmt::format("expected '{{' after '{}', found {}", keyword.text, describeToken(peek()));
  // `forward` with its '{' on the next line: say so once, then parse the block
  // as intended instead of reporting every line of it as a stray statement.
  size_t p = pos_;
  while (toks_[p].kind == TokenKind::Newline)
    ++p;
  report(peek(), std::move(message));
  if (toks_[p].kind != TokenKind::LBrace)
    throw SyntaxError{};
  pos_ = p + 1;
}

// Whether the block body loop must stop at the current token (consuming the
// '}' when there is one). A reserved word that starts a line means the user
// forgot the '}'; treat the block as closed there so the declarations that
// follow are parsed as declarations, not as a string of block errors.
Parser::BlockEnd Parser::blockEnds(const Token &keyword) {
  const Token &t = peek();
  if (t.kind == TokenKind::RBrace) {
    take();
    return BlockEnd::Brace;
  }
  bool reserved =
      t.kind == TokenKind::Ident && isReserved(t.text) && peekRaw(1).kind != TokenKind::Equal;
  if (t.kind == TokenKind::Eof || reserved) {
    report(t, fmt::format("expected '}}' to close '{}' block", keyword.text));
    return BlockEnd::Missing;
  }
  return BlockEnd::No;
}

void Parser::forwardBlock() {
  Token keyword = take();
  bool duplicate = ast_.hasForward;
  if (duplicate)
    report(keyword, "duplicate 'forward' block");
  openBlock(keyword);
  std::vector<Assign> body;
  BlockEnd end;
  while ((end = blockEnds(keyword)) == BlockEnd::No) {
    try {
      if (at(TokenKind::Newline))
        take();
      else
        assignment(body);
    } catch (SyntaxError &) {
      sync(Block::Forward);
    }
  }
  // A duplicate block is still parsed, for its errors, but not kept.
  if (!duplicate) {
    ast_.forward = std::move(body);
    ast_.forwardLoc = keyword.loc;
    ast_.hasForward = true;
  }
  if (end == BlockEnd::Brace)
    endStatement(Block::None);
}

void Parser::assignment(std::vector<Assign> &body) {
  if (!at(TokenKind::Ident))
    failExpected("expected assignment in 'forward' block");
  Token name = take();
  if (isReserved(name.text)) {
    report(name, fmt::format("cannot assign to reserved word '{}'", name.text));
    throw SyntaxError{};
  }
  expect(TokenKind::Equal, fmt::format("expected '=' after '{}'", name.text));
  Assign assign;
  assign.name = std::string(name.text);
  assign.loc = name.loc;
  assign.value = expr();
  endStatement(Block::Forward);
  body.push_back(std::move(assign));
}

} // namespace detail

ModelAST parseModel(std::string_view source, DiagnosticEngine &diags) {
  return detail::Parser(source, diags).run();
}

} // namespace mlpc
