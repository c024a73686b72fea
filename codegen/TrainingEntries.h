// Internal to the training object (TrainingObject.h): IR helpers shared by
// the files that emit its exported functions.
#pragma once

#include "codegen/TrainingObject.h"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Module.h>
#include <llvm/Target/TargetMachine.h>

namespace mlpc::training {

// One lowered graph inside the module: its body function (GraphLowering's
// body ABI: binding leaves in graph order, outputs, lr, workspace) and the
// leaves its leading pointer arguments stand for.
struct Kernel {
  llvm::Function *body = nullptr;
  std::vector<ValueId> leaves;
  std::vector<bool> optionalOutputs; // per graph output: may be null (BufferPlan)
};

llvm::Expected<Kernel> lowerKernel(const Graph &g, const std::string &name, llvm::Module &m,
                                   llvm::TargetMachine &tm, bool sgdUpdate);

// An exported function with the target's CPU/features, nounwind and
// no-builtins (loops stay loops: no memcpy/memset calls).
llvm::Function *createExported(llvm::Module &m, llvm::TargetMachine &tm, const std::string &name,
                               llvm::FunctionType *type);

// `for (i = begin; i < end; ++i) body(i)`; leaves the builder after the loop.
void emitLoop(llvm::IRBuilder<> &b, llvm::Value *begin, llvm::Value *end, const llvm::Twine &name,
              llvm::function_ref<void(llvm::Value *)> body);

// i1: every i32 of ptr[0, count) is in [0, bound) (one unsigned compare
// each, OR-reduced without an early exit so the loop vectorizes; count >= 1).
llvm::Value *allIndicesBelow(llvm::IRBuilder<> &b, llvm::Value *ptr, llvm::Value *count,
                             int64_t bound);

// Copies `count` floats (count >= 0) from `from` to `to`.
void copyFloats(llvm::IRBuilder<> &b, llvm::Value *from, llvm::Value *to, llvm::Value *count);

// A 64-byte-aligned stack buffer in the function's entry block.
llvm::Value *stackBuffer(llvm::IRBuilder<> &b, llvm::Type *elem, int64_t count,
                         const llvm::Twine &name);

inline llvm::Value *byteOffset(llvm::IRBuilder<> &b, llvm::Value *base, int64_t offset) {
  return b.CreateConstInBoundsGEP1_64(b.getInt8Ty(), base, offset);
}

// The state's header fields (TrainingObject.h).
constexpr int64_t kStepOffset = 0, kLrOverrideOffset = 8, kMagicOffset = 12, kVersionOffset = 16;

// M_state_bytes, M_train_step, M_set_lr, M_step and the parameter accessors.
llvm::Error emitTrainingEntries(const TrainingModel &model, const TrainingLayout &layout,
                                llvm::Module &m, llvm::TargetMachine &tm);
// M_forward and M_calibrate (TrainingInference.cpp).
llvm::Error emitInferenceEntries(const TrainingModel &model, const TrainingLayout &layout,
                                 llvm::Module &m, llvm::TargetMachine &tm);

} // namespace mlpc::training
