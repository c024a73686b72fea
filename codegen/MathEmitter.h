// Vectorisable f32 transcendentals emitted as straight-line LLVM IR
// (range reduction + polynomial, special cases by select, no branches and
// no libm calls), so they run at full vector width inside kernel loops.
// Each works on a float or on a vector of floats. tanh and sigmoid divide by
// a value in (1, 2] with arcp set: functions using them should carry the
// attribute "reciprocal-estimates"="vec-divf:1,divf:1" (kReciprocalEstimates).
//
// Maximum relative error against the f64 libm result, measured over dense
// sweeps on AVX-512 (FMA) / asserted by tests/unit/test_codegen_math.cpp:
//   exp      8.2e-8 / < 1.5e-7   x in [-87.3, 88.7] (normal results; subnormal
//                                results are correctly rounded, beyond: 0 / inf)
//   log      8.0e-8 / < 1.5e-7   every 97th positive float, dense on [0.5, 2]
//   tanh     1.8e-7 / < 2.5e-7   x in [-12, 12] and [-1e-3, 1e-3]
//   sigmoid  2.1e-7 / < 3e-7     x in [-87, 30]
// (an f32 ulp is 6e-8 to 1.2e-7 relative, so about 1-2 ulp for exp and log,
// 2-3 for tanh and sigmoid, whose divide uses a refined reciprocal estimate).
#pragma once

#include <llvm/IR/IRBuilder.h>

namespace mlpc::codegen {

constexpr const char *kReciprocalEstimates = "vec-divf:1,divf:1";

llvm::Value *emitExp(llvm::IRBuilder<> &b, llvm::Value *x);
// exp for x <= 0 (positive x are not supported); results below 2^-126 flush to 0. Cheaper.
llvm::Value *emitExpNonPositive(llvm::IRBuilder<> &b, llvm::Value *x);
llvm::Value *emitLog(llvm::IRBuilder<> &b, llvm::Value *x);
llvm::Value *emitTanh(llvm::IRBuilder<> &b, llvm::Value *x);
llvm::Value *emitSigmoid(llvm::IRBuilder<> &b, llvm::Value *x);
// x ^ y for a compile-time exponent (integer powers by multiplication).
llvm::Value *emitPow(llvm::IRBuilder<> &b, llvm::Value *x, double y);

} // namespace mlpc::codegen
