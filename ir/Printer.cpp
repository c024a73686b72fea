#include "ir/Printer.h"

#include <fmt/format.h>

namespace mlpc {

// The attributes the op reads (its opflag::Attr* flags, ir/Ops.def).
static std::string attributes(const Node &n) {
  const OpInfo &info = opInfo(n.op);
  std::vector<std::string> attrs;
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
  return attrs.empty() ? "" : fmt::format(" {{{}}}", fmt::join(attrs, ", "));
}

std::string printNode(const Graph &g, ValueId v) {
  const Node &n = g[v];
  std::string line = fmt::format("%{} = ", v);
  switch (n.op) {
  case Op::Input:
    return line +
           fmt::format("{} {} : {}", n.isTarget ? "target" : "input", n.name, toString(n.type));
  case Op::Param:
    return line + fmt::format("param {} : {} = {}", n.name, toString(n.type),
                              n.init ? n.init->str() : "?");
  case Op::State:
    return line + fmt::format("state {} : {}", n.name, toString(n.type));
  case Op::Const:
    return line + fmt::format("const {}", n.scalar);
  default:
    break;
  }
  std::vector<std::string> operands;
  for (ValueId o : n.operands)
    operands.push_back(fmt::format("%{}", o));
  line += fmt::format("{} {}{} : {}", opInfo(n.op).name, fmt::join(operands, ", "), attributes(n),
                      toString(n.type));
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
    switch (n.op) {
    case Op::Input:
      label = n.name;
      shape = "invhouse";
      break;
    case Op::Param:
      label = n.name;
      shape = "cylinder";
      break;
    case Op::State:
      label = n.name;
      shape = "cylinder";
      break;
    case Op::Const:
      label = fmt::format("{}", n.scalar);
      shape = "plaintext";
      break;
    default:
      label = opInfo(n.op).name;
      if (!n.name.empty())
        label += "\\n" + n.name;
      break;
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
