// Rendering with gnuplot (Debian gnuplot-nox): the plot commands write a
// script and its data files, then run gnuplot once on the script. The script
// stays on disk, so a plot can be restyled and rerun by hand.
#pragma once

#include "runtime/OutputFiles.h" // writeFileAtomically, for the plot commands

#include <llvm/ADT/StringRef.h>
#include <llvm/Support/Error.h>

#include <string>

namespace mlpc {

// A gnuplot single-quoted string: only ' is special (written twice).
std::string gnuplotQuote(llvm::StringRef s);

// Writes `script` to `scriptPath` and runs gnuplot on it (its output goes to
// scriptPath + ".log", quoted in the error if gnuplot fails). An error that
// says how to install gnuplot when it is not on PATH. `outputPath` is the
// image the script writes: gnuplot truncates it before it fails (a NaN
// range, a bad script), so an existing image is moved aside first and put
// back if gnuplot fails.
llvm::Error runGnuplot(const std::string &script, const std::string &scriptPath,
                       const std::string &outputPath);

} // namespace mlpc
