#include "codegen/BufferPlan.h"
#include "codegen/Arena.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

namespace mlpc::codegen {
namespace {

llvm::Error fail(std::string message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

} // namespace

bool isElementwiseLike(Op op) {
  return (opInfo(op).kind == OpKind::Elementwise) || op == Op::Broadcast;
}

bool isBatchNormElementwise(Op op) {
  return op == Op::BatchNorm || op == Op::BatchNormXhat || op == Op::BatchNormInfer;
}

bool fusesOperandTree(const Graph &g, const Node &n) {
  if (n.op != Op::Sum && n.op != Op::Mean && n.op != Op::Max)
    return false;
  // Rank 2 along axis 0 with more than one column runs the column kernel
  // (each load one vector of one row); along axis 1 the row kernel.
  const Shape &s = g[n.operands[0]].type.shape;
  return (s.size() == 2 && ((n.axis == 0 && s[1] > 1) || n.axis == 1)) ||
         (s.size() == 1 && (n.axis == 0 || n.axis == -1));
}

namespace {

// planBuffers in steps (the numbered comments); each step reads what the
// earlier ones decided.
struct Planner {
  const Graph &g;
  const bool sgdUpdate, parallel;
  const size_t n;
  BufferPlan p;
  std::vector<unsigned> uses;
  std::vector<int64_t> user; // the consumer node, when there is exactly one use by a node
  std::vector<size_t> exprRoot;
  std::vector<int64_t> statsLastUse;
  std::set<ValueId> targets; // leaves overwritten by an output
  std::vector<int64_t> lastRead;

  Planner(const Graph &graph, bool sgd, bool parallelCode)
      : g(graph), sgdUpdate(sgd), parallel(parallelCode), n(graph.size()) {
    p.parallel = parallelCode;
    p.storage.assign(n, Storage::Workspace);
    p.root.resize(n);
    p.offset.assign(n, -1);
    p.outputSlot.assign(n, -1);
    p.writeTarget.assign(n, -1);
    p.region.assign(n, -1);
    p.scratchOffset.assign(n, -1);
    p.scratchRegion.assign(n, -1);
    uses = g.useCounts();
    user.assign(n, -1);
    for (ValueId v = 0; v < n; ++v)
      for (ValueId o : g[v].operands)
        user[o] = v;
  }

  // True if every use of v is an operand of its one consumer (x * x counts:
  // a fused operand is then evaluated twice in the consumer's loop, which
  // EarlyCSE folds back into one).
  bool singleConsumer(ValueId v) const {
    if (user[v] < 0)
      return false;
    unsigned refs = 0;
    for (ValueId o : g[static_cast<ValueId>(user[v])].operands)
      refs += o == v;
    return refs == uses[v];
  }

  void leaves() {
    // 1. Leaves, constants, aliases.
    for (ValueId v = 0; v < n; ++v) {
      const Node &node = g[v];
      p.root[v] = v;
      if (node.op == Op::Input || node.op == Op::Param || node.op == Op::State)
        p.storage[v] = Storage::Leaf;
      else if (node.op == Op::Const)
        p.storage[v] = Storage::Const;
      else if (node.op == Op::Reshape) {
        p.storage[v] = Storage::Alias;
        p.root[v] = p.root[node.operands[0]];
      }
    }
  }

