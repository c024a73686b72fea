// The training object's inference functions (TrainingObject.h):
//
//   int M_forward(const void *state, const int32_t *X, int64_t n, float *logits)
//     The Stage::Infer kernels (BatchNorm with the running statistics) on the
//     state's tensors: floor(n / B) blocks of B rows, then the r remaining
//     rows one at a time when r < B / 2, else as one zero-padded block (as
//     inference objects do). Temporaries on the stack: reentrant.
//   int M_calibrate(void *state, const int32_t *X, int64_t n)
//     ModelRuntime::calibrate: for each BatchNorm in graph order, one pass
//     over the n rows (blocks of B, zero-padded) that sums the layer's input
//     in double, shifted by the first row, then mean = shift + sum / n and the
//     Bessel-corrected variance (sumSq - n m^2) / (n - 1); later layers see
//     the statistics of earlier ones. n < 2 leaves the state unchanged.
// Both return -1 (changing nothing) for a NULL pointer, n < 1 or an index
// outside [0, V), else 0.
#include "codegen/TrainingEntries.h"

#include <limits>

using namespace llvm;

namespace mlpc::training {
namespace {

class InferenceBuilder {
public:
  InferenceBuilder(const TrainingModel &model, const TrainingLayout &layout, llvm::Module &m,
                   TargetMachine &tm)
      : model_(model), layout_(layout), m_(m), tm_(tm), b_(m.getContext()) {}

  Error build();

private:
  Function *entry(const std::string &suffix, bool returnsValue);
  void emitChecks(Value *state, Value *X, Value *n, Value *out, BasicBlock *reject);
  // Calls `k` (lowered from g) on rows at X; outputs named in `bound` go to
  // those pointers, every other output to a stack scratch buffer.
  void callKernel(const Kernel &k, const Graph &g, Value *state, Value *X,
                  const std::map<std::string, Value *> &bound);
  Value *rowPtr(Type *elem, Value *base, Value *row, int64_t rowElems) {
    return b_.CreateInBoundsGEP(elem, base, b_.CreateMul(row, b_.getInt64(rowElems)));
  }
  // Copies rows [first, first + count) of X into the padded block, zero after.
  void fillPadded(Value *X, Value *first, Value *count, Value *padded);
  void emitForward(const Kernel &block, const Kernel &row);
  void emitCalibrate(const Kernel &k);
  void calibrateLayer(const Kernel &k, const std::string &layer, Value *state, Value *X, Value *n);

