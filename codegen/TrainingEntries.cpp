// The training object's step and bookkeeping functions (TrainingObject.h):
//
//   size_t   M_state_bytes(void)
//   float    M_train_step(void *state, const int32_t *X, const int32_t *Y)
//   void     M_set_lr(void *state, float lr)
//   uint64_t M_step(const void *state)
//   float   *M_param(void *state, const char *name, int64_t *numel)
//   const char *M_param_name(int64_t i)
//   int      M_param_shape(int64_t i, int64_t *dims)
//
// M_train_step: learning rate = the override when >= 0, else the schedule's
// for the state's step count (the trainer's static_cast<float> of
// TrainConfig::learningRate); checks every index; copies the tensors to the
// snapshot; runs the training kernel (forward, backward, SGD update in place,
// running statistics written back: ModelRuntime's train_step); then checks
// the loss and every tensor for a non-finite value: if there is one, it
// copies the snapshot back and returns NaN, else it counts the step and
// returns the loss. Everything lives in the state: no allocation, no stack
// beyond a few scalars.
#include "codegen/TrainingEntries.h"
#include "codegen/VectorShape.h"

#include "codegen/BufferPlan.h"
#include "codegen/Lowering.h"

using namespace llvm;

namespace mlpc::training {

Expected<Kernel> lowerKernel(const Graph &g, const std::string &name, llvm::Module &m,
                             TargetMachine &tm, bool sgdUpdate) {
  Expected<codegen::BufferPlan> plan = codegen::planBuffers(g, sgdUpdate);
  if (!plan)
    return plan.takeError();
  // Objects get the rule of codegen/VectorShape.h for their --cpu.
  codegen::GraphLowering(g, *plan, m, tm, /*vectorBits=*/0).emit(name);
  m.getFunction(name)->eraseFromParent(); // the JIT's bindings-array wrapper
  Kernel k;
  k.body = m.getFunction(name + ".body");
  k.body->addFnAttr("no-builtins");
  for (ValueId v = 0; v < g.size(); ++v)
    if (codegen::isBindingLeaf(g[v].op))
      k.leaves.push_back(v);
  for (const auto &output : plan->outputs)
    k.optionalOutputs.push_back(output.optional);
  return k;
}

Function *createExported(llvm::Module &m, TargetMachine &tm, const std::string &name,
                         FunctionType *type) {
  Function *f = Function::Create(type, GlobalValue::ExternalLinkage, name, m);
  codegen::addTargetAttributes(*f, tm, /*requestedBits=*/0);
  f->addFnAttr(Attribute::NoUnwind);
  f->addFnAttr("no-builtins");
  return f;
}

void emitLoop(IRBuilder<> &b, Value *begin, Value *end, const Twine &name,
              function_ref<void(Value *)> body) {
  Function *f = b.GetInsertBlock()->getParent();
  LLVMContext &ctx = b.getContext();
  BasicBlock *pre = b.GetInsertBlock();
  BasicBlock *loop = BasicBlock::Create(ctx, name + ".body", f);
  BasicBlock *done = BasicBlock::Create(ctx, name + ".done", f);
  b.CreateCondBr(b.CreateICmpSLT(begin, end), loop, done);
  b.SetInsertPoint(loop);
  PHINode *i = b.CreatePHI(b.getInt64Ty(), 2, name + ".i");
  i->addIncoming(begin, pre);
  body(i);
  Value *next = b.CreateAdd(i, b.getInt64(1), "", /*HasNUW=*/true, /*HasNSW=*/true);
  i->addIncoming(next, b.GetInsertBlock());
  b.CreateCondBr(b.CreateICmpSLT(next, end), loop, done);
  b.SetInsertPoint(done);
}

// OR-reduces f(element i) over [0, count) into an i32, without early exit.
static Value *anyOver(IRBuilder<> &b, Value *count, const Twine &name,
                      function_ref<Value *(Value *)> bad) {
  Function *f = b.GetInsertBlock()->getParent();
  BasicBlock *pre = b.GetInsertBlock();
  BasicBlock *loop = BasicBlock::Create(b.getContext(), name + ".loop", f);
  BasicBlock *done = BasicBlock::Create(b.getContext(), name + ".done", f);
  b.CreateCondBr(b.CreateICmpSGT(count, b.getInt64(0)), loop, done);
  b.SetInsertPoint(loop);
  PHINode *i = b.CreatePHI(b.getInt64Ty(), 2);
  PHINode *acc = b.CreatePHI(b.getInt32Ty(), 2);
  i->addIncoming(b.getInt64(0), pre);
  acc->addIncoming(b.getInt32(0), pre);
  Value *next = b.CreateAdd(i, b.getInt64(1), "", true, true);
  Value *nextAcc = b.CreateOr(acc, b.CreateZExt(bad(i), b.getInt32Ty()));
  i->addIncoming(next, loop);
  acc->addIncoming(nextAcc, loop);
  b.CreateCondBr(b.CreateICmpSLT(next, count), loop, done);
  b.SetInsertPoint(done);
  PHINode *result = b.CreatePHI(b.getInt32Ty(), 2);
  result->addIncoming(b.getInt32(0), pre);
  result->addIncoming(nextAcc, loop);
  return b.CreateICmpNE(result, b.getInt32(0));
}

Value *allIndicesBelow(IRBuilder<> &b, Value *ptr, Value *count, int64_t bound) {
  Value *any = anyOver(b, count, "check", [&](Value *i) {
    Value *index = b.CreateLoad(b.getInt32Ty(), b.CreateInBoundsGEP(b.getInt32Ty(), ptr, i));
    return b.CreateICmpUGE(index, b.getInt32(static_cast<uint32_t>(bound)));
  });
  return b.CreateNot(any);
}

void copyFloats(IRBuilder<> &b, Value *from, Value *to, Value *count) {
  Type *f32 = b.getFloatTy();
  emitLoop(b, b.getInt64(0), count, "copy", [&](Value *i) {
    b.CreateStore(b.CreateLoad(f32, b.CreateInBoundsGEP(f32, from, i)),
                  b.CreateInBoundsGEP(f32, to, i));
  });
}

Value *stackBuffer(IRBuilder<> &b, Type *elem, int64_t count, const Twine &name) {
  BasicBlock &entry = b.GetInsertBlock()->getParent()->getEntryBlock();
  IRBuilder<> eb(&entry, entry.getFirstInsertionPt());
  AllocaInst *a = eb.CreateAlloca(ArrayType::get(elem, std::max<int64_t>(count, 1)), nullptr, name);
  a->setAlignment(Align(codegen::kBufferAlign));
  return a;
}

namespace {

class StepBuilder {
public:
  StepBuilder(const TrainingModel &model, const TrainingLayout &layout, llvm::Module &m,
              TargetMachine &tm)
      : model_(model), layout_(layout), m_(m), tm_(tm), b_(m.getContext()) {}

