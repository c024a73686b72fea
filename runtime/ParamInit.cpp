#include "runtime/ParamInit.h"

#include <cmath>

namespace mlpc {

double evalInit(const InitExpr &e, Rng &rng) {
  using K = InitExpr::Kind;
  switch (e.kind) {
  case K::Randn:
    return rng.normal();
  case K::Zeros:
    return 0.0;
  case K::Ones:
    return 1.0;
  case K::Number:
    return e.value;
  case K::Neg:
    return -evalInit(e.args[0], rng);
  case K::Sqrt:
    return std::sqrt(evalInit(e.args[0], rng));
  case K::Add: {
    double a = evalInit(e.args[0], rng);
    return a + evalInit(e.args[1], rng);
  }
  case K::Sub: {
    double a = evalInit(e.args[0], rng);
    return a - evalInit(e.args[1], rng);
  }
  case K::Mul: {
    double a = evalInit(e.args[0], rng);
    return a * evalInit(e.args[1], rng);
  }
  case K::Div: {
    double a = evalInit(e.args[0], rng);
    return a / evalInit(e.args[1], rng);
  }
  }
  return 0.0;
}

TensorMap initParameters(const Graph &g, Rng &rng) {
  TensorMap params;
  for (ValueId p : g.leaves(Op::Param)) {
    std::vector<float> &values = params[g[p].name];
    values.resize(g[p].type.numel());
    for (float &x : values)
      x = static_cast<float>(g[p].init ? evalInit(*g[p].init, rng) : 0.0);
  }
  for (ValueId s : g.leaves(Op::State)) {
    const std::string &name = g[s].name;
    bool isVar = name.size() > 4 && name.compare(name.size() - 4, 4, "_var") == 0;
    params[name].assign(g[s].type.numel(), isVar ? 1.0f : 0.0f);
  }
  return params;
}

} // namespace mlpc
