#include "ir/Printer.h"

#include <fmt/format.h>

namespace mlpc {

static std::string attributes(const Node &n) {
  std::vector<std::string> attrs;
  switch (n.op) {
  case Op::Pow:
    attrs.push_back(fmt::format("exponent = {}", n.scalar));
    break;
  case Op::Sum:
  case Op::Mean:
  case Op::Max:
  case Op::MaxMask:
    if (n.axis >= 0)
      attrs.push_back(fmt::format("axis = {}", n.axis));
    break;
  case Op::MatMul:
    if (n.transA)
      attrs.push_back("transA");
    if (n.transB)
      attrs.push_back("transB");
    break;
  case Op::Reshape:
  case Op::Broadcast:
  case Op::ScatterAdd:
  case Op::Unpick:
    attrs.push_back("shape = " + toString(n.shapeAttr));
    break;
  case Op::BatchNorm:
  case Op::BatchNormInfer:
  case Op::BatchNormXhat:
  case Op::BatchNormGrad:
    attrs.push_back(fmt::format("eps = {}", n.scalar));
    break;
  default:
    break;
  }
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
  for (const GraphOutput &o : g.outputs)
    out += fmt::format("  output {} = %{}\n", o.name, o.value);
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
