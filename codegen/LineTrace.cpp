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
  uint64_t bytes;
  int64_t kind;
};

// The accesses of `f`, with their sizes; memset / memcpy only with a
// constant length (the kernels' zero fills and copies have one).
std::vector<Access> accessesOf(Function &f) {
  const DataLayout &dl = f.getParent()->getDataLayout();
  const int64_t load = ThreadContext::kTraceLoad, store = ThreadContext::kTraceStore;
  std::vector<Access> out;
  for (BasicBlock &bb : f)
    for (Instruction &i : bb) {
      if (auto *l = dyn_cast<LoadInst>(&i)) {
        out.push_back({&i, l->getPointerOperand(), dl.getTypeStoreSize(l->getType()), load});
      } else if (auto *s = dyn_cast<StoreInst>(&i)) {
        out.push_back({&i, s->getPointerOperand(),
                       dl.getTypeStoreSize(s->getValueOperand()->getType()), store});
      } else if (auto *c = dyn_cast<IntrinsicInst>(&i)) {
        auto constantLength = [&](unsigned arg) -> uint64_t {
          auto *n = dyn_cast<ConstantInt>(c->getArgOperand(arg));
          return n ? n->getZExtValue() : 0;
        };
        switch (c->getIntrinsicID()) {
        case Intrinsic::masked_load: // every lane counted: the line is fetched whole
          out.push_back({&i, c->getArgOperand(0), dl.getTypeStoreSize(c->getType()), load});
          break;
        case Intrinsic::masked_store:
          out.push_back({&i, c->getArgOperand(1),
                         dl.getTypeStoreSize(c->getArgOperand(0)->getType()), store});
          break;
        case Intrinsic::memset:
          if (uint64_t n = constantLength(2))
            out.push_back({&i, c->getArgOperand(0), n, store});
          break;
        case Intrinsic::memcpy:
        case Intrinsic::memmove:
          if (uint64_t n = constantLength(2)) {
            out.push_back({&i, c->getArgOperand(1), n, load});
            out.push_back({&i, c->getArgOperand(0), n, store});
          }
          break;
        default:
          break;
        }
      }
    }
  return out;
}

} // namespace

void instrumentLineTrace(Module &m) {
  LLVMContext &ctx = m.getContext();
  StructType *contextTy = threadContextType(ctx);
  Type *i64 = Type::getInt64Ty(ctx), *ptr = PointerType::get(ctx, 0);
  FunctionType *traceTy = FunctionType::get(Type::getVoidTy(ctx), {ptr, i64, ptr, i64, i64}, false);
  for (Function &f : m) {
    if (f.isDeclaration() || !f.hasFnAttribute(kTraceLinesAttribute))
      continue;
    std::vector<Access> accesses = accessesOf(f); // before the calls add loads of their own
    IRBuilder<> b(&*f.getEntryBlock().getFirstInsertionPt());
    Value *context = f.getArg(f.arg_size() - 1);
    Value *fn = b.CreateLoad(ptr, b.CreateStructGEP(contextTy, context, 7), "trace.fn");
    Value *tracer = b.CreateLoad(ptr, b.CreateStructGEP(contextTy, context, 8), "tracer");
    Value *thread = b.CreateLoad(i64, b.CreateStructGEP(contextTy, context, 0), "trace.thread");
    for (const Access &a : accesses) {
      b.SetInsertPoint(a.at);
      b.CreateCall(traceTy, fn,
                   {tracer, thread, a.address, b.getInt64(a.bytes), b.getInt64(a.kind)});
    }
  }
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
  // A node's scratch and batch statistics.
  auto ownRegions = [&](ValueId v, std::vector<WorkspaceRegion> &out) {
    if (plan.scratchOffset[v] >= 0)
      out.push_back({"scratch of " + label(v), plan.scratchOffset[v], scratchBytes(g, g[v])});
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
