#include "ir/Graph.h"

#include "ir/ShapeRules.h"

#include <cmath>
#include <fmt/format.h>
#include <llvm/ADT/Twine.h>
#include <llvm/Support/ErrorHandling.h>
#include <map>

namespace mlpc {

std::vector<std::string> attributes(const Node &n) {
  const OpInfo &info = opInfo(n.op);
  std::vector<std::string> attrs;
  if (info.has(opflag::AttrValue))
    attrs.push_back(fmt::format("value = {}", n.scalar));
  if (info.has(opflag::AttrExponent))
    attrs.push_back(fmt::format("exponent = {}", n.scalar));
  if (info.has(opflag::AttrAxis) && n.axis >= 0)
    attrs.push_back(fmt::format("axis = {}", n.axis));
  if (info.has(opflag::AttrTrans) && n.transA)
    attrs.push_back("transA");
  if (info.has(opflag::AttrTrans) && n.transB)
    attrs.push_back("transB");
  if (info.has(opflag::AttrShape))
    attrs.push_back("shape = " + toString(n.shapeAttr));
  if (info.has(opflag::AttrEps))
    attrs.push_back(fmt::format("eps = {}", n.scalar));
  return attrs;
}

std::string toString(DType t) {
  return t == DType::F32 ? "f32" : "i32";
}

std::string toString(const Shape &s) {
  return fmt::format("[{}]", fmt::join(s, ", "));
}

std::string toString(const TensorType &t) {
  return toString(t.dtype) + toString(t.shape);
}

std::string InitExpr::str() const {
  switch (kind) {
  case Kind::Randn:
    return "randn";
  case Kind::Zeros:
    return "zeros";
  case Kind::Ones:
    return "ones";
  case Kind::Number:
    return fmt::format("{}", value);
  case Kind::Neg:
    return fmt::format("(neg {})", args[0].str());
  case Kind::Sqrt:
    return fmt::format("(sqrt {})", args[0].str());
  case Kind::Add:
    return fmt::format("(+ {} {})", args[0].str(), args[1].str());
  case Kind::Sub:
    return fmt::format("(- {} {})", args[0].str(), args[1].str());
  case Kind::Mul:
    return fmt::format("(* {} {})", args[0].str(), args[1].str());
  case Kind::Div:
    return fmt::format("(/ {} {})", args[0].str(), args[1].str());
  }
  return "?";
}

ValueId Graph::add(Node node) {
  nodes.push_back(std::move(node));
  return static_cast<ValueId>(nodes.size() - 1);
}

ValueId Graph::make(Op op, std::vector<ValueId> operands, SourceLoc loc) {
  Node n(op, std::move(operands));
  n.loc = loc;
  return build(std::move(n));
}

ValueId Graph::build(Node n) {
  std::string error;
  std::optional<TensorType> type = inferType(*this, n, error);
  // Passes only build well-typed nodes; one that does not is a compiler bug,
  // which must not continue with a made-up type in a Release build either.
  if (!type)
    llvm::report_fatal_error(llvm::Twine("internal error: a pass built an ill-typed '") +
                             opInfo(n.op).name + "': " + error);
  n.type = *type;
  return add(std::move(n));
}

ValueId Graph::makeConst(double value) {
  Node n;
  n.op = Op::Const;
  n.scalar = value;
  n.type = {DType::F32, {}};
  return add(std::move(n));
}

std::optional<ValueId> Graph::output(const std::string &outputName) const {
  for (const GraphOutput &o : outputs)
    if (o.name == outputName)
      return o.value;
  return std::nullopt;
}

std::optional<ValueId> Graph::output(OutputRole role) const {
  for (const GraphOutput &o : outputs)
    if (o.role == role)
      return o.value;
  return std::nullopt;
}

std::optional<ValueId> Graph::output(OutputRole role, const std::string &subject) const {
  for (const GraphOutput &o : outputs)
    if (o.role == role && o.subject && nodes[*o.subject].name == subject)
      return o.value;
  return std::nullopt;
}

void Graph::setOutput(GraphOutput out) {
  for (GraphOutput &o : outputs)
    if (o.name == out.name) {
      o = std::move(out);
      return;
    }
  outputs.push_back(std::move(out));
}

const char *toString(OutputRole role) {
  switch (role) {
  case OutputRole::Loss:
    return "loss";
  case OutputRole::Logits:
    return "logits";
  case OutputRole::Value:
    return "value";
  case OutputRole::Gradient:
    return "gradient";
  case OutputRole::WriteBack:
    return "write-back";
  case OutputRole::Adjoint:
    return "adjoint";
  case OutputRole::BatchNormInput:
    return "batchnorm-input";
  }
  return "?";
}

std::vector<ValueId> Graph::leaves(Op op) const {
  std::vector<ValueId> result;
  for (ValueId v = 0; v < nodes.size(); ++v)
    if (nodes[v].op == op)
      result.push_back(v);
  return result;
}

std::optional<ValueId> Graph::findLeaf(Op op, const std::string &leafName) const {
  for (ValueId v = 0; v < nodes.size(); ++v)
    if (nodes[v].op == op && nodes[v].name == leafName)
      return v;
  return std::nullopt;
}

std::vector<unsigned> Graph::useCounts() const {
  std::vector<unsigned> uses(nodes.size(), 0);
  for (const Node &n : nodes)
    for (ValueId o : n.operands)
      ++uses[o];
  for (const GraphOutput &o : outputs)
    ++uses[o.value];
  return uses;
}

void Graph::replaceAllUses(ValueId from, ValueId to) {
  for (Node &n : nodes)
    for (ValueId &o : n.operands)
      if (o == from)
        o = to;
  for (GraphOutput &o : outputs) {
    if (o.value == from)
      o.value = to;
    for (std::optional<ValueId> *s : {&o.subject, &o.subject2})
      if (*s == from)
        *s = to;
  }
}

std::vector<ValueId> Graph::reachableFromOutputs() const {
  std::vector<bool> seen(nodes.size(), false);
  std::vector<ValueId> stack, result;
  for (const GraphOutput &o : outputs) {
    stack.push_back(o.value);
    for (std::optional<ValueId> s : {o.subject, o.subject2})
      if (s)
        stack.push_back(*s);
  }
  while (!stack.empty()) {
    ValueId v = stack.back();
    stack.pop_back();
    if (seen[v])
      continue;
    seen[v] = true;
    result.push_back(v);
    for (ValueId o : nodes[v].operands)
      stack.push_back(o);
  }
  return result;
}

bool Graph::compact(bool keepUnusedLeaves) {
  // Post-order DFS from the outputs (in output order, operands left to right)
  // gives a deterministic topological order; leaves go first in their
  // original order because they are the graph's interface.
  constexpr ValueId kUnvisited = ~ValueId(0);
  std::vector<ValueId> newId(nodes.size(), kUnvisited);
  std::vector<ValueId> order;
  std::vector<bool> used(nodes.size(), keepUnusedLeaves);
  if (!keepUnusedLeaves) {
    for (ValueId v : reachableFromOutputs())
      used[v] = true;
  }
  for (ValueId v = 0; v < nodes.size(); ++v)
    if (opInfo(nodes[v].op).kind == OpKind::Leaf && nodes[v].op != Op::Const && used[v]) {
      newId[v] = static_cast<ValueId>(order.size());
      order.push_back(v);
    }
  // Iterative DFS: graphs from deep models must not overflow the stack.
  std::vector<std::pair<ValueId, size_t>> stack;
  std::vector<ValueId> roots;
  for (const GraphOutput &out : outputs) {
    roots.push_back(out.value);
    for (std::optional<ValueId> s : {out.subject, out.subject2})
      if (s)
        roots.push_back(*s);
  }
  for (ValueId root : roots) {
    if (newId[root] != kUnvisited)
      continue;
    stack.push_back({root, 0});
    while (!stack.empty()) {
      auto &[v, next] = stack.back();
      if (next < nodes[v].operands.size()) {
        ValueId operand = nodes[v].operands[next++];
        if (newId[operand] == kUnvisited) {
          newId[operand] = kUnvisited - 1; // on the stack
          stack.push_back({operand, 0});
        }
        continue;
      }
      newId[v] = static_cast<ValueId>(order.size());
      order.push_back(v);
      stack.pop_back();
    }
  }
  bool changed = order.size() != nodes.size();
  for (size_t i = 0; i < order.size() && !changed; ++i)
    changed = order[i] != i;
  if (!changed)
    return false;
  std::vector<Node> sorted;
  sorted.reserve(order.size());
  for (ValueId old : order) {
    Node n = std::move(nodes[old]);
    for (ValueId &o : n.operands)
      o = newId[o];
    sorted.push_back(std::move(n));
  }
  nodes = std::move(sorted);
  for (GraphOutput &o : outputs) {
    o.value = newId[o.value];
    for (std::optional<ValueId> *s : {&o.subject, &o.subject2})
      if (*s)
        **s = newId[**s];
  }
  return true;
}

} // namespace mlpc
