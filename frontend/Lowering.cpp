// AST -> forward graph: resolves dims, types every expression with the op
// table's shape rules and reports located errors. A statement that fails is
// "poisoned": later uses of its name fail silently, so one mistake produces
// one error instead of a cascade.
#include "frontend/LoweringImpl.h"
#include "ir/ShapeRules.h"

#include <cmath>
#include <fmt/format.h>

namespace mlpc {
namespace detail {

bool Lowerer::declare(const std::string &name, SourceLoc loc) {
  if (declared_.insert(name).second)
    return true;
  diags_.error(loc, fmt::format("'{}' is already defined", name));
  return false;
}

std::optional<ValueId> Lowerer::build(Node node, SourceLoc loc) {
  node.loc = loc;
  std::string error;
  std::optional<TensorType> t = inferType(g_, node, error);
  if (!t) {
    diags_.error(loc, error);
    return std::nullopt;
  }
  node.type = *t;
  if (!account(node.type, loc, /*isParam=*/false))
    return std::nullopt;
  warnIfBroadcastGrows(node, loc);
  return g_.add(std::move(node));
}

// numpy broadcasting that makes the result larger than every operand (e.g.
// [N, 1] - [N] -> [N, N]) is usually a mistake: say so. An explicit
// broadcast(x, [dims]) of an operand to the result's shape silences it.
void Lowerer::warnIfBroadcastGrows(const Node &node, SourceLoc loc) {
  if (opInfo(node.op).kind != OpKind::Elementwise || node.operands.size() != 2 || quiet_)
    return;
  const TensorType &a = g_[node.operands[0]].type, &b = g_[node.operands[1]].type;
  if (node.type.numel() <= a.numel() || node.type.numel() <= b.numel())
    return;
  diags_.warning(loc, fmt::format("broadcasting {} and {} in '{}' gives {}, larger than both "
                                  "operands (write broadcast(x, {}) if this is meant)",
                                  toString(a.shape), toString(b.shape), opInfo(node.op).name,
                                  toString(node.type.shape), toString(node.type.shape)));
}

std::optional<ValueId> Lowerer::lower(const Expr &e) {
  switch (e.kind) {
  case ExprKind::Number: {
    ValueId c = g_.makeConst(e.number);
    g_[c].loc = e.loc;
    return c;
  }
  case ExprKind::Ident: {
    if (auto it = values_.find(e.name); it != values_.end())
      return it->second;
    if (auto it = dims_.find(e.name); it != dims_.end())
      return g_.makeConst(static_cast<double>(it->second));
    if (poisoned_.count(e.name))
      return std::nullopt;
    for (const Assign &a : ast_.forward)
      if (a.name == e.name) {
        diags_.error(e.loc, fmt::format("'{}' is used before it is defined", e.name));
        return std::nullopt;
      }
    diags_.error(e.loc, fmt::format("unknown name '{}'", e.name));
    return std::nullopt;
  }
  case ExprKind::Unary: {
    auto a = lower(*e.args[0]);
    if (!a)
      return std::nullopt;
    Node n{Op::Neg, {*a}};
    return build(std::move(n), e.loc);
  }
  case ExprKind::Binary: {
    if (e.op == '^') {
      auto base = lower(*e.args[0]);
      auto exponent = evalConst(*e.args[1]);
      if (!base || !exponent)
        return std::nullopt;
      // `x ^ (0/0)`: a NaN attribute would also compare equal to every other
      // exponent in simplify's CSE, merging x^NaN with x^2.
      if (!std::isfinite(*exponent)) {
        // NaN's sign (how fmt prints it) depends on the CPU: print it plainly.
        std::string value = std::isnan(*exponent) ? "nan" : fmt::format("{}", *exponent);
        diags_.error(e.args[1]->loc, "exponent must be a finite number, got " + value);
        return std::nullopt;
      }
      Node n{Op::Pow, {*base}};
      n.scalar = *exponent;
      return build(std::move(n), e.loc);
    }
    auto a = lower(*e.args[0]);
    auto b = lower(*e.args[1]);
    if (!a || !b)
      return std::nullopt;
    static const std::map<char, Op> ops = {
        {'+', Op::Add}, {'-', Op::Sub}, {'*', Op::Mul}, {'/', Op::Div}, {'@', Op::MatMul}};
    // (The operator characters are the grammar's: frontend/ParseExpr.cpp.)
    auto it = ops.find(e.op);
    if (it == ops.end()) {
      diags_.error(e.loc, fmt::format("unknown operator '{}'", e.op));
      return std::nullopt;
    }
    return build(Node{it->second, {*a, *b}}, e.loc);
  }
  case ExprKind::Index: {
    auto table = lower(*e.args[0]);
    auto index = lower(*e.args[1]);
    if (!table || !index)
      return std::nullopt;
    return build(Node{Op::Gather, {*table, *index}}, e.loc);
  }
  case ExprKind::Call:
    return lowerCall(e);
  case ExprKind::List:
    diags_.error(e.loc, "a list is only allowed as the shape argument of reshape");
    return std::nullopt;
  }
  return std::nullopt;
}

// The model-file function table is the op table itself: every op whose
// record has Call syntax (ir/Op.h, the records in ir/ops/), then the
// composite functions (frontend/Composites.cpp).
static std::optional<Op> callableOp(const std::string &name) {
  std::optional<Op> op = opByName(name);
  if (op && opInfo(*op).syntax == OpSyntax::Call)
    return op;
  return std::nullopt;
}

bool Lowerer::checkArity(const Expr &e, size_t lo, size_t hi, const char *usage) {
  if (e.args.size() >= lo && e.args.size() <= hi)
    return true;
  diags_.error(e.loc,
               fmt::format("'{}' expects {}, got {} argument(s)", e.name, usage, e.args.size()));
  return false;
}

std::optional<std::vector<ValueId>> Lowerer::lowerArgs(const Expr &e, size_t count) {
  std::vector<ValueId> ids;
  bool ok = true;
  for (size_t i = 0; i < count; ++i) {
    auto v = lower(*e.args[i]);
    ok = ok && v.has_value();
    if (v)
      ids.push_back(*v);
  }
  return ok ? std::optional(ids) : std::nullopt;
}

std::optional<int> Lowerer::axisArg(const Expr &e, size_t index, int fallback) {
  if (e.args.size() <= index)
    return fallback;
  std::optional<int64_t> axis = evalInt(*e.args[index]);
  if (!axis)
    return std::nullopt;
  if (*axis < 0) {
    diags_.error(e.args[index]->loc, fmt::format("axis must be non-negative, got {}", *axis));
    return std::nullopt;
  }
  return static_cast<int>(std::min<int64_t>(*axis, 1 << 20));
}

std::optional<ValueId> Lowerer::lowerCall(const Expr &e) {
  if (auto composite = lowerComposite(e))
    return *composite;
  else if (composite.error)
    return std::nullopt;
  std::optional<Op> op = callableOp(e.name);
  if (!op) {
    diags_.error(e.loc, fmt::format("unknown function '{}'", e.name));
    return std::nullopt;
  }
  const OpInfo &info = opInfo(*op);
  Node n{*op};
  if (info.has(opflag::AttrAxis)) { // reductions: (x) or (x, axis)
    if (!checkArity(e, 1, 2, info.usage))
      return std::nullopt;
    auto args = lowerArgs(e, 1);
    auto axis = axisArg(e, 1, -1);
    if (!args || !axis)
      return std::nullopt;
    n.operands = *args;
    n.axis = *axis;
    return build(std::move(n), e.loc);
  }
  if (info.has(opflag::AttrShape)) { // reshape, broadcast: (x, [dims])
    if (!checkArity(e, 2, 2, info.usage))
      return std::nullopt;
    if (e.args[1]->kind != ExprKind::List) {
      diags_.error(e.args[1]->loc,
                   fmt::format("{} expects a shape list such as [N, T*E]", info.name));
      return std::nullopt;
    }
    auto args = lowerArgs(e, 1);
    auto shape = evalShape(e.args[1]->args, e.args[1]->loc);
    if (!args || !shape)
      return std::nullopt;
    n.operands = *args;
    n.shapeAttr = *shape;
    return build(std::move(n), e.loc);
  }
  size_t count = static_cast<size_t>(info.arity);
  if (!checkArity(e, count, count, info.usage))
    return std::nullopt;
  auto args = lowerArgs(e, count);
  if (!args)
    return std::nullopt;
  n.operands = *args;
  if (*op == Op::BatchNorm) {
    n.scalar = 1e-5;
    const TensorType &x = g_[(*args)[0]].type;
    int64_t rows = x.rank() == 2 ? x.shape[0] : 2;
    if (rows < 2 && !options_.inferenceOnly) {
      diags_.error(e.loc, fmt::format("batchnorm needs at least 2 rows for the Bessel-corrected "
                                      "variance, got {}",
                                      toString(x.shape)));
      return std::nullopt;
    }
  }
  return build(std::move(n), e.loc);
}

void Lowerer::lowerTrain(Module &m) {
  const std::optional<TrainBlock> &train = ast_.train;
  if (!train)
    return;
  if (train->steps) {
    if (*train->steps <= 0)
      diags_.error(train->stepsLoc, fmt::format("steps must be positive, got {}", *train->steps));
    else
      m.train.steps = *train->steps;
  }
  bool batchOverridden = options_.dimOverrides.count(m.batchDim) > 0;
  if (train->batch && m.train.batch != 0 && *train->batch != m.train.batch && !batchOverridden)
    diags_.error(train->batchLoc, fmt::format("batch {} does not match the inputs' leading "
                                              "dimension {} = {}",
                                              *train->batch, m.batchDim, m.train.batch));
  int64_t previous = -1;
  for (const LrPhase &p : train->schedule) {
    if (!(p.lr > 0) || !std::isfinite(p.lr))
      diags_.error(p.loc, fmt::format("learning rate must be positive, got {}", p.lr));
    if (p.fromStep <= previous)
      diags_.error(p.loc, "learning-rate phases must start at increasing steps");
    previous = p.fromStep;
  }
  for (const LrPhase &p : train->schedule)
    m.train.schedule.push_back({p.fromStep, p.lr});
  lowerOptimizer(*train, m.train);
}

// Ranges of the optimizer's and schedule's settings (PyTorch's own checks).
void Lowerer::lowerOptimizer(const TrainBlock &train, TrainConfig &config) {
  if (train.optimizer) {
    const OptimizerDecl &o = *train.optimizer;
    auto check = [&](bool ok, const char *what, double value) {
      if (!ok)
        diags_.error(o.loc, fmt::format("{}, got {}", what, value));
    };
    check(o.momentum >= 0 && o.momentum < 1, "momentum must be in [0, 1)", o.momentum);
    check(o.dampening >= 0 && o.dampening <= 1, "dampening must be in [0, 1]", o.dampening);
    check(o.weightDecay >= 0 && std::isfinite(o.weightDecay), "weight_decay must be >= 0",
          o.weightDecay);
    check(o.beta1 >= 0 && o.beta1 < 1, "betas must be in [0, 1)", o.beta1);
    check(o.beta2 >= 0 && o.beta2 < 1, "betas must be in [0, 1)", o.beta2);
    check(o.eps > 0 && std::isfinite(o.eps), "eps must be positive", o.eps);
    if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
      diags_.error(o.loc, "nesterov needs a momentum and zero dampening");
    config.optimizer.algorithm = o.kind == OptimizerKind::SGD    ? OptimizerAlgorithm::SGD
                                 : o.kind == OptimizerKind::Adam ? OptimizerAlgorithm::Adam
                                                                 : OptimizerAlgorithm::AdamW;
    config.optimizer.momentum = o.momentum;
    config.optimizer.dampening = o.dampening;
    config.optimizer.nesterov = o.nesterov;
    config.optimizer.weightDecay = o.weightDecay;
    config.optimizer.beta1 = o.beta1;
    config.optimizer.beta2 = o.beta2;
    config.optimizer.eps = o.eps;
  }
  if (train.clipGradNorm) {
    if (!(*train.clipGradNorm > 0) || !std::isfinite(*train.clipGradNorm))
      diags_.error(train.clipLoc,
                   fmt::format("clip_grad_norm must be positive, got {}", *train.clipGradNorm));
    config.clipGradNorm = train.clipGradNorm;
  }
  if (train.warmup) {
    if (*train.warmup < 0 || *train.warmup >= config.steps)
      diags_.error(train.warmupLoc, fmt::format("warmup must be in [0, steps = {}), got {}",
                                                config.steps, *train.warmup));
    else
      config.warmup = *train.warmup;
  }
  if (train.cosineMinLr) {
    double first = train.schedule.empty() ? 0.1 : train.schedule.front().lr;
    if (!(*train.cosineMinLr >= 0) || *train.cosineMinLr >= first)
      diags_.error(train.cosineLoc, fmt::format("cosine min_lr must be in [0, lr = {}), got {}",
                                                first, *train.cosineMinLr));
    config.cosineMinLr = train.cosineMinLr;
  }
}

void Lowerer::lowerDims(Module &m) {
  for (const DimDecl &d : ast_.dims) {
    if (!declare(d.name, d.loc))
      continue;
    std::optional<int64_t> value;
    if (auto it = options_.dimOverrides.find(d.name); it != options_.dimOverrides.end())
      value = it->second;
    else if (d.binding == "vocab")
      value = options_.vocab;
    else if (d.binding == "batch") {
      if (ast_.train && ast_.train->batch)
        value = *ast_.train->batch;
      else
        diags_.error(d.loc,
                     fmt::format("'dim {} = batch' needs 'batch' in the train block", d.name));
    } else if (d.value) {
      value = evalInt(*d.value);
    }
    // Bound values (vocab, batch, overrides such as --batch) are checked too.
    if (value && *value <= 0) {
      diags_.error(d.value ? d.value->loc : d.loc,
                   fmt::format("dimension '{}' must be positive, got {}", d.name, *value));
      value.reset();
    }
    if (!value) {
      poisoned_.insert(d.name);
      continue;
    }
    dims_[d.name] = *value;
    m.dims.push_back({d.name, *value});
  }
}

void Lowerer::lowerTensors(Module &m) {
  for (const TensorDecl &t : ast_.tensors) {
    bool fresh = declare(t.name, t.loc);
    if (t.dtype != "i32")
      diags_.error(t.dtypeLoc, fmt::format("{} '{}' must have dtype i32, got '{}'",
                                           t.role == TensorDecl::Role::Input ? "input" : "target",
                                           t.name, t.dtype));
    auto shape = evalShape(t.shape, t.loc);
    if (!fresh || !shape || t.dtype != "i32") {
      poisoned_.insert(t.name);
      continue;
    }
    Node n{Op::Input};
    n.type = {DType::I32, *shape};
    if (!account(n.type, t.loc, /*isParam=*/false)) {
      poisoned_.insert(t.name);
      continue;
    }
    n.name = t.name;
    n.loc = t.loc;
    n.isTarget = t.role == TensorDecl::Role::Target;
    values_[t.name] = g_.add(std::move(n));
    if (m.batchDim.empty()) {
      m.train.batch = (*shape)[0];
      if (!t.shape.empty() && t.shape[0]->kind == ExprKind::Ident)
        m.batchDim = t.shape[0]->name;
      m.contextLength = shape->size() > 1 ? (*shape)[1] : 0;
    }
  }
}

void Lowerer::lowerParams() {
  for (const ParamDecl &p : ast_.params) {
    bool fresh = declare(p.name, p.loc);
    auto shape = evalShape(p.shape, p.loc);
    auto init = p.init ? lowerInit(*p.init) : std::nullopt;
    if (!fresh || !shape || !init) {
      poisoned_.insert(p.name);
      continue;
    }
    Node n{Op::Param};
    n.type = {DType::F32, *shape};
    if (!account(n.type, p.loc, /*isParam=*/true)) {
      poisoned_.insert(p.name);
      continue;
    }
    n.name = p.name;
    n.loc = p.loc;
    n.init = std::make_shared<InitExpr>(std::move(*init));
    values_[p.name] = g_.add(std::move(n));
  }
}

void Lowerer::lowerForward() {
  for (const Assign &a : ast_.forward) {
    bool fresh = declare(a.name, a.loc);
    auto v = a.value ? lower(*a.value) : std::nullopt;
    if (!fresh || !v) {
      poisoned_.insert(a.name);
      continue;
    }
    // A named assignment of an existing value (e.g. `x = W1`) still needs its own name
    // for printing; keep the first name a value got.
    if (g_[*v].name.empty())
      g_[*v].name = a.name;
    values_[a.name] = *v;
  }
}

void Lowerer::setLossOutput() {
  auto loss = values_.find("loss");
  if (loss == values_.end()) {
    if (!poisoned_.count("loss"))
      diags_.error(ast_.hasForward ? ast_.forwardLoc : ast_.loc,
                   "the forward block must assign a scalar 'loss'");
  } else if (g_[loss->second].type.rank() != 0) {
    const Assign *def = nullptr;
    for (const Assign &a : ast_.forward)
      if (a.name == "loss")
        def = &a;
    diags_.error(def ? def->loc : ast_.loc,
                 fmt::format("'loss' must be a scalar, got {}", toString(g_[loss->second].type)));
  } else {
    g_.setOutput("loss", loss->second, OutputRole::Loss);
  }
}

std::optional<Module> Lowerer::run() {
  Module m;
  m.name = ast_.name;
  g_.name = ast_.name;
  lowerDims(m);
  lowerTensors(m);
  lowerParams();
  lowerForward();
  setLossOutput();
  lowerTrain(m);
  if (diags_.hasErrors())
    return std::nullopt;

  g_.compact();
  for (const std::string &problem : verifyGraph(g_))
    diags_.error({}, "internal error: " + problem);
  if (diags_.hasErrors())
    return std::nullopt;
  m.graph = std::move(g_);
  return m;
}

} // namespace detail

std::optional<Module> lowerModel(const ModelAST &ast, const LoweringOptions &options,
                                 DiagnosticEngine &diags) {
  return detail::Lowerer(ast, options, diags).run();
}

} // namespace mlpc
