#include "python/PyModel.h"

#include "python/Arrays.h"
#include "python/Errors.h"
#include "runtime/InferenceBuild.h"
#include "runtime/Safetensors.h"
#include "runtime/TrainingBuild.h"

#include <llvm/Support/FileSystem.h>

#include <fmt/format.h>

#include <algorithm>

namespace mlpc::python {

namespace {

std::string namesFile(const std::optional<std::string> &path) {
  if (path) {
    if (!llvm::sys::fs::exists(*path))
      raiseFileNotFound("the names file", *path);
    return *path;
  }
  if (auto found = findNamesFile())
    return *found;
  PyErr_SetString(PyExc_FileNotFoundError,
                  "no names file found in data/, $MLPC_DATA or ../shared/data/; pass data=PATH "
                  "(scripts/setup.sh downloads names.txt)");
  throw py::error_already_set();
}

// threads="auto" or a count, as `mlpc train --threads` (1 to kMaxThreads).
ExecutionOptions executionOptions(const py::object &threads) {
  ExecutionOptions execution;
  if (py::isinstance<py::str>(threads) && threads.cast<std::string>() == "auto")
    return execution;
  auto message = [&](const std::string &got) {
    return fmt::format("threads must be \"auto\" or a number from 1 to {} (got {})", kMaxThreads,
                       got);
  };
  if (!py::isinstance<py::int_>(threads) || py::isinstance<py::bool_>(threads))
    throw py::type_error(message(py::repr(threads).cast<std::string>()));
  const long long n = threads.cast<long long>();
  if (n < 1 || n > kMaxThreads)
    throw py::value_error(message(std::to_string(n)));
  execution.threads = static_cast<unsigned>(n);
  return execution;
}

} // namespace

PyModel::Use::Use(PyModel &m, bool mutating) : m_(m) {
  if (m.trainer_ == std::this_thread::get_id()) {
    if (mutating)
      throw std::runtime_error("a train() callback can only read the model it is called "
                               "from (forward, eval, sample, split, params, compile): "
                               "return False to stop training, then train, step or save");
    return; // a callback between two steps: the step is not running
  }
  if (!m.mutex_.try_lock())
    throw std::runtime_error("the model is in use by another thread (mlpc.Model is not "
                             "thread-safe; use one model per thread)");
  locked_ = true;
}

PyModel::Use::~Use() {
  if (locked_)
    m_.mutex_.unlock();
}

std::unique_ptr<PyModel> PyModel::open(const std::string &path,
                                       const std::vector<Override> &overrides,
                                       const Vocabulary &vocab, const ExecutionOptions &execution) {
  if (!llvm::sys::fs::exists(path))
    raiseFileNotFound("the model file", path);
  auto model = std::unique_ptr<PyModel>(new PyModel());
  auto file = ModelFile::open(path, overrides);
  if (!file) // unreadable, or an override that names no dim or train setting
    throw py::value_error(llvm::toString(file.takeError()));
  model->file_ = std::move(*file);
  ModelFile &f = *model->file_;
  if (!f.parsedCleanly())
    raiseCompileError(f.diags());
  auto runtime = ModelRuntime::create(f.ast(), vocab, f.diags(), {}, execution);
  if (!runtime) {
    // As the CLI: after --set, say which dims the shapes came from.
    std::string note = f.ast().overrides.empty()
                           ? ""
                           : fmt::format("with set={{{}}} the model's dims are {}",
                                         fmt::join(f.ast().overrides, ", "), describeDims(f.ast()));
    raiseCompileError(f.diags(), llvm::toString(runtime.takeError()), note);
  }
  model->runtime_ = std::move(*runtime);
  return model;
}

std::unique_ptr<PyModel> PyModel::create(const std::string &path, const py::dict &overrides,
                                         uint64_t seed, std::optional<std::string> data,
                                         const py::object &threads) {
  const ExecutionOptions execution = executionOptions(threads);
  std::string names = namesFile(data);
  std::vector<Override> knobs;
  for (auto [name, value] : overrides) {
    if (!py::isinstance<py::str>(name))
      throw py::type_error("set: the names must be strings (dims such as \"H\", or train "
                           "settings such as \"steps\", \"lr\")");
    knobs.push_back(Override{name.cast<std::string>(), py::str(value).cast<std::string>()});
  }
  std::vector<std::string> words = unwrap(readWords(names));
  std::unique_ptr<PyModel> model = open(path, knobs, buildVocabulary(words), execution);
  model->words_ = std::move(words);
  model->seed_ = seed;
  model->runtime_->initParams(seed);
  return model;
}

std::unique_ptr<PyModel> PyModel::load(const std::string &path, const std::string &checkpoint,
                                       std::optional<std::string> data, const py::object &threads) {
  const ExecutionOptions execution = executionOptions(threads);
  if (!llvm::sys::fs::exists(checkpoint))
    raiseFileNotFound("the checkpoint", checkpoint);
  TensorFile file = unwrap(readSafetensors(checkpoint));
  Vocabulary vocab;
  std::optional<std::vector<std::string>> words;
  auto it = file.metadata.find("vocab");
  if (it != file.metadata.end() && !it->second.empty() && it->second[0] == '.')
    vocab.itos = it->second;
  if (data || vocab.itos.empty()) {
    words = unwrap(readWords(namesFile(data)));
    Vocabulary fromData = buildVocabulary(*words);
    if (!vocab.itos.empty() && vocab.itos != fromData.itos)
      throw py::value_error(fmt::format("the vocabulary of the names file (\"{}\") differs from "
                                        "the one {} was trained with (\"{}\")",
                                        fromData.itos, checkpoint, vocab.itos));
    vocab = fromData;
  }
  // A checkpoint of an overridden model records its overrides (`set`).
  std::vector<Override> recorded;
  if (auto o = file.metadata.find("overrides"); o != file.metadata.end())
    recorded = unwrap(decodeOverrides(o->second));
  std::unique_ptr<PyModel> model = open(path, recorded, vocab, execution);
  model->words_ = std::move(words);
  std::map<std::string, std::string> metadata;
  check(model->runtime_->loadParams(checkpoint, &metadata));
  auto context = metadata.find("context");
  if (context != metadata.end() && context->second != std::to_string(model->context()))
    throw py::value_error(fmt::format("{} was trained with a context of {}, but the model reads {}",
                                      checkpoint, context->second, model->context()));
  // A checkpoint of `mlpc train` (or Model.save) continues where it stopped.
  if (metadata.count("step")) {
    RunPosition run = unwrap(decodeRunPosition(metadata, checkpoint));
    model->seed_ = run.seed;
    model->position_ = run.nextStep;
    model->rng_ = run.rng;
  }
  return model;
}

const Dataset &PyModel::dataset(const std::optional<std::string> &path) {
  if (data_ && !path)
    return *data_;
  std::vector<std::string> words;
  if (words_ && !path)
    words = std::move(*words_);
  else
    words = unwrap(readWords(namesFile(path)));
  words_.reset();
  Vocabulary vocab = buildVocabulary(words);
  if (vocab.itos != runtime_->vocab().itos)
    throw py::value_error(fmt::format("the vocabulary of the names file (\"{}\") differs from the "
                                      "model's (\"{}\")",
                                      vocab.itos, runtime_->vocab().itos));
  data_ = unwrap(buildDataset(std::move(words), static_cast<int>(context())));
  return *data_;
}

py::dict PyModel::calibratedLosses(const Dataset &data, bool calibrate) {
  std::optional<llvm::Expected<SplitLosses>> result;
  {
    py::gil_scoped_release release;
    // The seed's "calibrate the batch norm", as `mlpc train` does at the end.
    if (calibrate)
      if (llvm::Error e = runtime_->calibrate(data.train))
        result.emplace(std::move(e));
    if (!result)
      result.emplace(runtime_->losses(data));
  }
  SplitLosses losses = unwrap(std::move(*result));
  py::dict d;
  d["train"] = losses.train;
  d["val"] = losses.val;
  d["test"] = losses.test;
  return d;
}

py::dict PyModel::eval() {
  Use use(*this, false);
  return calibratedLosses(dataset(std::nullopt), false);
}

py::tuple PyModel::split(const std::string &which) {
  Use use(*this, false);
  const Dataset &d = dataset(std::nullopt);
  const Split *s = which == "train"  ? &d.train
                   : which == "val"  ? &d.val
                   : which == "test" ? &d.test
                                     : nullptr;
  if (!s)
    throw py::value_error("split must be \"train\", \"val\" or \"test\", got \"" + which + "\"");
  py::array_t<int32_t> X({s->rows(), context()}), Y(s->rows());
  std::copy(s->X.begin(), s->X.end(), X.mutable_data());
  std::copy(s->Y.begin(), s->Y.end(), Y.mutable_data());
  return py::make_tuple(X, Y);
}

std::vector<std::string> PyModel::sample(int64_t count, uint64_t seed) {
  if (count < 0 || count > 1000000)
    throw py::value_error("n must be between 0 and 1000000");
  Use use(*this, false);
  return unwrap(runtime_->sample(static_cast<int>(count), seed));
}

py::array_t<float> PyModel::forward(py::handle X) {
  const int64_t classes = static_cast<int64_t>(vocab().size());
  IndexArray x = indexArray(X, "X", -1, context(), classes);
  Use use(*this, false);
  py::array_t<float> out({x.rows, classes});
  float *dst = out.mutable_data();
  llvm::Error error = llvm::Error::success();
  {
    py::gil_scoped_release release;
    const int64_t block = ModelRuntime::kEvalRows;
    for (int64_t row = 0; row < x.rows && !error; row += block) {
      int64_t n = std::min(block, x.rows - row);
      auto logits = runtime_->logits(x.values.data() + row * context(), n);
      if (!logits)
        error = logits.takeError();
      else
        std::copy_n(*logits, n * classes, dst + row * classes);
    }
  }
  check(std::move(error));
  return out;
}

py::dict PyModel::tensors(py::handle self, bool state) {
  // The buffers are never reallocated after construction (initParams and
  // loadParams only run in create/load), so the views stay valid for as
  // long as they keep `self` alive.
  const Graph &g = runtime_->trainingGraph();
  py::dict d;
  for (ValueId v : g.leaves(state ? Op::State : Op::Param)) {
    const Node &n = g[v];
    std::vector<float> &buffer = runtime_->params().at(n.name);
    std::vector<py::ssize_t> shape(n.type.shape.begin(), n.type.shape.end());
    d[py::str(n.name)] = py::array_t<float>(shape, buffer.data(), self);
  }
  return d;
}

void PyModel::save(const std::string &path) {
  Use use(*this, true); // not from a callback: the run position is only known after train()
  Rng::Snapshot rng = rng_ ? *rng_ : Rng(seed_).snapshot();
  check(runtime_->saveParams(path, encodeRunPosition({position_, seed_, rng})));
}

namespace {

// Model.compile(train=True): `mlpc compile --train --weights CKPT` with the
// live parameters as the object's initial weights.
llvm::Error compileTraining(ModelFile &file, ModelRuntime &runtime, const std::string &path,
                            const std::string &weights) {
  auto build = buildTraining(file, runtime, PipelineOptions{}, /*withWeights=*/true);
  if (!build)
    return build.takeError();
  TrainingHeaderInfo info;
  info.modelPath = file.diags().fileName();
  info.weightsPath = weights;
  return writeTrainingFiles(**build, file, runtime, path, CompileOptions{}, std::move(info));
}

llvm::Error compileInference(ModelFile &file, ModelRuntime &runtime, const std::string &path,
                             const std::string &weights) {
  auto folded = foldInference(file, runtime, /*externalWeights=*/false);
  if (!folded)
    return folded.takeError();
  HeaderInfo info;
  info.modelPath = file.diags().fileName();
  info.weightsPath = weights;
  return writeInferenceFiles(*folded, path, CompileOptions{}, std::move(info));
}

} // namespace

void PyModel::compile(const std::string &path, bool train) {
  Use use(*this, false);
  const std::string weights =
      fmt::format("the parameters of a Python mlpc.Model at step {}", position_);
  llvm::Error error = llvm::Error::success();
  {
    py::gil_scoped_release release;
    error = train ? compileTraining(*file_, *runtime_, path, weights)
                  : compileInference(*file_, *runtime_, path, weights);
  }
  if (error) {
    if (file_->diags().hasErrors())
      raiseCompileError(file_->diags(), llvm::toString(std::move(error)));
    raise(std::move(error));
  }
}

std::string PyModel::repr() const {
  return fmt::format("<mlpc.Model {} (context {}, vocabulary {}, batch {}) at step {}>", name(),
                     context(), vocab().size(), batch(), position_);
}

py::list checkModel(const std::string &path, int64_t vocab) {
  if (vocab < 1 || vocab > (1 << 24))
    throw py::value_error("vocab must be in [1, 16777216]");
  if (!llvm::sys::fs::exists(path))
    raiseFileNotFound("the model file", path);
  std::unique_ptr<ModelFile> file = unwrap(ModelFile::open(path));
  LoweringOptions options;
  options.vocab = vocab;
  // As `mlpc check`: lower, and run the training pipeline too (an op
  // without a gradient rule is a model error).
  if (std::optional<Module> module = file->lower(options))
    runPipeline(module->graph, Stage::Grad, PipelineOptions{}, file->diags());
  if (file->diags().hasErrors())
    raiseCompileError(file->diags());
  py::list warnings;
  for (const Diagnostic &d : file->diags().diagnostics())
    warnings.append(py::cast(toPython(file->diags(), d)));
  return warnings;
}

} // namespace mlpc::python
