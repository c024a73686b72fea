// Composite functions: model-file functions defined once, as graph builders
// over primitive ops. Autodiff, the interpreter and codegen see only the
// primitives, so a composite needs nothing else (no gradient rule, no
// kernel); the fusion passes recognise the ones that have closed forms
// (log_softmax, logsumexp inside a cross-entropy; see fuse-cross-entropy).
//
// Each entry: name, argument counts, usage (for diagnostics), and the builder.
// A builder first checks what the primitives' shape rules would report less
// clearly (axis range, the shape of a gain), then writes its formula with the
// CVal arithmetic below; every node it creates carries the call's location.
// The README's op table documents each one.
#include "frontend/LoweringImpl.h"

#include <cmath>
#include <fmt/format.h>

namespace mlpc::detail {

// Builds nodes at the call's location through Lowerer::build (shape rules,
// size limits). After the first failure (reported there) every further node
// is skipped and the composite yields nothing.
struct CompositeBuilder {
  Lowerer &l;
  const Expr &call;
  bool failed = false;

  ValueId op(Op op, std::vector<ValueId> xs, double scalar = 0, int axis = -1) {
    if (failed)
      return 0;
    Node n{op, std::move(xs)};
    n.scalar = scalar;
    n.axis = axis;
    std::optional<ValueId> v = l.build(std::move(n), call.loc);
    failed = !v;
    return v.value_or(0);
  }
  ValueId constant(double x) { return failed ? 0 : l.g_.makeConst(x); }
  const TensorType &type(ValueId v) const { return l.g_[v].type; }
  bool error(SourceLoc loc, std::string message) {
    l.diags_.error(loc, std::move(message));
    failed = true;
    return false;
  }
};

namespace {

// A value under construction: + - * / and the functions below build nodes.
struct CVal {
  CompositeBuilder *b;
  ValueId id;
};
CVal operator+(CVal x, CVal y) {
  return {x.b, x.b->op(Op::Add, {x.id, y.id})};
}
CVal operator-(CVal x, CVal y) {
  return {x.b, x.b->op(Op::Sub, {x.id, y.id})};
}
CVal operator*(CVal x, CVal y) {
  return {x.b, x.b->op(Op::Mul, {x.id, y.id})};
}
CVal operator/(CVal x, CVal y) {
  return {x.b, x.b->op(Op::Div, {x.id, y.id})};
}
CVal operator*(double c, CVal y) {
  return CVal{y.b, y.b->constant(c)} * y;
}
CVal operator+(double c, CVal y) {
  return CVal{y.b, y.b->constant(c)} + y;
}
CVal operator+(CVal x, double c) {
  return x + CVal{x.b, x.b->constant(c)};
}
CVal exp(CVal x) {
  return {x.b, x.b->op(Op::Exp, {x.id})};
}
CVal log(CVal x) {
  return {x.b, x.b->op(Op::Log, {x.id})};
}
CVal tanh(CVal x) {
  return {x.b, x.b->op(Op::Tanh, {x.id})};
}
CVal sigmoid(CVal x) {
  return {x.b, x.b->op(Op::Sigmoid, {x.id})};
}
CVal relu(CVal x) {
  return {x.b, x.b->op(Op::Relu, {x.id})};
}
CVal neg(CVal x) {
  return {x.b, x.b->op(Op::Neg, {x.id})};
}
CVal pow(CVal x, double p) {
  return {x.b, x.b->op(Op::Pow, {x.id}, p)};
}
CVal sum(CVal x, int axis) {
  return {x.b, x.b->op(Op::Sum, {x.id}, 0, axis)};
}
CVal mean(CVal x, int axis) {
  return {x.b, x.b->op(Op::Mean, {x.id}, 0, axis)};
}
CVal max(CVal x, int axis) {
  return {x.b, x.b->op(Op::Max, {x.id}, 0, axis)};
}
CVal pick(CVal x, CVal y) {
  return {x.b, x.b->op(Op::Pick, {x.id, y.id})};
}

// The arguments of one call: tensors (lowered), then an optional axis or number.
struct Call {
  CompositeBuilder &b;
  std::vector<CVal> x;     // the tensor arguments
  std::optional<int> axis; // the axis argument (default: the last axis of x[0])
  std::optional<double> number;
};

bool f32(Call &c, size_t i) {
  const TensorType &t = c.b.type(c.x[i].id);
  if (t.dtype == DType::F32)
    return true;
  return c.b.error(c.b.call.args[i]->loc, fmt::format("'{}' expects a f32 tensor as argument {}, "
                                                      "got {}",
                                                      c.b.call.name, i + 1, toString(t)));
}

// The reduction axis: in range for x[0] (a scalar has none).
bool axisOk(Call &c) {
  int rank = c.b.type(c.x[0].id).rank();
  if (rank == 0)
    return c.b.error(c.b.call.loc, fmt::format("'{}' needs a tensor with at least one axis, got "
                                               "a scalar",
                                               c.b.call.name));
  if (!c.axis)
    c.axis = rank - 1;
  if (*c.axis < rank)
    return true;
  return c.b.error(c.b.call.args[1]->loc,
                   fmt::format("axis {} is out of range for a rank-{} tensor", *c.axis, rank));
}

// softmax(x, axis) = exp(x - max) / sum(exp(x - max)): the max shift cancels
// exactly and keeps exp from overflowing.
std::optional<CVal> softmax(Call &c) {
  if (!f32(c, 0) || !axisOk(c))
    return std::nullopt;
  CVal e = exp(c.x[0] - max(c.x[0], *c.axis));
  return e / sum(e, *c.axis);
}

// log_softmax(x, axis) = z - log(sum(exp(z))), z = x - max(x): the form
// fuse-cross-entropy recognises inside -mean(pick(log_softmax(L, 1), Y)).
std::optional<CVal> logSoftmax(Call &c) {
  if (!f32(c, 0) || !axisOk(c))
    return std::nullopt;
  CVal z = c.x[0] - max(c.x[0], *c.axis);
  return z - log(sum(exp(z), *c.axis));
}

// logsumexp(x, axis) = log(sum(exp(x - m))) + m, m = max(x); keeps the axis
// as size 1, like sum and max.
std::optional<CVal> logSumExp(Call &c) {
  if (!f32(c, 0) || !axisOk(c))
    return std::nullopt;
  CVal m = max(c.x[0], *c.axis);
  return log(sum(exp(c.x[0] - m), *c.axis)) + m;
}

// layernorm(x, gain, bias) over the last axis, as PyTorch's LayerNorm:
// biased variance, eps = 1e-5, gain and bias of shape [D].
std::optional<CVal> layerNorm(Call &c) {
  if (!f32(c, 0) || !f32(c, 1) || !f32(c, 2) || !axisOk(c))
    return std::nullopt;
  const Shape &xs = c.b.type(c.x[0].id).shape;
  for (size_t i : {1, 2})
    if (c.b.type(c.x[i].id).shape != Shape{xs.back()}) {
      c.b.error(c.b.call.args[i]->loc,
                fmt::format("layernorm's {} must have shape [{}] to match {}, got {}",
                            i == 1 ? "gain" : "bias", xs.back(), toString(xs),
                            toString(c.b.type(c.x[i].id))));
      return std::nullopt;
    }
  CVal centred = c.x[0] - mean(c.x[0], *c.axis);
  CVal var = mean(centred * centred, *c.axis);
  return centred * pow(var + 1e-5, -0.5) * c.x[1] + c.x[2];
}

// silu(x) = x * sigmoid(x).
std::optional<CVal> silu(Call &c) {
  if (!f32(c, 0))
    return std::nullopt;
  return c.x[0] * sigmoid(c.x[0]);
}

// gelu(x), PyTorch's approximate='tanh':
//   0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))).
std::optional<CVal> gelu(Call &c) {
  if (!f32(c, 0))
    return std::nullopt;
  CVal x = c.x[0];
  CVal inner = std::sqrt(2.0 / M_PI) * (x + 0.044715 * pow(x, 3.0));
  return 0.5 * x * (1.0 + tanh(inner));
}

// leaky_relu(x, slope = 0.01) = relu(x) - slope * relu(-x).
std::optional<CVal> leakyRelu(Call &c) {
  if (!f32(c, 0))
    return std::nullopt;
  return relu(c.x[0]) - c.number.value_or(0.01) * relu(neg(c.x[0]));
}

// sqrt(x) = x ^ 0.5.
std::optional<CVal> sqrtOf(Call &c) {
  if (!f32(c, 0))
    return std::nullopt;
  return pow(c.x[0], 0.5);
}

// mse(x, target) = mean((x - target)^2) over every element; same shapes.
std::optional<CVal> mse(Call &c) {
  if (!f32(c, 0) || !f32(c, 1))
    return std::nullopt;
  const Shape &a = c.b.type(c.x[0].id).shape, &t = c.b.type(c.x[1].id).shape;
  if (a != t) {
    c.b.error(c.b.call.loc, fmt::format("'mse' needs x and target of the same shape, got {} and {}",
                                        toString(a), toString(t)));
    return std::nullopt;
  }
  CVal diff = c.x[0] - c.x[1];
  return mean(diff * diff, -1);
}

// nll(logp, labels) = -mean(pick(logp, labels)): the negative log-likelihood
// of log-probabilities [N, K] (e.g. from log_softmax) at i32 labels [N].
std::optional<CVal> nll(Call &c) {
  return neg(mean(pick(c.x[0], c.x[1]), -1));
}

enum class Extra { None, Axis, Number };

struct Composite {
  const char *name;
  size_t tensors; // leading tensor arguments
  Extra extra;    // an optional trailing argument
  const char *usage;
  std::optional<CVal> (*build)(Call &);
};

constexpr Composite kComposites[] = {
    {"softmax", 1, Extra::Axis, "(x) or (x, axis)", softmax},
    {"log_softmax", 1, Extra::Axis, "(x) or (x, axis)", logSoftmax},
    {"logsumexp", 1, Extra::Axis, "(x) or (x, axis)", logSumExp},
    {"layernorm", 3, Extra::None, "3 arguments (x, gain, bias)", layerNorm},
    {"silu", 1, Extra::None, "1 argument (x)", silu},
    {"gelu", 1, Extra::None, "1 argument (x)", gelu},
    {"leaky_relu", 1, Extra::Number, "(x) or (x, slope)", leakyRelu},
    {"sqrt", 1, Extra::None, "1 argument (x)", sqrtOf},
    {"mse", 2, Extra::None, "2 arguments (x, target)", mse},
    {"nll", 2, Extra::None, "2 arguments (logp, labels)", nll},
};

} // namespace

Lowerer::CompositeResult Lowerer::lowerComposite(const Expr &e) {
  const Composite *def = nullptr;
  for (const Composite &c : kComposites)
    if (e.name == c.name)
      def = &c;
  if (!def)
    return {};
  CompositeResult result;
  result.error = true;
  size_t most = def->tensors + (def->extra == Extra::None ? 0 : 1);
  if (!checkArity(e, def->tensors, most, def->usage))
    return result;
  auto args = lowerArgs(e, def->tensors);
  CompositeBuilder b{*this, e};
  Call call{b, {}, std::nullopt, std::nullopt};
  if (e.args.size() > def->tensors) {
    if (def->extra == Extra::Axis) {
      call.axis = axisArg(e, def->tensors, 0);
      if (!call.axis)
        return result;
    } else if (auto number = evalConst(*e.args[def->tensors])) {
      call.number = *number;
    } else {
      return result;
    }
  }
  if (!args)
    return result;
  for (ValueId v : *args)
    call.x.push_back(CVal{&b, v});
  bool wasQuiet = quiet_;
  quiet_ = true; // the formula's own broadcasts are meant
  std::optional<CVal> v = def->build(call);
  quiet_ = wasQuiet;
  if (!v || b.failed)
    return result;
  result.value = v->id;
  result.error = false;
  return result;
}

} // namespace mlpc::detail

namespace mlpc {

std::vector<std::string> compositeFunctions() {
  std::vector<std::string> names;
  for (const detail::Composite &c : detail::kComposites)
    names.push_back(c.name);
  return names;
}

} // namespace mlpc
