// Recursive-descent parser for model files.
//
//   file      = { NL } "model" IDENT NL { stmt } EOF
//   stmt      = NL | dim | tensor | param | forward | train
//   dim       = "dim" IDENT "=" ( "vocab" | "batch" | expr ) NL
//   tensor    = ("input" | "target") IDENT ":" IDENT "[" expr { "," expr } "]" NL
//               (the second IDENT is the dtype, e.g. i32; kept as text)
//   param     = "param" IDENT ":" "[" expr { "," expr } "]" "=" expr NL
//   forward   = "forward" "{" { NL | IDENT "=" expr NL } "}"
//   train     = "train" "{" { NL | trainstmt NL } "}"
//   trainstmt = "steps" INTEGER | "batch" INTEGER
//             | ("sgd" | "adam" | "adamw") "lr" NUMBER { "," NUMBER "after" INTEGER } { option }
//             | "clip_grad_norm" NUMBER | "warmup" INTEGER | "cosine" [ "min_lr" NUMBER ]
//               (options and their meaning: frontend/ParseTrain.cpp)
//   expr      = mult { ("+" | "-") mult }
//   mult      = unary { ("*" | "/" | "@") unary }
//   unary     = "-" unary | power
//   power     = postfix [ "^" unary ]          (right-associative: a ^ -0.5 works)
//   postfix   = primary { "[" expr "]" }        (Index: args[0] = table, args[1] = indices)
//   primary   = NUMBER | IDENT | IDENT "(" [ arg { "," arg } ] ")" | "(" expr ")"
//   arg       = expr | "[" [ expr { "," expr } ] "]"   (List, e.g. reshape(emb, [N, T*E]))
//
// Details the EBNF leaves out:
// - Newlines inside ( ) and [ ] are skipped, so long expressions may wrap.
// - The NL that ends a statement may also be the end of the file, or, inside a
//   block, the block's closing '}' (`forward { y = x }` is fine). A block's '}'
//   must itself be followed by NL or end of file.
// - `model dim input target param forward train` are reserved at the start of a
//   statement; `vocab batch steps sgd lr after` only mean something in their
//   place. Function names (randn, tanh, ...) are ordinary identifiers: lowering
//   checks them.
// - Binary and Index nodes are located at their operator ('+', '@', '['), not at
//   their first token: `a @ b + c` would otherwise give both operators the
//   same location, and a shape error could not say which one failed.
//   Declarations are located at their name, the train block and the forward
//   block at their keyword, steps/batch at their value, an LrPhase at its rate.
//
// Error handling: every syntax error reports one message for its statement,
// then the parser skips to the end of that statement (the next newline outside
// brackets, or the '}' that closes the current block) and carries on, so every
// bad statement gets its own message. The returned AST holds every statement
// that parsed completely; it is only meaningful if `diags` has no errors.
#pragma once

#include "frontend/AST.h"
#include "support/Diagnostics.h"

#include <string_view>

namespace mlpc {

// Parses a whole model file. `source` must be the text `diags` was created with
// (diagnostics quote its lines). Never throws on bad input; at most a little
// more than 200 levels of expression nesting are accepted.
ModelAST parseModel(std::string_view source, DiagnosticEngine &diags);

} // namespace mlpc
