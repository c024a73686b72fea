// Prints an AST for `mlpc emit --emit=ast`. The output is deterministic and
// golden tests diff it, so any change to the format is a change to the product.
//
// Format: one line per declaration, in the order dims, inputs/targets, params,
// forward, train (the AST keeps declarations grouped by kind, not interleaved
// as written). Expressions are fully parenthesised S-expressions so precedence
// is visible:
//
//   model makemore
//   dim V = vocab
//   dim T = 3
//   input X : i32[N, T]
//   target Y : i32[N]
//   param W1 : [(* T E), H] = (/ (* randn (/ 5 3)) (sqrt (* T E)))
//   forward
//     emb = (index C X)
//     embcat = (reshape emb [N, (* T E)])
//     x = (neg y)
//   train
//     steps 200000
//     batch 32
//     sgd lr 0.1 from 0, 0.01 from 100000
//
// Binary: `(op lhs rhs)` with op one of + - * / @ ^; unary minus: `(neg x)`;
// call: `(name arg...)`, so `f()` is `(f)`; index: `(index table indices)`;
// list: `[a, b]`. Integers print as integers; other numbers print the shortest
// text that reads back as the same double, with ".0" appended if that text
// would look like an integer (`1.0` prints `1.0`, `1e20` prints `1e+20`).
#pragma once

#include "frontend/AST.h"

#include <string>

namespace mlpc {

std::string printAST(const ModelAST &ast);

// One expression in the same S-expression form (handy in tests and messages).
std::string printExpr(const Expr &expr);

} // namespace mlpc
