// `import mlpc`: the bindings and their docstrings. The work is in
// PyModel.cpp / PyTrain.cpp; errors map to exceptions as Errors.h says.
#include "python/Errors.h"
#include "python/PyModel.h"

#include <pybind11/stl.h>

namespace py = pybind11;
using mlpc::python::PyModel;

namespace {

constexpr const char *kModuleDoc =
    R"(mlpc: compile and train small MLPs (model files, see README.md).

    m = mlpc.Model("examples/makemore.mlp", seed=42)
    losses = m.train(steps=20000, callback=lambda step, loss: print(step, loss))
    print(losses["val"], m.sample(10))
    m.params["C"]          # numpy view of the live embedding table
    m.save("makemore.safetensors")

The compiler pipeline, training loop, checkpoints and data split are the
ones of the `mlpc` command line, so the same seed gives the same numbers.)";

constexpr const char *kModelDoc = R"(A model file compiled for JIT training and inference.

Model(path, set={}, seed=42, data=None, threads="auto")

path: a model file (.mlp). set: knob overrides, `mlpc train --set NAME=VALUE`
as a dict NAME -> value (str(value) is the VALUE): a dim ({"H": 300,
"T": 4}) or a train setting ({"steps": 50000, "batch": 64, "lr": 0.05,
"sgd": "lr 0.1, 0.01 after 50000"}); checkpoints record them. seed:
initialises the parameters and seeds train()'s minibatch stream, as `mlpc
train --seed`. data: the names file (default: data/names.txt, $MLPC_DATA,
../shared/data/names.txt); its characters bind `dim V = vocab`. threads:
"auto" (a team for steps of 16 MFLOP and more, each step run on it or on
one thread, whichever is measured faster) or a count, as `mlpc train
--threads`; any count gives the same numbers.

Raises mlpc.CompileError (with .diagnostics) if the model has errors,
ValueError for an override that names no dim or train setting or a thread
count out of range, TypeError for threads neither "auto" nor an int,
FileNotFoundError for a missing file.)";

constexpr const char *kTrainDoc =
    R"(train(data=None, steps=None, callback=None, every=1000, lr=None) -> dict

Trains with the model's train block (batch, learning-rate schedule) on the
train split, continuing from the current step (model.step_count) and the
minibatch stream: a fresh Model(seed=S).train(steps=N) takes exactly the
steps of `mlpc train --seed S --steps N`. Then calibrates BatchNorm over the
train split (as `mlpc train`) and returns {"train", "val", "test"} losses.

data: another names file (same vocabulary). steps: number of steps
(default: the train block's). callback(step, loss): called after the first
step, every `every` steps and after the last one, with the step's index
(counted from the model's first step) and its minibatch loss; returning
False stops training early (the losses are still computed). lr: a constant
learning rate instead of the schedule.

The GIL is released while training; Ctrl-C raises KeyboardInterrupt within
a fraction of a second, with the parameters as after the last finished
step (no calibration). A diverged run raises RuntimeError naming the step
and the first non-finite tensor; the parameters are then non-finite (load
or recreate the model).)";

constexpr const char *kStepDoc = R"(step(X, Y, lr=None) -> float

One SGD training step on your own minibatch: X int32 [batch, context]
contexts, Y int32 [batch] targets (any integer dtype is accepted; indices
must be in [0, vocab)). lr: default the schedule's rate at the current
step. Returns the minibatch loss (before the update). Advances step_count.
Raises ValueError for a wrong dtype, shape or index.)";

constexpr const char *kForwardDoc = R"(forward(X) -> numpy.ndarray

Logits float32 [n, vocab] for X int32 [n, context] (any n), in inference
mode: BatchNorm uses its running statistics. Raises ValueError for a wrong
dtype, shape or index.)";

constexpr const char *kLoadDoc =
    R"(Model.load(model_path, ckpt_path, data=None, threads="auto") -> Model

A model with the parameters and BatchNorm statistics of a safetensors
checkpoint written by `mlpc train --out` or Model.save, with the overrides
(set) it records. The vocabulary comes from the checkpoint (data=PATH to
check it against a names file);
training continues from the checkpoint's step and minibatch stream, as
`mlpc train --resume`. threads: as for Model().)";

void bindModel(py::module_ &m) {
  py::class_<PyModel>(m, "Model", kModelDoc)
      .def(py::init(&PyModel::create), py::arg("path"), py::arg("set") = py::dict(),
           py::arg("seed") = 42, py::arg("data") = py::none(), py::arg("threads") = "auto")
      .def_static("load", &PyModel::load, py::arg("model_path"), py::arg("ckpt_path"),
                  py::arg("data") = py::none(), py::arg("threads") = "auto", kLoadDoc)
      .def("train", &PyModel::train, py::arg("data") = py::none(), py::arg("steps") = py::none(),
           py::arg("callback") = py::none(), py::arg("every") = 1000, py::arg("lr") = py::none(),
           kTrainDoc)
      .def("step", &PyModel::step, py::arg("X"), py::arg("Y"), py::arg("lr") = py::none(), kStepDoc)
      .def("forward", &PyModel::forward, py::arg("X"), kForwardDoc)
      .def("eval", &PyModel::eval,
           "eval() -> dict\n\nMean cross-entropy of the train, val and test splits in inference "
           "mode:\n{\"train\", \"val\", \"test\"}, as `mlpc eval`.")
      .def("split", &PyModel::split, py::arg("name"),
           "split(name) -> (X, Y)\n\nThe \"train\", \"val\" or \"test\" split of the names "
           "file as int32 arrays\n(copies): X [rows, context] contexts, Y [rows] next "
           "characters. The split\nis the CLI's (Python's random.seed(42); "
           "random.shuffle(words), 80/10/10).")
      .def("sample", &PyModel::sample, py::arg("n") = 20, py::arg("seed") = 52,
           "sample(n=20, seed=52) -> list of str\n\nn names sampled from the model, as `mlpc "
           "sample -n N --seed S`.")
      .def_property_readonly(
          "params", [](py::object self) { return self.cast<PyModel &>().tensors(self, false); },
          "dict name -> float32 numpy array: views of the live parameters, in declaration\n"
          "order. Training changes them in place; writing into them changes the model.")
      .def_property_readonly(
          "state", [](py::object self) { return self.cast<PyModel &>().tensors(self, true); },
          "dict name -> float32 numpy array: views of the BatchNorm running statistics\n"
          "(<layer>.running_mean, <layer>.running_var).")
      .def("save", &PyModel::save, py::arg("path"),
           "save(path)\n\nWrites parameters, statistics and the run position as a safetensors\n"
           "checkpoint (atomically), the file `mlpc train --out` writes.")
      .def("compile", &PyModel::compile, py::arg("path"), py::arg("train") = false,
           "compile(path, train=False)\n\nWrites the object file `path` (.o) and its C header "
           "(.h beside it).\ntrain=False: the inference object of `mlpc compile MODEL --weights "
           "CKPT -o path`\n(BatchNorm folded, the weights embedded). train=True: the training "
           "object of\n`mlpc compile MODEL --train --weights CKPT -o path` (init, train_step, "
           "forward,\ncalibrate, ...), whose M_init starts from the current parameters.")
      .def_property_readonly("name", &PyModel::name, "the model's name")
      .def_property_readonly("vocab", &PyModel::vocab, "index -> character ('.' is 0)")
      .def_property_readonly("context", &PyModel::context, "characters of context (T)")
      .def_property_readonly("batch", &PyModel::batch, "the train block's batch size")
      .def_property_readonly("step_count", &PyModel::position,
                             "steps trained so far (the schedule's clock)")
      .def_property_readonly("seed", &PyModel::seed, "the parameter and minibatch seed")
      .def("__repr__", &PyModel::repr);
}

} // namespace

PYBIND11_MODULE(mlpc, m) {
  m.doc() = kModuleDoc;
  mlpc::python::registerErrors(m);
  bindModel(m);
  m.def("check", &mlpc::python::checkModel, py::arg("path"), py::arg("vocab") = 27,
        "check(path, vocab=27) -> list of Diagnostic\n\nParses, lowers and verifies a model file "
        "as `mlpc check`; raises\nmlpc.CompileError with every error, else returns the warnings.");
}
