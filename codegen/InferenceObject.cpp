// The ahead-of-time inference module: see InferenceObject.h for the contract.
#include "codegen/InferenceObject.h"
#include "codegen/VectorShape.h"

#include "codegen/Lowering.h"
#include "codegen/Target.h"
#include "ir/ShapeRules.h"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Module.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>

#include <fmt/format.h>

#include <cstring>
#include <limits>

using namespace llvm;

namespace mlpc {
namespace {

Error fail(std::string message) {
  return createStringError(inconvertibleErrorCode(), message);
}

// The facts of one graph that the C API depends on.
struct GraphInterface {
  ValueId input = 0;
  ValueId logits = 0;
  int64_t context = 0, vocab = 0;
  std::vector<ValueId> params; // in graph order
};

Expected<GraphInterface> graphInterface(const Graph &g, int64_t rows,
                                        const std::map<std::string, std::vector<float>> &weights) {
  std::vector<std::string> problems = verifyGraph(g);
  if (!problems.empty())
    return fail("invalid inference graph: " + problems.front());
  GraphInterface gi;
  std::vector<ValueId> inputs = g.leaves(Op::Input);
  if (inputs.size() != 1)
    return fail(fmt::format("the inference graph must read exactly one input (the contexts), "
                            "not {}",
                            inputs.size()));
  gi.input = inputs[0];
  const TensorType &x = g[gi.input].type;
  if (x.dtype != DType::I32 || x.rank() != 2 || x.shape[0] != rows || x.shape[1] < 1)
    return fail(fmt::format("input '{}' must be i32[{}, T]", g[gi.input].name, rows));
  gi.context = x.shape[1];
  if (g.outputs.size() != 1 || g.outputs[0].role != OutputRole::Logits)
    return fail("the inference graph must have exactly one output, the logits");
  gi.logits = g.outputs[0].value;
  const TensorType &l = g[gi.logits].type;
  if (l.dtype != DType::F32 || l.rank() != 2 || l.shape[0] != rows || l.shape[1] < 1)
    return fail(fmt::format("output 'logits' must be f32[{}, V]", rows));
  gi.vocab = l.shape[1];
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node &n = g[v];
    if (n.op == Op::BatchNorm || n.op == Op::BatchNormInfer || n.op == Op::BatchNormXhat)
      return fail(fmt::format("batchnorm '{}' was not folded into a Linear layer (see "
                              "'mlpc emit --emit=infer --verbose' for why); the inference "
                              "object supports only folded batchnorms",
                              n.name.empty() ? "%" + std::to_string(v) : n.name));
  }
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node &n = g[v];
    if (n.op == Op::State)
      return fail(fmt::format("state '{}' is still read after folding", n.name));
    if (n.op == Op::Param) {
      auto it = weights.find(n.name);
      if (it == weights.end() || static_cast<int64_t>(it->second.size()) != n.type.numel())
        return fail(fmt::format("no weights of the right size for parameter '{}'", n.name));
      gi.params.push_back(v);
    }
  }
  // X (or a reshape of it) may only select rows of V-row tables: that is what
  // makes checking every index against V enough to keep the kernels in bounds.
  std::vector<bool> isIndex(g.size(), false);
  isIndex[gi.input] = true;
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node &n = g[v];
    for (size_t i = 0; i < n.operands.size(); ++i) {
      if (!isIndex[n.operands[i]])
        continue;
      if (n.op == Op::Reshape) {
        isIndex[v] = true;
      } else if (n.op != Op::Gather || i != 1) {
        return fail("the input may only select embedding rows (gather)");
      } else if (g[n.operands[0]].type.shape[0] != gi.vocab) {
        return fail(fmt::format("'{}' gathers X from {} rows, but the indices are checked against "
                                "the vocabulary size {}",
                                n.name, g[n.operands[0]].type.shape[0], gi.vocab));
      }
    }
  }
  return gi;
}

// A tail of at least this many rows runs as one zero-padded block instead of
// row by row. Measured on makemore (bench/run_aot.sh): a 32-row block costs
// about 14.5 single-row calls (5.8 us vs 0.40 us: the 1-row kernel is a chain
// of dependent FMAs, the block kernel keeps the FMA units busy), so from half
// a block on, padding is about as fast or faster (up to 2x at 31 rows).
int64_t padMinRows(int64_t blockRows) {
  return (blockRows + 1) / 2;
}

// One lowered kernel inside the shared module: its body function and the
// order of its pointer arguments (binding leaves in graph order, then the output).
struct Kernel {
  Function *body = nullptr;
  std::vector<ValueId> leaves;
};

