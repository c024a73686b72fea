// The Python module's Model: a model file compiled by the same pipeline as
// the CLI (runtime/ModelFile, runtime/ModelRuntime), its names dataset, and
// the run position (steps taken, sampling stream) that train() continues.
//
// Errors arrive in Python as exceptions: model errors as mlpc.CompileError
// with the located diagnostics, bad arrays and unknown `set` names as
// ValueError, missing files as FileNotFoundError, everything else (a
// checkpoint that does not match, a diverged run) as RuntimeError with the
// library's message.
//
// Threads: train() and forward() release the GIL. A Model is used by one
// thread at a time (a second thread gets RuntimeError, not a data race);
// train()'s callback may call the read-only methods (forward, eval, sample,
// params) of the model it trains, between two steps.
#pragma once

#include "runtime/ModelFile.h"
#include "runtime/ModelRuntime.h"
#include "runtime/Trainer.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace mlpc::python {

namespace py = pybind11;

class PyModel {
public:
  // Model(path, set, seed, data, threads): parameters initialised from
  // `seed`, which also seeds train()'s minibatch stream, as `mlpc train
  // --seed`; `threads` as `--threads` ("auto" or a count).
  static std::unique_ptr<PyModel> create(const std::string &path, const py::dict &overrides,
                                         uint64_t seed, std::optional<std::string> data,
                                         const py::object &threads);
  // Model.load(model, ckpt, data, threads): the checkpoint's parameters,
  // statistics and run position; the vocabulary from its metadata (or from
  // `data`).
  static std::unique_ptr<PyModel> load(const std::string &path, const std::string &checkpoint,
                                       std::optional<std::string> data, const py::object &threads);

  py::dict train(std::optional<std::string> data, std::optional<int64_t> steps, py::object callback,
                 int64_t every, std::optional<double> lr);
  float step(py::handle X, py::handle Y, std::optional<double> lr);
  py::array_t<float> forward(py::handle X);
  py::dict eval();
  // (X, Y) of "train", "val" or "test": copies, int32.
  py::tuple split(const std::string &which);
  std::vector<std::string> sample(int64_t count, uint64_t seed);
  // Views of the live buffers, kept alive by `self`.
  py::dict tensors(py::handle self, bool state);
  void save(const std::string &path);
  void compile(const std::string &path, bool train);

  const std::string &name() const { return runtime_->module().name; }
  const std::string &vocab() const { return runtime_->vocab().itos; }
  int64_t context() const { return runtime_->context(); }
  int64_t batch() const { return runtime_->batch(); }
  int64_t position() const { return position_; }
  uint64_t seed() const { return seed_; }
  std::string repr() const;

private:
  // One thread at a time; the training thread's callback may re-enter for
  // reading (see the header comment).
  class Use {
  public:
    Use(PyModel &m, bool mutating);
    ~Use();

  private:
    PyModel &m_;
    bool locked_ = false;
  };

  static std::unique_ptr<PyModel> open(const std::string &path,
                                       const std::vector<Override> &overrides,
                                       const Vocabulary &vocab, const ExecutionOptions &execution);
  // The dataset, read on first use from `path` (else the default names file).
  const Dataset &dataset(const std::optional<std::string> &path);
  py::dict calibratedLosses(const Dataset &data, bool calibrate);

  std::unique_ptr<ModelFile> file_; // owns the AST and diagnostics runtime_ refers to
  std::unique_ptr<ModelRuntime> runtime_;
  std::optional<Dataset> data_;
  std::optional<std::vector<std::string>> words_; // read by create(), kept for dataset()
  uint64_t seed_ = 42;
  int64_t position_ = 0; // the next step's index (the schedule's clock)
  std::optional<Rng::Snapshot> rng_;
  std::mutex mutex_;
  std::atomic<std::thread::id> trainer_{}; // the thread inside train(), if any
};

// mlpc.check(path, vocab): the diagnostics (warnings) of a clean model;
// raises CompileError otherwise.
py::list checkModel(const std::string &path, int64_t vocab);

} // namespace mlpc::python
