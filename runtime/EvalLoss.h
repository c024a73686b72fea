// The mean cross-entropy of a whole split through the compiled inference
// function, on every core (ModelRuntime::loss).
//
// The split is cut into blocks of the eval function's rows; the blocks are
// shared between threads, each with its own bound copy of the function (its
// own workspace, input and outputs; the parameters are only read). The loss
// of a full block comes from a second compiled function, the f32
// cross_entropy kernel on the block's logits (~4 us per 512 rows, where the
// double-precision loop with libm exp took ~70 us and was 40% of the eval).
// The last, partial block uses crossEntropy() in double on its real rows.
// Block losses are summed in block order, so the result does not depend on
// the number of threads.
#pragma once

#include "codegen/Compiler.h"
#include "runtime/Dataset.h"
#include "runtime/ParamInit.h"

#include <llvm/Support/Error.h>

#include <memory>

namespace mlpc {

class SplitLoss {
public:
  // Compiles the cross-entropy kernel for blocks of `blockRows` rows of
  // `classes` logits (a few ms, once per runtime).
  static llvm::Expected<std::unique_ptr<SplitLoss>> create(JitEngine &jit, int64_t blockRows,
                                                           int64_t classes);

  // `eval`: [blockRows, context] contexts -> output "logits"; its Param and
  // State leaves are bound to `params` by name.
  llvm::Expected<double> run(const CompiledFunction &eval, const TensorMap &params,
                             const Split &split, int64_t context) const;

private:
  SplitLoss() = default;
  CompiledFunction crossEntropy_;
  int64_t blockRows_ = 0, classes_ = 0;
};

} // namespace mlpc
