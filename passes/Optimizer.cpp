// Optimizer: gradients -> parameter and optimizer-state updates.
//
// Matches: a training graph with a gradient output per Param leaf (autodiff).
// Rewrites: every parameter p with gradient g into write-backs of p and of
// its optimizer state, exactly as PyTorch 1.13 computes them (the single-
// tensor paths of torch.optim.SGD / Adam / AdamW and
// torch.nn.utils.clip_grad_norm_). lr and t (the 1-based step number) are
// State leaves the runtime sets before each step, so the schedule (warmup,
// cosine, step list) and bias correction need no recompilation.
// Does nothing else: forward and backward values are untouched; it always
// changes the graph (plain SGD included: the update is graph code too).
//
// Gradient clipping (clip_grad_norm M), over all parameters together:
//   n = sqrt(sum_p sum(g_p^2));  c = min(1, M / (n + 1e-6));  g_p <- c g_p
// (min(1, x) is written 1 - relu(1 - x)).
//
// SGD (momentum mu, dampening d, weight decay wd, nesterov):
//   g <- g + wd p
//   b <- g                          at t = 1 (PyTorch clones the gradient)
//   b <- mu b + (1 - d) g           at t > 1
//   written as one formula: b <- mu b + (1 - d (1 - [t = 1])) g, with b = 0
//   before the first step and [t = 1] = relu(2 - t) for integer t >= 1;
//   g <- g + mu b (nesterov) or g <- b;  p <- p - lr g
//   (without momentum: p <- p - lr (g + wd p)).
//
// Adam (beta1, beta2, eps, wd coupled as L2):
//   g <- g + wd p
//   m <- beta1 m + (1 - beta1) g;   v <- beta2 v + (1 - beta2) g^2
//   p <- p - (lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//   (the division by sqrt(1 - beta2^t) is a multiplication by its reciprocal)
//   with beta^t = exp(t ln beta), as graph arithmetic on the scalar t.
// AdamW: the same without the L2 term, after the decoupled decay
//   p <- p (1 - lr wd).
#include "passes/Optimizer.h"

#include <cmath>