  Error build();

private:
  void emitStateBytes();
  void emitSetLr();
  void emitStep();
  Error emitTrainStep();
  Value *scheduledLr(Value *step);
  void storeStepScalars(Value *state, Value *step, Value *lr);
  void callTrainKernel(const Kernel &k, Value *state, Value *X, Value *Y, Value *lr, Value *loss);
  void emitParamName();
  void emitParamShape();
  void emitParam();
  Constant *nameString(const std::string &name);
  Value *tensorPtr(Value *state, const StateTensor &t) { return byteOffset(b_, state, t.offset); }

  const TrainingModel &model_;
  const TrainingLayout &layout_;
  llvm::Module &m_;
  TargetMachine &tm_;
  IRBuilder<> b_;
  std::map<std::string, Constant *> names_;
};

Error StepBuilder::build() {
  emitStateBytes();
  emitSetLr();
  emitStep();
  emitParamName();
  emitParamShape();
  emitParam();
  return emitTrainStep();
}

void StepBuilder::emitStateBytes() {
  Function *f = createExported(m_, tm_, model_.name + "_state_bytes",
                               FunctionType::get(b_.getInt64Ty(), false));
  b_.SetInsertPoint(BasicBlock::Create(m_.getContext(), "entry", f));
  b_.CreateRet(b_.getInt64(layout_.stateBytes));
}

void StepBuilder::emitSetLr() {
  Function *f =
      createExported(m_, tm_, model_.name + "_set_lr",
                     FunctionType::get(b_.getVoidTy(), {b_.getPtrTy(), b_.getFloatTy()}, false));
  b_.SetInsertPoint(BasicBlock::Create(m_.getContext(), "entry", f));
  Value *lr = f->getArg(1);
  // Negative (and NaN): back to the schedule, stored as -1.
  Value *keep = b_.CreateFCmpOGE(lr, ConstantFP::get(b_.getFloatTy(), 0.0));
  Value *stored = b_.CreateSelect(keep, lr, ConstantFP::get(b_.getFloatTy(), -1.0));
  b_.CreateStore(stored, byteOffset(b_, f->getArg(0), kLrOverrideOffset));
  b_.CreateRetVoid();
}

void StepBuilder::emitStep() {
  Function *f = createExported(m_, tm_, model_.name + "_step",
                               FunctionType::get(b_.getInt64Ty(), {b_.getPtrTy()}, false));
  b_.SetInsertPoint(BasicBlock::Create(m_.getContext(), "entry", f));
  b_.CreateRet(b_.CreateLoad(b_.getInt64Ty(), byteOffset(b_, f->getArg(0), kStepOffset)));
}

// The learning rate of TrainConfig::learningRate(step), as float: computed
// in double in the same order, then rounded, so it is the JIT's rate bit for bit.
Value *StepBuilder::scheduledLr(Value *step) {
  Type *f64 = b_.getDoubleTy();
  auto lrConst = [&](double lr) { return ConstantFP::get(f64, lr); };
  Value *lr = lrConst(model_.schedule.empty() ? 0.1 : model_.schedule.front().lr);
  for (const LearningRatePhase &p : model_.schedule)
    lr = b_.CreateSelect(b_.CreateICmpSGE(step, b_.getInt64(p.fromStep)), lrConst(p.lr), lr);
  if (model_.warmup > 0) { // lr * (t + 1) / W for t < W
    Value *ramped =
        b_.CreateFDiv(b_.CreateFMul(lr, b_.CreateSIToFP(b_.CreateAdd(step, b_.getInt64(1)), f64)),
                      lrConst(static_cast<double>(model_.warmup)));
    lr = b_.CreateSelect(b_.CreateICmpSLT(step, b_.getInt64(model_.warmup)), ramped, lr);
  }
  return b_.CreateFPTrunc(lr, b_.getFloatTy());
}

// The optimizer pass's scalar leaves (passes/Optimizer.h): the step's
// learning rate and its 1-based number t, stored into the state before the
// kernel runs, as ModelRuntime does before each JIT step.
void StepBuilder::storeStepScalars(Value *state, Value *step, Value *lr) {
  const Graph &g = *model_.train;
  for (const StateTensor &t : layout_.tensors) {
    std::optional<ValueId> leaf = g.findLeaf(Op::State, t.name);
    if (!leaf)
      continue;
    if (g[*leaf].stateRole == StateRole::LearningRate)
      b_.CreateStore(lr, byteOffset(b_, state, t.offset));
    else if (g[*leaf].stateRole == StateRole::StepCount)
      b_.CreateStore(b_.CreateSIToFP(b_.CreateAdd(step, b_.getInt64(1)), b_.getFloatTy()),
                     byteOffset(b_, state, t.offset));
  }
}

void StepBuilder::callTrainKernel(const Kernel &k, Value *state, Value *X, Value *Y, Value *lr,
                                  Value *loss) {
  const Graph &g = *model_.train;
  std::map<std::string, int64_t> offsets;
  for (const StateTensor &t : layout_.tensors)
    offsets[t.name] = t.offset;
  std::vector<Value *> args;
  for (ValueId v : k.leaves)
    args.push_back(g[v].op == Op::Input ? (g[v].isTarget ? Y : X)
                                        : byteOffset(b_, state, offsets.at(g[v].name)));
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    if (g.outputs[i].role == OutputRole::Loss)
      args.push_back(loss);
    else if (k.optionalOutputs[i])
      args.push_back(ConstantPointerNull::get(b_.getPtrTy()));
    else // an output the API does not return: a scratch buffer
      args.push_back(stackBuffer(b_, b_.getFloatTy(), g[g.outputs[i].value].type.numel(),
                                 "out." + g.outputs[i].name));
  }
  args.push_back(lr);
  args.push_back(byteOffset(b_, state, layout_.workspaceOffset));
  b_.CreateCall(k.body, args);
}

Error StepBuilder::emitTrainStep() {
  auto kernel = lowerKernel(*model_.train, model_.name + "_train_kernel", m_, tm_, true);
  if (!kernel)
    return kernel.takeError();
  Type *ptr = b_.getPtrTy(), *f32 = b_.getFloatTy(), *i64 = b_.getInt64Ty();
  Function *f = createExported(m_, tm_, model_.name + "_train_step",
                               FunctionType::get(f32, {ptr, ptr, ptr}, false));
  for (unsigned i = 0; i < 3; ++i)
    f->addParamAttr(i, Attribute::NoCapture);
  Value *state = f->getArg(0), *X = f->getArg(1), *Y = f->getArg(2);
  LLVMContext &ctx = m_.getContext();
  BasicBlock *entry = BasicBlock::Create(ctx, "entry", f);
  BasicBlock *check = BasicBlock::Create(ctx, "check", f);
  BasicBlock *run = BasicBlock::Create(ctx, "run", f);
  BasicBlock *undo = BasicBlock::Create(ctx, "undo", f);
  BasicBlock *commit = BasicBlock::Create(ctx, "commit", f);
  BasicBlock *reject = BasicBlock::Create(ctx, "reject", f);
  Value *nan = ConstantFP::getNaN(f32);
  b_.SetInsertPoint(entry);
  Value *loss = stackBuffer(b_, f32, 1, "loss");
  Value *null =
      b_.CreateOr(b_.CreateIsNull(state), b_.CreateOr(b_.CreateIsNull(X), b_.CreateIsNull(Y)));
  b_.CreateCondBr(null, reject, check);

  b_.SetInsertPoint(check);
  Value *ok = b_.CreateAnd(
      allIndicesBelow(b_, X, b_.getInt64(layout_.batch * layout_.context), layout_.vocab),
      allIndicesBelow(b_, Y, b_.getInt64(layout_.batch), layout_.vocab));
  b_.CreateCondBr(ok, run, reject);

  b_.SetInsertPoint(run);
  Value *step = b_.CreateLoad(i64, byteOffset(b_, state, kStepOffset), "step");
  Value *override = b_.CreateLoad(f32, byteOffset(b_, state, kLrOverrideOffset), "lr.override");
  Value *lr = b_.CreateSelect(b_.CreateFCmpOGE(override, ConstantFP::get(f32, 0.0)), override,
                              scheduledLr(step), "lr");
  Value *tensors = byteOffset(b_, state, layout_.tensorsOffset);
  Value *snapshot = byteOffset(b_, state, layout_.snapshotOffset);
  Value *floats = b_.getInt64((layout_.tensorsBytes + layout_.optimizerBytes) / 4);
  copyFloats(b_, tensors, snapshot, floats);
  storeStepScalars(state, step, lr);
  callTrainKernel(*kernel, state, X, Y, lr, loss);
  // Non-finite: all exponent bits set. The gaps between tensors are zero.
  Value *lossValue = b_.CreateLoad(f32, loss, "loss.value");
  Value *bad = anyOver(b_, floats, "finite", [&](Value *i) {
    Value *bits = b_.CreateLoad(b_.getInt32Ty(), b_.CreateInBoundsGEP(f32, tensors, i));
    Value *exponent = b_.CreateAnd(bits, b_.getInt32(0x7f800000));
    return b_.CreateICmpEQ(exponent, b_.getInt32(0x7f800000));
  });
  Value *lossBits = b_.CreateBitCast(lossValue, b_.getInt32Ty());
  bad = b_.CreateOr(bad, b_.CreateICmpEQ(b_.CreateAnd(lossBits, b_.getInt32(0x7f800000)),
                                         b_.getInt32(0x7f800000)));
  b_.CreateCondBr(bad, undo, commit);

  b_.SetInsertPoint(undo);
  copyFloats(b_, snapshot, tensors, floats);
  b_.CreateRet(nan);

  b_.SetInsertPoint(commit);
  b_.CreateStore(b_.CreateAdd(step, b_.getInt64(1)), byteOffset(b_, state, kStepOffset));
  b_.CreateRet(lossValue);

  b_.SetInsertPoint(reject);
  b_.CreateRet(nan);
  return Error::success();
}

Constant *StepBuilder::nameString(const std::string &name) {
  auto it = names_.find(name);
  if (it != names_.end())
    return it->second;
  auto *init = ConstantDataArray::getString(m_.getContext(), name, /*AddNull=*/true);
  auto *gv = new GlobalVariable(m_, init->getType(), true, GlobalValue::PrivateLinkage, init,
                                model_.name + ".name." + name);
  gv->setUnnamedAddr(GlobalValue::UnnamedAddr::Global);
  return names_[name] = gv;
}

// A switch on i over the tensors: `perTensor` fills case k, `otherwise` the default.
static void switchOnIndex(IRBuilder<> &b, Value *i, size_t cases,
                          function_ref<void(size_t)> perTensor, function_ref<void()> otherwise) {
  Function *f = b.GetInsertBlock()->getParent();
  BasicBlock *dflt = BasicBlock::Create(b.getContext(), "unknown", f);
  SwitchInst *sw = b.CreateSwitch(i, dflt, static_cast<unsigned>(cases));
  for (size_t k = 0; k < cases; ++k) {
    BasicBlock *bb = BasicBlock::Create(b.getContext(), "tensor", f);
    sw->addCase(b.getInt64(k), bb);
    b.SetInsertPoint(bb);
    perTensor(k);
  }
  b.SetInsertPoint(dflt);
  otherwise();
}

void StepBuilder::emitParamName() {
  Function *f = createExported(m_, tm_, model_.name + "_param_name",
                               FunctionType::get(b_.getPtrTy(), {b_.getInt64Ty()}, false));
  b_.SetInsertPoint(BasicBlock::Create(m_.getContext(), "entry", f));
  switchOnIndex(
      b_, f->getArg(0), layout_.tensors.size(),
      [&](size_t k) { b_.CreateRet(nameString(layout_.tensors[k].name)); },
      [&] { b_.CreateRet(ConstantPointerNull::get(b_.getPtrTy())); });
}

void StepBuilder::emitParamShape() {
  Function *f =
      createExported(m_, tm_, model_.name + "_param_shape",
                     FunctionType::get(b_.getInt32Ty(), {b_.getInt64Ty(), b_.getPtrTy()}, false));
  b_.SetInsertPoint(BasicBlock::Create(m_.getContext(), "entry", f));
  Value *dims = f->getArg(1);
  switchOnIndex(
      b_, f->getArg(0), layout_.tensors.size(),
      [&](size_t k) {
        const Shape &s = layout_.tensors[k].shape;
        Function *fn = b_.GetInsertBlock()->getParent();
        BasicBlock *write = BasicBlock::Create(m_.getContext(), "write", fn);
        BasicBlock *done = BasicBlock::Create(m_.getContext(), "done", fn);
        b_.CreateCondBr(b_.CreateIsNull(dims), done, write);
        b_.SetInsertPoint(write);
        for (size_t d = 0; d < s.size(); ++d)
          b_.CreateStore(b_.getInt64(s[d]),
                         b_.CreateConstInBoundsGEP1_64(b_.getInt64Ty(), dims, d));
        b_.CreateBr(done);
        b_.SetInsertPoint(done);
        b_.CreateRet(b_.getInt32(static_cast<uint32_t>(s.size())));
      },
      [&] { b_.CreateRet(b_.getInt32(static_cast<uint32_t>(-1))); });
}

// Compares the C string `name` with each tensor's name, byte by byte.
void StepBuilder::emitParam() {
  Type *ptr = b_.getPtrTy(), *i8 = b_.getInt8Ty();
  Function *f = createExported(m_, tm_, model_.name + "_param",
                               FunctionType::get(ptr, {ptr, ptr, ptr}, false));
  LLVMContext &ctx = m_.getContext();
  Value *state = f->getArg(0), *name = f->getArg(1), *numel = f->getArg(2);
  b_.SetInsertPoint(BasicBlock::Create(ctx, "entry", f));
  BasicBlock *none = BasicBlock::Create(ctx, "none", f);
  BasicBlock *next = BasicBlock::Create(ctx, "search", f);
  b_.CreateCondBr(b_.CreateOr(b_.CreateIsNull(state), b_.CreateIsNull(name)), none, next);
  for (const StateTensor &t : layout_.tensors) {
    b_.SetInsertPoint(next);
    next = BasicBlock::Create(ctx, "search", f);
    BasicBlock *found = BasicBlock::Create(ctx, "found", f);
    // name[0..len] == t.name including its terminating NUL (the first
    // mismatch stops the scan, so no byte after name's NUL is read).
    for (size_t c = 0; c <= t.name.size(); ++c) {
      Value *ch = b_.CreateLoad(i8, b_.CreateConstInBoundsGEP1_64(i8, name, c));
      bool last = c == t.name.size();
      uint8_t want = last ? 0 : static_cast<uint8_t>(t.name[c]);
      BasicBlock *onEqual = last ? found : BasicBlock::Create(ctx, "char", f);
      b_.CreateCondBr(b_.CreateICmpEQ(ch, b_.getInt8(want)), onEqual, next);
      if (!last)
        b_.SetInsertPoint(onEqual);
    }
    b_.SetInsertPoint(found);
    BasicBlock *store = BasicBlock::Create(ctx, "store", f);
    BasicBlock *ret = BasicBlock::Create(ctx, "ret", f);
    b_.CreateCondBr(b_.CreateIsNull(numel), ret, store);
    b_.SetInsertPoint(store);
    b_.CreateStore(b_.getInt64(t.count), numel);
    b_.CreateBr(ret);
    b_.SetInsertPoint(ret);
    b_.CreateRet(tensorPtr(state, t));
  }
  b_.SetInsertPoint(next);
  b_.CreateBr(none);
  b_.SetInsertPoint(none);
  b_.CreateRet(ConstantPointerNull::get(b_.getPtrTy()));
}

} // namespace

Error emitTrainingEntries(const TrainingModel &model, const TrainingLayout &layout, llvm::Module &m,
                          TargetMachine &tm) {
  return StepBuilder(model, layout, m, tm).build();
}

} // namespace mlpc::training
