// mlpc plot-embedding: the seed's scatter of the learned embedding table, each
// point labelled with its character ('.' included). Two columns are plotted
// as they are; wider tables by their first two principal components
// (runtime/Projection.h), which the title says. Vowels and '.' get their own
// colours, so the clusters the lecture points out are easy to see.
#include "runtime/Projection.h"
#include "runtime/Safetensors.h"
#include "tools/Driver.h"
#include "tools/Gnuplot.h"
#include "tools/OutputFlags.h"

#include <llvm/ADT/SmallString.h>
#include <llvm/Support/Path.h>
#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

#include <cmath>

namespace mlpc {
namespace {

// The parameter the checkpoint's vocabulary indexes: 2-D, one row per character.
llvm::Expected<std::string> findTable(const TensorFile &file, const std::string &path,
                                      size_t vocab) {
  std::vector<std::string> candidates;
  for (const auto &[name, t] : file.tensors)
    if (t.dtype == TensorDType::F32 && t.shape.size() == 2 &&
        t.shape[0] == static_cast<int64_t>(vocab))
      candidates.push_back(name);
  if (candidates.size() == 1)
    return candidates.front();
  std::string all;
  for (const auto &[name, t] : file.tensors)
    if (t.shape.size() == 2)
      all += fmt::format(" {}[{}, {}]", name, t.shape[0], t.shape[1]);
  return llvm::createStringError(
      llvm::inconvertibleErrorCode(),
      candidates.empty() ? "%s has no [%zu, E] embedding table (2-D tensors:%s); pass --param NAME"
                         : "%s has several [%zu, E] tables (2-D tensors:%s); pass --param NAME",
      path.c_str(), vocab, all.c_str());
}

std::string colour(char c) {
  if (c == '.')
    return "0xd62728";
  return std::string("aeiouy").find(c) != std::string::npos ? "0xff7f0e" : "0x1f77b4";
}

std::string script(const std::string &png, const std::string &dataPath, const std::string &title,
                   const Projection2D &p) {
  std::string axes = p.principal ? fmt::format("set xlabel 'principal component 1 ({:.0f}% of the "
                                               "variance)'\nset ylabel 'principal component 2 "
                                               "({:.0f}%)'\n",
                                               100 * p.explained[0], 100 * p.explained[1])
                                 : "set xlabel 'dimension 0'\nset ylabel 'dimension 1'\n";
  return fmt::format("# Written by mlpc plot-embedding; rerun with: gnuplot {}\n"
                     "set terminal pngcairo size 800,800 noenhanced\nset output {}\n"
                     "set title {}\n{}set grid\nset key off\nset size ratio -1\n"
                     "set offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05\n"
                     "plot {} using 1:2:4 with points pt 7 ps 3.2 lc rgb variable, \\\n"
                     "     '' using 1:2:3 with labels tc rgb 'white' font ',11'\n",
                     gnuplotQuote(png + ".gp"), gnuplotQuote(png), gnuplotQuote(title), axes,
                     gnuplotQuote(dataPath));
}

} // namespace

int runPlotEmbedding(const ParsedArgs &args) {
  const std::string &path = args.positional[0];
  if (llvm::Error e = checkOutputFlags(args, {"-o"}))
    return reportError(std::move(e));
  auto file = readSafetensors(path);
  if (!file)
    return reportError(file.takeError());
  auto vocab = file->metadata.find("vocab");
  if (vocab == file->metadata.end() || vocab->second.empty())
    return reportError(
        fmt::format("{} has no vocabulary metadata (write it with mlpc train)", path));
  const std::string &itos = vocab->second;
  std::string name;
  if (auto given = args.get("--param")) {
    name = *given;
  } else {
    auto found = findTable(*file, path, itos.size());
    if (!found)
      return reportError(found.takeError());
    name = *found;
  }
  auto it = file->tensors.find(name);
  if (it == file->tensors.end() || it->second.dtype != TensorDType::F32 ||
      it->second.shape.size() != 2 || it->second.shape[0] != static_cast<int64_t>(itos.size()))
    return reportError(fmt::format("{}: '{}' is not a [{}, E] f32 tensor of the checkpoint", path,
                                   name, itos.size()));
  const TensorData &table = it->second;
  for (int64_t i = 0; i < table.numel(); ++i)
    if (!std::isfinite(table.f32()[i]))
      return reportError(fmt::format("{}: '{}' holds {} at element {}: nothing to plot", path, name,
                                     table.f32()[i], i));
  Projection2D p = project2D(table.f32(), table.shape[0], table.shape[1]);

  llvm::SmallString<256> defaultPng(path);
  llvm::sys::path::replace_extension(defaultPng, "png");
  std::string png = args.getOr("-o", defaultPng.str().str());
  std::string dataPath = png + ".dat";
  std::string data;
  for (size_t r = 0; r < itos.size(); ++r) {
    char c = itos[r];
    std::string label = c == '"' || c == '\\' ? std::string("\\") + c : std::string(1, c);
    data += fmt::format("{:.6g} {:.6g} \"{}\" {}\n", p.x[r], p.y[r], label, colour(c));
  }
  if (llvm::Error e = writeFileAtomically(dataPath, data))
    return reportError(std::move(e));
  auto model = file->metadata.find("model");
  std::string title = fmt::format(
      "{} embedding {} [{} x {}]{}", model != file->metadata.end() ? model->second : "model", name,
      table.shape[0], table.shape[1], p.principal ? ": first two principal components" : "");
  if (llvm::Error e = runGnuplot(script(png, dataPath, title, p), png + ".gp", png))
    return reportError(std::move(e));
  llvm::outs() << png << "\n";
  return kExitOk;
}

} // namespace mlpc
