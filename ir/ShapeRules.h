// Shape and type inference (each op's rule is its record's: ir/Op.h, ir/ops/)
// and the graph verifier built on them.
#pragma once

#include "ir/Graph.h"

#include <optional>
#include <string>

namespace mlpc {

// Result type of `node` from its operands' types and its attributes, or nullopt
// with a user-facing message (lower-case, naming the shapes involved) in `error`.
std::optional<TensorType> inferType(const Graph &g, const Node &node, std::string &error);

// Element count of `shape`, or nullopt if a dim is negative or the product
// overflows int64 (TensorType::numel() does not check).
std::optional<int64_t> checkedNumel(const Shape &shape);

// numpy broadcasting of two shapes (trailing axes aligned, 1 stretches).
std::optional<Shape> broadcastShapes(const Shape &a, const Shape &b);

// Structural invariants: operands precede users, arity, every stored type
// equals what its shape rule infers, outputs exist. Returns one message per
// problem (empty when the graph is valid).
std::vector<std::string> verifyGraph(const Graph &g);

} // namespace mlpc
