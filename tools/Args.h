// A small command-line parser for the driver's subcommands: each command
// declares its flags once, and the same table produces `--help` text and
// "unknown option" errors. (llvm::cl would register LLVM's own options in
// every help page and lives in global state.)
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mlpc {

struct FlagSpec {
  std::string name;    // "--steps" or "-n"
  std::string metavar; // "N"; empty for a boolean switch
  std::string help;
  bool repeatable = false; // may be given several times (ParsedArgs::getAll)
};

struct CommandSpec {
  std::string name;    // "train"
  std::string usage;   // "MODEL --data FILE [options]"
  std::string summary; // one line
  std::vector<FlagSpec> flags;
  size_t minPositional = 0, maxPositional = 1;
};

class ParsedArgs {
public:
  std::vector<std::string> positional;
  bool has(const std::string &flag) const { return values_.count(flag) > 0; }
  std::optional<std::string> get(const std::string &flag) const;
  std::string getOr(const std::string &flag, const std::string &fallback) const;
  // Integer/float flags: nullopt + error message on malformed values.
  std::optional<long long> getInt(const std::string &flag, long long fallback,
                                  std::string &error) const;
  std::optional<double> getDouble(const std::string &flag, double fallback,
                                  std::string &error) const;
  // Every value of a repeatable flag, in command-line order.
  std::vector<std::string> getAll(const std::string &flag) const;
  std::map<std::string, std::string> &values() { return values_; }
  std::map<std::string, std::vector<std::string>> &repeated() { return repeated_; }

private:
  std::map<std::string, std::string> values_; // the last value of each flag
  std::map<std::string, std::vector<std::string>> repeated_;
};

// Parses argv (after the subcommand). Returns nullopt with `error` set for an
// unknown flag, a missing value or a wrong number of positional arguments.
// `--help` is reported through ParsedArgs::has("--help").
std::optional<ParsedArgs> parseArgs(const CommandSpec &spec, const std::vector<std::string> &args,
                                    std::string &error);
std::string helpText(const CommandSpec &spec);

} // namespace mlpc