  void fuse() {
    // 2. Fusion: an elementwise node whose only consumer is an elementwise
    // node of the same shape is evaluated inside that consumer's loop. This
    // saves a store and a reload of the whole tensor per fused node, a loop,
    // and the buffer itself (e.g. tanh' = dh * (1 - h*h) becomes one pass over
    // h and dh). Same shape only: fusing into a broadcasting consumer would
    // recompute it. Reductions of rank-2 tensors along an axis evaluate their
    // operand's tree too (sum(dout * xhat, 0), sum((x - mean)^2, 0) of the
    // BatchNorm gradient and running variance: one pass each instead of two;
    // -0.6 us on the makemore step), see LowerReduce.cpp.
    // BatchNorm and BatchNormXhat fuse the same way once their statistics
    // exist (tanh(batchnorm(x)) is one pass; sum(dout * xhat, 0) one more), but
    // their input x stays materialised: the statistics kernel reads it too.
    auto fusible = [&](Op op) { return isElementwiseLike(op) || isBatchNormElementwise(op); };
    for (ValueId v = 0; v < n; ++v) {
      if (!fusible(g[v].op) || !singleConsumer(v))
        continue;
      const Node &u = g[static_cast<ValueId>(user[v])];
      if (isBatchNormElementwise(u.op) && u.operands[0] == v)
        continue;
      if ((fusible(u.op) && u.type.shape == g[v].type.shape) || fusesOperandTree(g, u))
        p.storage[v] = Storage::Inlined;
    }

    // exprRoot: the node whose loop evaluates v (itself unless fused).
    exprRoot.resize(n);
    for (size_t v = n; v-- > 0;)
      exprRoot[v] = p.storage[v] == Storage::Inlined ? exprRoot[user[v]] : v;
  }

  void statsGroups() {
    // BatchNorm statistics groups: same input (bytes) and eps.
    p.statsGroup.assign(n, -1);
    for (ValueId v = 0; v < n; ++v) {
      const Node &node = g[v];
      if (!isBatchNormElementwise(node.op) && node.op != Op::BatchNormGrad)
        continue;
      int group = -1; // BatchNormInfer: a group of its own (its per-column scale)
      for (size_t i = 0; i < p.stats.size() && group < 0 && node.op != Op::BatchNormInfer; ++i) {
        const Node &leader = g[p.stats[i].leader];
        if (leader.op != Op::BatchNormInfer &&
            p.root[leader.operands[0]] == p.root[node.operands[0]] && leader.scalar == node.scalar)
          group = static_cast<int>(i);
      }
      if (group < 0) {
        group = static_cast<int>(p.stats.size());
        StatsPlan st;
        st.leader = v;
        p.stats.push_back(st);
        statsLastUse.push_back(v);
      }
      p.statsGroup[v] = group;
    }
  }

  void epilogues() {
    // Matmul epilogues: a MatMul whose only use is a same-shape operand of an
    // elementwise expression hands its accumulator tiles to that expression
    // (bias adds, activation-gradient products) instead of storing C and
    // reading it back in a second loop. One matmul per expression, whose root
    // is an elementwise loop (not a reduction).
    std::vector<bool> hasEpilogue(n, false);
    for (ValueId v = 0; v < n; ++v) {
      if (g[v].op != Op::MatMul || uses[v] != 1 || user[v] < 0)
        continue;
      const Node &u = g[static_cast<ValueId>(user[v])];
      size_t root = exprRoot[user[v]];
      if (isElementwiseLike(u.op) && isElementwiseLike(g[root].op) &&
          u.type.shape == g[v].type.shape && !hasEpilogue[root]) {
        p.storage[v] = Storage::Epilogue;
        exprRoot[v] = root;
        hasEpilogue[root] = true;
      }
    }
  }

