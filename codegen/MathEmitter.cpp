#include "codegen/MathEmitter.h"

#include <llvm/IR/Constants.h>
#include <llvm/IR/Intrinsics.h>

#include <cmath>

using namespace llvm;

namespace mlpc::codegen {
namespace {

// Constants of x's type (splat for vectors).
Value *fc(Value *x, double c) {
  return ConstantFP::get(x->getType(), c);
}
Type *intTy(IRBuilder<> &b, Value *x) {
  return x->getType()->getWithNewType(b.getInt32Ty());
}
Value *ic(IRBuilder<> &b, Value *x, int32_t c) {
  return ConstantInt::get(intTy(b, x), static_cast<uint64_t>(static_cast<int64_t>(c)),
                          /*isSigned=*/true);
}

Value *fma(IRBuilder<> &b, Value *x, Value *y, Value *z) {
  return b.CreateIntrinsic(Intrinsic::fmuladd, {x->getType()}, {x, y, z});
}

// Horner evaluation of c[0]*x^n + ... + c[n].
Value *horner(IRBuilder<> &b, Value *x, std::initializer_list<double> coeffs) {
  const double *c = coeffs.begin();
  Value *acc = fc(x, c[0]);
  for (size_t i = 1; i < coeffs.size(); ++i)
    acc = fma(b, acc, x, fc(x, c[i]));
  return acc;
}

// 2^n for an i32 n in [-126, 127], built from the exponent bits.
Value *pow2(IRBuilder<> &b, Value *n, Type *floatTy) {
  return b.CreateBitCast(b.CreateShl(b.CreateAdd(n, ic(b, n, 127)), ic(b, n, 23)), floatTy);
}

} // namespace

// exp(x) = 2^n * e^r with n = round(x / ln2), r = x - n*ln2 (Cody-Waite:
// ln2 split into a short high part, so n*hi is exact, and a low part;
// |r| <= ln2/2), e^r from the Cephes expf minimax polynomial (degree 7,
// peak relative error 1.7e-7 in double evaluation).
// The scaling multiplies by 2^(n/2) and 2^(n - n/2) so results that
// underflow to subnormals are rounded once, correctly; x is clamped to
// [-174, 176] first, where the results are already 0 and +inf.
// n comes from the "magic number" rounding (adding 1.5*2^23 leaves the
// rounded integer in the low mantissa bits), which is well-defined for NaN
// too (fptosi of NaN would be poison); NaN propagates through r.
namespace {
// The shared core: x already clamped so that round(x / ln2) fits the
// scaling; returns e^r and n (i32) with exp(x) = e^r * 2^n.
std::pair<Value *, Value *> expCore(IRBuilder<> &b, Value *x) {
  const double magic = 12582912.0; // 1.5 * 2^23
  Value *t = b.CreateFAdd(b.CreateFMul(x, fc(x, 1.44269504088896341)), fc(x, magic));
  Value *nf = b.CreateFSub(t, fc(x, magic));
  Value *n =
      b.CreateSub(b.CreateBitCast(t, intTy(b, x)), b.CreateBitCast(fc(x, magic), intTy(b, x)));
  Value *r = fma(b, nf, fc(x, -0.693359375), x);
  r = fma(b, nf, fc(x, 2.12194440e-4), r);
  Value *p = horner(b, r,
                    {1.9875691500E-4, 1.3981999507E-3, 8.3334519073E-3, 4.1665795894E-2,
                     1.6666665459E-1, 5.0000001201E-1});
  Value *r2 = b.CreateFMul(r, r);
  return {b.CreateFAdd(fma(b, p, r2, r), fc(x, 1.0)), n};
}
} // namespace

Value *emitExp(IRBuilder<> &b, Value *x) {
  Type *ty = x->getType();
  x = b.CreateSelect(b.CreateFCmpOGT(x, fc(x, 176.0)), fc(x, 176.0), x);
  x = b.CreateSelect(b.CreateFCmpOLT(x, fc(x, -174.0)), fc(x, -174.0), x);
  auto [p, n] = expCore(b, x);
  Value *n1 = b.CreateAShr(n, ic(b, n, 1));
  Value *n2 = b.CreateSub(n, n1);
  return b.CreateFMul(b.CreateFMul(p, pow2(b, n1, ty)), pow2(b, n2, ty));
}

// For x <= 0 (softmax numerators, tanh): results below the smallest normal
// (x < -87.34) are flushed to 0, so one 2^n scaling suffices.
Value *emitExpNonPositive(IRBuilder<> &b, Value *x) {
  const double lowest = -87.3365478515625; // ~ln(2^-126), exactly representable
  Value *under = b.CreateFCmpOLT(x, fc(x, lowest));
  auto [p, n] = expCore(b, b.CreateSelect(under, fc(x, lowest), x));
  return b.CreateSelect(under, fc(x, 0.0), b.CreateFMul(p, pow2(b, n, x->getType())));
}

// log(x) = e*ln2 + log(m), x = m * 2^e with m in [sqrt(1/2), sqrt(2)),
// log(1 + f) = f - f^2/2 + f^3 * P(f) (Cephes logf, peak relative error
// 7.6e-8 in double evaluation); ln2 split as in exp. Subnormal inputs are
// scaled by 2^23 first. x < 0 and NaN give NaN, 0 gives -inf, +inf gives +inf.
Value *emitLog(IRBuilder<> &b, Value *x) {
  Type *ty = x->getType();
  Value *sub = b.CreateFCmpOLT(x, fc(x, 1.17549435e-38));
  Value *xs = b.CreateSelect(sub, b.CreateFMul(x, fc(x, 8388608.0)), x);
  Value *bits = b.CreateBitCast(xs, intTy(b, x));
  Value *e = b.CreateSub(b.CreateLShr(bits, ic(b, x, 23)), ic(b, x, 126));
  e = b.CreateSub(e, b.CreateSelect(sub, ic(b, x, 23), ic(b, x, 0)));
  Value *m =
      b.CreateBitCast(b.CreateOr(b.CreateAnd(bits, ic(b, x, static_cast<int32_t>(0x807fffffu))),
                                 ic(b, x, 0x3f000000)),
                      ty);
  // m in [0.5, 1): move [0.5, sqrt(1/2)) up an octave so f = m - 1 is small.
  Value *low = b.CreateFCmpOLT(m, fc(x, 0.707106781186547524));
  e = b.CreateSub(e, b.CreateZExt(low, intTy(b, x)));
  Value *f = b.CreateSelect(low, b.CreateFSub(b.CreateFAdd(m, m), fc(x, 1.0)),
                            b.CreateFSub(m, fc(x, 1.0)));
  Value *z = b.CreateFMul(f, f);
  Value *p =
      horner(b, f,
             {7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1, 1.4249322787E-1,
              -1.6668057665E-1, 2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1});
  Value *y = b.CreateFMul(b.CreateFMul(p, f), z);
  Value *fe = b.CreateSIToFP(e, ty);
  y = fma(b, fe, fc(x, -2.12194440e-4), y);
  y = fma(b, z, fc(x, -0.5), y);
  Value *r = b.CreateFAdd(f, y);
  r = fma(b, fe, fc(x, 0.693359375), r);
  r = b.CreateSelect(b.CreateFCmpOEQ(x, fc(x, INFINITY)), fc(x, INFINITY), r);
  r = b.CreateSelect(b.CreateFCmpOEQ(x, fc(x, 0.0)), fc(x, -INFINITY), r);
  return b.CreateSelect(b.CreateFCmpULT(x, fc(x, 0.0)), fc(x, NAN), r);
}

// num / den for den in [1, 2^29] (sigmoid: (1, 2]; tanh: [2, e^20 + 1]):
// marked arcp + ninf so the backend may use a reciprocal estimate plus one
// Newton-Raphson step (the body function carries "reciprocal-estimates";
// vrcp14ps + 2 FMAs on AVX-512, ~1 ulp) instead of a full-latency divide,
// and contract so that step is q0 = num * r, q = q0 + (num - q0 * den) * r
// in two FMAs rather than two multiplies, a subtract and an add.
// The bounded denominator makes that safe: no inf, no subnormal reciprocal.
Value *divideBounded(IRBuilder<> &b, Value *num, Value *den) {
  auto *div = cast<Instruction>(b.CreateFDiv(num, den));
  FastMathFlags fmf;
  fmf.setAllowReciprocal();
  fmf.setAllowContract();
  fmf.setNoInfs();
  div->setFastMathFlags(fmf);
  return div;
}

// tanh(x) = sign(x) * min(1, c * P(c^2) / Q(c^2)), c = min(|x|, 9.5): a
// rational minimax fit of tanh(c) / c in t = c^2 on [0, 81], P and Q of
// degree 4 with P(0) = Q(0) = 1 (the form of Eigen's float tanh; these
// coefficients are our own fit, scripts/fit_tanh.py: relative error ~3e-8
// in exact arithmetic with the float coefficients). Both polynomials have
// positive coefficients, so Horner's scheme is well conditioned and Q lies
// in [1, 500]: divideBounded's reciprocal estimate plus a Newton step is
// safe. What is left is rounding: ~5 ulp of 1 at worst, near |x| = 8.5,
// where P and Q are ~300 each and their ratio ~1. The fit ends at 9 and
// the clamp at 9.5: beyond 9.01 tanh rounds to 1, and the rational
// function there is within an ulp of 1 or above it, which the min(1, .)
// (needed anyway: rounding can lift the ratio an ulp above 1 near the top)
// brings to exactly 1, like libm's.
// Max relative error over [-12, 12] (tests/unit/test_codegen_math.cpp):
// 2.9e-7 with AVX-512 (vrcp14ps), 3.25e-7 with AVX2 (vrcpps), against
// 1.67e-7 / 2.15e-7 for the expm1 form used before (sign(x) m / (m + 2),
// m = expm1(2|x|) by Cody-Waite and a degree-7 Taylor polynomial). Why the
// trade: 18 vector instructions instead of 23 and a shorter dependency
// chain (two interleaved Horner chains and the division, no exponent
// reconstruction through the integer unit). On the Sapphire Rapids host the
// [32, 200] tanh takes 1.68 us instead of 2.06 (op benchmark, minimum of 6
// interleaved runs) and the makemore step's tanh node 2.18 instead of 2.74
// (per-node profile, minimum of 5); makemore trains to the same val / test
// losses to four decimals (2.1088 / 2.1105).
// NaN propagates (min and the select keep the NaN operand), +-inf give +-1,
// -0 gives -0.
Value *emitTanh(IRBuilder<> &b, Value *x) {
  Value *ax = b.CreateUnaryIntrinsic(Intrinsic::fabs, x);
  Value *c = b.CreateSelect(b.CreateFCmpOLT(fc(x, 9.5), ax), fc(x, 9.5), ax);
  Value *t = b.CreateFMul(c, c);
  Value *p =
      horner(b, t, {1.341973377e-08, 2.066120396e-05, 3.498993115e-03, 1.338397861e-01, 1.0});
  Value *q =
      horner(b, t, {7.804694633e-07, 3.291032917e-04, 2.589019760e-02, 4.671729803e-01, 1.0});
  Value *ratio = b.CreateFMul(c, divideBounded(b, p, q));
  Value *th = b.CreateSelect(b.CreateFCmpOLT(fc(x, 1.0), ratio), fc(x, 1.0), ratio);
  return b.CreateBinaryIntrinsic(Intrinsic::copysign, th, x);
}

// sigmoid(x) = 1 / (1 + t) for x >= 0 and t / (1 + t) for x < 0, t = exp(-|x|):
// the denominator stays in (1, 2] and tiny results (x << 0) keep their
// relative accuracy instead of flushing through 1 / (1 + inf).
Value *emitSigmoid(IRBuilder<> &b, Value *x) {
  Value *t = emitExp(b, b.CreateFNeg(b.CreateUnaryIntrinsic(Intrinsic::fabs, x)));
  Value *num = b.CreateSelect(b.CreateFCmpOLT(x, fc(x, 0.0)), t, fc(x, 1.0));
  return divideBounded(b, num, b.CreateFAdd(fc(x, 1.0), t));
}

Value *emitPow(IRBuilder<> &b, Value *x, double y) {
  if (y == 0.5)
    return b.CreateUnaryIntrinsic(Intrinsic::sqrt, x);
  if (y == -0.5)
    return b.CreateFDiv(fc(x, 1.0), b.CreateUnaryIntrinsic(Intrinsic::sqrt, x));
  if (y == std::floor(y) && std::fabs(y) <= 64) {
    // Square-and-multiply; x^0 = 1 (std::pow(x, 0) is 1 even for NaN).
    unsigned n = static_cast<unsigned>(std::fabs(y));
    Value *result = nullptr, *sq = x;
    for (; n; n >>= 1) {
      if (n & 1)
        result = result ? b.CreateFMul(result, sq) : sq;
      if (n > 1)
        sq = b.CreateFMul(sq, sq);
    }
    if (!result)
      return fc(x, 1.0);
    return y < 0 ? b.CreateFDiv(fc(x, 1.0), result) : result;
  }
  // Non-integer exponent: exp(y * log(x)); NaN for x < 0 like std::pow,
  // 0 -> 0 (y > 0) or inf (y < 0).
  return emitExp(b, b.CreateFMul(fc(x, y), emitLog(b, x)));
}

} // namespace mlpc::codegen
