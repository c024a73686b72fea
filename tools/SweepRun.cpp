#include "tools/SweepRun.h"

#include "tools/Gnuplot.h"

#include <llvm/Support/FileSystem.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/Path.h>
#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

#include <chrono>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace mlpc {
namespace {

using llvm::json::Array;
using llvm::json::Object;
using llvm::json::Value;

llvm::Error fail(const std::string &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s", message.c_str());
}

std::string join(const std::string &dir, const std::string &name) {
  llvm::SmallString<256> path(dir);
  llvm::sys::path::append(path, name);
  return path.str().str();
}

std::string toText(Value value) {
  std::string out;
  llvm::raw_string_ostream os(out);
  os << llvm::formatv("{0:2}", value) << "\n";
  return os.str();
}

llvm::Expected<Value> readJson(const std::string &path) {
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer)
    return fail(fmt::format("cannot read '{}': {}", path, buffer.getError().message()));
  auto value = llvm::json::parse((*buffer)->getBuffer());
  if (!value)
    return fail(fmt::format("{} is not valid JSON: {}", path, llvm::toString(value.takeError())));
  return std::move(*value);
}

Value configJson(const RunConfig &config) {
  Object set;
  Array order, args, evalArgs;
  for (const auto &[name, value] : config.set) {
    set[name] = value;
    order.push_back(name);
  }
  for (const std::string &a : config.trainArgs)
    args.push_back(a);
  for (const std::string &a : config.evalArgs)
    evalArgs.push_back(a);
  return Object{{"format", "mlpc-sweep-run/1"},  {"name", config.name},
                {"set", std::move(set)},         {"order", std::move(order)},
                {"train_args", std::move(args)}, {"eval_args", std::move(evalArgs)}};
}

// The first error line of the run's log: the root cause (a model error is
// followed by a generic "the model has errors").
std::string firstError(const std::string &logPath) {
  auto buffer = llvm::MemoryBuffer::getFile(logPath);
  if (!buffer)
    return "";
  llvm::SmallVector<llvm::StringRef> lines;
  (*buffer)->getBuffer().split(lines, '\n');
  for (llvm::StringRef line : lines) {
    size_t at = line.find("error: ");
    if (at != llvm::StringRef::npos)
      return line.substr(at + 7).trim().str();
  }
  return "";
}

// fork + exec with stdout and stderr appended to `logPath`. The child dies
// with the thread that started it (PR_SET_PDEATHSIG), so killing the sweep,
// even with SIGKILL, leaves no orphan training behind.
llvm::Expected<pid_t> spawn(const std::string &program, const std::vector<std::string> &args,
                            const std::string &logPath) {
  std::vector<char *> argv;
  for (const std::string &a : args)
    argv.push_back(const_cast<char *>(a.c_str()));
  argv.push_back(nullptr);
  int log = ::open(logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0)
    return fail(fmt::format("cannot write '{}': {}", logPath, std::strerror(errno)));
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent)
      ::_exit(127);
    int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, 0);
    ::dup2(log, 1);
    ::dup2(log, 2);
    ::execv(program.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(log);
  if (pid < 0)
    return fail(fmt::format("cannot start '{}': {}", program, std::strerror(errno)));
  return pid;
}

// Waits for `pid`, polling `*stop` (SIGTERM to the child once it is set).
int waitFor(pid_t pid, const volatile std::sig_atomic_t *stop, bool &stopped) {
  int status = 0;
  bool signalled = false;
  while (true) {
    pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid)
      break;
    if (done < 0 && errno != EINTR)
      return -1;
    if (stop && *stop && !signalled) {
      ::kill(pid, SIGTERM);
      signalled = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stopped = signalled || (stop && *stop);
  return status;
}

// Leftovers of an unfinished attempt: temporary files of interrupted atomic
// writes and a metrics file that belongs to no finished run.
void cleanUnfinished(const std::string &runDir) {
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(runDir, ec), end; it != end && !ec; it.increment(ec)) {
    llvm::StringRef name = llvm::sys::path::filename(it->path());
    if (name.contains(".tmp") || name == "metrics.json")
      llvm::sys::fs::remove(it->path());
  }
}

} // namespace

std::string runName(const std::vector<std::pair<std::string, std::string>> &set) {
  std::string out;
  for (const auto &[name, value] : set) {
    if (!out.empty())
      out += "_";
    for (char c : name + "=" + value)
      out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '=' || c == '+' ||
              c == '-')
                 ? c
                 : '_';
  }
  return out.empty() ? "base" : out;
}

llvm::Error prepareRun(const std::string &dir, const RunConfig &config) {
  std::string runDir = join(dir, config.name);
  if (std::error_code ec = llvm::sys::fs::create_directories(runDir))
    return fail(fmt::format("cannot create '{}': {}", runDir, ec.message()));
  std::string path = join(runDir, "config.json");
  std::string text = toText(configJson(config));
  if (llvm::sys::fs::exists(path)) {
    auto existing = llvm::MemoryBuffer::getFile(path);
    if (existing && (*existing)->getBuffer() == text)
      return llvm::Error::success();
    return fail(fmt::format("{} belongs to a different sweep (another model, grid or setting); "
                            "use a new --out directory",
                            path));
  }
  return writeFileAtomically(path, text);
}

