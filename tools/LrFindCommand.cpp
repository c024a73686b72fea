// mlpc lr-find: the learning-rate search of makemore part 2 (runtime/LrFinder.h
// states the schedule and the suggestion rule). Writes the curve as CSV and
// PNG (loss against log10 lr, raw and smoothed) and prints a summary, or
// `{"suggested_lr": ...}` with --json.
#include "runtime/LrFinder.h"
#include "tools/Driver.h"
#include "tools/Gnuplot.h"
#include "tools/OutputFlags.h"

#include <llvm/Support/FileSystem.h>
#include <llvm/Support/JSON.h>
#include <llvm/Support/Path.h>
#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

#include <cmath>

namespace mlpc {
namespace {

std::string curveCsv(const LrFindResult &r) {
  std::string csv = "step,lr,log10_lr,loss,smoothed\n";
  for (size_t k = 0; k < r.lr.size(); ++k)
    csv += fmt::format("{},{:.9g},{:.6f},{:.6f},{:.6f}\n", k, r.lr[k], std::log10(r.lr[k]),
                       r.loss[k], r.smoothed[k]);
  return csv;
}

std::string curveScript(const std::string &model, const std::string &csv, const std::string &png,
                        const LrFindResult &r) {
  return fmt::format(
      "# Written by mlpc lr-find; rerun with: gnuplot {}\n"
      "set terminal pngcairo size 900,560 noenhanced\n"
      "set output {}\n"
      "set datafile separator ','\n"
      "set title {}\n"
      "set xlabel 'log10(learning rate)'\nset ylabel 'minibatch loss'\n"
      "set grid\nset key top left\n"
      "set arrow from {:.6f}, graph 0 to {:.6f}, graph 1 nohead dt 2 lc rgb '#2ca02c'\n"
      "plot {} using 3:4 with lines lc rgb '#a0c4e8' title 'minibatch loss', \\\n"
      "     '' using 3:5 with lines lw 2 lc rgb '#d62728' title 'smoothed (EMA 0.98)', \\\n"
      "     NaN with lines dt 2 lc rgb '#2ca02c' title 'suggested lr {:.3g}'\n",
      gnuplotQuote(png + ".gp"), gnuplotQuote(png),
      gnuplotQuote(fmt::format("mlpc lr-find: {} ({} steps)", model, r.lr.size())),
      std::log10(r.suggested), std::log10(r.suggested), gnuplotQuote(csv), r.suggested);
}

// The smoothed loss at a few rates across the range, for the summary.
void printSummary(const LrFindResult &r) {
  llvm::errs() << "     lr   smoothed loss\n";
  size_t rows = std::min<size_t>(7, r.lr.size());
  for (size_t i = 0; i < rows; ++i) {
    size_t k = rows == 1 ? 0 : i * (r.lr.size() - 1) / (rows - 1);
    llvm::errs() << fmt::format("{:>7.3g}   {:.4f}\n", r.lr[k], r.smoothed[k]);
  }
  llvm::errs() << fmt::format("lowest smoothed loss at lr {:.3g}{}\n", r.minSmoothedLr,
                              r.stoppedEarly ? " (the loss diverged after it; search stopped)"
                                             : "");
}

} // namespace

int runLrFind(const ParsedArgs &args) {
  std::string error;
  LrFindOptions options;
  auto steps = args.getInt("--steps", options.steps, error);
  auto lo = steps ? args.getDouble("--lo", options.lo, error) : std::nullopt;
  auto hi = lo ? args.getDouble("--hi", options.hi, error) : std::nullopt;
  auto seed = hi ? args.getInt("--seed", 42, error) : std::nullopt;
  if (!seed)
    return reportError(error);
  options.steps = *steps;
  options.lo = *lo;
  options.hi = *hi;
  options.seed = static_cast<uint64_t>(*seed);
  if (llvm::Error e = validate(options))
    return reportError(std::move(e));

  if (llvm::Error e = checkOutputFlags(args, {"-o"}))
    return reportError(std::move(e));
  std::optional<Loaded> l =
      loadModel(args, /*needData=*/true, "", /*vocab=*/nullptr, /*willTrain=*/true);
  if (!l)
    return kExitUserError;
  ModelRuntime &model = *l->runtime;
  std::string png = args.getOr("-o", model.module().name + "-lr-find.png");
  std::string csv = llvm::sys::path::parent_path(png).str();
  csv = (csv.empty() ? "" : csv + "/") + llvm::sys::path::stem(png).str() + ".csv";
  // Fail on a bad output path now, not after the search.
  if (llvm::Error e = writeFileAtomically(csv, "step,lr,log10_lr,loss,smoothed\n"))
    return reportError(std::move(e));
  llvm::errs() << fmt::format("mlpc: lr-find {}: {} steps, lr 10^{:.2f} .. 10^{:.2f}, batch {}\n",
                              model.module().name, options.steps, std::log10(options.lo),
                              std::log10(options.hi), model.batch());
  auto result = findLearningRate(model, l->data->train, options);
  if (!result)
    return reportError(result.takeError());
  if (llvm::Error e = writeFileAtomically(csv, curveCsv(*result)))
    return reportError(std::move(e));
  if (llvm::Error e =
          runGnuplot(curveScript(model.module().name, csv, png, *result), png + ".gp", png))
    return reportError(std::move(e));
  printSummary(*result);
  llvm::errs() << fmt::format("mlpc: wrote {} and {}\n", csv, png);
  if (args.has("--json")) {
    llvm::json::Object out{{"suggested_lr", result->suggested},
                           {"min_smoothed_loss_lr", result->minSmoothedLr},
                           {"steps", static_cast<int64_t>(result->lr.size())},
                           {"csv", csv},
                           {"png", png}};
    llvm::outs() << llvm::json::Value(std::move(out)) << "\n";
  } else {
    llvm::outs() << fmt::format("suggested lr {:.3g} (a third of a decade below the smoothed "
                                "minimum at {:.3g}; try --set lr={:.3g})\n",
                                result->suggested, result->minSmoothedLr, result->suggested);
  }
  return kExitOk;
}

} // namespace mlpc
