#include "ir/Interpreter.h"

#include "ir/ops/OpContext.h"

namespace mlpc {

// One forward walk; each node's kernel is its record's (ir/ops/*.cpp).
llvm::Expected<Values> interpret(const Graph &g,
                                 const std::map<std::string, std::vector<double>> &leaves) {
  Values val(g.size());
  for (ValueId v = 0; v < g.size(); ++v) {
    val[v].assign(g[v].type.numel(), 0.0);
    EvalContext k{g, g[v], val, val[v], leaves};
    if (llvm::Error e = opInfo(g[v].op).interpret(k))
      return e;
  }
  return val;
}

} // namespace mlpc
