// mlpc sweep: the experiment loop of makemore part 2. Trains the Cartesian
// product of `--grid NAME=V1,V2,...` (names as in --set), J runs at a time in
// separate `mlpc train` processes, one directory per run (tools/SweepRun.h),
// then ranks the runs by val loss and evaluates the test split of the best
// run only. `--emit-jobs FILE` writes the runs as shell commands for another
// job runner (GNU parallel, a Slurm array); `--collect DIR` builds the results
// from finished run directories.
#include "tools/Driver.h"
#include "tools/Gnuplot.h"
#include "tools/OutputFlags.h"
#include "tools/SweepRun.h"

#include <llvm/ADT/STLExtras.h>
#include <llvm/Support/FileSystem.h>
#include <llvm/Support/Path.h>
#include <llvm/Support/Process.h>
#include <llvm/Support/Program.h>
#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace mlpc {

namespace {

using Grid = std::vector<std::pair<std::string, std::vector<std::string>>>;
using Point = std::vector<std::pair<std::string, std::string>>;

std::string absolute(const std::string &path) {
  llvm::SmallString<256> out(path);
  llvm::sys::fs::make_absolute(out);
  return out.str().str();
}

// "NAME=V1,V2,..." (';' separates the values instead when one of them holds a
// comma, as a learning-rate schedule does).
llvm::Expected<std::pair<std::string, std::vector<std::string>>> parseGrid(llvm::StringRef text) {
  auto o = parseOverride(text);
  if (!o)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "--grid expects NAME=V1,V2,..., got '%s'", text.str().c_str());
  char separator = llvm::StringRef(o->value).contains(';') ? ';' : ',';
  llvm::SmallVector<llvm::StringRef> parts;
  llvm::StringRef(o->value).split(parts, separator, -1, false);
  std::vector<std::string> values;
  for (llvm::StringRef p : parts) {
    if (p.trim().empty())
      continue;
    // Two equal values would be two runs of one directory at once.
    if (llvm::is_contained(values, p.trim().str()))
      return llvm::createStringError(llvm::inconvertibleErrorCode(), "--grid %s lists '%s' twice",
                                     o->name.c_str(), p.trim().str().c_str());
    values.push_back(p.trim().str());
  }
  if (values.empty())
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "--grid %s has no values (expected %s=V1,V2,...)",
                                   o->name.c_str(), o->name.c_str());
  return std::make_pair(o->name, values);
}

std::vector<Point> cartesian(const Grid &grid) {
  std::vector<Point> points = {{}};
  for (const auto &[name, values] : grid) {
    std::vector<Point> next;
    for (const Point &p : points)
      for (const std::string &v : values) {
        Point q = p;
        q.push_back({name, v});
        next.push_back(std::move(q));
      }
    points = std::move(next);
  }
  return points;
}

struct SweepPlan {
  std::string dir;
  std::vector<RunConfig> runs;
};

