// M_init of a training object (TrainingObject.h): the values `mlpc train
// --seed S` starts from, computed by the object itself with no library call.
//
// runtime/ParamInit.cpp evaluates each Param's init expression once per
// element, Params in graph order, in double, from one mlpc::Rng(seed), and
// rounds to float; State leaves start at 0 (1 for names ending in "_var").
// The IR below repeats that operation for operation:
//   - Rng::reseed (splitmix64) and Rng::next (xoshiro256**) in i64 arithmetic;
//   - Rng::uniform: (next() >> 11) * 2^-53, exact in double;
//   - Rng::normal, the Marsaglia polar method with its cached spare;
//   - +, -, *, / and sqrt are IEEE-exact in both (no fast-math flags, no FMA
//     contraction: the object's FP fusion mode only fuses fmuladd intrinsics);
//   - log(), which the runtime takes from libm, is fdlibm's __ieee754_log
//     (emitLog: < 1 ulp). It may differ from glibc's log in the last bit of
//     the double (measured: 1 in 14 inputs), but a normal is rounded to
//     float after at most a few more double operations, so the float differs
//     only when that bit decides the rounding (about 2^-29 per value; 0 in
//     15.7 million normals measured). tests/aot (aot_train) checks M_init
//     against the runtime bit for bit.
// With --weights, M_init copies the embedded checkpoint values instead.
#include "codegen/TrainingEntries.h"
#include "codegen/VectorShape.h"

#include <llvm/IR/Intrinsics.h>

using namespace llvm;

namespace mlpc::training {
namespace {

class InitBuilder {
public:
  InitBuilder(const TrainingModel &model, const TrainingLayout &layout, llvm::Module &m,
              TargetMachine &tm)
      : model_(model), layout_(layout), m_(m), tm_(tm), b_(m.getContext()) {}

  void build();

private:
  Function *internal(const std::string &suffix, Type *ret, ArrayRef<Type *> params);
  Function *emitNext();
  Function *emitLog();
  Function *emitNormal(Function *next, Function *log);
  Value *evalInit(const InitExpr &e, Value *rng, Function *normal);
  void seed(Value *rng, Value *seedValue);
  void fill(Value *ptr, int64_t count, Value *value);