bool runFinished(const std::string &runDir) {
  return llvm::sys::fs::exists(join(runDir, "status.json"));
}

llvm::Expected<RunResult> executeRun(const std::string &mlpcPath, const std::string &runDir,
                                     const volatile std::sig_atomic_t *stop) {
  auto config = readJson(join(runDir, "config.json"));
  if (!config)
    return config.takeError();
  const Array *trainArgs =
      config->getAsObject() ? config->getAsObject()->getArray("train_args") : nullptr;
  if (!trainArgs)
    return fail(fmt::format("{}/config.json has no train_args", runDir));
  cleanUnfinished(runDir);
  std::string checkpoint = join(runDir, "checkpoint.safetensors");
  std::vector<std::string> argv = {mlpcPath};
  for (const Value &a : *trainArgs)
    argv.push_back(a.getAsString().value_or("").str());
  argv.insert(argv.end(), {"--out", checkpoint, "--metrics", join(runDir, "metrics.json")});
  if (llvm::sys::fs::exists(checkpoint)) // left by an interrupted attempt: continue it
    argv.insert(argv.end(), {"--resume", checkpoint});
  std::string logPath = join(runDir, "train.log");
  auto start = std::chrono::steady_clock::now();
  auto pid = spawn(mlpcPath, argv, logPath);
  if (!pid)
    return pid.takeError();
  bool stopped = false;
  int status = waitFor(*pid, stop, stopped);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  bool ok = status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok && stopped) {
    auto pending = readRun(runDir);
    if (pending)
      pending->status = "pending";
    return pending;
  }
  std::string error;
  if (!ok) {
    error = firstError(logPath);
    if (error.empty())
      error = WIFSIGNALED(status) ? fmt::format("killed by signal {}", WTERMSIG(status))
                                  : fmt::format("exit status {}", WEXITSTATUS(status));
  }
  Object statusJson{{"status", ok ? "ok" : "failed"}, {"seconds", seconds}};
  if (!ok)
    statusJson["error"] = error;
  if (llvm::Error e =
          writeFileAtomically(join(runDir, "status.json"), toText(std::move(statusJson))))
    return e;
  return readRun(runDir);
}

llvm::Expected<std::vector<std::string>> runEvalArgs(const std::string &runDir) {
  auto config = readJson(join(runDir, "config.json"));
  if (!config)
    return config.takeError();
  const Array *args =
      config->getAsObject() ? config->getAsObject()->getArray("eval_args") : nullptr;
  if (!args)
    return fail(fmt::format("{}/config.json has no eval_args", runDir));
  std::vector<std::string> out;
  for (const Value &a : *args)
    out.push_back(a.getAsString().value_or("").str());
  return out;
}

llvm::Expected<RunResult> readRun(const std::string &runDir) {
  auto config = readJson(join(runDir, "config.json"));
  if (!config)
    return config.takeError();
  const Object *c = config->getAsObject();
  if (!c || c->getString("format") != "mlpc-sweep-run/1")
    return fail(fmt::format("{}/config.json is not an mlpc sweep run", runDir));
  RunResult r;
  r.name = c->getString("name").value_or("").str();
  const Object *set = c->getObject("set");
  if (const Array *order = c->getArray("order"))
    for (const Value &name : *order) {
      std::string key = name.getAsString().value_or("").str();
      r.set.push_back({key, set ? set->getString(key).value_or("").str() : ""});
    }
  r.status = "pending";
  if (runFinished(runDir)) {
    auto status = readJson(join(runDir, "status.json"));
    if (!status)
      return status.takeError();
    if (const Object *s = status->getAsObject()) {
      r.status = s->getString("status").value_or("failed").str();
      r.error = s->getString("error").value_or("").str();
      r.seconds = s->getNumber("seconds").value_or(0);
    }
  }
  if (r.status == "ok") {
    auto metrics = readJson(join(runDir, "metrics.json"));
    if (!metrics)
      return metrics.takeError();
    if (const Object *m = metrics->getAsObject()) {
      r.trainLoss = m->getNumber("train_loss");
      r.valLoss = m->getNumber("val_loss");
      r.params = m->getInteger("params");
    }
  }
  return r;
}

llvm::Expected<std::vector<std::string>> listRuns(const std::string &dir) {
  std::vector<std::string> runs;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; it != end && !ec; it.increment(ec))
    if (llvm::sys::fs::exists(join(it->path(), "config.json")))
      runs.push_back(it->path());
  if (ec)
    return fail(fmt::format("cannot read '{}': {}", dir, ec.message()));
  std::sort(runs.begin(), runs.end());
  return runs;
}

} // namespace mlpc
