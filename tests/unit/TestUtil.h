// Helpers shared by the unit tests: compile model text or files to graphs.
#pragma once

#include "frontend/Lowering.h"
#include "frontend/Overrides.h"
#include "frontend/Parser.h"
#include "passes/Pipeline.h"

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace mlpc::test {

// Parses and lowers `source`; on any error returns nullopt and puts the
// rendered diagnostics in `errors`.
inline std::optional<Module> lowerSource(const std::string &source, std::string *errors = nullptr,
                                         LoweringOptions options = {}) {
  DiagnosticEngine diags("t.mlp", source);
  ModelAST ast = parseModel(source, diags);
  std::optional<Module> m;
  if (!diags.hasErrors())
    m = lowerModel(ast, options, diags);
  if (errors)
    *errors = diags.render();
  return diags.hasErrors() ? std::nullopt : m;
}

inline std::string readFile(const std::string &path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string examplePath(const std::string &name) {
  return std::string(MLPC_SOURCE_DIR) + "/examples/" + name;
}

inline Graph stage(const Graph &forward, Stage s, bool fuse = true) {
  DiagnosticEngine diags("t.mlp", "");
  PipelineOptions options;
  options.fuse = fuse;
  std::optional<Graph> g = runPipeline(forward, s, options, diags);
  if (!g)
    throw std::runtime_error("pipeline failed: " + diags.render());
  return *g;
}

// Applies `settings` ("H=64", "batch=256") to `ast`, as --set does; the
// first bad one's error (a dim the model does not have, bad text).
inline llvm::Error applySettings(ModelAST &ast, const std::vector<std::string> &settings) {
  for (const std::string &setting : settings) {
    auto o = parseOverride(setting);
    if (!o)
      return o.takeError();
    if (llvm::Error e = applyOverrides(ast, {*o}))
      return e;
  }
  return llvm::Error::success();
}

} // namespace mlpc::test