  llvm::Error outputs() {
    // 3. Outputs.
    std::set<std::string> names; // labels must be unique: bindings are found by name
    std::vector<int> outRefs(n, 0);
    p.outputs.resize(g.outputs.size());
    for (size_t i = 0; i < g.outputs.size(); ++i) {
      const GraphOutput &out = g.outputs[i];
      if (out.value >= n)
        return fail(fmt::format("output '{}' refers to a missing value", out.name));
      if (!names.insert(out.name).second)
        return fail(fmt::format("duplicate output name '{}'", out.name));
      OutputPlan &op = p.outputs[i];
      op.value = out.value;
      ++outRefs[out.value];
      auto writeBack = [&](OutputKind kind) -> llvm::Error {
        if (!out.subject || *out.subject >= n ||
            (g[*out.subject].op != Op::Param && g[*out.subject].op != Op::State))
          return fail(fmt::format("output '{}' ({}) has no parameter or state leaf to update",
                                  out.name, toString(out.role)));
        const ValueId leaf = *out.subject;
        if (out.role == OutputRole::Gradient && g[leaf].op != Op::Param)
          return fail(fmt::format("output '{}' is the gradient of '{}', which is not a parameter",
                                  out.name, g[leaf].name));
        const TensorType &lt = g[leaf].type, &vt = g[out.value].type;
        if (vt.dtype != DType::F32 || lt.numel() != vt.numel())
          return fail(fmt::format("output '{}' of type {} cannot update '{}' of type {}", out.name,
                                  toString(vt), g[leaf].name, toString(lt)));
        if (!targets.insert(leaf).second)
          return fail(fmt::format("leaf '{}' is updated by two outputs", g[leaf].name));
        op.kind = kind;
        op.target = leaf;
        op.optional = true;
        return llvm::Error::success();
      };
      if (sgdUpdate && out.role == OutputRole::Gradient) {
        if (auto e = writeBack(OutputKind::SgdUpdate))
          return e;
      } else if (out.role == OutputRole::WriteBack) {
        if (auto e = writeBack(OutputKind::WriteBack))
          return e;
      }
    }
    for (size_t i = 0; i < g.outputs.size(); ++i) {
      OutputPlan &op = p.outputs[i];
      ValueId v = op.value;
      if (op.kind == OutputKind::Plain && p.storage[v] == Storage::Workspace && outRefs[v] == 1) {
        p.storage[v] = Storage::Output;
        p.outputSlot[v] = static_cast<int>(i);
        op.direct = true;
      }
    }

    return llvm::Error::success();
  }

  // A write-back's value can be computed straight into its leaf when it is
  // an elementwise loop of the leaf's shape, and nothing reads the old leaf
  // after that loop, nor inside it other than elementwise (at the element
  // being written): e.g. W - lr * (x^T @ dy) with the matmul as the loop's
  // epilogue, which then is the whole update. Later readers of the value read
  // it from the leaf: Adam's m' = b1 m + (1 - b1) g is stored into m once and
  // read there by the parameter's update (no buffer, no copy loop).
  bool canWriteInPlace(ValueId v, ValueId target) const {
    if (p.storage[v] != Storage::Workspace || p.filledBy[v] >= 0 ||
        opInfo(g[v].op).kind != OpKind::Elementwise || g[v].type.shape != g[target].type.shape ||
        lastRead[target] > static_cast<int64_t>(v))
      return false;
    for (ValueId u = 0; u <= v; ++u) {
      bool fused = p.storage[u] == Storage::Inlined || p.storage[u] == Storage::Epilogue;
      if (!fused || exprRoot[u] != v || opInfo(g[u].op).kind == OpKind::Elementwise)
        continue;
      for (ValueId o : g[u].operands)
        if (p.root[o] == target)
          return false; // e.g. a matmul in the loop reading the leaf at other indices
    }
    return true;
  }

  // Where v's expression is evaluated: its own loop, the consumer's for fused
  // nodes (exprRoot), or the kernel that fills the loop's value (filledBy:
  // that kernel reads the same bytes itself, and the node runs no code).
  int64_t evaluatedAt(ValueId v) const {
    const size_t root = exprRoot[v];
    return p.filledBy[root] >= 0 ? p.filledBy[root] : static_cast<int64_t>(root);
  }

