#include "tools/Args.h"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace mlpc {

std::optional<std::string> ParsedArgs::get(const std::string &flag) const {
  auto it = values_.find(flag);
  if (it == values_.end())
    return std::nullopt;
  return it->second;
}

std::vector<std::string> ParsedArgs::getAll(const std::string &flag) const {
  auto it = repeated_.find(flag);
  return it == repeated_.end() ? std::vector<std::string>{} : it->second;
}

std::string ParsedArgs::getOr(const std::string &flag, const std::string &fallback) const {
  return get(flag).value_or(fallback);
}

std::optional<long long> ParsedArgs::getInt(const std::string &flag, long long fallback,
                                            std::string &error) const {
  auto v = get(flag);
  if (!v)
    return fallback;
  errno = 0;
  char *end = nullptr;
  long long x = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || *end != '\0' || errno == ERANGE) {
    error = fmt::format("{} expects an integer, got '{}'", flag, *v);
    return std::nullopt;
  }
  return x;
}

std::optional<double> ParsedArgs::getDouble(const std::string &flag, double fallback,
                                            std::string &error) const {
  auto v = get(flag);
  if (!v)
    return fallback;
  char *end = nullptr;
  double x = std::strtod(v->c_str(), &end);
  if (v->empty() || *end != '\0' || !std::isfinite(x)) {
    error = fmt::format("{} expects a number, got '{}'", flag, *v);
    return std::nullopt;
  }
  return x;
}

std::optional<ParsedArgs> parseArgs(const CommandSpec &spec, const std::vector<std::string> &args,
                                    std::string &error) {
  ParsedArgs parsed;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string &arg = args[i];
    if (arg == "--help" || arg == "-h") {
      parsed.values()["--help"] = "";
      return parsed;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      parsed.positional.push_back(arg);
      continue;
    }
    std::string name = arg, value;
    bool inlineValue = false;
    if (auto eq = arg.find('='); eq != std::string::npos && arg.rfind("--", 0) == 0) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      inlineValue = true;
    }
    const FlagSpec *flag = nullptr;
    for (const FlagSpec &f : spec.flags)
      if (f.name == name)
        flag = &f;
    if (!flag) {
      error = fmt::format("unknown option '{}' for 'mlpc {}' (see 'mlpc {} --help')", name,
                          spec.name, spec.name);
      return std::nullopt;
    }
    if (!flag->metavar.empty() && !inlineValue) {
      if (i + 1 >= args.size()) {
        error = fmt::format("option '{}' expects a value ({})", name, flag->metavar);
        return std::nullopt;
      }
      value = args[++i];
    }
    parsed.values()[name] = value;
    if (flag->repeatable)
      parsed.repeated()[name].push_back(value);
  }
  if (parsed.positional.size() < spec.minPositional ||
      parsed.positional.size() > spec.maxPositional) {
    error = fmt::format("usage: mlpc {} {}", spec.name, spec.usage);
    return std::nullopt;
  }
  return parsed;
}

std::string helpText(const CommandSpec &spec) {
  std::string out = fmt::format("usage: mlpc {} {}\n\n{}\n", spec.name, spec.usage, spec.summary);
  if (!spec.flags.empty())
    out += "\noptions:\n";
  for (const FlagSpec &f : spec.flags) {
    std::string left = f.metavar.empty() ? f.name : f.name + " " + f.metavar;
    out += fmt::format("  {:<26} {}{}\n", left, f.help, f.repeatable ? " (repeatable)" : "");
  }
  out += fmt::format("  {:<26} {}\n", "--help", "show this help");
  return out;
}

} // namespace mlpc