Expected<Kernel> lowerKernel(const Graph &g, const std::string &name, Module &m, TargetMachine &tm,
                             unsigned vectorBits) {
  Expected<codegen::BufferPlan> plan = codegen::planBuffers(g, /*sgdUpdate=*/false);
  if (!plan)
    return plan.takeError();
  codegen::GraphLowering(g, *plan, m, tm, vectorBits).emit(name);
  // Only the body is used: the wrapper's bindings-array ABI is the JIT's.
  m.getFunction(name)->eraseFromParent();
  Kernel k;
  k.body = m.getFunction(name + ".body");
  for (ValueId v = 0; v < g.size(); ++v)
    if (codegen::isBindingLeaf(g[v].op))
      k.leaves.push_back(v);
  return k;
}

// Emits `for (i = begin; i < end; ++i) body(i)` at the builder's position;
// `end > begin` need not hold. Leaves the builder after the loop.
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

class EntryBuilder {
public:
  EntryBuilder(const InferenceModel &model, const InferenceInterface &iface, unsigned vectorBits,
               Module &m, TargetMachine &tm)
      : model_(model), iface_(iface), m_(m), vectorBits_(vectorBits), tm_(tm), b_(m.getContext()) {}

  Error build();

private:
  void createWeights();
  Value *weightPtr(const std::string &name);
  void callKernel(const Kernel &k, const Graph &g, Value *x, Value *logits);
  Value *rowPtr(Type *elem, Value *base, Value *row, int64_t rowElems) {
    return b_.CreateInBoundsGEP(elem, base, b_.CreateMul(row, b_.getInt64(rowElems)));
  }
  void emitPaddedTail(const Kernel &block, Value *first, Value *tail);
  Function *createEntry();
  void createBuffers();
  void emitChecks(BasicBlock *reject, BasicBlock *run);
  void emitRows(const Kernel &block, const Kernel &row);

  const InferenceModel &model_;
  const InferenceInterface &iface_;
  Module &m_;
  unsigned vectorBits_; // CompileOptions::vectorBits of the kernels
  TargetMachine &tm_;
  IRBuilder<> b_;
  std::map<std::string, GlobalVariable *> globals_; // embedded weights
  std::map<std::string, int64_t> offsets_;          // external weights
  Value *weightsArg_ = nullptr, *x_ = nullptr, *n_ = nullptr, *logits_ = nullptr,
        *workspace_ = nullptr, *paddedX_ = nullptr, *paddedLogits_ = nullptr;
};

// Rows [first, first + tail) through the block kernel: copied into a zero-
// padded block of contexts (index 0 is always valid), logits copied back.
void EntryBuilder::emitPaddedTail(const Kernel &block, Value *first, Value *tail) {
  Type *i32 = b_.getInt32Ty(), *f32 = b_.getFloatTy();
  Value *src = rowPtr(i32, x_, first, iface_.context);
  Value *copied = b_.CreateMul(tail, b_.getInt64(iface_.context));
  emitLoop(b_, b_.getInt64(0), copied, "pad.x", [&](Value *i) {
    b_.CreateStore(b_.CreateLoad(i32, b_.CreateInBoundsGEP(i32, src, i)),
                   b_.CreateInBoundsGEP(i32, paddedX_, i));
  });
  emitLoop(b_, copied, b_.getInt64(model_.blockRows * iface_.context), "pad.zero", [&](Value *i) {
    b_.CreateStore(b_.getInt32(0), b_.CreateInBoundsGEP(i32, paddedX_, i));
  });
  callKernel(block, *model_.block, paddedX_, paddedLogits_);
  Value *dst = rowPtr(f32, logits_, first, iface_.vocabSize);
  emitLoop(b_, b_.getInt64(0), b_.CreateMul(tail, b_.getInt64(iface_.vocabSize)), "pad.out",
           [&](Value *i) {
             b_.CreateStore(b_.CreateLoad(f32, b_.CreateInBoundsGEP(f32, paddedLogits_, i)),
                            b_.CreateInBoundsGEP(f32, dst, i));
           });
}

void EntryBuilder::createWeights() {
  for (const WeightEntry &e : iface_.layout.entries) {
    offsets_[e.name] = e.offset;
    if (model_.externalWeights)
      continue;
    const std::vector<float> &values = model_.weights->at(e.name);
    auto *init = ConstantDataArray::get(m_.getContext(), ArrayRef<float>(values));
    auto *gv = new GlobalVariable(m_, init->getType(), /*isConstant=*/true,
                                  GlobalValue::PrivateLinkage, init, model_.name + ".w." + e.name);
    gv->setAlignment(Align(64));
    gv->setUnnamedAddr(GlobalValue::UnnamedAddr::Global);
    globals_[e.name] = gv;
  }
}

