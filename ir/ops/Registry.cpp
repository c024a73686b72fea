// The op table: each op's record, in enum order (ir/Ops.def). Naming every
// record here makes an op without one a link error.
#include "ir/ops/OpContext.h"

namespace mlpc {

namespace {
const OpInfo *const kRecords[] = {
#define OP(Enum) &oprecord::Enum,
#include "ir/Ops.def"
};
} // namespace

const OpInfo &opInfo(Op op) {
  return *kRecords[static_cast<size_t>(op)];
}

std::optional<Op> opByName(const std::string &name) {
  for (size_t i = 0; i < std::size(kRecords); ++i)
    if (name == kRecords[i]->name)
      return static_cast<Op>(i);
  return std::nullopt;
}

const std::vector<Op> &allOps() {
  static const std::vector<Op> ops = {
#define OP(Enum) Op::Enum,
#include "ir/Ops.def"
  };
  return ops;
}

} // namespace mlpc
