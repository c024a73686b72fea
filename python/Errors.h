// How library errors become Python exceptions (see PyModel.h for the map).
#pragma once

#include "runtime/ModelFile.h"
#include "support/Diagnostics.h"

#include <llvm/Support/Error.h>
#include <pybind11/pybind11.h>

#include <string>

namespace mlpc::python {

namespace py = pybind11;

// One diagnostic as Python sees it (mlpc.Diagnostic).
struct PyDiagnostic {
  std::string file;
  unsigned line = 0, column = 0; // 1-based; 0: no location
  std::string severity;          // "error", "warning" or "note"
  std::string message;
  std::string rendered; // file:line:col: severity: message, the source line and a caret
};

PyDiagnostic toPython(const DiagnosticEngine &diags, const Diagnostic &d);

// Raises mlpc.CompileError with every diagnostic of `diags`, plus `extra`
// (an error without a location, e.g. "the model needs an input [N, T]")
// unless it is empty or only says that the diagnostics hold errors.
// `note`, when not empty, follows as a note without a location.
[[noreturn]] void raiseCompileError(const DiagnosticEngine &diags, const std::string &extra = "",
                                    const std::string &note = "");

// RuntimeError with the error's message.
[[noreturn]] void raise(llvm::Error error);
[[noreturn]] void raiseFileNotFound(const std::string &what, const std::string &path);
[[noreturn]] void raiseNotImplemented(const std::string &message);

template <typename T> T unwrap(llvm::Expected<T> value) {
  if (!value)
    raise(value.takeError());
  return std::move(*value);
}
inline void check(llvm::Error error) {
  if (error)
    raise(std::move(error));
}

// Registers mlpc.Diagnostic and mlpc.CompileError in the module.
void registerErrors(py::module_ &m);

} // namespace mlpc::python
