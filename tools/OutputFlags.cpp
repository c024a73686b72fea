// See OutputFlags.h.
#include "tools/OutputFlags.h"

#include "runtime/OutputFiles.h"

llvm::Error mlpc::checkOutputFlags(const ParsedArgs &args,
                                   std::initializer_list<const char *> fileFlags,
                                   std::initializer_list<const char *> dirFlags) {
  for (const char *flag : fileFlags)
    if (auto path = args.get(flag))
      if (llvm::Error e = checkOutputPath(*path, flag))
        return e;
  for (const char *flag : dirFlags)
    if (auto path = args.get(flag))
      if (llvm::Error e = checkOutputDir(*path, flag))
        return e;
  return llvm::Error::success();
}
