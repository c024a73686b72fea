// The functions an elementwise record's `forward` expression is written with
// (ir/ops/Elementwise.def), in double precision: the interpreter and the
// constant folder evaluate records with these. codegen/ElementwiseEmit.h
// provides the same names on f32 vectors, ir/ops/GradExpr.h on graph values;
// the records call them unqualified, and overload resolution picks the set.
#pragma once

#include <cmath>

namespace mlpc::opmath {

inline double exp(double x) {
  return std::exp(x);
}
inline double log(double x) {
  return std::log(x);
}
inline double tanh(double x) {
  return std::tanh(x);
}
inline double sigmoid(double x) {
  return 1 / (1 + std::exp(-x));
}
inline double relu(double x) {
  return x > 0 ? x : 0.0;
}
inline double step(double x) {
  return x > 0 ? 1.0 : 0.0;
}
inline double abs(double x) {
  return std::fabs(x);
}
inline double pow(double x, double p) {
  return std::pow(x, p);
}

} // namespace mlpc::opmath
