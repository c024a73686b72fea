// The end of a sweep (and `mlpc sweep --collect`): every run directory read
// back, ranked by val loss, printed as a table, written as results.csv,
// results.json and results.png; then the test split of the best run, and
// only that run, is evaluated ("the number you report in your paper").
#include "tools/Driver.h"
#include "tools/Gnuplot.h"
#include "tools/SweepRun.h"

#include <llvm/Support/FileSystem.h>
#include <llvm/Support/JSON.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/Program.h>
#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace mlpc {
namespace {

std::string configText(const RunResult &r) {
  std::string out;
  for (const auto &[name, value] : r.set)
    out += (out.empty() ? "" : " ") + name + "=" + value;
  return out.empty() ? "(base)" : out;
}

std::string number(std::optional<double> x, const char *format = "{:.4f}") {
  return x ? fmt::format(fmt::runtime(format), *x) : "";
}

// ok runs by val loss, then failed, then unfinished.
void rank(std::vector<RunResult> &runs) {
  auto order = [](const RunResult &r) {
    return r.status == "ok" ? 0 : r.status == "failed" ? 1 : 2;
  };
  std::stable_sort(runs.begin(), runs.end(), [&](const RunResult &a, const RunResult &b) {
    if (order(a) != order(b))
      return order(a) < order(b);
    return a.valLoss.value_or(INFINITY) < b.valLoss.value_or(INFINITY);
  });
}

std::string csvField(const std::string &s) {
  if (s.find_first_of(",\"\n") == std::string::npos)
    return s;
  std::string out = "\"";
  for (char c : s)
    out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string resultsCsv(const std::vector<RunResult> &runs) {
  std::vector<std::string> names;
  for (const RunResult &r : runs)
    for (const auto &kv : r.set)
      if (std::find(names.begin(), names.end(), kv.first) == names.end())
        names.push_back(kv.first);
  std::string csv = "run";
  for (const std::string &n : names)
    csv += "," + csvField(n);
  csv += ",params,train_loss,val_loss,seconds,status,error\n";
  for (const RunResult &r : runs) {
    csv += csvField(r.name);
    for (const std::string &n : names) {
      std::string value;
      for (const auto &kv : r.set)
        if (kv.first == n)
          value = kv.second;
      csv += "," + csvField(value);
    }
    csv += fmt::format(",{},{},{},{:.1f},{},{}\n", r.params ? std::to_string(*r.params) : "",
                       number(r.trainLoss, "{:.6f}"), number(r.valLoss, "{:.6f}"), r.seconds,
                       r.status, csvField(r.error));
  }
  return csv;
}

llvm::json::Value runJson(const RunResult &r) {
  llvm::json::Object config;
  for (const auto &[name, value] : r.set)
    config[name] = value;
  auto optional = [](std::optional<double> x) {
    return x ? llvm::json::Value(*x) : llvm::json::Value(nullptr);
  };
  llvm::json::Object o{{"run", r.name},
                       {"config", std::move(config)},
                       {"params", r.params ? llvm::json::Value(*r.params) : nullptr},
                       {"train_loss", optional(r.trainLoss)},
                       {"val_loss", optional(r.valLoss)},
                       {"seconds", r.seconds},
                       {"status", r.status}};
  if (!r.error.empty())
    o["error"] = r.error;
  return o;
}

void printTable(const std::vector<RunResult> &runs) {
  size_t width = 6;
  for (const RunResult &r : runs)
    width = std::max(width, configText(r).size());
  llvm::outs() << fmt::format("{:>4}  {:<{}}  {:>9}  {:>7}  {:>7}  {:>8}  {}\n", "rank", "config",
                              width, "params", "train", "val", "seconds", "status");
  int i = 0;
  for (const RunResult &r : runs)
    llvm::outs() << fmt::format("{:>4}  {:<{}}  {:>9}  {:>7}  {:>7}  {:>8.1f}  {}\n", ++i,
                                configText(r), width, r.params ? std::to_string(*r.params) : "-",
                                r.trainLoss ? number(r.trainLoss) : "-",
                                r.valLoss ? number(r.valLoss) : "-", r.seconds,
                                r.status == "failed" ? "failed: " + r.error : r.status);
}

// A bar per finished run, best first.
llvm::Error plotResults(const std::string &dir, const std::vector<RunResult> &runs) {
  std::string data;
  double lo = INFINITY, hi = -INFINITY;
  for (const RunResult &r : runs)
    if (r.valLoss) {
      data += fmt::format("\"{}\" {:.6f}\n", configText(r), *r.valLoss); // values hold no '"'
      lo = std::min(lo, *r.valLoss);
      hi = std::max(hi, *r.valLoss);
    }
  if (data.empty())
    return llvm::Error::success();
  std::string dataPath = dir + "/results.dat";
  if (llvm::Error e = writeFileAtomically(dataPath, data))
    return e;
  double pad = std::max(0.01, (hi - lo) * 0.15);
  std::string script = fmt::format(
      "# Written by mlpc sweep; rerun with: gnuplot results.png.gp\n"
      "set terminal pngcairo size 1000,600 noenhanced\nset output {}\n"
      "set title 'mlpc sweep: val loss per run (best first)'\nset ylabel 'val loss'\n"
      "set style fill solid 0.7\nset boxwidth 0.7\nset grid ytics\nset xtics rotate by -40\n"
      "set bmargin 9\nset yrange [{:.4f}:{:.4f}]\nset key off\n"
      "plot {} using 0:2:xtic(1) with boxes lc rgb '#1f77b4', '' using 0:2:(sprintf('%.4f', $2)) "
      "with labels offset 0,0.7\n",
      gnuplotQuote(dir + "/results.png"), lo - pad, hi + pad, gnuplotQuote(dataPath));
  return runGnuplot(script, dir + "/results.png.gp", dir + "/results.png");
}

// `mlpc eval MODEL --weights BEST --split test`, in a child process (the same
// code path and overrides as any user's eval of that checkpoint).
llvm::Expected<double> bestTestLoss(const std::string &mlpcPath, const std::string &dir,
                                    const RunResult &best) {
  std::string runDir = dir + "/" + best.name;
  auto evalArgs = runEvalArgs(runDir);
  if (!evalArgs)
    return evalArgs.takeError();
  std::vector<std::string> argv = {mlpcPath};
  argv.insert(argv.end(), evalArgs->begin(), evalArgs->end());
  argv.insert(argv.end(), {"--weights", runDir + "/checkpoint.safetensors", "--split", "test"});
  std::vector<llvm::StringRef> refs(argv.begin(), argv.end());
  std::string outPath = dir + "/best-test.txt";
  std::optional<llvm::StringRef> redirects[] = {llvm::StringRef("/dev/null"),
                                                llvm::StringRef(outPath), llvm::StringRef(outPath)};
  std::string message;
  int rc = llvm::sys::ExecuteAndWait(mlpcPath, refs, std::nullopt, redirects, 0, 0, &message);
  auto out = llvm::MemoryBuffer::getFile(outPath);
  std::string text = out ? (*out)->getBuffer().str() : "";
  double loss = NAN;
  if (rc != 0 || std::sscanf(text.c_str(), "test %lf", &loss) != 1)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "evaluating the best run's test split failed: %s",
                                   (message + text).c_str());
  return loss;
}

} // namespace

