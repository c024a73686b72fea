// codegen/LineTrace.h.
#include "codegen/LineTrace.h"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/IntrinsicInst.h>
#include <llvm/IR/Module.h>

#include <fmt/format.h>

using namespace llvm;

namespace mlpc::codegen {

StructType *threadContextType(LLVMContext &ctx) {
  Type *i64 = Type::getInt64Ty(ctx), *ptr = PointerType::get(ctx, 0);
  return StructType::get(ctx, {i64, i64, ptr, ptr, i64, i64, ptr, ptr, ptr});
}

namespace {

struct Access {
  Instruction *at;
  Value *address;
  Value *bytes; // i64
  int64_t kind;
  Value *mask = nullptr; // masked load / store: only the active lanes touch memory
};

// Intrinsics that touch no memory the census counts: hints and markers.
bool ignoredIntrinsic(Intrinsic::ID id) {
  switch (id) {
  case Intrinsic::prefetch: // a hint: the line is fetched, not owned
  case Intrinsic::lifetime_start:
  case Intrinsic::lifetime_end:
  case Intrinsic::assume:
  case Intrinsic::experimental_noalias_scope_decl:
  case Intrinsic::readcyclecounter:
    return true;
  default:
    return false;
  }
}

// The accesses of `f`, with their sizes; an error for an intrinsic that
// touches memory in a way not traced here (better no census than a wrong one).
Expected<std::vector<Access>> accessesOf(Function &f) {
  const DataLayout &dl = f.getParent()->getDataLayout();
  Type *i64 = Type::getInt64Ty(f.getContext());
  const int64_t load = ThreadContext::kTraceLoad, store = ThreadContext::kTraceStore;
  auto size = [&](Type *t) { return ConstantInt::get(i64, dl.getTypeStoreSize(t)); };
  std::vector<Access> out;
  for (BasicBlock &bb : f)
    for (Instruction &i : bb) {
      if (auto *l = dyn_cast<LoadInst>(&i)) {
        out.push_back({&i, l->getPointerOperand(), size(l->getType()), load});
      } else if (auto *s = dyn_cast<StoreInst>(&i)) {
        out.push_back({&i, s->getPointerOperand(), size(s->getValueOperand()->getType()), store});
      } else if (auto *c = dyn_cast<IntrinsicInst>(&i)) {
        IRBuilder<> b(c);
        auto length = [&](unsigned arg) { return b.CreateZExtOrTrunc(c->getArgOperand(arg), i64); };
        switch (c->getIntrinsicID()) {
        case Intrinsic::masked_load: // (ptr, align, mask, passthru)
          out.push_back({&i, c->getArgOperand(0), nullptr, load, c->getArgOperand(2)});
          break;
        case Intrinsic::masked_store: // (value, ptr, align, mask)
          out.push_back({&i, c->getArgOperand(1), nullptr, store, c->getArgOperand(3)});
          break;
        case Intrinsic::memset:
          out.push_back({&i, c->getArgOperand(0), length(2), store});
          break;
        case Intrinsic::memcpy:
        case Intrinsic::memmove:
          out.push_back({&i, c->getArgOperand(1), length(2), load});
          out.push_back({&i, c->getArgOperand(0), length(2), store});
          break;
        default:
          if (c->mayReadOrWriteMemory() && !ignoredIntrinsic(c->getIntrinsicID()))
            return createStringError(inconvertibleErrorCode(),
                                     "line tracing: cannot trace " +
                                         c->getCalledFunction()->getName().str() + " in " +
                                         f.getName().str());
        }
      }
    }
  return out;
}

// A masked access's first active lane's address and the bytes up to its
// last active lane (0 with no lane active): the inactive lanes of a row's
// tail or of an end-aligned store touch no memory.
std::pair<Value *, Value *> maskedExtent(IRBuilder<> &b, const Access &a, const DataLayout &dl) {
  auto *vecTy = cast<FixedVectorType>(a.mask->getType());
  const unsigned lanes = vecTy->getNumElements();
  Type *value =
      a.kind == ThreadContext::kTraceLoad ? a.at->getType() : a.at->getOperand(0)->getType();
  const uint64_t lane = dl.getTypeStoreSize(cast<VectorType>(value)->getElementType());
  Value *bits = b.CreateBitCast(a.mask, b.getIntNTy(lanes));
  Value *first =
      b.CreateZExt(b.CreateBinaryIntrinsic(Intrinsic::cttz, bits, b.getFalse()), b.getInt64Ty());
  Value *leading =
      b.CreateZExt(b.CreateBinaryIntrinsic(Intrinsic::ctlz, bits, b.getFalse()), b.getInt64Ty());
  // With no lane active, first = lanes and end = 0: a negative count, made 0.
  Value *count = b.CreateSub(b.CreateSub(b.getInt64(lanes), leading), first);
  Value *bytes =
      b.CreateMul(b.CreateSelect(b.CreateICmpSGT(count, b.getInt64(0)), count, b.getInt64(0)),
                  b.getInt64(lane));
  Value *address = b.CreateGEP(b.getInt8Ty(), a.address, b.CreateMul(first, b.getInt64(lane)));
  return {address, bytes};
}

// The hook's no-op stand-in (one per module).
Function *traceNopFunction(Module &m) {
  const char *name = "mlpc.trace.nop";
  if (Function *f = m.getFunction(name))
    return f;
  LLVMContext &ctx = m.getContext();
  Function *f = Function::Create(traceHookType(ctx), GlobalValue::InternalLinkage, name, m);
  IRBuilder<> b(BasicBlock::Create(ctx, "entry", f));
  b.CreateRetVoid();
  return f;
}

} // namespace

FunctionType *traceHookType(LLVMContext &ctx) {
  Type *i64 = Type::getInt64Ty(ctx), *ptr = PointerType::get(ctx, 0);
  return FunctionType::get(Type::getVoidTy(ctx), {ptr, i64, ptr, i64, i64}, false);
}

Value *traceHookOrNop(IRBuilder<> &b, Value *hook) {
  return b.CreateSelect(b.CreateIsNull(hook), traceNopFunction(*b.GetInsertBlock()->getModule()),
                        hook);
}

Error instrumentLineTrace(Module &m) {
  LLVMContext &ctx = m.getContext();
  StructType *contextTy = threadContextType(ctx);
  Type *i64 = Type::getInt64Ty(ctx), *ptr = PointerType::get(ctx, 0);
  FunctionType *traceTy = traceHookType(ctx);
  const DataLayout &dl = m.getDataLayout();
  GlobalVariable *noContext = nullptr;
  for (Function &f : m) {
    if (f.isDeclaration() || !f.hasFnAttribute(kTraceLinesAttribute))
      continue;
    auto accesses = accessesOf(f); // before the calls add loads of their own
    if (!accesses)
      return accesses.takeError();
    // A null context (one thread, no team) reads as all-null fields, and a
    // null hook calls the no-op: traced code run without a tracer still runs.
    if (!noContext)
      noContext = new GlobalVariable(m, contextTy, true, GlobalValue::PrivateLinkage,
                                     Constant::getNullValue(contextTy), "trace.no.context");
    IRBuilder<> b(&*f.getEntryBlock().getFirstInsertionPt());
    Value *argument = f.getArg(f.arg_size() - 1);
    Value *context = b.CreateSelect(b.CreateIsNull(argument), noContext, argument);
    Value *fn =
        traceHookOrNop(b, b.CreateLoad(ptr, b.CreateStructGEP(contextTy, context, 7), "trace.fn"));
    Value *tracer = b.CreateLoad(ptr, b.CreateStructGEP(contextTy, context, 8), "tracer");
    Value *thread = b.CreateLoad(i64, b.CreateStructGEP(contextTy, context, 0), "trace.thread");
    for (const Access &a : *accesses) {
      b.SetInsertPoint(a.at);
      auto [address, bytes] =
          a.mask ? maskedExtent(b, a, dl) : std::pair<Value *, Value *>{a.address, a.bytes};
      b.CreateCall(traceTy, fn, {tracer, thread, address, bytes, b.getInt64(a.kind)});
    }
  }
  return Error::success();
}

std::vector<std::vector<WorkspaceRegion>> nodeWorkspaceRegions(const Graph &g,
                                                               const BufferPlan &plan) {
  auto label = [&](ValueId v) {
    return g[v].name.empty() ? fmt::format("%{}", v) : fmt::format("%{} {}", v, g[v].name);
  };
  // The workspace bytes of value v's root, if it has any.
  auto valueRegion = [&](ValueId v, std::vector<WorkspaceRegion> &out) {
    const ValueId r = plan.root[v];
    if (plan.storage[r] == Storage::Workspace)
      out.push_back({label(r), plan.offset[r], g[r].type.numel() * kElemBytes});
  };
  // A node's scratch, transposes and batch statistics.
  auto ownRegions = [&](ValueId v, std::vector<WorkspaceRegion> &out) {
    if (transposedOperandFloats(g, g[v]) > 0 && plan.threadSlotsOffset >= 0)
      out.push_back({"threads' own transposes of " + label(v), plan.threadSlotsOffset,
                     kTransposeSlots * plan.threadSlotBytes});
    if (plan.scratchOffset[v] >= 0)
      out.push_back(
          {"scratch of " + label(v), plan.scratchOffset[v], scratchBytes(g, g[v], plan.parallel)});
    if (int group = plan.statsGroup[v]; group >= 0) {
      const StatsPlan &s = plan.stats[group];
      out.push_back({"batch statistics of " + label(s.leader), s.offset,
                     statsRegionFloats(g[s.leader]) * kElemBytes});
    }
  };
  std::vector<std::vector<WorkspaceRegion>> regions(g.size());
  for (ValueId v = 0; v < g.size(); ++v) {
    std::vector<WorkspaceRegion> &out = regions[v];
    valueRegion(v, out);
    ownRegions(v, out);
    for (ValueId w = 0; w < g.size(); ++w) // values this node's kernel fills
      if (plan.filledBy[w] == static_cast<int64_t>(v))
        valueRegion(w, out);
    if (v < plan.lossGrad.size() && plan.lossGrad[v] >= 0)
      valueRegion(static_cast<ValueId>(plan.lossGrad[v]), out);
    // Operands, through the nodes fused into this node's loop (whose
    // scratch and statistics this node's code uses).
    std::vector<ValueId> work(g[v].operands.begin(), g[v].operands.end());
    std::vector<bool> seen(g.size(), false);
    while (!work.empty()) {
      ValueId o = work.back();
      work.pop_back();
      if (seen[o])
        continue;
      seen[o] = true;
      valueRegion(o, out);
      if (plan.storage[o] == Storage::Inlined || plan.storage[o] == Storage::Epilogue) {
        ownRegions(o, out);
        work.insert(work.end(), g[o].operands.begin(), g[o].operands.end());
      }
    }
  }
  return regions;
}

} // namespace mlpc::codegen
