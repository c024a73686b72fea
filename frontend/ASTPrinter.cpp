#include "frontend/ASTPrinter.h"

#include <fmt/format.h>

namespace mlpc {

namespace {

std::string number(double value, bool isInteger, int64_t integer) {
  if (isInteger)
    return fmt::format("{}", integer);
  // fmt's `{}` is the shortest round-trip form, but prints 1.0 as "1": keep the
  // integer/non-integer distinction visible, since lowering treats them differently.
  std::string text = fmt::format("{}", value);
  if (text.find_first_of(".en") == std::string::npos) // 'n': inf, nan
    text += ".0";
  return text;
}

void print(std::string &out, const Expr *e);

void printList(std::string &out, const std::vector<ExprPtr> &items) {
  out += '[';
  for (size_t i = 0; i < items.size(); ++i) {
    if (i)
      out += ", ";
    print(out, items[i].get());
  }
  out += ']';
}

// Fully parenthesised prefix form. Recursion depth is bounded by the parser's
// nesting limit; a synthesised AST is expected to respect it too.
void print(std::string &out, const Expr *e) {
  if (!e) { // only in ASTs built by hand; the parser never leaves holes
    out += "<null>";
    return;
  }
  auto sexpr = [&](std::string_view head) {
    out += '(';
    out += head;
    for (const ExprPtr &arg : e->args) {
      out += ' ';
      print(out, arg.get());
    }
    out += ')';
  };
  switch (e->kind) {
  case ExprKind::Number:
    out += number(e->number, e->isInteger, e->integer);
    return;
  case ExprKind::Ident:
    out += e->name;
    return;
  case ExprKind::Unary:
    sexpr(e->op == '-' ? "neg" : std::string(1, e->op));
    return;
  case ExprKind::Binary:
    sexpr(std::string(1, e->op));
    return;
  case ExprKind::Call:
    sexpr(e->name);
    return;
  case ExprKind::Index:
    sexpr("index");
    return;
  case ExprKind::List:
    printList(out, e->args);
    return;
  }
}

// `sgd lr 0.1 from 0, 0.01 from 100000 momentum 0.9`: the options that
// differ from the optimizer's defaults, after the schedule.
std::string optimizerLine(const TrainBlock &train) {
  OptimizerDecl o = train.optimizer.value_or(OptimizerDecl{});
  const char *kind = o.kind == OptimizerKind::SGD    ? "sgd"
                     : o.kind == OptimizerKind::Adam ? "adam"
                                                     : "adamw";
  std::string out = fmt::format("  {} lr", kind);
  for (size_t i = 0; i < train.schedule.size(); ++i) {
    const LrPhase &phase = train.schedule[i];
    out += fmt::format("{} {} from {}", i ? "," : "", number(phase.lr, false, 0), phase.fromStep);
  }
  auto option = [&](const char *name, double value, double fallback) {
    if (value != fallback)
      out += fmt::format(" {} {}", name, number(value, false, 0));
  };
  option("momentum", o.momentum, 0);
  option("dampening", o.dampening, 0);
  if (o.nesterov)
    out += " nesterov";
  if (o.kind != OptimizerKind::SGD) {
    if (o.beta1 != 0.9 || o.beta2 != 0.999)
      out += fmt::format(" betas {} {}", number(o.beta1, false, 0), number(o.beta2, false, 0));
    option("eps", o.eps, 1e-8);
  }
  option("weight_decay", o.weightDecay, o.kind == OptimizerKind::AdamW ? 0.01 : 0);
  return out + "\n";
}

} // namespace

std::string printExpr(const Expr &expr) {
  std::string out;
  print(out, &expr);
  return out;
}

std::string printAST(const ModelAST &ast) {
  std::string out = ast.name.empty() ? "model\n" : "model " + ast.name + "\n";
  for (const DimDecl &dim : ast.dims) {
    out += "dim " + dim.name + " = ";
    if (dim.value)
      print(out, dim.value.get());
    else
      out += dim.binding;
    out += '\n';
  }
  for (const TensorDecl &t : ast.tensors) {
    out += t.role == TensorDecl::Role::Input ? "input " : "target ";
    out += t.name + " : " + t.dtype;
    printList(out, t.shape);
    out += '\n';
  }
  for (const ParamDecl &p : ast.params) {
    out += "param " + p.name + " : ";
    printList(out, p.shape);
    out += " = ";
    print(out, p.init.get());
    out += '\n';
  }
  if (ast.hasForward) {
    out += "forward\n";
    for (const Assign &a : ast.forward) {
      out += "  " + a.name + " = ";
      print(out, a.value.get());
      out += '\n';
    }
  }
  if (ast.train) {
    const TrainBlock &train = *ast.train;
    out += "train\n";
    if (train.steps)
      out += fmt::format("  steps {}\n", *train.steps);
    if (train.batch)
      out += fmt::format("  batch {}\n", *train.batch);
    if (!train.schedule.empty())
      out += optimizerLine(train);
    if (train.clipGradNorm)
      out += fmt::format("  clip_grad_norm {}\n", number(*train.clipGradNorm, false, 0));
    if (train.warmup)
      out += fmt::format("  warmup {}\n", *train.warmup);
    if (train.cosineMinLr)
      out += fmt::format("  cosine min_lr {}\n", number(*train.cosineMinLr, false, 0));
  }
  return out;
}

} // namespace mlpc
