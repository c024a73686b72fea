// KernelBuilder's index arithmetic (codegen/KernelBuilder.h: add, mul)
// moves constant offsets outward as it builds. Oracle: the same expressions
// in plain two's complement integer arithmetic, for random expression
// trees over runtime values of both index widths (i64, and i32 as some
// lane computations use), with negative constants; the IR is evaluated by
// a small interpreter of add / mul / constants / arguments.
#include "codegen/KernelBuilder.h"

#include <catch2/catch.hpp>
#include <llvm/IR/Module.h>

#include <functional>
#include <random>

using namespace llvm;
using mlpc::codegen::KernelBuilder;

namespace {

int64_t evaluate(Value *v, ArrayRef<int64_t> args, unsigned bits) {
  auto wrap = [bits](int64_t x) {
    return bits == 64 ? x : int64_t(int32_t(uint32_t(uint64_t(x))));
  };
  if (auto *c = dyn_cast<ConstantInt>(v))
    return c->getSExtValue();
  if (auto *a = dyn_cast<Argument>(v))
    return args[a->getArgNo()];
  auto *op = cast<BinaryOperator>(v);
  int64_t l = evaluate(op->getOperand(0), args, bits), r = evaluate(op->getOperand(1), args, bits);
  REQUIRE((op->getOpcode() == Instruction::Add || op->getOpcode() == Instruction::Mul));
  return wrap(int64_t(op->getOpcode() == Instruction::Add ? uint64_t(l) + uint64_t(r)
                                                          : uint64_t(l) * uint64_t(r)));
}

void checkRandomTrees(unsigned bits) {
  LLVMContext ctx;
  Module m("index", ctx);
  IRBuilder<> b(ctx);
  Type *ty = b.getIntNTy(bits);
  auto *f = Function::Create(FunctionType::get(ty, {ty, ty, ty}, false),
                             GlobalValue::ExternalLinkage, "f", m);
  b.SetInsertPoint(BasicBlock::Create(ctx, "entry", f));
  KernelBuilder k(b, 16, 32);
  std::mt19937 rng(bits);
  auto wrap = [bits](int64_t x) {
    return bits == 64 ? x : int64_t(int32_t(uint32_t(uint64_t(x))));
  };
  for (int trees = 0; trees < 200; ++trees) {
    // A random tree of depth <= 4: its IR (through k) and its oracle value.
    std::function<std::pair<Value *, std::function<int64_t(ArrayRef<int64_t>)>>(int)> build =
        [&](int depth) -> std::pair<Value *, std::function<int64_t(ArrayRef<int64_t>)>> {
      const int choice = depth == 0 ? int(rng() % 2) : int(rng() % 5);
      const int64_t c = int64_t(rng() % 41) - 20;
      if (choice == 0) {
        unsigned i = rng() % 3;
        return {f->getArg(i), [i](ArrayRef<int64_t> a) { return a[i]; }};
      }
      if (choice == 1)
        return {ConstantInt::get(ty, c, true), [c](ArrayRef<int64_t>) { return c; }};
      auto left = build(depth - 1);
      auto lf = left.second;
      if (choice == 2)
        return {k.add(left.first, c), [=](ArrayRef<int64_t> a) { return wrap(lf(a) + c); }};
      if (choice == 3)
        return {k.mul(left.first, c), [=](ArrayRef<int64_t> a) { return wrap(lf(a) * c); }};
      auto right = build(depth - 1);
      auto rf = right.second;
      return {k.add(left.first, right.first),
              [=](ArrayRef<int64_t> a) { return wrap(lf(a) + rf(a)); }};
    };
    auto tree = build(4);
    REQUIRE(tree.first->getType() == ty);
    for (int trial = 0; trial < 5; ++trial) {
      const int64_t args[3] = {wrap(int64_t(rng() % 100000)), wrap(int64_t(rng() % 7)),
                               wrap(-int64_t(rng() % 1000))};
      CHECK(evaluate(tree.first, args, bits) == tree.second(args));
    }
  }
}

} // namespace

TEST_CASE("kernel index arithmetic: offsets move outward, values unchanged", "[codegen]") {
  checkRandomTrees(64);
  checkRandomTrees(32);
}

TEST_CASE("kernel index arithmetic: a tile's indices share one base", "[codegen]") {
  LLVMContext ctx;
  Module m("index", ctx);
  IRBuilder<> b(ctx);
  auto *f = Function::Create(FunctionType::get(b.getInt64Ty(), {b.getInt64Ty()}, false),
                             GlobalValue::ExternalLinkage, "f", m);
  b.SetInsertPoint(BasicBlock::Create(ctx, "entry", f));
  KernelBuilder k(b, 16, 32);
  Value *row0 = f->getArg(0);
  // (row0 + r) * 200 + 16 * q, as a matmul epilogue writes it: every
  // element's index is row0 * 200 plus a constant.
  for (int r = 0; r < 4; ++r)
    for (int q = 0; q < 4; ++q) {
      Value *index = k.add(k.mul(k.add(row0, r), 200), k.idx(16 * q));
      if (r == 0 && q == 0)
        continue;
      auto *add = dyn_cast<BinaryOperator>(index);
      REQUIRE(add);
      CHECK(add->getOpcode() == Instruction::Add);
      CHECK(cast<ConstantInt>(add->getOperand(1))->getSExtValue() == 200 * r + 16 * q);
      auto *base = dyn_cast<BinaryOperator>(add->getOperand(0));
      REQUIRE(base);
      CHECK(base->getOpcode() == Instruction::Mul);
      CHECK(base->getOperand(0) == row0);
      CHECK(cast<ConstantInt>(base->getOperand(1))->getSExtValue() == 200);
    }
}
