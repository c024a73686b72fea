// Tests generated from the op registry: every op, primitive (ir/Op.h: the
// records in ir/ops/) or composite (frontend/Composites.cpp), has a case below:
// a small model using it. Each case's gradients (autodiff, f64 interpreter)
// are checked against central finite differences of its loss, and the JIT's
// results for its training graph (and inference graph, where it has logits)
// against the f64 interpreter. The last test walks the registry: an op that
// no case's graphs contain, or a composite without a case, fails the suite.
#include "TestUtil.h"
#include "ir/GradCheck.h"
#include "test_codegen_util.h"

#include <catch2/catch.hpp>

#include <set>

using namespace mlpc;
using namespace mlpc::testing;

namespace {

struct OpCase {
  const char *function;   // the op or composite it is about
  const char *body;       // forward block statements; defines `loss`
  double lo = -2, hi = 2; // parameter values (positive for log, sqrt, ...)
};

// a, w: [N, K]; b, g: [K]; W: [K, K]; C: [K, 3]; c: [N, 1]; X: i32[N, 2] and
// Y: i32[N] index [0, K).
const OpCase kCases[] = {
    {"add", "loss = sum((a + b) * w)"},
    {"sub", "loss = sum((a - b) * w)"},
    {"mul", "loss = sum(a * b * w)"},
    {"div", "loss = sum(a / b * w)", 0.5, 2},
    {"neg", "loss = sum(-a * w)"},
    {"pow", "loss = sum((a ^ 1.5 + a ^ 2 + a ^ -1) * w)", 0.5, 2},
    {"tanh", "loss = sum(tanh(a) * w)"},
    {"sigmoid", "loss = sum(sigmoid(a) * w)"},
    {"relu", "loss = sum(relu(a) * w)"},
    {"exp", "loss = sum(exp(a) * w)"},
    {"log", "loss = sum(log(a) * w)", 0.5, 2},
    {"softplus", "loss = sum(softplus(a) * w) + sum(softplus(30 * a) * w)", -3, 3},
    {"elu", "loss = sum(elu(a) * w) + sum(elu(10 * a) * w)", -3, 3},
    {"sum", "loss = sum(sum(a, 1) * c) + sum(sum(a, 0) * b)"},
    {"mean", "loss = sum(mean(a, 1) * c) + mean(a)"},
    {"max", "loss = sum(max(a, 1) * c) + sum(max(a, 0) * b)"},
    {"matmul", "loss = sum(tanh(a @ W) * w)"},
    {"reshape", "loss = sum(reshape(a, [K, N]) * reshape(w, [K, N]))"},
    {"broadcast", "loss = sum(broadcast(b, [N, K]) * w) + sum(broadcast(c, [N, K]) * a)"},
    {"gather", "loss = sum(tanh(C[X]))"},
    {"pick", "loss = sum(tanh(pick(a, Y)))"},
    {"batchnorm", "loss = cross_entropy(batchnorm(a, b, g), Y)"},
    {"cross_entropy", "loss = cross_entropy(a @ W, Y)"},
    // Composites.
    {"softmax", "loss = sum(softmax(a, 1) * w) + sum(softmax(a, 0) * w)"},
    {"log_softmax", "loss = sum(log_softmax(a) * w)"},
    {"logsumexp", "loss = sum(logsumexp(a, 1) * c)"},
    {"layernorm", "loss = sum(layernorm(a, b, g) * w)"},
    {"silu", "loss = sum(silu(a) * w)"},
    {"gelu", "loss = sum(gelu(a) * w)"},
    {"leaky_relu", "loss = sum(leaky_relu(a, 0.2) * w) + sum(leaky_relu(a) * w)"},
    {"sqrt", "loss = sum(sqrt(a) * w)", 0.5, 2},
    {"mse", "loss = mse(tanh(a), w)"},
    {"nll", "loss = nll(log_softmax(a @ W, 1), Y)"},
};

std::string modelFor(const OpCase &c) {
  return std::string(R"(model op_case
dim N = 6
dim K = 5
input X : i32[N, 2]
target Y : i32[N]
param a : [N, K] = randn
param w : [N, K] = randn
param b : [K] = randn
param g : [K] = randn
param W : [K, K] = randn
param C : [K, 3] = randn
param c : [N, 1] = randn
forward {
  )") + c.body +
         "\n}\n";
}

void collectOps(const Graph &g, std::set<Op> &ops) {
  for (const Node &n : g.nodes)
    ops.insert(n.op);
}

// Runs every check of one case (numeric: the numbers too, else only the
// graphs); adds the ops its graphs contain to `covered`.
void checkCase(const OpCase &c, std::set<Op> &covered, bool numeric) {
  std::string errors;
  std::optional<Module> m = test::lowerSource(modelFor(c), &errors);
  INFO(c.function << ": " << c.body << "\n" << errors);
  REQUIRE(m);
  Graph training = test::stage(m->graph, Stage::Grad);
  collectOps(m->graph, covered);
  collectOps(training, covered);
  DiagnosticEngine diags("t.mlp", "");
  std::optional<Graph> infer = runPipeline(m->graph, Stage::Infer, {}, diags);
  if (infer)
    collectOps(*infer, covered);
  if (!numeric)
    return;

  RandomLeaves random;
  random.lo = c.lo;
  random.hi = c.hi;
  random.indexRange = 5;
  LeafData leaves = random(training);
  Values values = interpretOrFail(training, leaves);

  // Autodiff (f64) against finite differences of the forward graph.
  for (const GraphOutput &o : training.outputs) {
    if (o.role != OutputRole::Gradient)
      continue;
    const std::string &param = training[*o.subject].name;
    std::vector<size_t> all(values[o.value].size());
    for (size_t i = 0; i < all.size(); ++i)
      all[i] = i;
    auto fd = finiteDifferences(m->graph, leaves, param, all);
    REQUIRE(bool(fd));
    const std::vector<double> &grad = values[o.value];
    for (size_t i = 0; i < all.size(); ++i) {
      INFO("d loss / d " << param << "[" << i << "]: autodiff " << grad[i] << ", fd " << (*fd)[i]);
      CHECK(std::fabs(grad[i] - (*fd)[i]) <= 1e-6 + 1e-5 * std::fabs((*fd)[i]));
    }
  }

  // The JIT against the interpreter: the training graph (loss, gradients,
  // running statistics) and, where the loss has logits, the inference graph.
  JitRun run = runJit(training, leaves);
  for (size_t i = 0; i < training.outputs.size(); ++i)
    expectClose(run.outputs[i], values[training.outputs[i].value], training.outputs[i].name, 1e-4,
                1e-4);
  if (infer)
    checkAgainstInterpreter(*infer, random, 1e-4, 1e-4);
}

} // namespace

TEST_CASE("registry: every op against finite differences and the interpreter", "[registry]") {
  std::set<Op> covered;
  for (const OpCase &c : kCases)
    DYNAMIC_SECTION(c.function) {
      checkCase(c, covered, true);
    }
}

TEST_CASE("registry: every op and composite has a test case", "[registry]") {
  std::set<Op> covered;
  for (const OpCase &c : kCases)
    checkCase(c, covered, false);
  const std::vector<Op> &all = allOps();
  for (Op op : all) {
    INFO("op '" << opInfo(op).name
                << "' is in no test case's graphs: add a case to kCases in "
                   "tests/unit/test_op_registry.cpp");
    CHECK(covered.count(op));
  }
  for (const std::string &name : compositeFunctions()) {
    bool found = false;
    for (const OpCase &c : kCases)
      found = found || name == c.function;
    INFO("composite '" << name << "' has no test case in tests/unit/test_op_registry.cpp");
    CHECK(found);
  }
  // Every callable primitive has a case named after it, too.
  for (Op op : all) {
    if (opInfo(op).syntax != OpSyntax::Call)
      continue;
    bool found = false;
    for (const OpCase &c : kCases)
      found = found || std::string(opInfo(op).name) == c.function;
    INFO("op '" << opInfo(op).name << "' has no test case of its own");
    CHECK(found);
  }
}