Value *EntryBuilder::weightPtr(const std::string &name) {
  if (!model_.externalWeights)
    return globals_.at(name);
  return b_.CreateConstInBoundsGEP1_64(b_.getFloatTy(), weightsArg_, offsets_.at(name));
}

// body(x, weights..., logits, lr = 0, workspace)
void EntryBuilder::callKernel(const Kernel &k, const Graph &g, Value *x, Value *logits) {
  std::vector<Value *> args;
  for (ValueId v : k.leaves)
    args.push_back(g[v].op == Op::Input ? x : weightPtr(g[v].name));
  args.push_back(logits);
  args.push_back(ConstantFP::get(b_.getFloatTy(), 0.0));
  args.push_back(workspace_);
  b_.CreateCall(k.body, args);
}

// The exported function, its arguments named and stored in the members.
Function *EntryBuilder::createEntry() {
  Type *ptrTy = b_.getPtrTy();
  std::vector<Type *> params;
  if (model_.externalWeights)
    params.push_back(ptrTy);
  params.insert(params.end(), {ptrTy, b_.getInt64Ty(), ptrTy});
  Function *f = Function::Create(FunctionType::get(b_.getInt32Ty(), params, false),
                                 GlobalValue::ExternalLinkage, iface_.entryName, m_);
  codegen::addTargetAttributes(*f, tm_, /*requestedBits=*/0);
  f->addFnAttr(Attribute::NoUnwind);
  // The copy loops stay loops: no memcpy/memset calls, so the object links
  // without any library.
  f->addFnAttr("no-builtins");
  unsigned a = 0;
  if (model_.externalWeights)
    weightsArg_ = f->getArg(a++);
  x_ = f->getArg(a++);
  n_ = f->getArg(a++);
  logits_ = f->getArg(a++);
  if (weightsArg_)
    weightsArg_->setName("weights");
  x_->setName("X");
  n_->setName("n");
  logits_->setName("logits");
  for (unsigned i = 0; i < f->arg_size(); ++i)
    if (f->getArg(i)->getType()->isPointerTy())
      f->addParamAttr(i, Attribute::NoCapture);
  return f;
}

// Stack buffers, all in the entry block (static allocas, 64-byte aligned).
void EntryBuilder::createBuffers() {
  auto buffer = [&](Type *elem, int64_t count, const char *name) {
    AllocaInst *a =
        b_.CreateAlloca(ArrayType::get(elem, std::max<int64_t>(count, 1)), nullptr, name);
    a->setAlignment(Align(codegen::kBufferAlign));
    return a;
  };
  workspace_ = buffer(b_.getInt8Ty(), iface_.workspaceBytes, "workspace");
  paddedX_ = buffer(b_.getInt32Ty(), model_.blockRows * iface_.context, "padded.X");
  paddedLogits_ = buffer(b_.getFloatTy(), model_.blockRows * iface_.vocabSize, "padded.logits");
}

// Branches to `reject` unless n is in range, the pointers are non-null and
// every index of X is in [0, V); else continues in `run`.
void EntryBuilder::emitChecks(BasicBlock *reject, BasicBlock *run) {
  Function *f = b_.GetInsertBlock()->getParent();
  BasicBlock *indices = BasicBlock::Create(b_.getContext(), "check.indices", f);
  // n * max(T, V) must not overflow the i64 index arithmetic.
  int64_t maxRows =
      std::numeric_limits<int64_t>::max() / std::max(iface_.context, iface_.vocabSize);
  Value *bad =
      b_.CreateOr(b_.CreateICmpSLT(n_, b_.getInt64(1)), b_.CreateICmpSGT(n_, b_.getInt64(maxRows)));
  bad = b_.CreateOr(bad, b_.CreateOr(b_.CreateIsNull(x_), b_.CreateIsNull(logits_)));
  if (weightsArg_)
    bad = b_.CreateOr(bad, b_.CreateIsNull(weightsArg_));
  b_.CreateCondBr(bad, reject, indices);

  // One unsigned compare per index, OR-reduced without an early exit so the
  // loop vectorizes (n >= 1 and T >= 1: at least one iteration).
  b_.SetInsertPoint(indices);
  Value *total = b_.CreateMul(n_, b_.getInt64(iface_.context), "indices", true, true);
  BasicBlock *loop = BasicBlock::Create(b_.getContext(), "check.loop", f);
  BasicBlock *done = BasicBlock::Create(b_.getContext(), "check.done", f);
  b_.CreateBr(loop);
  b_.SetInsertPoint(loop);
  PHINode *i = b_.CreatePHI(b_.getInt64Ty(), 2, "i");
  PHINode *anyBad = b_.CreatePHI(b_.getInt32Ty(), 2, "any_bad");
  i->addIncoming(b_.getInt64(0), indices);
  anyBad->addIncoming(b_.getInt32(0), indices);
  Value *index = b_.CreateLoad(b_.getInt32Ty(), b_.CreateInBoundsGEP(b_.getInt32Ty(), x_, i));
  Value *out = b_.CreateICmpUGE(index, b_.getInt32(static_cast<uint32_t>(iface_.vocabSize)));
  Value *nextBad = b_.CreateOr(anyBad, b_.CreateZExt(out, b_.getInt32Ty()));
  Value *next = b_.CreateAdd(i, b_.getInt64(1), "", true, true);
  i->addIncoming(next, loop);
  anyBad->addIncoming(nextBad, loop);
  b_.CreateCondBr(b_.CreateICmpSLT(next, total), loop, done);
  b_.SetInsertPoint(done);
  b_.CreateCondBr(b_.CreateICmpNE(nextBad, b_.getInt32(0)), reject, run);
}

