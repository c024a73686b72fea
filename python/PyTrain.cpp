// Model.train and Model.step. train() runs the library's training loop
// (runtime/Trainer.h, the loop `mlpc train` runs) with the GIL released. Its
// onStep hook, between two steps, takes the GIL back only when there is
// something to do: the user's callback every `every` steps, and every
// kPollInterval a PyErr_CheckSignals so that Ctrl-C arrives as
// KeyboardInterrupt within a fraction of a second. Either one stops the run
// through TrainOptions::stopRequested, a flag that lives in this call (no
// global state), which the loop polls before the next step: the parameters
// are those after the last finished step.
#include "python/Arrays.h"
#include "python/Errors.h"
#include "python/PyModel.h"

#include <atomic>
#include <chrono>
#include <cmath>

namespace mlpc::python {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPollInterval = std::chrono::milliseconds(20);

class StepHook {
public:
  StepHook(py::object callback, int64_t every, int64_t first, int64_t last)
      : callback_(std::move(callback)), every_(every), first_(first), last_(last),
        lastPoll_(Clock::now()) {}

  // Runs in the training thread without the GIL.
  void operator()(int64_t step, float loss) {
    if (stop)
      return;
    bool due = !callback_.is_none() && ((step - first_) % every_ == 0 || step == last_);
    Clock::time_point now = Clock::now();
    if (!due && now - lastPoll_ < kPollInterval)
      return;
    lastPoll_ = now;
    py::gil_scoped_acquire acquire;
    if (PyErr_CheckSignals() != 0) { // KeyboardInterrupt (or another handler's exception) is set
      pythonError = true;
      stop = 1;
      return;
    }
    if (!due)
      return;
    try {
      py::object result = callback_(step, loss);
      if (!result.is_none()) {
        int truth = PyObject_IsTrue(result.ptr());
        if (truth < 0)
          throw py::error_already_set();
        if (truth == 0)
          stop = 1;
      }
    } catch (py::error_already_set &e) {
      e.restore(); // raised again by train() once the loop has stopped
      pythonError = true;
      stop = 1;
    } catch (const std::exception &e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
      pythonError = true;
      stop = 1;
    }
  }

  volatile std::sig_atomic_t stop = 0;
  bool pythonError = false; // an exception is set in this thread's Python state

private:
  py::object callback_;
  int64_t every_, first_, last_;
  Clock::time_point lastPoll_;
};

void checkRate(const std::optional<double> &lr) {
  if (lr && !(std::isfinite(*lr) && *lr > 0))
    throw py::value_error("lr must be a positive finite number");
}

} // namespace

py::dict PyModel::train(std::optional<std::string> data, std::optional<int64_t> steps,
                        py::object callback, int64_t every, std::optional<double> lr) {
  if (every < 1)
    throw py::value_error("every must be at least 1");
  if (steps && *steps < 0)
    throw py::value_error("steps must be non-negative");
  checkRate(lr);
  if (!callback.is_none() && !PyCallable_Check(callback.ptr()))
    throw py::type_error("callback must be callable as callback(step, loss) or None");
  Use use(*this, true);
  const Dataset &d = dataset(data);
  const int64_t count = steps ? *steps : runtime_->module().train.steps;
  if (count == 0)
    return calibratedLosses(d, true);

  TrainOptions options;
  options.seed = seed_;
  options.startStep = position_;
  options.steps = position_ + count;
  options.rngState = rng_;
  options.lr = lr;
  options.reportEvery = options.steps; // no progress lines: the callback is the progress
  StepHook hook(std::move(callback), every, position_, options.steps - 1);
  options.stopRequested = &hook.stop;
  options.onStep = [&hook](int64_t step, float loss) { hook(step, loss); };

  std::optional<llvm::Expected<TrainSummary>> summary;
  trainer_ = std::this_thread::get_id();
  {
    py::gil_scoped_release release;
    summary.emplace(trainModel(*runtime_, d.train, options, llvm::nulls()));
  }
  trainer_ = std::thread::id();
  if (!*summary) {
    if (hook.pythonError) { // the Python exception wins; the library's error is a consequence
      llvm::consumeError(summary->takeError());
      throw py::error_already_set();
    }
    raise(summary->takeError());
  }
  position_ = (*summary)->nextStep;
  rng_ = (*summary)->rng;
  if (hook.pythonError)
    throw py::error_already_set();
  return calibratedLosses(d, true);
}

float PyModel::step(py::handle X, py::handle Y, std::optional<double> lr) {
  checkRate(lr);
  const int64_t classes = static_cast<int64_t>(vocab().size());
  IndexArray x = indexArray(X, "X", batch(), context(), classes);
  IndexArray y = indexArray(Y, "Y", batch(), 0, classes);
  Use use(*this, true);
  const double rate = lr ? *lr : runtime_->module().train.learningRate(position_);
  std::optional<llvm::Expected<float>> loss;
  {
    py::gil_scoped_release release; // the first step compiles
    loss.emplace(runtime_->trainStep(x.values.data(), y.values.data(), static_cast<float>(rate)));
  }
  float value = unwrap(std::move(*loss));
  ++position_;
  return value;
}

} // namespace mlpc::python
