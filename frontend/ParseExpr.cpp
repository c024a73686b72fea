// The expression half of the parser: one function per precedence level of the
// grammar in Parser.h, lowest first.
#include "frontend/ParserImpl.h"

#include <fmt/format.h>

namespace mlpc::detail {

namespace {

ExprPtr makeExpr(ExprKind kind, SourceLoc loc) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->loc = loc;
  return e;
}

ExprPtr makeBinary(const Token &op, ExprPtr lhs, ExprPtr rhs) {
  ExprPtr e = makeExpr(ExprKind::Binary, op.loc);
  e->op = op.text[0];
  e->args.push_back(std::move(lhs));
  e->args.push_back(std::move(rhs));
  return e;
}

} // namespace

ExprPtr Parser::bounded(ExprPtr e) {
  for (const ExprPtr &a : e->args)
    e->depth = std::max(e->depth, a->depth + 1);
  if (e->depth > kMaxExprDepth) {
    diags_.error(e->loc, fmt::format("expression is too deep: more than {} levels of operations",
                                     kMaxExprDepth));
    throw SyntaxError{};
  }
  return e;
}

ExprPtr Parser::expr() {
  ExprPtr lhs = mult();
  while (at(TokenKind::Plus) || at(TokenKind::Minus)) {
    Token op = take();
    lhs = bounded(makeBinary(op, std::move(lhs), mult()));
  }
  return lhs;
}

ExprPtr Parser::mult() {
  ExprPtr lhs = unary();
  while (at(TokenKind::Star) || at(TokenKind::Slash) || at(TokenKind::At)) {
    Token op = take();
    lhs = bounded(makeBinary(op, std::move(lhs), unary()));
  }
  return lhs;
}

// Every way to nest (parentheses, brackets, call arguments, unary minus, the
// right side of '^') comes back through here, so this one counter bounds the
// recursion depth of the whole expression parser.
ExprPtr Parser::unary() {
  if (nesting_ > kMaxNesting) {
    report(peek(), "expression is nested too deeply");
    throw SyntaxError{};
  }
  ++nesting_;
  ExprPtr result;
  if (at(TokenKind::Minus)) {
    Token op = take();
    result = makeExpr(ExprKind::Unary, op.loc);
    result->op = '-';
    result->args.push_back(unary());
    result = bounded(std::move(result));
  } else {
    result = power();
  }
  --nesting_;
  return result;
}

ExprPtr Parser::power() {
  ExprPtr base = postfix();
  if (!at(TokenKind::Caret))
    return base;
  Token op = take();
  // unary(), not power(): makes '^' right-associative and lets `x ^ -0.5` parse.
  return bounded(makeBinary(op, std::move(base), unary()));
}

ExprPtr Parser::postfix() {
  ExprPtr e = primary();
  while (at(TokenKind::LBracket)) {
    Token open = take();
    ++bracketDepth_;
    ExprPtr index = expr();
    expectCloser(TokenKind::RBracket, "expected ']' after index");
    --bracketDepth_;
    ExprPtr node = makeExpr(ExprKind::Index, open.loc);
    node->args.push_back(std::move(e));
    node->args.push_back(std::move(index));
    e = bounded(std::move(node));
  }
  return e;
}

ExprPtr Parser::primary() {
  const Token &t = peek();
  if (t.kind == TokenKind::Number) {
    ExprPtr e = makeExpr(ExprKind::Number, t.loc);
    e->number = t.number;
    e->isInteger = t.isInteger;
    e->integer = t.integer;
    take();
    return e;
  }
  if (t.kind == TokenKind::Ident) {
    Token name = take();
    if (at(TokenKind::LParen))
      return call(name);
    ExprPtr e = makeExpr(ExprKind::Ident, name.loc);
    e->name = std::string(name.text);
    return e;
  }
  if (t.kind == TokenKind::LParen) {
    take();
    ++bracketDepth_;
    ExprPtr e = expr();
    expectCloser(TokenKind::RParen, "expected ')'");
    --bracketDepth_;
    return e;
  }
  failExpected("expected expression");
}

ExprPtr Parser::call(const Token &name) {
  ExprPtr e = makeExpr(ExprKind::Call, name.loc);
  e->name = std::string(name.text);
  take(); // '('
  ++bracketDepth_;
  if (!at(TokenKind::RParen)) {
    for (;;) {
      e->args.push_back(at(TokenKind::LBracket) ? list() : expr());
      if (!at(TokenKind::Comma))
        break;
      take();
    }
  }
  expectCloser(TokenKind::RParen, fmt::format("expected ',' or ')' in call to '{}'", name.text));
  --bracketDepth_;
  return bounded(std::move(e));
}

ExprPtr Parser::list() {
  Token open = take(); // '['
  ExprPtr e = makeExpr(ExprKind::List, open.loc);
  ++bracketDepth_;
  if (!at(TokenKind::RBracket)) {
    for (;;) {
      e->args.push_back(expr());
      if (!at(TokenKind::Comma))
        break;
      take();
    }
  }
  expectCloser(TokenKind::RBracket, "expected ',' or ']' in list");
  --bracketDepth_;
  return bounded(std::move(e));
}

} // namespace mlpc::detail