// Validates every grid value against the model (unknown names, non-integer
// dims fail here, before anything runs) and builds each run's command lines.
llvm::Expected<SweepPlan> plan(const ParsedArgs &args) {
  Grid grid;
  for (const std::string &text : args.getAll("--grid")) {
    auto g = parseGrid(text);
    if (!g)
      return g.takeError();
    for (const auto &[name, values] : grid)
      if (name == g->first)
        return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                       "--grid %s is given twice; list all its values in one "
                                       "--grid",
                                       name.c_str());
    grid.push_back(std::move(*g));
  }
  auto base = commandOverrides(args);
  if (!base)
    return base.takeError();
  if (auto steps = args.get("--steps"))
    base->push_back({"steps", *steps});
  for (const auto &[name, values] : grid)
    for (const std::string &v : values) {
      std::vector<Override> trial = *base;
      trial.push_back({name, v});
      auto file = ModelFile::open(args.positional[0], trial);
      if (!file)
        return file.takeError();
      if (!(*file)->parsedCleanly()) {
        (*file)->flushDiagnostics();
        return llvm::createStringError(llvm::inconvertibleErrorCode(), "the model has errors");
      }
    }
  SweepPlan p;
  p.dir = absolute(*args.get("--out"));
  std::string model = absolute(args.positional[0]);
  // The names file is found once, here, so every run reads the same one
  // wherever it runs (and a missing file fails now, not in every run).
  auto data = namesFilePath(args);
  if (!data)
    return data.takeError();
  if (!llvm::sys::fs::exists(*data))
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "cannot read '%s'",
                                   data->c_str());
  std::vector<std::string> common = {"--data", absolute(*data)};
  for (const Point &point : cartesian(grid)) {
    RunConfig c;
    c.name = runName(point);
    c.set = point;
    // One thread per run: the sweep's parallelism is its runs (--jobs).
    c.trainArgs = {
        "train",     model, "--samples", "0", "--no-test", "--seed", args.getOr("--seed", "42"),
        "--threads", "1"};
    c.trainArgs.insert(c.trainArgs.end(), common.begin(), common.end());
    for (const Override &o : *base)
      c.trainArgs.insert(c.trainArgs.end(), {"--set", o.text()});
    for (const auto &[name, value] : point)
      c.trainArgs.insert(c.trainArgs.end(), {"--set", name + "=" + value});
    c.evalArgs = {"eval", model, "--threads", "1"};
    c.evalArgs.insert(c.evalArgs.end(), common.begin(), common.end());
    p.runs.push_back(std::move(c));
  }
  return p;
}

std::string duration(double seconds) {
  int s = static_cast<int>(seconds + 0.5);
  return s >= 60 ? fmt::format("{}m{:02d}s", s / 60, s % 60) : fmt::format("{}s", s);
}

// Runs the unfinished runs, `jobs` at a time, printing progress as each ends.
void runAll(const std::string &mlpcPath, const std::vector<std::string> &todo, int jobs,
            const volatile std::sig_atomic_t &stop) {
  std::mutex mutex;
  std::atomic<size_t> next{0};
  size_t done = 0, failed = 0;
  auto start = std::chrono::steady_clock::now();
  auto worker = [&] {
    while (!stop) {
      size_t i = next++;
      if (i >= todo.size())
        return;
      auto result = executeRun(mlpcPath, todo[i], &stop);
      std::lock_guard<std::mutex> lock(mutex);
      if (!result || result->status == "pending") {
        if (!result)
          llvm::errs() << "mlpc: sweep: " << llvm::toString(result.takeError()) << "\n";
        continue;
      }
      ++done;
      failed += result->status != "ok";
      double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      size_t left = todo.size() - done;
      size_t running = std::min<size_t>(jobs, left);
      std::string outcome = result->status == "ok"
                                ? fmt::format("val {:.4f}", result->valLoss.value_or(NAN))
                                : "FAILED: " + result->error;
      llvm::errs() << fmt::format("mlpc: sweep [{}/{}] {} {} ({:.1f} s); {} running, {} queued, "
                                  "{} failed, ETA {}\n",
                                  done, todo.size(), result->name, outcome, result->seconds,
                                  running, left - running, failed,
                                  duration(elapsed / done * left / jobs));
    }
  };
  std::vector<std::thread> threads;
  for (int j = 0; j < jobs; ++j)
    threads.emplace_back(worker);
  for (std::thread &t : threads)
    t.join();
}