  llvm::Error liveness() {
    // 4. Liveness. A node's operands are read at the position of the loop that
    // evaluates it (evaluatedAt). Counting a filled node's reads at its own
    // position kept makemore's hprebn and dhpreact (sum(dout * xhat, 0) and
    // sum(dout, 0), filled by BatchNormGrad) alive across the three gradient
    // matmuls after it.
    lastRead.assign(n, -1);
    auto read = [&](ValueId v, int64_t at) {
      lastRead[p.root[v]] = std::max(lastRead[p.root[v]], at);
    };
    for (ValueId v = 0; v < n; ++v) {
      if (p.storage[v] == Storage::Alias)
        continue; // a Reshape reads nothing itself; its users read the root
      for (ValueId o : g[v].operands)
        if (p.storage[o] != Storage::Inlined && p.storage[o] != Storage::Epilogue)
          read(o, evaluatedAt(v));
    }
    for (ValueId v = 0; v < n; ++v)
      if (int group = p.statsGroup[v]; group >= 0)
        statsLastUse[group] = std::max(statsLastUse[group], evaluatedAt(v));
    for (OutputPlan &op : p.outputs)
      if (op.kind == OutputKind::Plain) {
        op.position = op.value;
        if (!op.direct)
          read(op.value, op.position);
      }
    // Write-backs run once the value exists and the overwritten leaf is no
    // longer read. A write-back whose value is itself a written-back leaf would
    // need an ordering between the two (or a copy); no real graph has one.
    for (OutputPlan &op : p.outputs)
      if (op.kind != OutputKind::Plain) {
        if (targets.count(p.root[op.value]) && p.root[op.value] != op.target)
          return fail(fmt::format("output '{}' reads a leaf that another output overwrites",
                                  g.outputs[&op - p.outputs.data()].name));
        op.position = static_cast<size_t>(std::max<int64_t>(op.value, lastRead[op.target]));
        // The gradient matmuls of a training step come after the last read of
        // their parameter (dW = x^T @ dy once dx = dy @ W^T is done), so the
        // kernel can apply the update itself, which saves a loop that rereads
        // the whole gradient: dW1 [30, 200] 2.20 -> 2.07 us on the makemore
        // step. Only for rows of at least 64 floats: on dW2 [200, 27] (rows of
        // 27, two vectors, one masked, no two rows aligned alike) the
        // read-modify-write in the epilogue made the kernel slower, 2.1 -> 2.7 us.
        const ValueId v = op.value;
        if (op.kind == OutputKind::WriteBack && canWriteInPlace(v, op.target)) {
          op.inPlace = true;
          p.storage[v] = Storage::LeafWrite;
          p.writeTarget[v] = op.target;
        }
        op.inKernel = op.kind == OutputKind::SgdUpdate && g[v].op == Op::MatMul &&
                      p.storage[v] == Storage::Workspace && uses[v] == 1 &&
                      lastRead[op.target] < static_cast<int64_t>(v) && g[v].type.shape[1] >= 64;
      }
    for (OutputPlan &op : p.outputs)
      if (op.kind != OutputKind::Plain)
        read(op.value, op.position);

    return llvm::Error::success();
  }

  // A BatchNormGrad's dx goes over its dout when that buffer is last read
  // there: the kernel reads all of dout for its column sums before it writes
  // any dx, and then each dx element right after reading its dout element,
  // in the same thread (LowerBatchNormGrad.cpp). One [N, H] buffer less: the
  // makemore step at batch 256 keeps 0.83 MB of workspace instead of 1.07,
  // which with the weights fits a 1 MB L2.
  // Not when an output's copy, write-back or update reads dout at that
  // position: those run after the node's kernel, which has overwritten it.
  std::optional<ValueId> writtenOver(ValueId w) const {
    if (g[w].op != Op::BatchNormGrad || p.filledBy[w] >= 0)
      return std::nullopt;
    const ValueId dout = p.root[g[w].operands[2]];
    if (p.storage[dout] != Storage::Workspace || p.offset[dout] < 0 ||
        lastRead[dout] != static_cast<int64_t>(w) || g[dout].type.numel() != g[w].type.numel())
      return std::nullopt;
    for (const OutputPlan &op : p.outputs)
      if (p.root[op.value] == dout && op.position == w)
        return std::nullopt;
    return dout;
  }

