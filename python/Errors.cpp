#include "python/Errors.h"

#include <fmt/format.h>

namespace mlpc::python {

PyDiagnostic toPython(const DiagnosticEngine &diags, const Diagnostic &d) {
  const char *severity = d.severity == Severity::Error     ? "error"
                         : d.severity == Severity::Warning ? "warning"
                                                           : "note";
  return PyDiagnostic{diags.fileName(), d.loc.line, d.loc.col,
                      severity,         d.message,  diags.render(d)};
}

void raiseCompileError(const DiagnosticEngine &diags, const std::string &extra,
                       const std::string &note) {
  py::list list;
  std::string text;
  for (const Diagnostic &d : diags.diagnostics()) {
    PyDiagnostic p = toPython(diags, d);
    text += p.rendered;
    list.append(py::cast(std::move(p)));
  }
  if (!extra.empty() && extra != "the model has errors") {
    PyDiagnostic p{
        diags.fileName(), 0,     0,
        "error",          extra, fmt::format("{}: error: {}\n", diags.fileName(), extra)};
    text += p.rendered;
    list.append(py::cast(std::move(p)));
  }
  if (!note.empty()) {
    PyDiagnostic p{diags.fileName(), 0,    0,
                   "note",           note, fmt::format("{}: note: {}\n", diags.fileName(), note)};
    text += p.rendered;
    list.append(py::cast(std::move(p)));
  }
  if (!text.empty() && text.back() == '\n')
    text.pop_back();
  // Looked up in the module (no static handle: the module owns the class).
  py::object cls = py::module_::import("mlpc").attr("CompileError");
  py::object error = cls(text);
  error.attr("diagnostics") = list;
  PyErr_SetObject(cls.ptr(), error.ptr());
  throw py::error_already_set();
}

void raise(llvm::Error error) {
  throw std::runtime_error(llvm::toString(std::move(error)));
}

void raiseFileNotFound(const std::string &what, const std::string &path) {
  PyErr_SetString(PyExc_FileNotFoundError,
                  fmt::format("{} '{}' does not exist", what, path).c_str());
  throw py::error_already_set();
}

void raiseNotImplemented(const std::string &message) {
  PyErr_SetString(PyExc_NotImplementedError, message.c_str());
  throw py::error_already_set();
}

void registerErrors(py::module_ &m) {
  py::class_<PyDiagnostic>(m, "Diagnostic", R"(A located message about a model file.

Attributes: file, line, column (1-based; 0 when the message has no
location), severity ("error", "warning" or "note"), message; str() gives
the compiler's rendering with the source line and a caret.)")
      .def_readonly("file", &PyDiagnostic::file)
      .def_readonly("line", &PyDiagnostic::line)
      .def_readonly("column", &PyDiagnostic::column)
      .def_readonly("severity", &PyDiagnostic::severity)
      .def_readonly("message", &PyDiagnostic::message)
      .def("__str__", [](const PyDiagnostic &d) { return d.rendered; })
      .def("__repr__", [](const PyDiagnostic &d) {
        return fmt::format("<Diagnostic {}:{}:{}: {}: {}>", d.file, d.line, d.column, d.severity,
                           d.message);
      });
  PyObject *cls = PyErr_NewExceptionWithDoc(
      "mlpc.CompileError",
      "A model file has errors. `diagnostics` is the list of mlpc.Diagnostic\n"
      "(file, line, column, severity, message); str() renders them all.",
      PyExc_Exception, nullptr);
  if (!cls)
    throw py::error_already_set();
  m.attr("CompileError") = py::reinterpret_steal<py::object>(cls);
}

} // namespace mlpc::python
