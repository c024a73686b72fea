// One run of `mlpc sweep`: a directory that holds everything about it, so a
// sweep can be resumed, farmed out to another job runner and collected again
// from the files alone.
//
//   DIR/<run>/config.json          what to run: the overrides and the exact
//                                  `mlpc train` command line (written first)
//   DIR/<run>/train.log            the child's stdout and stderr
//   DIR/<run>/checkpoint.safetensors  written atomically by `mlpc train --out`
//                                  (also on SIGINT/SIGTERM: a rerun resumes it)
//   DIR/<run>/metrics.json         `mlpc train --metrics`
//   DIR/<run>/status.json          written atomically last: the run is finished
//                                  ("ok" or "failed" with its error)
//
// A run without status.json is not finished: the next sweep (or `--run-one`)
// runs it again, resuming from its checkpoint when one exists. So a killed
// sweep loses at most the steps in flight since each run's last checkpoint.
#pragma once

#include <llvm/Support/Error.h>
#include <llvm/Support/JSON.h>

#include <csignal>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mlpc {

struct RunConfig {
  std::string name;                                     // directory name, from the overrides
  std::vector<std::pair<std::string, std::string>> set; // grid point, in grid order
  std::vector<std::string> trainArgs; // argv of `mlpc train` without the output flags
  std::vector<std::string> evalArgs;  // argv of `mlpc eval` without --weights
};

struct RunResult {
  std::string name;
  std::vector<std::pair<std::string, std::string>> set;
  std::string status; // "ok", "failed", or "pending" (not finished)
  std::string error;  // for "failed"
  std::optional<double> trainLoss, valLoss;
  std::optional<int64_t> params;
  double seconds = 0;
};

// A directory name for a grid point: "E=10_H=300" with characters outside
// [A-Za-z0-9.=+-] replaced by '_'.
std::string runName(const std::vector<std::pair<std::string, std::string>> &set);

// Writes DIR/<name>/config.json (creating the directory). An existing run
// directory must hold the same config, else an error (a different sweep
// writes to the same --out).
llvm::Error prepareRun(const std::string &dir, const RunConfig &config);

// True when DIR/<name>/status.json exists.
bool runFinished(const std::string &runDir);

// Runs one prepared run to completion in a child process (killed with this
// process), then writes status.json. Returns the result; an error only when
// the run could not be started or its status not written. When `*stop`
// becomes non-zero the child gets SIGTERM (it saves a checkpoint) and the run
// stays unfinished (status "pending").
llvm::Expected<RunResult> executeRun(const std::string &mlpcPath, const std::string &runDir,
                                     const volatile std::sig_atomic_t *stop);

// The run's `mlpc eval` argv (from its config), without --weights.
llvm::Expected<std::vector<std::string>> runEvalArgs(const std::string &runDir);

// Reads a run directory back (config, status, metrics).
llvm::Expected<RunResult> readRun(const std::string &runDir);

// Every run directory under `dir` (those with a config.json), sorted by name.
llvm::Expected<std::vector<std::string>> listRuns(const std::string &dir);

// The sweep's report (tools/SweepResults.cpp): ranks the runs in `dir` by val
// loss, prints the table, writes results.csv / .json / .png and evaluates the
// best run's test split with `mlpcPath eval`. Returns the driver's exit code.
int reportSweep(const std::string &mlpcPath, const std::string &dir);

} // namespace mlpc
