#include "frontend/Overrides.h"

#include "frontend/Parser.h"

#include <llvm/ADT/STLExtras.h>
#include <llvm/Support/JSON.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>

namespace mlpc {
namespace {

llvm::Error fail(const std::string &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s", message.c_str());
}

// The train-block statements an override can replace (the grammar in
// frontend/Parser.h), plus the `lr` shorthand.
const std::vector<std::string> kTrainSettings = {
    "steps", "batch", "sgd", "adam", "adamw", "clip_grad_norm", "warmup", "cosine", "lr"};

bool isTrainSetting(const std::string &name) {
  for (const std::string &s : kTrainSettings)
    if (s == name)
      return true;
  return false;
}

std::string knownNames(const ModelAST &ast) {
  std::string dims = describeDims(ast);
  std::string train;
  for (const std::string &s : kTrainSettings)
    train += (train.empty() ? "" : ", ") + s;
  return fmt::format("the model's dims are {}; train settings: {}", dims.empty() ? "(none)" : dims,
                     train);
}

llvm::Expected<int64_t> parsePositiveInteger(const Override &o) {
  errno = 0;
  char *end = nullptr;
  long long value = std::strtoll(o.value.c_str(), &end, 10);
  if (o.value.empty() || *end != '\0' || errno == ERANGE || value <= 0)
    return fail(fmt::format("--set {}: '{}' must be a positive integer", o.text(), o.value));
  return static_cast<int64_t>(value);
}

TrainBlock &trainBlockOf(ModelAST &ast) {
  if (!ast.train) {
    ast.train.emplace();
    ast.train->loc = ast.loc;
  }
  return *ast.train;
}

llvm::Error setDim(ModelAST &ast, DimDecl &dim, const Override &o) {
  if (dim.binding == "vocab")
    return fail(fmt::format("--set {}: dim {} is bound to the dataset's vocabulary and cannot be "
                            "set ({})",
                            o.text(), dim.name, knownNames(ast)));
  auto value = parsePositiveInteger(o);
  if (!value)
    return value.takeError();
  if (dim.binding == "batch") {
    TrainBlock &train = trainBlockOf(ast);
    train.batch = *value;
    train.batchLoc = dim.loc;
    return llvm::Error::success();
  }
  auto number = std::make_unique<Expr>();
  number->kind = ExprKind::Number;
  number->loc = dim.value ? dim.value->loc : dim.loc;
  number->number = static_cast<double>(*value);
  number->isInteger = true;
  number->integer = *value;
  dim.value = std::move(number);
  return llvm::Error::success();
}

// Parses "KEYWORD VALUE" as a train-block statement with the model parser.
llvm::Expected<TrainBlock> parseTrainStatement(const std::string &statement, const Override &o) {
  std::string source = "model set\ntrain {\n" + statement + "\n}\n";
  DiagnosticEngine diags("--set", source);
  ModelAST parsed = parseModel(source, diags);
  if (diags.hasErrors() || !parsed.train) {
    std::string message =
        diags.diagnostics().empty() ? "not a train statement" : diags.diagnostics().front().message;
    return fail(fmt::format("--set {}: {}", o.text(), message));
  }
  return std::move(*parsed.train);
}

llvm::Error setTrainSetting(ModelAST &ast, const Override &o) {
  // `lr=...` keeps the model's optimizer and replaces only its schedule.
  std::string statement = o.name == "lr" ? "sgd lr " + o.value : o.name + " " + o.value;
  auto parsed = parseTrainStatement(statement, o);
  if (!parsed)
    return parsed.takeError();
  TrainBlock &train = trainBlockOf(ast);
  // Locations from the --set text would point into another source: use the
  // train block's, so later diagnostics quote the model file.
  if (o.name == "steps") {
    train.steps = parsed->steps;
    train.stepsLoc = train.loc;
  } else if (o.name == "batch") {
    train.batch = parsed->batch;
    train.batchLoc = train.loc;
  } else if (o.name == "warmup") {
    train.warmup = parsed->warmup;
    train.warmupLoc = train.loc;
  } else if (o.name == "clip_grad_norm") {
    train.clipGradNorm = parsed->clipGradNorm;
    train.clipLoc = train.loc;
  } else if (o.name == "cosine") {
    train.cosineMinLr = parsed->cosineMinLr;
    train.cosineLoc = train.loc;
  } else { // an optimizer statement, or lr
    if (o.name != "lr") {
      train.optimizer = parsed->optimizer;
      train.optimizer->loc = train.loc;
    }
    train.schedule = std::move(parsed->schedule);
    for (LrPhase &phase : train.schedule)
      phase.loc = train.loc;
  }
  return llvm::Error::success();
}

} // namespace

llvm::Expected<Override> parseOverride(llvm::StringRef text) {
  auto [name, value] = text.split('=');
  name = name.trim();
  value = value.trim();
  if (!text.contains('=') || name.empty() || value.empty())
    return fail(fmt::format("--set expects NAME=VALUE, got '{}'", text.str()));
  return Override{name.str(), value.str()};
}

std::string describeDims(const ModelAST &ast) {
  std::string out;
  for (const DimDecl &d : ast.dims) {
    if (d.binding == "vocab")
      continue;
    std::string value = "batch";
    if (d.value && d.value->kind == ExprKind::Number && d.value->isInteger)
      value = std::to_string(d.value->integer);
    else if (d.value)
      value = "(expression)";
    out += (out.empty() ? "" : " ") + d.name + "=" + value;
  }
  return out;
}

llvm::Error applyOverrides(ModelAST &ast, llvm::ArrayRef<Override> overrides) {
  for (const Override &o : overrides) {
    DimDecl *dim = nullptr;
    for (DimDecl &d : ast.dims)
      if (d.name == o.name)
        dim = &d;
    llvm::Error error = llvm::Error::success();
    if (dim)
      error = setDim(ast, *dim, o);
    else if (isTrainSetting(o.name))
      error = setTrainSetting(ast, o);
    else
      error = fail(fmt::format("--set {}: '{}' is not a dim or train setting of model '{}' ({})",
                               o.text(), o.name, ast.name, knownNames(ast)));
    if (error)
      return error;
    // One record per setting (a resumed run re-applies its checkpoint's). An
    // optimizer statement replaces an earlier one and an earlier `lr`; an
    // `lr` replaces only an earlier `lr` (it keeps the optimizer).
    auto isOptimizer = [](llvm::StringRef n) { return n == "sgd" || n == "adam" || n == "adamw"; };
    llvm::erase_if(ast.overrides, [&](const std::string &text) {
      llvm::StringRef name = llvm::StringRef(text).split('=').first;
      if (isOptimizer(o.name))
        return isOptimizer(name) || name == "lr";
      return name == o.name;
    });
    ast.overrides.push_back(o.text());
  }
  return llvm::Error::success();
}

std::string encodeOverrides(llvm::ArrayRef<std::string> overrides) {
  llvm::json::Array array;
  for (const std::string &o : overrides)
    array.push_back(o);
  std::string out;
  llvm::raw_string_ostream os(out);
  os << llvm::json::Value(std::move(array));
  return os.str();
}

llvm::Expected<std::vector<Override>> decodeOverrides(llvm::StringRef json) {
  auto value = llvm::json::parse(json);
  if (!value)
    return value.takeError();
  const llvm::json::Array *array = value->getAsArray();
  if (!array)
    return fail("overrides metadata is not a JSON array");
  std::vector<Override> out;
  for (const llvm::json::Value &v : *array) {
    auto text = v.getAsString();
    if (!text)
      return fail("overrides metadata holds a non-string");
    auto o = parseOverride(*text);
    if (!o)
      return o.takeError();
    out.push_back(std::move(*o));
  }
  return out;
}

} // namespace mlpc
