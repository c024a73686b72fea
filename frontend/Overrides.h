// `--set NAME=VALUE`: knob overrides applied to a parsed model before lowering,
// so shapes and initialisers that use a dim follow it.
//
// NAME is either
// - a dim declared with a value (`dim H = 200`): VALUE is a positive integer
//   that replaces the dim's expression; a dim bound to the batch
//   (`dim N = batch`) sets the train block's batch instead; a dim bound to the
//   dataset (`dim V = vocab`) cannot be set;
// - a train-block statement keyword (steps, batch, sgd, ...): VALUE is the
//   rest of that statement, parsed by the model parser itself, so the syntax is
//   exactly the train block's (`--set "sgd=lr 0.1, 0.01 after 50000"`) and the
//   statement replaces the model's own; or
// - `lr`, a shorthand for the learning-rate schedule of the model's optimizer
//   (`--set lr=0.05`, `--set "lr=0.1, 0.01 after 50000"`).
//
// Applied overrides are recorded in ModelAST::overrides in their canonical
// "NAME=VALUE" form; checkpoints store them, so a checkpoint of an overridden
// model rebuilds the same shapes (see encodeOverrides / decodeOverrides).
#pragma once

#include "frontend/AST.h"

#include <llvm/ADT/ArrayRef.h>
#include <llvm/ADT/StringRef.h>
#include <llvm/Support/Error.h>

#include <string>
#include <vector>

namespace mlpc {

struct Override {
  std::string name;
  std::string value;
  std::string text() const { return name + "=" + value; }
};

// Splits "NAME=VALUE" (surrounding blanks trimmed); an error for a missing
// '=', an empty name or an empty value.
llvm::Expected<Override> parseOverride(llvm::StringRef text);

// Applies the overrides in order (a later one wins over an earlier one for the
// same name). Errors name the unknown setting and list the model's dims and
// train settings. On error the AST may be partly modified.
llvm::Error applyOverrides(ModelAST &ast, llvm::ArrayRef<Override> overrides);

// The dims an override can set, "T=3 E=10 H=200 N=batch" (for error messages).
std::string describeDims(const ModelAST &ast);

// Checkpoint metadata: a JSON array of "NAME=VALUE" strings.
std::string encodeOverrides(llvm::ArrayRef<std::string> overrides);
llvm::Expected<std::vector<Override>> decodeOverrides(llvm::StringRef json);

} // namespace mlpc
