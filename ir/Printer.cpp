#include "ir/Printer.h"

#include <fmt/format.h>

namespace mlpc {

static std::string attributeList(const Node &n) {
  std::vector<std::string> attrs = attributes(n); // the op's schema (ir/Op.h)
  return attrs.empty() ? "" : fmt::format(" {{{}}}", fmt::join(attrs, ", "));
}

// Leaves print as declarations.
static std::string printLeaf(const Node &n) {
  if (n.op == Op::Input)
    return fmt::format("{} {} : {}", n.isTarget ? "target" : "input", n.name, toString(n.type));
  if (n.op == Op::Param)
    return fmt::format("param {} : {} = {}", n.name, toString(n.type),
                       n.init ? n.init->str() : "?");
  if (n.op == Op::State)
    return fmt::format("state {} : {}", n.name, toString(n.type));
  return fmt::format("const {}", n.scalar);
}

std::string printNode(const Graph &g, ValueId v) {
  const Node &n = g[v];
  std::string line = fmt::format("%{} = ", v);
  if (opInfo(n.op).kind == OpKind::Leaf)
    return line + printLeaf(n);
  std::vector<std::string> operands;
  for (ValueId o : n.operands)
    operands.push_back(fmt::format("%{}", o));
  line += fmt::format("{} {}{} : {}", opInfo(n.op).name, fmt::join(operands, ", "),
                      attributeList(n), toString(n.type));
  if (!n.name.empty())
    line += "  ; " + n.name;
  return line;
}

std::string printGraph(const Graph &g) {
  std::string out = fmt::format("graph {} {{\n", g.name);
  for (ValueId v = 0; v < g.size(); ++v)
    out += "  " + printNode(g, v) + "\n";
  for (const GraphOutput &o : g.outputs) {
    out += fmt::format("  output {} = %{}", o.name, o.value);
    if (o.role != OutputRole::Value) {
      out += fmt::format("  ; {}", toString(o.role));
      for (std::optional<ValueId> s : {o.subject, o.subject2})
        if (s)
          out += fmt::format(" %{}", *s);
    }
    out += "\n";
  }
  out += "}\n";
  return out;
}

std::string printDot(const Graph &g) {
  std::string out =
      fmt::format("digraph \"{}\" {{\n  rankdir=TB;\n  node [fontname=\"monospace\"];\n", g.name);
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node &n = g[v];
    std::string label;
    const char *shape = "box";
    if (n.op == Op::Input) {
      label = n.name;
      shape = "invhouse";
    } else if (n.op == Op::Param || n.op == Op::State) {
      label = n.name;
      shape = "cylinder";
    } else if (n.op == Op::Const) {
      label = fmt::format("{}", n.scalar);
      shape = "plaintext";
    } else {
      label = opInfo(n.op).name;
      if (!n.name.empty())
        label += "\\n" + n.name;
    }
    label += "\\n" + toString(n.type);
    out += fmt::format("  n{} [label=\"{}\", shape={}];\n", v, label, shape);
  }
  for (ValueId v = 0; v < g.size(); ++v)
    for (ValueId o : g[v].operands)
      out += fmt::format("  n{} -> n{};\n", o, v);
  for (const GraphOutput &o : g.outputs) {
    out += fmt::format("  out_{} [label=\"{}\", shape=house];\n", o.name, o.name);
    out += fmt::format("  n{} -> out_{};\n", o.value, o.name);
  }
  out += "}\n";
  return out;
}

} // namespace mlpc