// The blocks, then the tail (single rows or one padded block).
void EntryBuilder::emitRows(const Kernel &block, const Kernel &row) {
  Function *f = b_.GetInsertBlock()->getParent();
  LLVMContext &ctx = b_.getContext();
  Type *i32 = b_.getInt32Ty(), *f32 = b_.getFloatTy();
  Value *blockRows = b_.getInt64(model_.blockRows);
  Value *blocks = b_.CreateSDiv(n_, blockRows, "blocks");
  emitLoop(b_, b_.getInt64(0), blocks, "block", [&](Value *i) {
    Value *first = b_.CreateMul(i, blockRows);
    callKernel(block, *model_.block, rowPtr(i32, x_, first, iface_.context),
               rowPtr(f32, logits_, first, iface_.vocabSize));
  });
  Value *first = b_.CreateMul(blocks, blockRows, "tail.first");
  Value *tail = b_.CreateSub(n_, first, "tail.rows");
  BasicBlock *padded = BasicBlock::Create(ctx, "tail.padded", f);
  BasicBlock *single = BasicBlock::Create(ctx, "tail.single", f);
  BasicBlock *done = BasicBlock::Create(ctx, "done", f);
  b_.CreateCondBr(b_.CreateICmpSGE(tail, b_.getInt64(padMinRows(model_.blockRows))), padded,
                  single);
  b_.SetInsertPoint(padded);
  emitPaddedTail(block, first, tail);
  b_.CreateBr(done);
  b_.SetInsertPoint(single);
  emitLoop(b_, first, n_, "tail", [&](Value *r) {
    callKernel(row, *model_.row, rowPtr(i32, x_, r, iface_.context),
               rowPtr(f32, logits_, r, iface_.vocabSize));
  });
  b_.CreateBr(done);
  b_.SetInsertPoint(done);
}

Error EntryBuilder::build() {
  auto block = lowerKernel(*model_.block, model_.name + "_block_kernel", m_, tm_, vectorBits_);
  if (!block)
    return block.takeError();
  auto row = lowerKernel(*model_.row, model_.name + "_row_kernel", m_, tm_, vectorBits_);
  if (!row)
    return row.takeError();
  createWeights();
  Function *f = createEntry();
  LLVMContext &ctx = m_.getContext();
  BasicBlock *run = BasicBlock::Create(ctx, "run", f);
  BasicBlock *reject = BasicBlock::Create(ctx, "reject", f);
  b_.SetInsertPoint(BasicBlock::Create(ctx, "entry", f, run));
  createBuffers();
  emitChecks(reject, run);
  b_.SetInsertPoint(run);
  emitRows(*block, *row);
  b_.CreateRet(b_.getInt32(0));
  b_.SetInsertPoint(reject);
  b_.CreateRet(b_.getInt32(-1));
  return Error::success();
}

