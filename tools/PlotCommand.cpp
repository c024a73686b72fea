// mlpc plot: renders a `train --stats` JSON file as PNG files with gnuplot.
//
// The plots are those of the seed notebooks (makemore part 3): the loss
// curve, the activation and gradient distributions per layer, and the
// update:data ratio over time; plus the gradient norms over time, which is
// where zero initialisation shows which parameters train at all. The data
// files and the gnuplot script stay next to the PNGs (DIR/plot-data/), so a
// plot can be restyled by editing the script and rerunning gnuplot on it.
#include "tools/Driver.h"
#include "tools/OutputFlags.h"

#include <llvm/Support/FileSystem.h>
#include <llvm/Support/JSON.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/Path.h>
#include <llvm/Support/Program.h>
#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

#include <cmath>
#include <optional>

namespace mlpc {
namespace {

using llvm::json::Array;
using llvm::json::Object;

llvm::Error fail(std::string message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

// A gnuplot single-quoted string: only ' is special (written twice).
std::string quote(llvm::StringRef s) {
  std::string out = "'";
  for (char c : s)
    out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::optional<double> num(const Object *o, llvm::StringRef key) {
  return o ? o->getNumber(key) : std::nullopt;
}

// "?" is the script's missing-value marker (a null in the JSON, or a zero on a log axis).
std::string cell(std::optional<double> x) {
  return x && std::isfinite(*x) ? fmt::format("{:.9g}", *x) : "?";
}

std::string shapeText(const Object &o) {
  std::vector<std::string> dims;
  if (const Array *shape = o.getArray("shape"))
    for (const llvm::json::Value &d : *shape)
      dims.push_back(fmt::format("{}", d.getAsInteger().value_or(0)));
  return fmt::format("[{}]", fmt::join(dims, "x"));
}

// One parameter statistic over the records: the parameters' names, which
// are weights (2-D), which ever have a finite value, and the gnuplot data
// table (step, then one column per parameter; a record whose parameters do
// not match the first's is skipped). `field` "grad_norm" is the norm of the
// gradient; on a log axis values <= 0 are left out.
struct ParamSeries {
  std::vector<std::string> names;
  std::vector<bool> weight, any;
  std::string table;
};

ParamSeries paramSeries(const Array &records, const Array &params, const char *field,
                        bool logAxis) {
  auto value = [&](const Object *param) -> std::optional<double> {
    if (!param)
      return std::nullopt;
    std::optional<double> x;
    if (std::string(field) == "grad_norm")
      x = num(param->getObject("grad"), "norm");
    else
      x = num(param, field);
    if (x && logAxis && *x <= 0)
      return std::nullopt;
    return x;
  };
  ParamSeries out;
  for (const llvm::json::Value &p : params)
    if (const Object *o = p.getAsObject()) {
      out.names.push_back(o->getString("name").value_or("?").str());
      out.weight.push_back(o->getArray("shape") && o->getArray("shape")->size() == 2);
    }
  out.any.assign(out.names.size(), false);
  for (const llvm::json::Value &r : records) {
    const Object *rec = r.getAsObject();
    const Array *ps = rec ? rec->getArray("params") : nullptr;
    if (!ps || ps->size() != out.names.size())
      continue;
    out.table += cell(num(rec, "step"));
    for (size_t i = 0; i < out.names.size(); ++i) {
      std::optional<double> x = value((*ps)[i].getAsObject());
      out.any[i] = out.any[i] || (x && std::isfinite(*x));
      out.table += " " + cell(x);
    }
    out.table += "\n";
  }
  return out;
}

class Plotter {
public:
  Plotter(const Object &stats, std::string dir) : stats_(stats), dir_(std::move(dir)) {
    dataDir_ = dir_ + "/plot-data";
    model_ = stats.getString("model").value_or("model").str();
    if (const Array *records = stats.getArray("records"))
      records_ = records;
    steps_ = stats.getNumber("steps").value_or(1);
  }

  llvm::Error run(const std::string &gnuplot, std::vector<std::string> &written);

private:
  llvm::Error writeData(const std::string &name, const std::string &text, std::string &path);
  void begin(const std::string &png, const std::string &title, const std::string &xlabel,
             const std::string &ylabel);
  llvm::Error lossPlot();
  llvm::Error histogramPlot(const std::string &png, const char *list, const char *field,
                            bool onlyWeights, const std::string &what);
  llvm::Error timePlot(const std::string &png, const char *field, bool logAxis,
                       const std::string &title, const std::string &ylabel,
                       std::optional<double> guide);

  const Object &stats_;
  std::string dir_, dataDir_, model_, script_;
  const Array *records_ = nullptr;
  double steps_ = 1;
  std::vector<std::string> pngs_;
};

llvm::Error Plotter::writeData(const std::string &name, const std::string &text,
                               std::string &path) {
  path = dataDir_ + "/" + name;
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec)
    return fail(fmt::format("cannot write '{}': {}", path, ec.message()));
  os << text;
  return llvm::Error::success();
}

void Plotter::begin(const std::string &png, const std::string &title, const std::string &xlabel,
                    const std::string &ylabel) {
  pngs_.push_back(dir_ + "/" + png);
  script_ +=
      fmt::format("\nreset\nset terminal pngcairo size 1200,600 noenhanced font 'sans,10'\n"
                  "set output {}\nset title {}\nset xlabel {}\nset ylabel {}\nset grid\n"
                  "set datafile missing '?'\nset key outside right top\n",
                  quote(pngs_.back()), quote(model_ + ": " + title), quote(xlabel), quote(ylabel));
}

// Train loss as 100-step window means (light) and their 10-window means
// (the notebooks' lossi.view(-1, 1000).mean(1)), val loss as points.
llvm::Error Plotter::lossPlot() {
  const Object *train = stats_.getObject("train_loss");
  const Array *steps = train ? train->getArray("step") : nullptr;
  const Array *means = train ? train->getArray("mean") : nullptr;
  if (!steps || !means || steps->size() != means->size() || steps->empty())
    return fail("the stats file has no train_loss curve");
  int64_t window = stats_.getInteger("train_loss_window").value_or(1);
  std::string text, smooth;
  double blockSum = 0, lo = INFINITY, hi = -INFINITY;
  int blockCount = 0;
  for (size_t i = 0; i < steps->size(); ++i) {
    std::optional<double> s = (*steps)[i].getAsNumber(), m = (*means)[i].getAsNumber();
    text += fmt::format("{} {}\n", cell(s), cell(m));
    if (m && *m > 0) {
      lo = std::min(lo, *m);
      hi = std::max(hi, *m);
    }
    if (m) {
      blockSum += *m;
      ++blockCount;
    }
    if (blockCount == 10 || (i + 1 == steps->size() && blockCount > 0)) {
      smooth += fmt::format("{} {}\n", cell(s), cell(blockSum / blockCount));
      blockSum = 0;
      blockCount = 0;
    }
  }
  std::string trainPath, smoothPath, valPath;
  if (auto e = writeData("loss_train.dat", text, trainPath))
    return e;
  if (auto e = writeData("loss_train_smooth.dat", smooth, smoothPath))
    return e;
  std::string val;
  if (const Object *v = stats_.getObject("val_loss"))
    if (const Array *vs = v->getArray("step"), *vl = v->getArray("loss");
        vs && vl && vs->size() == vl->size())
      for (size_t i = 0; i < vs->size(); ++i) {
        std::optional<double> l = (*vl)[i].getAsNumber();
        val += fmt::format("{} {}\n", cell((*vs)[i].getAsNumber()), cell(l));
        if (l && *l > 0) {
          lo = std::min(lo, *l);
          hi = std::max(hi, *l);
        }
      }
  begin("loss.png", "loss (log scale)", "step", "cross-entropy loss");
  script_ +=
      fmt::format("set logscale y\nset autoscale yfix\nset offsets 0, 0, graph 0.05, graph 0.05\n"
                  "set xrange [0:{}]\n",
                  steps_);
  // A loss curve rarely spans a decade, where gnuplot puts its log-axis tics:
  // eight tics spaced evenly in log between the extremes, at 3 digits.
  if (std::isfinite(lo) && hi > lo) {
    std::vector<std::string> tics;
    for (int i = 0; i < 8; ++i) {
      double t = std::exp(std::log(lo) + i * (std::log(hi) - std::log(lo)) / 7);
      tics.push_back(fmt::format("{:.3g}", t));
    }
    script_ += fmt::format("set ytics ({})\n", fmt::join(tics, ", "));
  }
  script_ +=
      fmt::format("plot {} using 1:2 with lines lc rgb '#a6c8e8' title {}, \\\n"
                  "     {} using 1:2 with lines lw 2 lc rgb '#1f5fa8' title {}",
                  quote(trainPath), quote(fmt::format("train, mean of {} steps", window)),
                  quote(smoothPath), quote(fmt::format("train, mean of {} steps", 10 * window)));
  if (!val.empty()) {
    if (auto e = writeData("loss_val.dat", val, valPath))
      return e;
    script_ += fmt::format(
        ", \\\n     {} using 1:2 with linespoints lw 2 pt 7 lc rgb '#c0392b' title 'val'",
        quote(valPath));
  }
  script_ += "\n";
  return llvm::Error::success();
}

// Density curves of one histogram per layer (or per weight) at the last
// record, like the notebooks' plt.plot(hx[:-1], hy) per layer.
llvm::Error Plotter::histogramPlot(const std::string &png, const char *list, const char *field,
                                   bool onlyWeights, const std::string &what) {
  if (!records_ || records_->empty())
    return fail("the stats file has no records");
  const Object *last = records_->back().getAsObject();
  const Array *items = last ? last->getArray(list) : nullptr;
  if (!items)
    return fail(fmt::format("the stats file's records have no '{}'", list));
  // Layers: the nonlinearity outputs when there are any (their distribution is
  // the one the lectures read), else every named value.
  bool anyNonlinear = false;
  for (const llvm::json::Value &item : *items)
    if (const Object *o = item.getAsObject(); o && o->getObject("grad"))
      anyNonlinear = true;
  const std::string dataName = png.substr(0, png.size() - 4) + ".dat";
  std::string text, plot;
  int block = 0;
  for (const llvm::json::Value &item : *items) {
    const Object *o = item.getAsObject();
    const Object *s = o ? o->getObject(field) : nullptr;
    if (!s || (onlyWeights && (!o->getArray("shape") || o->getArray("shape")->size() != 2)) ||
        (!onlyWeights && anyNonlinear && !o->getObject("grad")))
      continue;
    const Object *hist = s->getObject("hist");
    const Array *counts = hist ? hist->getArray("counts") : nullptr;
    std::optional<double> lo = num(hist, "lo"), hi = num(hist, "hi");
    if (!counts || counts->empty() || !lo || !hi || *hi <= *lo)
      continue;
    double total = 0, width = (*hi - *lo) / counts->size();
    for (const llvm::json::Value &c : *counts)
      total += c.getAsNumber().value_or(0);
    if (total == 0)
      continue;
    for (size_t i = 0; i < counts->size(); ++i)
      text += fmt::format("{:.9g} {:.9g}\n", *lo + (i + 0.5) * width,
                          (*counts)[i].getAsNumber().value_or(0) / (total * width));
    text += "\n\n";
    std::string name = o->getString("name").value_or("?").str();
    std::string label = fmt::format(
        "{} {}: mean {:+.2e} std {:.2e}", name,
        onlyWeights ? shapeText(*o) : "(" + o->getString("op").value_or("?").str() + ")",
        num(s, "mean").value_or(NAN), num(s, "std").value_or(NAN));
    if (auto sat = num(s, "saturated"))
      label += fmt::format(", saturated {:.1f}%", 100 * *sat);
    if (auto zero = num(s, "zero_fraction"); zero && *zero > 0)
      label += fmt::format(", zeros {:.1f}%", 100 * *zero);
    if (onlyWeights)
      if (auto ratio = num(o, "update_to_data"))
        label += fmt::format(", update:data {:.1e}", *ratio);
    plot +=
        fmt::format("{}{} index {} using 1:2 with lines lw 2 title {}", block ? ", \\\n     " : "",
                    block ? "''" : quote(dataDir_ + "/" + dataName), block, quote(label));
    ++block;
  }
  if (block == 0)
    return llvm::Error::success(); // nothing of that kind (e.g. no nonlinearity)
  std::string path;
  if (auto e = writeData(dataName, text, path))
    return e;
  int64_t step = last->getInteger("step").value_or(0);
  begin(png, fmt::format("{} at step {}", what, step), "value", "density");
  script_ += "set key below\nplot " + plot + "\n";
  return llvm::Error::success();
}

// One line per parameter over the records: solid for weights (rank 2),
// dashed for the rest. Parameters with no value to draw at any record (null,
// or <= 0 on a log axis) are named in a label instead: on the gradient-norm
// plot, the parameters that never received a gradient.
llvm::Error Plotter::timePlot(const std::string &png, const char *field, bool logAxis,
                              const std::string &title, const std::string &ylabel,
                              std::optional<double> guide) {
  if (!records_ || records_->empty())
    return fail("the stats file has no records");
  const Object *first = records_->front().getAsObject();
  const Array *params = first ? first->getArray("params") : nullptr;
  if (!params)
    return fail("the stats file's records have no 'params'");
  const ParamSeries series = paramSeries(*records_, *params, field, logAxis);
  const std::vector<std::string> &names = series.names;
  const std::vector<bool> &weight = series.weight, &any = series.any;
  const std::string &text = series.table;
  std::vector<std::string> never;
  std::string path;
  if (auto e = writeData(png.substr(0, png.size() - 4) + ".dat", text, path))
    return e;
  begin(png, title, "step", ylabel);
  script_ += fmt::format("set xrange [0:{}]\n", steps_);
  if (logAxis)
    script_ += "set logscale y\nset format y '%.0e'\n";
  // A weight starts a colour; the vectors declared after it (its bias,
  // batchnorm gain and bias) keep that colour, dashed.
  static const char *const kColours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  std::vector<std::string> lines;
  int colour = -1, dash = 1;
  for (size_t i = 0; i < names.size(); ++i) {
    if (weight[i] || colour < 0) {
      ++colour;
      dash = 1;
    }
    int dt = weight[i] ? 1 : ++dash;
    if (!any[i]) {
      never.push_back(names[i]);
      continue;
    }
    lines.push_back(fmt::format(
        "{} using 1:{} with linespoints pt 7 ps 0.4 lw 2 dt {} lc rgb '{}' title {}",
        lines.empty() ? quote(path) : "''", i + 2, dt, kColours[colour % 10], quote(names[i])));
  }
  if (guide)
    lines.push_back(fmt::format("{} with lines lw 1 dt 3 lc rgb 'black' title {}", *guide,
                                quote(fmt::format("{:g} (the lecture's guide)", *guide))));
  if (!never.empty())
    script_ += fmt::format(
        "set label 1 {} at graph 0.01, graph 0.04 front\n",
        quote(fmt::format("no value at any record ({}): {}",
                          logAxis ? "zero or undefined" : "undefined", fmt::join(never, " "))));
  if (lines.empty()) // gnuplot refuses a plot with no points at all
    lines.push_back("NaN notitle");
  script_ += fmt::format("plot {}\n", fmt::join(lines, ", \\\n     "));
  return llvm::Error::success();
}

llvm::Error Plotter::run(const std::string &gnuplot, std::vector<std::string> &written) {
  if (std::error_code ec = llvm::sys::fs::create_directories(dataDir_))
    return fail(fmt::format("cannot create '{}': {}", dataDir_, ec.message()));
  if (auto e = lossPlot())
    return e;
  if (auto e =
          histogramPlot("activations.png", "layers", "value", false, "activation distribution"))
    return e;
  if (auto e = histogramPlot("activation_grads.png", "layers", "grad", false,
                             "gradient distribution (dloss/dh)"))
    return e;
  if (auto e =
          histogramPlot("param_grads.png", "params", "grad", true, "weight gradient distribution"))
    return e;
  if (auto e = timePlot("update_ratio.png", "log10_update_to_data", false,
                        "update:data ratio, log10(lr * grad.std / param.std)", "log10 ratio", -3.0))
    return e;
  if (auto e = timePlot("grad_norms.png", "grad_norm", true, "gradient norm per parameter",
                        "||grad||", std::nullopt))
    return e;
  std::string scriptPath;
  if (auto e =
          writeData("plots.gp", "# Written by mlpc plot; rerun with: gnuplot plots.gp\n" + script_,
                    scriptPath))
    return e;
  std::string errPath = dataDir_ + "/gnuplot.log";
  std::optional<llvm::StringRef> redirects[] = {std::nullopt, llvm::StringRef(errPath),
                                                llvm::StringRef(errPath)};
  std::string message;
  int rc = llvm::sys::ExecuteAndWait(gnuplot, {gnuplot, scriptPath}, std::nullopt, redirects, 120,
                                     0, &message);
  if (rc != 0) {
    auto log = llvm::MemoryBuffer::getFile(errPath);
    return fail(fmt::format("gnuplot failed ({}) on {}:\n{}",
                            message.empty() ? fmt::format("exit {}", rc) : message, scriptPath,
                            log ? (*log)->getBuffer().str() : ""));
  }
  written = pngs_;
  return llvm::Error::success();
}

} // namespace

int runPlot(const ParsedArgs &args) {
  auto out = args.get("-o");
  if (!out)
    return reportError("mlpc plot needs -o DIR");
  if (llvm::Error e = checkOutputFlags(args, {}, {"-o"}))
    return reportError(std::move(e));
  const std::string &input = args.positional[0];
  auto buffer = llvm::MemoryBuffer::getFile(input);
  if (!buffer)
    return reportError(fmt::format("cannot read '{}': {}", input, buffer.getError().message()));
  auto json = llvm::json::parse((*buffer)->getBuffer());
  if (!json)
    return reportError(
        fmt::format("{} is not valid JSON: {}", input, llvm::toString(json.takeError())));
  const Object *stats = json->getAsObject();
  if (!stats || stats->getString("format") != "mlpc-stats/1")
    return reportError(
        fmt::format("{} is not an 'mlpc train --stats' file (format mlpc-stats/1)", input));
  auto gnuplot = llvm::sys::findProgramByName("gnuplot");
  if (!gnuplot)
    return reportError("gnuplot not found on PATH: mlpc plot renders with it "
                       "(Debian: apt-get install gnuplot-nox, or run scripts/setup.sh)");
  llvm::SmallString<256> dir(*out);
  if (std::error_code ec = llvm::sys::fs::make_absolute(dir))
    return reportError(fmt::format("cannot resolve '{}': {}", *out, ec.message()));
  Plotter plotter(*stats, dir.str().str());
  std::vector<std::string> written;
  if (llvm::Error e = plotter.run(*gnuplot, written))
    return reportError(std::move(e));
  for (const std::string &png : written)
    llvm::outs() << png << "\n";
  return kExitOk;
}

} // namespace mlpc
