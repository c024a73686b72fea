// f32 vector values for the `forward` expressions of ir/ops/Elementwise.def:
// the arithmetic and the OpMath function names on an LVal emit LLVM IR
// (the transcendental functions through MathEmitter), so codegen evaluates
// each record's own formula. A double operand becomes a splat constant.
#pragma once

#include "codegen/MathEmitter.h"

#include <llvm/IR/IRBuilder.h>

namespace mlpc::codegen::emit {

struct LVal {
  llvm::IRBuilder<> *b;
  llvm::Value *v;
};

inline LVal lift(const LVal &like, double c) {
  return {like.b, llvm::ConstantFP::get(like.v->getType(), c)};
}
inline LVal operator+(LVal x, LVal y) {
  return {x.b, x.b->CreateFAdd(x.v, y.v)};
}
inline LVal operator-(LVal x, LVal y) {
  return {x.b, x.b->CreateFSub(x.v, y.v)};
}
inline LVal operator*(LVal x, LVal y) {
  return {x.b, x.b->CreateFMul(x.v, y.v)};
}
inline LVal operator/(LVal x, LVal y) {
  return {x.b, x.b->CreateFDiv(x.v, y.v)};
}
inline LVal operator-(LVal x) {
  return {x.b, x.b->CreateFNeg(x.v)};
}
inline LVal operator+(double c, LVal y) {
  return lift(y, c) + y;
}
inline LVal operator-(double c, LVal y) {
  return lift(y, c) - y;
}
inline LVal operator*(double c, LVal y) {
  return lift(y, c) * y;
}
inline LVal operator/(double c, LVal y) {
  return lift(y, c) / y;
}
inline LVal operator+(LVal x, double c) {
  return x + lift(x, c);
}
inline LVal operator-(LVal x, double c) {
  return x - lift(x, c);
}
inline LVal operator*(LVal x, double c) {
  return x * lift(x, c);
}
inline LVal operator/(LVal x, double c) {
  return x / lift(x, c);
}

inline LVal exp(LVal x) {
  return {x.b, emitExp(*x.b, x.v)};
}
inline LVal log(LVal x) {
  return {x.b, emitLog(*x.b, x.v)};
}
inline LVal tanh(LVal x) {
  return {x.b, emitTanh(*x.b, x.v)};
}
inline LVal sigmoid(LVal x) {
  return {x.b, emitSigmoid(*x.b, x.v)};
}
inline LVal pow(LVal x, double p) {
  return {x.b, emitPow(*x.b, x.v, p)};
}
inline LVal relu(LVal x) {
  LVal zero = lift(x, 0.0);
  return {x.b, x.b->CreateSelect(x.b->CreateFCmpOGT(x.v, zero.v), x.v, zero.v)};
}
inline LVal step(LVal x) {
  LVal zero = lift(x, 0.0), one = lift(x, 1.0);
  return {x.b, x.b->CreateSelect(x.b->CreateFCmpOGT(x.v, zero.v), one.v, zero.v)};
}
inline LVal abs(LVal x) {
  return {x.b, x.b->CreateUnaryIntrinsic(llvm::Intrinsic::fabs, x.v)};
}

} // namespace mlpc::codegen::emit
