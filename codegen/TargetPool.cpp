// codegen/TargetPool.h: target machines made and warmed once per JIT engine.
#include "codegen/TargetPool.h"

#include "codegen/VectorShape.h"

using namespace llvm;

namespace mlpc::codegen {

TargetPool::TargetPool(Factory make, unsigned count, unsigned vectorBits) : make_(std::move(make)) {
  machines_.resize(count);
  // Each thread writes its own slot only; machine(i) joins thread i before
  // slot i is read. A machine that cannot be made stays empty (machine() makes
  // it again and reports why).
  for (unsigned i = 0; i < count; ++i)
    warming_.emplace_back([this, i, vectorBits] {
      auto made = make_();
      if (!made) {
        consumeError(made.takeError());
        return;
      }
      machines_[i] = std::move(*made);
      chooseVectorShape(*machines_[i], vectorBits); // builds and caches the subtargets
    });
}

TargetPool::~TargetPool() {
  for (llvm::thread &t : warming_)
    if (t.joinable())
      t.join();
}

Expected<TargetMachine *> TargetPool::machine(unsigned i) {
  if (warming_[i].joinable())
    warming_[i].join();
  if (!machines_[i]) {
    auto made = make_();
    if (!made)
      return made.takeError();
    machines_[i] = std::move(*made);
  }
  return machines_[i].get();
}

} // namespace mlpc::codegen