// LLVM's full default per-module pipeline at optLevel (O3 by default), not
// the JIT's trimmed kernel schedule (codegen/PassSchedule.cpp): an object is
// compiled once, so compile time does not matter, and the entry function's
// own loops (index check, tail copies) want the vectorizer. On makemore both
// give the same kernel speed (bench/run_aot.sh: 0.40 us per row, 5.9 us per
// 32-row block).
void optimizeFully(Module &m, TargetMachine &tm, unsigned optLevel) {
  codegen::runModulePipeline(m, tm, [optLevel](PassBuilder &pb) {
    return optLevel == 0
               ? pb.buildO0DefaultPipeline(OptimizationLevel::O0)
               : pb.buildPerModuleDefaultPipeline(optLevel == 1   ? OptimizationLevel::O1
                                                  : optLevel == 2 ? OptimizationLevel::O2
                                                                  : OptimizationLevel::O3);
  });
}

} // namespace

Expected<InferenceInterface> checkInferenceModel(const InferenceModel &model) {
  if (!codegen::isCIdentifier(model.name))
    return fail(fmt::format("model name '{}' is not a C identifier", model.name));
  if (!model.block || !model.row || !model.weights || model.blockRows < 1)
    return fail("internal error: incomplete inference model");
  auto block = graphInterface(*model.block, model.blockRows, *model.weights);
  if (!block)
    return block.takeError();
  auto row = graphInterface(*model.row, 1, *model.weights);
  if (!row)
    return row.takeError();
  auto paramsOf = [](const Graph &g, const GraphInterface &gi) {
    std::vector<std::pair<std::string, TensorType>> out;
    for (ValueId v : gi.params)
      out.emplace_back(g[v].name, g[v].type);
    return out;
  };
  if (block->context != row->context || block->vocab != row->vocab ||
      paramsOf(*model.block, *block) != paramsOf(*model.row, *row))
    return fail("internal error: the block and 1-row inference graphs differ in their parameters");

  InferenceInterface iface;
  iface.context = block->context;
  iface.vocabSize = block->vocab;
  iface.entryName = model.name + (model.externalWeights ? "_forward_with" : "_forward");
  iface.blockRows = model.blockRows;
  int64_t offset = 0;
  for (ValueId v : block->params) {
    const Node &n = (*model.block)[v];
    iface.layout.entries.push_back({n.name, n.type.shape, offset, n.type.numel()});
    offset += (n.type.numel() + kWeightAlignFloats - 1) / kWeightAlignFloats * kWeightAlignFloats;
  }
  iface.layout.totalFloats = offset;
  for (const Graph *g : {model.block, model.row}) {
    auto plan = codegen::planBuffers(*g, false);
    if (!plan)
      return plan.takeError();
    iface.workspaceBytes = std::max(iface.workspaceBytes, plan->workspaceBytes);
  }
  auto aligned = [](int64_t bytes) { return (bytes + 63) / 64 * 64; };
  iface.stackBytes = aligned(iface.workspaceBytes) + aligned(model.blockRows * iface.context * 4) +
                     aligned(model.blockRows * iface.vocabSize * 4);
  return iface;
}

Expected<std::string> emitInferenceModule(const InferenceModel &model,
                                          const CompileOptions &options, InferenceEmit kind) {
  auto iface = checkInferenceModel(model);
  if (!iface)
    return iface.takeError();
  auto tm = createObjectTargetMachine(options);
  if (!tm)
    return tm.takeError();
  if (model.externalWeights && (*tm)->createDataLayout().isBigEndian())
    return fail(
        "--weights-external writes little-endian floats: big-endian targets are not supported");
  LLVMContext ctx;
  Module m(model.name, ctx);
  m.setDataLayout((*tm)->createDataLayout());
  m.setTargetTriple((*tm)->getTargetTriple().str());
  if (Error e = EntryBuilder(model, *iface, options.vectorBits, m, **tm).build())
    return e;
  if (Error e = verifyModuleIR(m, model.name))
    return e;
  optimizeFully(m, **tm, options.optLevel);
  if (kind == InferenceEmit::LLVMText)
    return moduleOutput(m, **tm, std::nullopt);
  return moduleOutput(m, **tm,
                      kind == InferenceEmit::Object ? CodeGenFileType::ObjectFile
                                                    : CodeGenFileType::AssemblyFile);
}

std::string weightsBlob(const InferenceModel &model, const WeightLayout &layout) {
  std::string blob(static_cast<size_t>(layout.totalFloats) * 4, '\0');
  for (const WeightEntry &e : layout.entries) {
    const std::vector<float> &values = model.weights->at(e.name);
    for (int64_t i = 0; i < e.count; ++i) {
      uint32_t bits;
      std::memcpy(&bits, &values[i], 4);
      for (int byte = 0; byte < 4; ++byte) // little-endian whatever the host
        blob[(e.offset + i) * 4 + byte] = static_cast<char>((bits >> (8 * byte)) & 0xff);
    }
  }
  return blob;
}

} // namespace mlpc
