// Graph values for the `vjp` expressions of ir/ops/Elementwise.def: the
// arithmetic and the OpMath functions on a GVal append the corresponding node
// to the graph (via Graph::build, with its shape rule), so a gradient rule
// reads like its formula: `d * (1.0 - y * y)` builds mul(d, sub(1, mul(y, y))).
// Doubles become scalar constants (which broadcast).
#pragma once

#include "ir/Graph.h"

namespace mlpc::gradexpr {

struct GVal {
  Graph *g;
  ValueId id;
};

inline GVal node(Graph &g, Op op, std::vector<ValueId> operands, double p = 0) {
  Node n(op, std::move(operands));
  n.scalar = p;
  return {&g, g.build(std::move(n))};
}
inline GVal lift(const GVal &like, double c) {
  return {like.g, like.g->makeConst(c)};
}

inline GVal operator+(GVal a, GVal b) {
  return node(*a.g, Op::Add, {a.id, b.id});
}
inline GVal operator-(GVal a, GVal b) {
  return node(*a.g, Op::Sub, {a.id, b.id});
}
inline GVal operator*(GVal a, GVal b) {
  return node(*a.g, Op::Mul, {a.id, b.id});
}
inline GVal operator/(GVal a, GVal b) {
  return node(*a.g, Op::Div, {a.id, b.id});
}
inline GVal operator-(GVal a) {
  return node(*a.g, Op::Neg, {a.id});
}
inline GVal operator+(double a, GVal b) {
  return lift(b, a) + b;
}
inline GVal operator-(double a, GVal b) {
  return lift(b, a) - b;
}
inline GVal operator*(double a, GVal b) {
  return lift(b, a) * b;
}
inline GVal operator/(double a, GVal b) {
  return lift(b, a) / b;
}
inline GVal operator+(GVal a, double b) {
  return a + lift(a, b);
}
inline GVal operator-(GVal a, double b) {
  return a - lift(a, b);
}
inline GVal operator*(GVal a, double b) {
  return a * lift(a, b);
}
inline GVal operator/(GVal a, double b) {
  return a / lift(a, b);
}

inline GVal exp(GVal x) {
  return node(*x.g, Op::Exp, {x.id});
}
inline GVal log(GVal x) {
  return node(*x.g, Op::Log, {x.id});
}
inline GVal tanh(GVal x) {
  return node(*x.g, Op::Tanh, {x.id});
}
inline GVal sigmoid(GVal x) {
  return node(*x.g, Op::Sigmoid, {x.id});
}
inline GVal relu(GVal x) {
  return node(*x.g, Op::Relu, {x.id});
}
inline GVal step(GVal x) {
  return node(*x.g, Op::Step, {x.id});
}
inline GVal abs(GVal x) {
  return relu(x) + relu(-x);
}
inline GVal pow(GVal x, double p) {
  return node(*x.g, Op::Pow, {x.id}, p);
}
// A zero tensor of x's shape.
inline GVal zerosLike(GVal x) {
  Node n(Op::Broadcast, {x.g->makeConst(0.0)});
  n.shapeAttr = (*x.g)[x.id].type.shape;
  return {x.g, x.g->build(std::move(n))};
}

} // namespace mlpc::gradexpr