  const TrainingModel &model_;
  const TrainingLayout &layout_;
  llvm::Module &m_;
  TargetMachine &tm_;
  IRBuilder<> b_;
  Value *workspace_ = nullptr; // the current entry function's kernel workspace
};

Function *InferenceBuilder::entry(const std::string &suffix, bool forward) {
  Type *ptr = b_.getPtrTy();
  std::vector<Type *> params{ptr, ptr, b_.getInt64Ty()};
  if (forward)
    params.push_back(ptr);
  Function *f = createExported(m_, tm_, model_.name + suffix,
                               FunctionType::get(b_.getInt32Ty(), params, false));
  for (unsigned i = 0; i < f->arg_size(); ++i)
    if (f->getArg(i)->getType()->isPointerTy())
      f->addParamAttr(i, Attribute::NoCapture);
  b_.SetInsertPoint(BasicBlock::Create(m_.getContext(), "entry", f));
  workspace_ = stackBuffer(b_, b_.getInt8Ty(), layout_.inferWorkspaceBytes, "workspace");
  return f;
}

void InferenceBuilder::emitChecks(Value *state, Value *X, Value *n, Value *out,
                                  BasicBlock *reject) {
  Function *f = b_.GetInsertBlock()->getParent();
  int64_t maxRows = std::numeric_limits<int64_t>::max() / std::max(layout_.context, layout_.vocab);
  Value *bad =
      b_.CreateOr(b_.CreateICmpSLT(n, b_.getInt64(1)), b_.CreateICmpSGT(n, b_.getInt64(maxRows)));
  bad = b_.CreateOr(bad, b_.CreateOr(b_.CreateIsNull(state), b_.CreateIsNull(X)));
  if (out)
    bad = b_.CreateOr(bad, b_.CreateIsNull(out));
  BasicBlock *indices = BasicBlock::Create(m_.getContext(), "indices", f);
  BasicBlock *run = BasicBlock::Create(m_.getContext(), "run", f);
  b_.CreateCondBr(bad, reject, indices);
  b_.SetInsertPoint(indices);
  Value *ok = allIndicesBelow(b_, X, b_.CreateMul(n, b_.getInt64(layout_.context)), layout_.vocab);
  b_.CreateCondBr(ok, run, reject);
  b_.SetInsertPoint(run);
}

void InferenceBuilder::callKernel(const Kernel &k, const Graph &g, Value *state, Value *X,
                                  const std::map<std::string, Value *> &bound) {
  std::map<std::string, int64_t> offsets;
  for (const StateTensor &t : layout_.tensors)
    offsets[t.name] = t.offset;
  std::vector<Value *> args;
  for (ValueId v : k.leaves)
    args.push_back(g[v].op == Op::Input ? X : byteOffset(b_, state, offsets.at(g[v].name)));
  for (const GraphOutput &o : g.outputs) {
    auto it = bound.find(o.name);
    args.push_back(it != bound.end() ? it->second
                                     : stackBuffer(b_, b_.getFloatTy(), g[o.value].type.numel(),
                                                   "scratch." + o.name));
  }
  args.push_back(ConstantFP::get(b_.getFloatTy(), 0.0));
  args.push_back(workspace_);
  b_.CreateCall(k.body, args);
}

void InferenceBuilder::fillPadded(Value *X, Value *first, Value *count, Value *padded) {
  Type *i32 = b_.getInt32Ty();
  Value *src = rowPtr(i32, X, first, layout_.context);
  Value *copied = b_.CreateMul(count, b_.getInt64(layout_.context));
  emitLoop(b_, b_.getInt64(0), copied, "pad.x", [&](Value *i) {
    b_.CreateStore(b_.CreateLoad(i32, b_.CreateInBoundsGEP(i32, src, i)),
                   b_.CreateInBoundsGEP(i32, padded, i));
  });
  emitLoop(b_, copied, b_.getInt64(model_.blockRows * layout_.context), "pad.zero",
           [&](Value *i) { b_.CreateStore(b_.getInt32(0), b_.CreateInBoundsGEP(i32, padded, i)); });
}

void InferenceBuilder::emitForward(const Kernel &block, const Kernel &row) {
  Function *f = entry("_forward", true);
  Value *state = f->getArg(0), *X = f->getArg(1), *n = f->getArg(2), *logits = f->getArg(3);
  LLVMContext &ctx = m_.getContext();
  BasicBlock *reject = BasicBlock::Create(ctx, "reject", f);
  Type *i32 = b_.getInt32Ty(), *f32 = b_.getFloatTy();
  const int64_t B = model_.blockRows, T = layout_.context, V = layout_.vocab;
  Value *paddedX = stackBuffer(b_, i32, B * T, "padded.X");
  Value *paddedLogits = stackBuffer(b_, f32, B * V, "padded.logits");
  emitChecks(state, X, n, logits, reject);

  Value *blocks = b_.CreateSDiv(n, b_.getInt64(B), "blocks");
  emitLoop(b_, b_.getInt64(0), blocks, "block", [&](Value *i) {
    Value *first = b_.CreateMul(i, b_.getInt64(B));
    callKernel(block, *model_.block, state, rowPtr(i32, X, first, T),
               {{"logits", rowPtr(f32, logits, first, V)}});
  });
  Value *first = b_.CreateMul(blocks, b_.getInt64(B), "tail.first");
  Value *tail = b_.CreateSub(n, first, "tail.rows");
  BasicBlock *padded = BasicBlock::Create(ctx, "tail.padded", f);
  BasicBlock *single = BasicBlock::Create(ctx, "tail.single", f);
  BasicBlock *done = BasicBlock::Create(ctx, "done", f);
  b_.CreateCondBr(b_.CreateICmpSGE(tail, b_.getInt64((B + 1) / 2)), padded, single);
  b_.SetInsertPoint(padded);
  fillPadded(X, first, tail, paddedX);
  callKernel(block, *model_.block, state, paddedX, {{"logits", paddedLogits}});
  Value *dst = rowPtr(f32, logits, first, V);
  copyFloats(b_, paddedLogits, dst, b_.CreateMul(tail, b_.getInt64(V)));
  b_.CreateBr(done);
  b_.SetInsertPoint(single);
  emitLoop(b_, first, n, "tail", [&](Value *r) {
    callKernel(row, *model_.row, state, rowPtr(i32, X, r, T),
               {{"logits", rowPtr(f32, logits, r, V)}});
  });
  b_.CreateBr(done);
  b_.SetInsertPoint(done);
  b_.CreateRet(b_.getInt32(0));
  b_.SetInsertPoint(reject);
  b_.CreateRet(b_.getInt32(-1));
}

// One layer: the shifted double sums over all n rows, then the statistics.
void InferenceBuilder::calibrateLayer(const Kernel &k, const std::string &layer, Value *state,
                                      Value *X, Value *n) {
  const Graph &g = *model_.calibrate;
  const std::string output = "bn_input." + layer;
  const int64_t B = model_.blockRows, T = layout_.context;
  const int64_t h = g[*g.output(output)].type.shape[1];
  Type *f64 = b_.getDoubleTy(), *f32 = b_.getFloatTy(), *i32 = b_.getInt32Ty();
  Value *sum = stackBuffer(b_, f64, h, "sum." + layer);
  Value *sumSq = stackBuffer(b_, f64, h, "sumsq." + layer);
  Value *shift = stackBuffer(b_, f64, h, "shift." + layer);
  Value *input = stackBuffer(b_, f32, B * h, "input." + layer);
  Value *paddedX = stackBuffer(b_, i32, B * T, "padded.X");
  Value *zero = ConstantFP::get(f64, 0.0);
  emitLoop(b_, b_.getInt64(0), b_.getInt64(h), "zero", [&](Value *j) {
    b_.CreateStore(zero, b_.CreateInBoundsGEP(f64, sum, j));
    b_.CreateStore(zero, b_.CreateInBoundsGEP(f64, sumSq, j));
  });
  Value *blocks = b_.CreateSDiv(b_.CreateAdd(n, b_.getInt64(B - 1)), b_.getInt64(B));
  emitLoop(b_, b_.getInt64(0), blocks, "cal", [&](Value *blk) {
    Value *first = b_.CreateMul(blk, b_.getInt64(B));
    Value *rows = b_.CreateSub(n, first);
    rows = b_.CreateSelect(b_.CreateICmpSLT(rows, b_.getInt64(B)), rows, b_.getInt64(B));
    fillPadded(X, first, rows, paddedX);
    callKernel(k, g, state, paddedX, {{output, input}});
    Function *f = b_.GetInsertBlock()->getParent();
    BasicBlock *setShift = BasicBlock::Create(m_.getContext(), "shift", f);
    BasicBlock *accumulate = BasicBlock::Create(m_.getContext(), "accumulate", f);
    b_.CreateCondBr(b_.CreateICmpEQ(blk, b_.getInt64(0)), setShift, accumulate);
    b_.SetInsertPoint(setShift);
    emitLoop(b_, b_.getInt64(0), b_.getInt64(h), "shift", [&](Value *j) {
      Value *x = b_.CreateLoad(f32, b_.CreateInBoundsGEP(f32, input, j));
      b_.CreateStore(b_.CreateFPExt(x, f64), b_.CreateInBoundsGEP(f64, shift, j));
    });
    b_.CreateBr(accumulate);
    b_.SetInsertPoint(accumulate);
    emitLoop(b_, b_.getInt64(0), rows, "row", [&](Value *i) {
      emitLoop(b_, b_.getInt64(0), b_.getInt64(h), "col", [&](Value *j) {
        Value *at = b_.CreateAdd(b_.CreateMul(i, b_.getInt64(h)), j);
        Value *x = b_.CreateFPExt(b_.CreateLoad(f32, b_.CreateInBoundsGEP(f32, input, at)), f64);
        Value *d = b_.CreateFSub(x, b_.CreateLoad(f64, b_.CreateInBoundsGEP(f64, shift, j)));
        Value *s = b_.CreateInBoundsGEP(f64, sum, j), *q = b_.CreateInBoundsGEP(f64, sumSq, j);
        b_.CreateStore(b_.CreateFAdd(b_.CreateLoad(f64, s), d), s);
        b_.CreateStore(b_.CreateFAdd(b_.CreateLoad(f64, q), b_.CreateFMul(d, d)), q);
      });
    });
  });
  int64_t meanOffset = -1, varOffset = -1;
  for (const StateTensor &t : layout_.tensors) {
    if (t.name == layer + ".running_mean")
      meanOffset = t.offset;
    if (t.name == layer + ".running_var")
      varOffset = t.offset;
  }
  Value *mean = byteOffset(b_, state, meanOffset), *var = byteOffset(b_, state, varOffset);
  Value *count = b_.CreateSIToFP(n, f64);
  Value *countMinus1 = b_.CreateSIToFP(b_.CreateSub(n, b_.getInt64(1)), f64);
  emitLoop(b_, b_.getInt64(0), b_.getInt64(h), "stats", [&](Value *j) {
    Value *m = b_.CreateFDiv(b_.CreateLoad(f64, b_.CreateInBoundsGEP(f64, sum, j)), count);
    Value *sh = b_.CreateLoad(f64, b_.CreateInBoundsGEP(f64, shift, j));
    b_.CreateStore(b_.CreateFPTrunc(b_.CreateFAdd(sh, m), f32), b_.CreateInBoundsGEP(f32, mean, j));
    Value *sq = b_.CreateLoad(f64, b_.CreateInBoundsGEP(f64, sumSq, j));
    Value *v =
        b_.CreateFDiv(b_.CreateFSub(sq, b_.CreateFMul(b_.CreateFMul(count, m), m)), countMinus1);
    b_.CreateStore(b_.CreateFPTrunc(v, f32), b_.CreateInBoundsGEP(f32, var, j));
  });
}

void InferenceBuilder::emitCalibrate(const Kernel &k) {
  Function *f = entry("_calibrate", false);
  Value *state = f->getArg(0), *X = f->getArg(1), *n = f->getArg(2);
  LLVMContext &ctx = m_.getContext();
  BasicBlock *reject = BasicBlock::Create(ctx, "reject", f);
  BasicBlock *skip = BasicBlock::Create(ctx, "skip", f);
  BasicBlock *run = BasicBlock::Create(ctx, "layers", f);
  emitChecks(state, X, n, nullptr, reject);
  b_.CreateCondBr(b_.CreateICmpSLT(n, b_.getInt64(2)), skip, run);
  b_.SetInsertPoint(run);
  for (const std::string &layer : model_.bnLayers)
    calibrateLayer(k, layer, state, X, n);
  b_.CreateRet(b_.getInt32(0));
  b_.SetInsertPoint(skip);
  b_.CreateRet(b_.getInt32(0));
  b_.SetInsertPoint(reject);
  b_.CreateRet(b_.getInt32(-1));
}

Error InferenceBuilder::build() {
  auto block = lowerKernel(*model_.block, model_.name + "_block_kernel", m_, tm_, false);
  if (!block)
    return block.takeError();
  auto row = lowerKernel(*model_.row, model_.name + "_row_kernel", m_, tm_, false);
  if (!row)
    return row.takeError();
  auto cal = lowerKernel(*model_.calibrate, model_.name + "_calibrate_kernel", m_, tm_, false);
  if (!cal)
    return cal.takeError();
  emitForward(*block, *row);
  emitCalibrate(*cal);
  return Error::success();
}

} // namespace

Error emitInferenceEntries(const TrainingModel &model, const TrainingLayout &layout,
                           llvm::Module &m, TargetMachine &tm) {
  return InferenceBuilder(model, layout, m, tm).build();
}

} // namespace mlpc::training