namespace mlpc {
namespace {

struct Builder {
  Graph &g;
  ValueId add(ValueId a, ValueId b) { return g.make(Op::Add, {a, b}); }
  ValueId sub(ValueId a, ValueId b) { return g.make(Op::Sub, {a, b}); }
  ValueId mul(ValueId a, ValueId b) { return g.make(Op::Mul, {a, b}); }
  ValueId div(ValueId a, ValueId b) { return g.make(Op::Div, {a, b}); }
  ValueId c(double value) { return g.makeConst(value); }
  ValueId scale(double k, ValueId x) { return mul(c(k), x); }
  ValueId relu(ValueId x) { return g.make(Op::Relu, {x}); }
  ValueId exp(ValueId x) { return g.make(Op::Exp, {x}); }
  ValueId pow(ValueId x, double e) {
    Node n(Op::Pow, {x});
    n.scalar = e;
    return g.build(std::move(n));
  }
  ValueId sumAll(ValueId x) {
    Node n(Op::Sum, {x});
    n.axis = -1;
    return g.build(std::move(n));
  }
  // beta^t for the scalar leaf t.
  ValueId powT(double beta, ValueId t) { return exp(scale(std::log(beta), t)); }
};

ValueId addState(Graph &g, const std::string &name, const Shape &shape, StateRole role) {
  if (auto existing = g.findLeaf(Op::State, name))
    return *existing;
  Node s(Op::State);
  s.name = name;
  s.type = {DType::F32, shape};
  s.stateRole = role;
  return g.add(std::move(s));
}

struct ParamGrad {
  ValueId param, grad;
  size_t output; // index of the gradient output
};

std::vector<ParamGrad> gradients(const Graph &g) {
  std::vector<ParamGrad> out;
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    const GraphOutput &o = g.outputs[i];
    if (o.role == OutputRole::Gradient && o.subject && g[*o.subject].op == Op::Param)
      out.push_back({*o.subject, o.value, i});
  }
  return out;
}

// The next value of `leaf` (an output labelled "state.<leaf>" for printing
// and binding; its role and subject are what codegen reads).
void writeBack(Graph &g, ValueId leaf, ValueId value) {
  g.setOutput({"state." + g[leaf].name, value, OutputRole::WriteBack, leaf, std::nullopt});
}

// c * g for every gradient, c = min(1, max / (norm + 1e-6)).
void clipGradients(Builder &b, std::vector<ParamGrad> &grads, double maxNorm) {
  std::optional<ValueId> total;
  for (const ParamGrad &pg : grads) {
    ValueId squares = b.sumAll(b.mul(pg.grad, pg.grad));
    total = total ? b.add(*total, squares) : squares;
  }
  if (!total)
    return;
  ValueId norm = b.pow(*total, 0.5);
  ValueId coef = b.div(b.c(maxNorm), b.add(norm, b.c(1e-6)));
  ValueId clamped = b.sub(b.c(1), b.relu(b.sub(b.c(1), coef)));
  for (ParamGrad &pg : grads)
    pg.grad = b.mul(pg.grad, clamped);
}

struct Scalars {
  ValueId lr, t;
};

ValueId sgdUpdate(Builder &b, const OptimizerConfig &o, const Scalars &s, const Node &param,
                  ValueId p, ValueId grad) {
  Graph &g = b.g;
  if (o.weightDecay != 0)
    grad = b.add(grad, b.scale(o.weightDecay, p));
  if (o.momentum != 0) {
    ValueId buffer =
        addState(g, param.name + ".momentum_buffer", param.type.shape, StateRole::Optimizer);
    ValueId first = b.relu(b.sub(b.c(2), s.t)); // 1 at t = 1, else 0
    ValueId keep = b.sub(b.c(1), b.scale(o.dampening, b.sub(b.c(1), first)));
    ValueId next = b.add(b.scale(o.momentum, buffer), b.mul(keep, grad));
    writeBack(g, buffer, next);
    grad = o.nesterov ? b.add(grad, b.scale(o.momentum, next)) : next;
  }
  return b.sub(p, b.mul(s.lr, grad));
}

ValueId adamUpdate(Builder &b, const OptimizerConfig &o, const Scalars &s, const Node &param,
                   ValueId p, ValueId grad) {
  Graph &g = b.g;
  ValueId base = p;
  if (o.algorithm == OptimizerAlgorithm::AdamW && o.weightDecay != 0)
    base = b.mul(p, b.sub(b.c(1), b.scale(o.weightDecay, s.lr)));
  else if (o.algorithm == OptimizerAlgorithm::Adam && o.weightDecay != 0)
    grad = b.add(grad, b.scale(o.weightDecay, p));
  ValueId m = addState(g, param.name + ".exp_avg", param.type.shape, StateRole::Optimizer);
  ValueId v = addState(g, param.name + ".exp_avg_sq", param.type.shape, StateRole::Optimizer);
  ValueId mNext = b.add(b.scale(o.beta1, m), b.scale(1 - o.beta1, grad));
  ValueId vNext = b.add(b.scale(o.beta2, v), b.scale(1 - o.beta2, b.mul(grad, grad)));
  writeBack(g, m, mNext);
  writeBack(g, v, vNext);
  ValueId stepSize = b.div(s.lr, b.sub(b.c(1), b.powT(o.beta1, s.t)));
  // sqrt(v) / sqrt(1 - beta2^t) as sqrt(v) * (1 / sqrt(1 - beta2^t)): the
  // reciprocal is one scalar per step, and the per-element divide it saves is
  // the costliest instruction of the update after the square root (a
  // difference of at most 1 ulp of the denominator; PyTorch divides).
  ValueId invCorrection2 = b.div(b.c(1), b.pow(b.sub(b.c(1), b.powT(o.beta2, s.t)), 0.5));
  ValueId denom = b.add(b.mul(b.pow(vNext, 0.5), invCorrection2), b.c(o.eps));
  return b.sub(base, b.mul(stepSize, b.div(mNext, denom)));
}

} // namespace

bool applyOptimizer(Graph &g, const TrainConfig &config, const OptimizerPassOptions &options,
                    PassContext &) {
  Builder b{g};
  Scalars s{addState(g, "optimizer.lr", {}, StateRole::LearningRate),
            addState(g, "optimizer.step", {}, StateRole::StepCount)};
  std::vector<ParamGrad> grads = gradients(g);
  if (config.clipGradNorm)
    clipGradients(b, grads, *config.clipGradNorm);
  const OptimizerConfig &o = config.optimizer;
  for (const ParamGrad &pg : grads) {
    const Node param = g[pg.param];
    ValueId next = o.algorithm == OptimizerAlgorithm::SGD
                       ? sgdUpdate(b, o, s, param, pg.param, pg.grad)
                       : adamUpdate(b, o, s, param, pg.param, pg.grad);
    writeBack(g, pg.param, next);
  }
  if (!options.keepGradients) {
    std::vector<GraphOutput> kept;
    for (const GraphOutput &out : g.outputs)
      if (out.role != OutputRole::Gradient)
        kept.push_back(out);
    g.outputs = std::move(kept);
  }
  g.compact();
  return true;
}

} // namespace mlpc