  const TrainingModel &model_;
  const TrainingLayout &layout_;
  llvm::Module &m_;
  TargetMachine &tm_;
  IRBuilder<> b_;
  // The generator in memory: { [4 x i64] s, i64 hasSpare, double spare }.
  StructType *rngTy_ = nullptr;
};

Function *InitBuilder::internal(const std::string &suffix, Type *ret, ArrayRef<Type *> params) {
  Function *f = Function::Create(FunctionType::get(ret, params, false),
                                 GlobalValue::InternalLinkage, model_.name + suffix, m_);
  codegen::addTargetAttributes(*f, tm_, /*requestedBits=*/0);
  f->addFnAttr(Attribute::NoUnwind);
  f->addFnAttr("no-builtins");
  b_.SetInsertPoint(BasicBlock::Create(m_.getContext(), "entry", f));
  return f;
}

// Rng::next.
Function *InitBuilder::emitNext() {
  Type *i64 = b_.getInt64Ty();
  Function *f = internal(".rng_next", i64, {b_.getPtrTy()});
  Value *rng = f->getArg(0);
  Value *ptr[4], *s[4];
  for (int k = 0; k < 4; ++k) {
    ptr[k] = b_.CreateConstInBoundsGEP2_32(rngTy_, rng, 0, 0);
    ptr[k] = b_.CreateConstInBoundsGEP1_64(i64, ptr[k], k);
    s[k] = b_.CreateLoad(i64, ptr[k]);
  }
  auto rotl = [&](Value *x, int k) {
    return b_.CreateOr(b_.CreateShl(x, k), b_.CreateLShr(x, 64 - k));
  };
  Value *result = b_.CreateMul(rotl(b_.CreateMul(s[1], b_.getInt64(5)), 7), b_.getInt64(9));
  Value *t = b_.CreateShl(s[1], 17);
  s[2] = b_.CreateXor(s[2], s[0]);
  s[3] = b_.CreateXor(s[3], s[1]);
  s[1] = b_.CreateXor(s[1], s[2]);
  s[0] = b_.CreateXor(s[0], s[3]);
  s[2] = b_.CreateXor(s[2], t);
  s[3] = rotl(s[3], 45);
  for (int k = 0; k < 4; ++k)
    b_.CreateStore(s[k], ptr[k]);
  b_.CreateRet(result);
  return f;
}

// fdlibm's __ieee754_log for positive normal x (all the polar method needs:
// 0 < s < 1 with s >= 2^-106), branch-free: every candidate is computed and
// the one fdlibm would return is selected.
Function *InitBuilder::emitLog() {
  Type *f64 = b_.getDoubleTy(), *i32 = b_.getInt32Ty(), *i64 = b_.getInt64Ty();
  Function *f = internal(".log", f64, {f64});
  auto c = [&](double v) { return ConstantFP::get(f64, v); };
  auto ci = [&](int32_t v) { return b_.getInt32(static_cast<uint32_t>(v)); };
  const double ln2Hi = 6.93147180369123816490e-01, ln2Lo = 1.90821492927058770002e-10,
               lg1 = 6.666666666666735130e-01, lg2 = 3.999999999940941908e-01,
               lg3 = 2.857142874366239149e-01, lg4 = 2.222219843214978396e-01,
               lg5 = 1.818357216161805012e-01, lg6 = 1.531383769920937332e-01,
               lg7 = 1.479819860511658591e-01;
  Value *bits = b_.CreateBitCast(f->getArg(0), i64);
  Value *hx = b_.CreateTrunc(b_.CreateLShr(bits, 32), i32);
  Value *lo = b_.CreateAnd(bits, b_.getInt64(0xffffffffull));
  Value *k = b_.CreateSub(b_.CreateAShr(hx, 20), ci(1023));
  hx = b_.CreateAnd(hx, ci(0x000fffff));
  Value *i = b_.CreateAnd(b_.CreateAdd(hx, ci(0x95f64)), ci(0x100000));
  Value *high = b_.CreateOr(hx, b_.CreateXor(i, ci(0x3ff00000)));
  Value *x = b_.CreateBitCast(b_.CreateOr(b_.CreateShl(b_.CreateZExt(high, i64), 32), lo), f64);
  k = b_.CreateAdd(k, b_.CreateLShr(i, 20));
  Value *fv = b_.CreateFSub(x, c(1.0));
  Value *dk = b_.CreateSIToFP(k, f64);
  Value *kZero = b_.CreateICmpEQ(k, ci(0));
  auto add = [&](Value *a, Value *b) { return b_.CreateFAdd(a, b); };
  auto sub = [&](Value *a, Value *b) { return b_.CreateFSub(a, b); };
  auto mul = [&](Value *a, Value *b) { return b_.CreateFMul(a, b); };
  // |f| < 2^-20.
  Value *tiny = b_.CreateICmpSLT(b_.CreateAnd(b_.CreateAdd(hx, ci(2)), ci(0x000fffff)), ci(3));
  Value *fZero = b_.CreateFCmpOEQ(fv, c(0.0));
  Value *zeroCase = b_.CreateSelect(kZero, c(0.0), add(mul(dk, c(ln2Hi)), mul(dk, c(ln2Lo))));
  Value *rTiny = mul(mul(fv, fv), sub(c(0.5), mul(c(0.33333333333333333), fv)));
  Value *tinyCase = b_.CreateSelect(kZero, sub(fv, rTiny),
                                    sub(mul(dk, c(ln2Hi)), sub(sub(rTiny, mul(dk, c(ln2Lo))), fv)));
  tinyCase = b_.CreateSelect(fZero, zeroCase, tinyCase);
  // The general case.
  Value *s = b_.CreateFDiv(fv, add(c(2.0), fv));
  Value *z = mul(s, s);
  Value *w = mul(z, z);
  Value *t1 = mul(w, add(c(lg2), mul(w, add(c(lg4), mul(w, c(lg6))))));
  Value *t2 = mul(z, add(c(lg1), mul(w, add(c(lg3), mul(w, add(c(lg5), mul(w, c(lg7))))))));
  Value *ij = b_.CreateOr(b_.CreateSub(hx, ci(0x6147a)), b_.CreateSub(ci(0x6b851), hx));
  Value *r = add(t2, t1);
  Value *hfsq = mul(mul(c(0.5), fv), fv);
  Value *bigK0 = sub(fv, sub(hfsq, mul(s, add(hfsq, r))));
  Value *bigK =
      sub(mul(dk, c(ln2Hi)), sub(sub(hfsq, add(mul(s, add(hfsq, r)), mul(dk, c(ln2Lo)))), fv));
  Value *smallK0 = sub(fv, mul(s, sub(fv, r)));
  Value *smallK = sub(mul(dk, c(ln2Hi)), sub(sub(mul(s, sub(fv, r)), mul(dk, c(ln2Lo))), fv));
  Value *big = b_.CreateSelect(kZero, bigK0, bigK);
  Value *small = b_.CreateSelect(kZero, smallK0, smallK);
  Value *general = b_.CreateSelect(b_.CreateICmpSGT(ij, ci(0)), big, small);
  b_.CreateRet(b_.CreateSelect(tiny, tinyCase, general));
  return f;
}

// Rng::normal.
Function *InitBuilder::emitNormal(Function *next, Function *log) {
  Type *f64 = b_.getDoubleTy(), *i64 = b_.getInt64Ty();
  Function *f = internal(".rng_normal", f64, {b_.getPtrTy()});
  Value *rng = f->getArg(0);
  LLVMContext &ctx = m_.getContext();
  Value *hasSpare = b_.CreateConstInBoundsGEP2_32(rngTy_, rng, 0, 1);
  Value *spare = b_.CreateConstInBoundsGEP2_32(rngTy_, rng, 0, 2);
  BasicBlock *cached = BasicBlock::Create(ctx, "cached", f);
  BasicBlock *draw = BasicBlock::Create(ctx, "draw", f);
  BasicBlock *done = BasicBlock::Create(ctx, "done", f);
  b_.CreateCondBr(b_.CreateICmpNE(b_.CreateLoad(i64, hasSpare), b_.getInt64(0)), cached, draw);
  b_.SetInsertPoint(cached);
  b_.CreateStore(b_.getInt64(0), hasSpare);
  b_.CreateRet(b_.CreateLoad(f64, spare));
  b_.SetInsertPoint(draw);
  auto uniform = [&] {
    Value *bits = b_.CreateLShr(b_.CreateCall(next, {rng}), 11);
    Value *u = b_.CreateFMul(b_.CreateUIToFP(bits, f64), ConstantFP::get(f64, 0x1.0p-53));
    return b_.CreateFSub(b_.CreateFMul(ConstantFP::get(f64, 2.0), u), ConstantFP::get(f64, 1.0));
  };
  Value *u = uniform();
  Value *v = uniform();
  Value *s = b_.CreateFAdd(b_.CreateFMul(u, u), b_.CreateFMul(v, v));
  Value *retry = b_.CreateOr(b_.CreateFCmpOGE(s, ConstantFP::get(f64, 1.0)),
                             b_.CreateFCmpOEQ(s, ConstantFP::get(f64, 0.0)));
  b_.CreateCondBr(retry, draw, done);
  b_.SetInsertPoint(done);
  Value *logS = b_.CreateCall(log, {s});
  Value *ratio = b_.CreateFDiv(b_.CreateFMul(ConstantFP::get(f64, -2.0), logS), s);
  Value *factor = b_.CreateUnaryIntrinsic(Intrinsic::sqrt, ratio);
  b_.CreateStore(b_.CreateFMul(v, factor), spare);
  b_.CreateStore(b_.getInt64(1), hasSpare);
  b_.CreateRet(b_.CreateFMul(u, factor));
  return f;
}

// evalInit, left operand first (the order of the runtime's draws).
Value *InitBuilder::evalInit(const InitExpr &e, Value *rng, Function *normal) {
  using K = InitExpr::Kind;
  Type *f64 = b_.getDoubleTy();
  switch (e.kind) {
  case K::Randn:
    return b_.CreateCall(normal, {rng});
  case K::Zeros:
    return ConstantFP::get(f64, 0.0);
  case K::Ones:
    return ConstantFP::get(f64, 1.0);
  case K::Number:
    return ConstantFP::get(f64, e.value);
  case K::Neg:
    return b_.CreateFNeg(evalInit(e.args[0], rng, normal));
  case K::Sqrt:
    return b_.CreateUnaryIntrinsic(Intrinsic::sqrt, evalInit(e.args[0], rng, normal));
  case K::Add:
  case K::Sub:
  case K::Mul:
  case K::Div: {
    Value *a = evalInit(e.args[0], rng, normal);
    Value *b = evalInit(e.args[1], rng, normal);
    return e.kind == K::Add   ? b_.CreateFAdd(a, b)
           : e.kind == K::Sub ? b_.CreateFSub(a, b)
           : e.kind == K::Mul ? b_.CreateFMul(a, b)
                              : b_.CreateFDiv(a, b);
  }
  }
  return ConstantFP::get(f64, 0.0);
}

// Rng::reseed: splitmix64 over the four words; no cached spare.
void InitBuilder::seed(Value *rng, Value *seedValue) {
  Type *i64 = b_.getInt64Ty();
  Value *x = seedValue;
  Value *words = b_.CreateConstInBoundsGEP2_32(rngTy_, rng, 0, 0);
  for (int k = 0; k < 4; ++k) {
    x = b_.CreateAdd(x, b_.getInt64(0x9e3779b97f4a7c15ull));
    Value *z = x;
    z = b_.CreateMul(b_.CreateXor(z, b_.CreateLShr(z, 30)), b_.getInt64(0xbf58476d1ce4e5b9ull));
    z = b_.CreateMul(b_.CreateXor(z, b_.CreateLShr(z, 27)), b_.getInt64(0x94d049bb133111ebull));
    b_.CreateStore(b_.CreateXor(z, b_.CreateLShr(z, 31)),
                   b_.CreateConstInBoundsGEP1_64(i64, words, k));
  }
  b_.CreateStore(b_.getInt64(0), b_.CreateConstInBoundsGEP2_32(rngTy_, rng, 0, 1));
  b_.CreateStore(ConstantFP::get(b_.getDoubleTy(), 0.0),
                 b_.CreateConstInBoundsGEP2_32(rngTy_, rng, 0, 2));
}

void InitBuilder::fill(Value *ptr, int64_t count, Value *value) {
  emitLoop(b_, b_.getInt64(0), b_.getInt64(count), "fill", [&](Value *i) {
    b_.CreateStore(value, b_.CreateInBoundsGEP(value->getType(), ptr, i));
  });
}

void InitBuilder::build() {
  LLVMContext &ctx = m_.getContext();
  Type *i64 = b_.getInt64Ty(), *f32 = b_.getFloatTy(), *f64 = b_.getDoubleTy();
  rngTy_ = StructType::get(ctx, {ArrayType::get(i64, 4), i64, f64});
  Function *next = emitNext();
  Function *log = emitLog();
  Function *normal = emitNormal(next, log);

  Function *f = createExported(m_, tm_, model_.name + "_init",
                               FunctionType::get(b_.getInt32Ty(), {b_.getPtrTy(), i64}, false));
  f->addParamAttr(0, Attribute::NoCapture);
  Value *state = f->getArg(0);
  BasicBlock *entry = BasicBlock::Create(ctx, "entry", f);
  BasicBlock *run = BasicBlock::Create(ctx, "run", f);
  BasicBlock *reject = BasicBlock::Create(ctx, "reject", f);
  b_.SetInsertPoint(entry);
  AllocaInst *rng = b_.CreateAlloca(rngTy_, nullptr, "rng");
  b_.CreateCondBr(b_.CreateIsNull(state), reject, run);
  b_.SetInsertPoint(run);
  // Everything zero (the tensors' gaps stay zero: the finiteness check reads them).
  fill(state, layout_.stateBytes / 8, b_.getInt64(0));
  b_.CreateStore(ConstantFP::get(f32, -1.0), byteOffset(b_, state, kLrOverrideOffset));
  b_.CreateStore(b_.getInt32(kTrainingStateMagic), byteOffset(b_, state, kMagicOffset));
  b_.CreateStore(b_.getInt32(kTrainingStateVersion), byteOffset(b_, state, kVersionOffset));
  seed(rng, f->getArg(1));
  const Graph &g = *model_.train;
  for (const StateTensor &t : layout_.tensors) {
    Value *ptr = byteOffset(b_, state, t.offset);
    if (model_.weights) {
      const std::vector<float> &values = model_.weights->at(t.name);
      auto *init = ConstantDataArray::get(ctx, ArrayRef<float>(values));
      auto *gv = new GlobalVariable(m_, init->getType(), true, GlobalValue::PrivateLinkage, init,
                                    model_.name + ".w." + t.name);
      gv->setAlignment(Align(64));
      copyFloats(b_, gv, ptr, b_.getInt64(t.count));
      continue;
    }
    if (t.isState) {
      bool isVar = t.name.size() > 4 && t.name.compare(t.name.size() - 4, 4, "_var") == 0;
      if (isVar)
        fill(ptr, t.count, ConstantFP::get(f32, 1.0));
      continue;
    }
    std::optional<ValueId> leaf = g.findLeaf(Op::Param, t.name);
    const InitExpr *expr = leaf ? g[*leaf].init.get() : nullptr;
    if (!expr)
      continue; // zeros
    emitLoop(b_, b_.getInt64(0), b_.getInt64(t.count), "init", [&](Value *i) {
      Value *v = evalInit(*expr, rng, normal);
      b_.CreateStore(b_.CreateFPTrunc(v, f32), b_.CreateInBoundsGEP(f32, ptr, i));
    });
  }
  b_.CreateRet(b_.getInt32(0));
  b_.SetInsertPoint(reject);
  b_.CreateRet(b_.getInt32(static_cast<uint32_t>(-1)));
}

} // namespace

} // namespace mlpc::training

namespace mlpc {

void emitInitFunction(const TrainingModel &model, const TrainingLayout &layout, llvm::Module &m,
                      llvm::TargetMachine &tm) {
  training::InitBuilder(model, layout, m, tm).build();
}

} // namespace mlpc