  // Step 5's arenas: values and statistics in `values` (parallel code: values
  // in `byRows`, the arena of their (rows, row floats), keyed in rowKey),
  // the nodes' scratch in `scratch`; laid out in that order (layOut).
  struct Arenas {
    Arena values, scratch;
    std::map<std::pair<int64_t, int64_t>, Arena> byRows;
    std::vector<std::optional<std::pair<int64_t, int64_t>>> rowKey;
    std::vector<std::vector<int>> dieAt, scratchDiesAt; // ids freed after node v
  };

  void offsets() {
    // 5. Workspace offsets, first fit, freeing each buffer after its last read.
    // The nodes' scratch has a part of its own, after the values': parallel
    // code writes scratch split by other lines than the batch rows (blocks of
    // partial sums, a transposed weight), and batch rows later written in
    // the same bytes would first have to be fetched from the other cores.
    // Parallel code goes further (`mlpc bench --line-census` counted what
    // crossed): a value reuses only the bytes of values with as many rows of
    // the same length, since rows of other lengths cut between the threads
    // at other bytes (hprebn [256, 1024] over dembcat [256, 30]: 241 lines a
    // step written by one thread in one and by the other in the other). The
    // scratch keeps one arena: split by size as well it took BatchNormGrad's
    // partial sums off another node's (makemore H = 1024: 788 -> 50 lines a
    // step written after the other thread wrote them) but made wavenet's
    // workspace at H = 1024 125 MB instead of 67, for no step time measured.
    Arenas a;
    a.rowKey.resize(n);
    a.dieAt.resize(n);
    a.scratchDiesAt.resize(n);
    std::vector<std::vector<ValueId>> runsAt(n), allocAt(n);
    for (ValueId v = 0; v < n; ++v)
      if (p.storage[v] == Storage::Epilogue)
        runsAt[exprRoot[v]].push_back(v);
      else if (p.storage[v] == Storage::Workspace || p.storage[v] == Storage::Output ||
               p.storage[v] == Storage::LeafWrite)
        runsAt[v].push_back(v);
    // A buffer is allocated where it is first written: at its node, or at the
    // BatchNormGrad that fills it.
    for (ValueId v = 0; v < n; ++v)
      if (p.storage[v] == Storage::Workspace)
        allocAt[p.filledBy[v] >= 0 ? static_cast<ValueId>(p.filledBy[v]) : v].push_back(v);
    for (ValueId v = 0; v < n; ++v) {
      for (ValueId w : allocAt[v])
        allocateValue(a, w);
      // Scratch belongs to the node whose kernel runs at v: v itself, and the
      // epilogue matmuls that v's expression runs.
      for (ValueId w : runsAt[v])
        allocateScratch(a, v, w);
      if (int group = p.statsGroup[v]; group >= 0 && p.stats[group].leader == v) {
        int64_t bytes = roundUpTo(statsRegionFloats(g[v]) * kElemBytes, kBufferAlign);
        int id = static_cast<int>(2 * n + group);
        p.stats[group].offset = a.values.allocate(bytes, id);
        p.stats[group].region = newRegion(p.stats[group].offset, bytes);
        a.dieAt[statsLastUse[group]].push_back(id);
      }
      for (int id : a.dieAt[v]) {
        a.values.release(id);
        if (id < static_cast<int>(n) && a.rowKey[id])
          a.byRows[*a.rowKey[id]].release(id);
      }
      for (int id : a.scratchDiesAt[v])
        a.scratch.release(id);
    }
    layOut(a);
  }

  Arena &valueArena(Arenas &a, ValueId w) {
    if (!parallel)
      return a.values;
    const Shape &shape = g[w].type.shape;
    const int64_t rows = shape.empty() ? 1 : shape[0];
    a.rowKey[w] =
        std::make_pair(rows, std::max<int64_t>(g[w].type.numel(), 1) / std::max<int64_t>(rows, 1));
    return a.byRows[*a.rowKey[w]];
  }