int reportSweep(const std::string &mlpcPath, const std::string &dir) {
  auto paths = listRuns(dir);
  if (!paths)
    return reportError(paths.takeError());
  if (paths->empty())
    return reportError(fmt::format("no sweep runs (directories with a config.json) in {}", dir));
  std::vector<RunResult> runs;
  for (const std::string &p : *paths) {
    auto r = readRun(p);
    if (!r)
      return reportError(r.takeError());
    runs.push_back(std::move(*r));
  }
  rank(runs);
  printTable(runs);
  llvm::json::Array records;
  for (const RunResult &r : runs)
    records.push_back(runJson(r));
  llvm::json::Object results{{"format", "mlpc-sweep/1"}, {"runs", std::move(records)}};
  int failed = 0, pending = 0;
  for (const RunResult &r : runs) {
    failed += r.status == "failed";
    pending += r.status == "pending";
  }
  const RunResult &best = runs.front();
  if (best.status == "ok") {
    auto test = bestTestLoss(mlpcPath, dir, best);
    if (!test)
      return reportError(test.takeError());
    llvm::outs() << fmt::format("best: {} (val {:.4f}); its test loss {:.4f}\n", configText(best),
                                *best.valLoss, *test);
    results["best"] =
        llvm::json::Object{{"run", best.name}, {"val_loss", *best.valLoss}, {"test_loss", *test}};
  }
  std::string json;
  llvm::raw_string_ostream os(json);
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(results))) << "\n";
  if (llvm::Error e = writeFileAtomically(dir + "/results.json", os.str()))
    return reportError(std::move(e));
  if (llvm::Error e = writeFileAtomically(dir + "/results.csv", resultsCsv(runs)))
    return reportError(std::move(e));
  if (llvm::Error e = plotResults(dir, runs))
    return reportError(std::move(e));
  llvm::errs() << fmt::format("mlpc: {} runs: {} ok, {} failed, {} unfinished; wrote "
                              "{}/results.csv, results.json, results.png\n",
                              runs.size(), runs.size() - failed - pending, failed, pending, dir);
  return best.status == "ok" ? kExitOk : kExitUserError;
}

} // namespace mlpc
