// The parser's internals, shared by Parser.cpp (statements, error recovery)
// and ParseExpr.cpp (expressions). Not an API: include Parser.h instead.
#pragma once

#include "frontend/AST.h"
#include "frontend/Lexer.h"
#include "support/Diagnostics.h"

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace mlpc::detail {

// Thrown once a statement's error has been reported; caught where the parser
// can resynchronise (statement boundaries). An exception keeps every parse
// function free of error plumbing, and nothing ever escapes parseModel.
struct SyntaxError {};

// Nesting beyond this is almost certainly garbage, and bounding it bounds the
// recursion depth, so a hostile file cannot overflow the stack.
constexpr int kMaxNesting = 200;
// Bounds the height of an expression tree. Left-associative chains
// (`a + a + ... + a`, `x[i][i]...`) do not nest in the parser, but each
// operator adds a level to the tree that lowering walks recursively.
constexpr uint32_t kMaxExprDepth = 1000;

inline bool isReserved(std::string_view word) {
  return word == "model" || word == "dim" || word == "input" || word == "target" ||
         word == "param" || word == "forward" || word == "train";
}

// One parse of one file. Tokens are lexed up front: error recovery and the
// "found newline" diagnostics need to look back and ahead freely.
class Parser {
public:
  Parser(std::string_view source, DiagnosticEngine &diags)
      : diags_(diags), toks_(tokenize(source, diags)) {}

  ModelAST run();

private:
  enum class Block { None, Forward, Train };

  // --- Token access -------------------------------------------------------
  const Token &peek();
  const Token &peekRaw(size_t ahead) const { return tokAt(pos_ + ahead); }
  const Token &tokAt(size_t i) const { return toks_[std::min(i, toks_.size() - 1)]; }
  Token take();
  bool at(TokenKind k) { return peek().kind == k; }
  bool atWord(std::string_view w) { return at(TokenKind::Ident) && peek().text == w; }

  // --- Errors ---------------------------------------------------------------
  void report(const Token &at, std::string message);
  [[noreturn]] void failExpected(const std::string &expected);
  [[noreturn]] void failExpectedCloser(const std::string &expected);
  Token expect(TokenKind k, const std::string &expected);
  Token expectInteger(const std::string &expected);
  void expectCloser(TokenKind k, const std::string &expected);
  void endStatement(Block block);
  void sync(Block block);

  // --- Statements -----------------------------------------------------------
  void header();
  void statement();
  void modelDecl();
  void dimDecl();
  void tensorDecl();
  void paramDecl();
  std::vector<ExprPtr> shape();
  void forwardBlock();
  void trainBlock();
  void openBlock(const Token &keyword);
  enum class BlockEnd { No, Brace, Missing };
  BlockEnd blockEnds(const Token &keyword);
  void assignment(std::vector<Assign> &body);
  void trainSetting(TrainBlock &train);
  // ParseTrain.cpp: the statements of the train block.
  std::vector<LrPhase> lrList();
  void optimizerStatement(const Token &keyword, TrainBlock &train);
  double numberAfter(const std::string &what);

  // --- Expressions ----------------------------------------------------------
  ExprPtr expr();
  ExprPtr mult();
  ExprPtr unary();
  ExprPtr power();
  ExprPtr postfix();
  ExprPtr primary();
  ExprPtr call(const Token &name);
  ExprPtr list();
  // Sets e->depth from its operands; reports and throws beyond kMaxExprDepth.
  ExprPtr bounded(ExprPtr e);

  DiagnosticEngine &diags_;
  std::vector<Token> toks_;
  size_t pos_ = 0;
  int bracketDepth_ = 0; // > 0: inside ( ) or [ ], where newlines are skipped
  int nesting_ = 0;      // active unary() calls: every nesting level passes one
  ModelAST ast_;
};

} // namespace mlpc::detail