  void allocateValue(Arenas &a, ValueId w) {
    int64_t bytes = roundUpTo(std::max<int64_t>(g[w].type.numel(), 1) * kElemBytes, kBufferAlign);
    int id = static_cast<int>(w);
    Arena &values = valueArena(a, w);
    std::optional<ValueId> over = writtenOver(w);
    if (over && a.rowKey[*over] == a.rowKey[w]) { // the same arena
      p.offset[w] = p.offset[*over];
      values.hand(static_cast<int>(*over), id);
    } else {
      p.offset[w] = values.allocate(bytes, id);
    }
    p.region[w] = newRegion(p.offset[w], bytes);
    a.dieAt[std::max<int64_t>(lastRead[w], w)].push_back(id);
  }

  // The scratch of the kernel that computes w, which runs at node v.
  void allocateScratch(Arenas &a, ValueId v, ValueId w) {
    int64_t s = p.filledBy[w] >= 0 ? 0 : scratchBytes(g, g[w], parallel); // filled: no kernel
    if (s == 0)
      return;
    int id = static_cast<int>(n + w);
    s = roundUpTo(s, kBufferAlign);
    p.scratchOffset[w] = a.scratch.allocate(s, id);
    p.scratchRegion[w] = newRegion(p.scratchOffset[w], s);
    a.scratchDiesAt[v].push_back(id);
  }

  // The arenas end to end: values and statistics, each (rows, row floats)
  // arena of parallel code, then the scratch.
  void layOut(const Arenas &a) {
    int64_t end = roundUpTo(a.values.highWater(), kBufferAlign);
    auto place = [&](int64_t &offset, int region, int64_t base) {
      offset += base;
      p.regions[region].begin += base;
      p.regions[region].end += base;
    };
    std::map<std::pair<int64_t, int64_t>, int64_t> rowBase;
    for (const auto &[key, arena] : a.byRows) {
      rowBase[key] = end;
      end = roundUpTo(end + arena.highWater(), kBufferAlign);
    }
    for (ValueId v = 0; v < n; ++v) {
      if (a.rowKey[v] && p.offset[v] >= 0)
        place(p.offset[v], p.region[v], rowBase[*a.rowKey[v]]);
      if (p.scratchOffset[v] >= 0)
        place(p.scratchOffset[v], p.scratchRegion[v], end);
    }
    p.workspaceBytes = end + a.scratch.highWater();
  }

  int newRegion(int64_t begin, int64_t bytes) {
    p.regions.push_back(Region{begin, begin + bytes});
    return static_cast<int>(p.regions.size() - 1);
  }

  // 6. Parallel plans: the threads' own slots after everything else, each as
  // large as the largest transposed operand (BufferPlan::threadSlotsOffset).
  void threadSlots() {
    if (!parallel)
      return;
    int64_t slot = 0;
    for (ValueId v = 0; v < n; ++v)
      slot = std::max(slot, transposedOperandFloats(g, g[v]) * kElemBytes);
    if (slot == 0)
      return;
    p.threadSlotBytes = roundUpTo(slot, kBufferAlign);
    p.threadSlotsOffset = roundUpTo(p.workspaceBytes, kBufferAlign);
    p.threadSlotsRegion = newRegion(p.threadSlotsOffset, kTransposeSlots * p.threadSlotBytes);
    p.workspaceBytes = p.threadSlotsOffset + kTransposeSlots * p.threadSlotBytes;
  }
};

} // namespace

llvm::Expected<BufferPlan> planBuffers(const Graph &g, bool sgdUpdate, bool parallel) {
  Planner planner(g, sgdUpdate, parallel);
  planner.leaves();
  planner.fuse();
  planner.statsGroups();
  planKernelFills(g, planner.p);
  planner.epilogues();
  if (llvm::Error e = planner.outputs())
    return e;
  if (llvm::Error e = planner.liveness())
    return e;
  planner.offsets();
  planner.threadSlots();
  return std::move(planner.p);
}

} // namespace mlpc::codegen
