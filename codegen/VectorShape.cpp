// codegen/VectorShape.h: the widest vector registers of the target, read
// from LLVM's own cost model after lifting the CPU's width preference.
#include "codegen/VectorShape.h"

#include <llvm/Analysis/TargetTransformInfo.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <algorithm>
#include <memory>
#include <string>

using namespace llvm;

namespace mlpc::codegen {
namespace {

constexpr unsigned kWidestBits = 512; // AVX-512; other targets stop lower by themselves

unsigned preferredBits(unsigned requestedBits) {
  return requestedBits == 0 ? kWidestBits : std::min(requestedBits, kWidestBits);
}

// The width TTI reports for `f` (the subtarget reads prefer-vector-width).
unsigned registerBits(const Function &f, const TargetMachine &tm) {
  TargetTransformInfo tti = tm.getTargetTransformInfo(f);
  return static_cast<unsigned>(
      tti.getRegisterBitWidth(TargetTransformInfo::RGK_FixedWidthVector).getFixedValue());
}

} // namespace

void addTargetAttributes(Function &f, const TargetMachine &tm, unsigned requestedBits) {
  f.addFnAttr("target-cpu", tm.getTargetCPU());
  f.addFnAttr("target-features", tm.getTargetFeatureString());
  if (!tm.getTargetTriple().isX86())
    return; // the width attributes are x86's; elsewhere the registers' width is the only one
  f.addFnAttr("prefer-vector-width", std::to_string(preferredBits(requestedBits)));
  // Without this, the type legaliser splits 512-bit vectors on CPUs tuned for
  // 256 bits even when the preference allows them.
  f.addFnAttr("min-legal-vector-width", std::to_string(registerBits(f, tm)));
}

VectorShape vectorShapeOf(const Function &f, const TargetMachine &tm) {
  TargetTransformInfo tti = tm.getTargetTransformInfo(f);
  VectorShape s;
  s.bits = std::max(registerBits(f, tm), 128u);
  s.lanes = std::clamp(s.bits / 32, 4u, 16u);
  s.registers = std::max(tti.getNumberOfRegisters(tti.getRegisterClassForType(true)), 8u);
  return s;
}

VectorShape chooseVectorShape(const TargetMachine &tm, unsigned requestedBits) {
  LLVMContext ctx;
  Module m("vector-shape", ctx);
  Function *f = Function::Create(FunctionType::get(Type::getVoidTy(ctx), false),
                                 GlobalValue::ExternalLinkage, "probe", m);
  addTargetAttributes(*f, tm, requestedBits);
  return vectorShapeOf(*f, tm);
}

} // namespace mlpc::codegen
