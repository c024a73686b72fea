// Vector-Jacobian products: each op's rule is its record's (ir/Op.h, ir/ops/).
#pragma once

#include "ir/Graph.h"

#include <optional>
#include <vector>

namespace mlpc {

// Appends to `g` the nodes computing, for each operand of node `v`, the
// gradient of the loss with respect to that operand, given `dout` (the
// gradient with respect to v's value, same shape). An entry is nullopt for
// operands that carry no gradient (i32 indices). Returns nullopt if the op
// has no gradient rule (the ops that only autodiff itself creates).
std::optional<Grads> gradientRule(Graph &g, ValueId v, ValueId dout);

// Sums `grad` over the axes along which a value of shape `target` was
// broadcast, then reshapes to `target` (undoes numpy broadcasting).
ValueId reduceToShape(Graph &g, ValueId grad, const Shape &target);

} // namespace mlpc