std::string shellQuote(const std::string &s) {
  std::string out = "'";
  for (char c : s)
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

int emitJobs(const std::string &mlpcPath, const SweepPlan &p, const std::string &jobsFile) {
  std::string lines;
  size_t count = 0;
  for (const RunConfig &c : p.runs) {
    std::string runDir = p.dir + "/" + c.name;
    if (runFinished(runDir))
      continue;
    lines += fmt::format("{} sweep --run-one {}\n", shellQuote(mlpcPath), shellQuote(runDir));
    ++count;
  }
  if (llvm::Error e = writeFileAtomically(jobsFile, lines))
    return reportError(std::move(e));
  llvm::errs() << fmt::format("mlpc: wrote {} commands ({} runs finished already) to {}\n"
                              "  run them, e.g.: parallel -j 4 < {}   or a Slurm array: sed -n "
                              "\"${{SLURM_ARRAY_TASK_ID}}p\" "
                              "{} | sh\n  then: mlpc sweep --collect {}\n",
                              count, p.runs.size() - count, jobsFile, jobsFile, jobsFile, p.dir);
  return kExitOk;
}

std::string printArgs(const std::vector<std::string> &args) {
  std::string out;
  for (const std::string &a : args)
    out += (out.empty() ? "" : " ") + a;
  return out;
}

} // namespace

int runSweep(const ParsedArgs &args) {
  std::string mlpcPath =
      llvm::sys::fs::getMainExecutable(nullptr, reinterpret_cast<void *>(&runSweep));
  if (auto runDir = args.get("--run-one")) {
    auto result = executeRun(mlpcPath, absolute(*runDir), nullptr);
    if (!result)
      return reportError(result.takeError());
    llvm::errs() << fmt::format("mlpc: {}: {}\n", result->name,
                                result->status == "ok" ? "ok" : result->error);
    return result->status == "ok" ? kExitOk : kExitUserError;
  }
  if (auto dir = args.get("--collect")) {
    if (!args.positional.empty())
      return reportError("--collect DIR takes no MODEL (the runs' configs name it)");
    return reportSweep(mlpcPath, absolute(*dir));
  }
  if (args.positional.empty() || !args.has("--out") || !args.has("--grid"))
    return reportError("usage: mlpc sweep MODEL --grid NAME=V1,V2,... --out DIR (see --help)");
  if (llvm::Error e = checkOutputFlags(args, {}, {"--out"}))
    return reportError(std::move(e));
  std::string error;
  auto jobs = args.getInt("--jobs", std::thread::hardware_concurrency(), error);
  if (!jobs || *jobs < 1)
    return reportError(error.empty() ? "--jobs must be positive" : error);
  auto p = plan(args);
  if (!p)
    return reportError(p.takeError());
  std::vector<std::string> todo;
  for (const RunConfig &c : p->runs) {
    if (llvm::Error e = prepareRun(p->dir, c))
      return reportError(std::move(e));
    std::string runDir = p->dir + "/" + c.name;
    if (args.has("--retry-failed") && runFinished(runDir)) {
      auto previous = readRun(runDir);
      if (previous && previous->status == "failed")
        llvm::sys::fs::remove(runDir + "/status.json");
      else if (!previous)
        llvm::consumeError(previous.takeError());
    }
    if (!runFinished(runDir))
      todo.push_back(runDir);
  }
  if (auto jobsFile = args.get("--emit-jobs"))
    return emitJobs(mlpcPath, *p, *jobsFile);
  int j = static_cast<int>(std::min<long long>(*jobs, std::max<size_t>(todo.size(), 1)));
  llvm::errs() << fmt::format("mlpc: sweep of {} runs into {}: {} finished already, {} to run, "
                              "{} at a time\n  e.g. mlpc {}\n",
                              p->runs.size(), p->dir, p->runs.size() - todo.size(), todo.size(), j,
                              printArgs(p->runs.front().trainArgs));
  const volatile std::sig_atomic_t &stop = installStopHandlers();
  runAll(mlpcPath, todo, j, stop);
  if (stop) {
    llvm::errs() << "mlpc: sweep interrupted; finished runs are kept, the rest resume when you "
                    "run the same command again\n";
    reportSweep(mlpcPath, p->dir);
    return 128 + static_cast<int>(stop);
  }
  return reportSweep(mlpcPath, p->dir);
}

} // namespace mlpc
