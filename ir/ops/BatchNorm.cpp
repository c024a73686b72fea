// BatchNorm over the rows of x[N, H] (PyTorch's BatchNorm1d in training
// mode), gain and bias of shape [H] or [1, H], epsilon in Node::scalar:
//   batchnorm(x, g, b)        = g * xhat + b, xhat = (x - mean) / sqrt(var + eps)
//                               with the batch mean and the Bessel-corrected
//                               variance (n - 1), as the seed computes it
//   batchnorm_infer(x, g, b, mean, var)   the same with running statistics
//   batchnorm_xhat(x)         xhat (for the gain's gradient)
//   batchnorm_grad(x, g, d)   dx = g / std / n * (n d - sum(d)
//                                   - n/(n-1) xhat sum(d xhat))   (per column)
// Codegen: the batch statistics are a shared pre-pass (LowerFused.cpp:
// emitBatchStats), after which batchnorm, _infer and _xhat are elementwise
// over them (the fused elementwise kernel); batchnorm_grad has its kernel.
#include "ir/ops/OpContext.h"

#include <cmath>

namespace mlpc {
namespace {

// A per-feature vector of a [N, H] activation may be written [H] or [1, H].
bool features(ShapeCheck &c, size_t x, std::initializer_list<size_t> vectors) {
  if (!c.f32(x) || !c.rank(x, 2))
    return false;
  int64_t h = c.operand(x).shape[1];
  for (size_t v : vectors) {
    const TensorType &t = c.operand(v);
    if (t.dtype != DType::F32 || (t.shape != Shape{h} && t.shape != Shape{1, h}))
      return c.fail(
          fmt::format("'{}' operand {} must have shape [{}] or [1, {}] to match {}, got {}",
                      c.name(), v + 1, h, h, toString(c.operand(x).shape), toString(t)));
  }
  return true;
}

struct Columns {
  int64_t n, h;
  std::vector<double> mean, invStd; // per column
  double xhat(const std::vector<double> &x, int64_t i, int64_t j) const {
    return (x[i * h + j] - mean[j]) * invStd[j];
  }
};

// The batch statistics of x[n, h] (Bessel-corrected variance).
Columns batchStats(EvalContext &k) {
  const std::vector<double> &x = k.in(0);
  Columns s{k.os()[0], k.os()[1], {}, {}};
  s.mean.assign(s.h, 0);
  s.invStd.assign(s.h, 0);
  for (int64_t i = 0; i < s.n; ++i)
    for (int64_t j = 0; j < s.h; ++j)
      s.mean[j] += x[i * s.h + j] / s.n;
  for (int64_t j = 0; j < s.h; ++j) {
    double var = 0;
    for (int64_t i = 0; i < s.n; ++i)
      var += (x[i * s.h + j] - s.mean[j]) * (x[i * s.h + j] - s.mean[j]);
    s.invStd[j] = 1.0 / std::sqrt(var / (s.n - 1) + k.n.scalar);
  }
  return s;
}

// gain * xhat + bias for every element.
llvm::Error affine(EvalContext &k, const Columns &s) {
  for (int64_t i = 0; i < s.n; ++i)
    for (int64_t j = 0; j < s.h; ++j)
      k.out[i * s.h + j] = k.in(1)[j] * s.xhat(k.in(0), i, j) + k.in(2)[j];
  return llvm::Error::success();
}

llvm::Error gradient(EvalContext &k) {
  Columns s = batchStats(k);
  const std::vector<double> &x = k.in(0), &dout = k.in(2);
  const int64_t n = s.n, h = s.h;
  for (int64_t j = 0; j < h; ++j) {
    double sumD = 0, sumDX = 0;
    for (int64_t i = 0; i < n; ++i) {
      sumD += dout[i * h + j];
      sumDX += dout[i * h + j] * s.xhat(x, i, j);
    }
    for (int64_t i = 0; i < n; ++i)
      k.out[i * h + j] =
          k.in(1)[j] * s.invStd[j] / n *
          (n * dout[i * h + j] - sumD - double(n) / (n - 1) * s.xhat(x, i, j) * sumDX);
  }
  return llvm::Error::success();
}

// dx by the closed form; dgain = sum over rows of d * xhat, dbias = sum of d.
std::optional<Grads> vjp(GradContext &c) {
  Node xhat(Op::BatchNormXhat, {c.operand(0)});
  xhat.scalar = c.n.scalar;
  ValueId xh = c.g.build(std::move(xhat));
  Node dx(Op::BatchNormGrad, {c.operand(0), c.operand(1), c.d});
  dx.scalar = c.n.scalar;
  return Grads{c.g.build(std::move(dx)), c.reduceToShape(c.mul(c.d, xh), c.shapeOf(1)),
               c.reduceToShape(c.d, c.shapeOf(2))};
}

} // namespace

// (At least 2 rows are needed to train: lowering checks that, since the
// same forward graph is also lowered for one-row inference.)
const OpInfo oprecord::BatchNorm = {
    .name = "batchnorm",
    .arity = 3,
    .kind = OpKind::Fused,
    .syntax = OpSyntax::Call,
    .flags = opflag::AttrEps,
    .usage = "3 arguments (x, gain, bias)",
    .kernel = Kernel::Elementwise,
    .shape = [](ShapeCheck &c) -> std::optional<TensorType> {
      if (!features(c, 0, {1, 2}))
        return std::nullopt;
      return c.operand(0);
    },
    .interpret = [](EvalContext &k) -> llvm::Error { return affine(k, batchStats(k)); },
    .gradient = vjp,
    .eval = nullptr,
    .costly = nullptr,
};

// Inference graphs only (passes/BatchNormState.cpp): never differentiated.
const OpInfo oprecord::BatchNormInfer = {
    .name = "batchnorm_infer",
    .arity = 5,
    .kind = OpKind::Fused,
    .syntax = OpSyntax::Internal,
    .flags = opflag::AttrEps,
    .usage = "",
    .kernel = Kernel::Elementwise,
    .shape = [](ShapeCheck &c) -> std::optional<TensorType> {
      if (!features(c, 0, {1, 2, 3, 4}))
        return std::nullopt;
      return c.operand(0);
    },
    .interpret = [](EvalContext &k) -> llvm::Error {
      Columns s{k.os()[0], k.os()[1], k.in(3), {}};
      for (int64_t j = 0; j < s.h; ++j)
        s.invStd.push_back(1.0 / std::sqrt(k.in(4)[j] + k.n.scalar));
      return affine(k, s);
    },
    .gradient = nullptr,
    .eval = nullptr,
    .costly = nullptr,
};

const OpInfo oprecord::BatchNormXhat = {
    .name = "batchnorm_xhat",
    .arity = 1,
    .kind = OpKind::Grad,
    .syntax = OpSyntax::Internal,
    .flags = opflag::AttrEps,
    .usage = "",
    .kernel = Kernel::Elementwise,
    .shape = [](ShapeCheck &c) -> std::optional<TensorType> {
      if (!c.f32(0) || !c.rank(0, 2))
        return std::nullopt;
      return c.operand(0);
    },
    .interpret = [](EvalContext &k) -> llvm::Error {
      Columns s = batchStats(k);
      for (int64_t i = 0; i < s.n; ++i)
        for (int64_t j = 0; j < s.h; ++j)
          k.out[i * s.h + j] = s.xhat(k.in(0), i, j);
      return llvm::Error::success();
    },
    .gradient = nullptr,
    .eval = nullptr,
    .costly = nullptr,
};

const OpInfo oprecord::BatchNormGrad = {
    .name = "batchnorm_grad",
    .arity = 3,
    .kind = OpKind::Grad,
    .syntax = OpSyntax::Internal,
    .flags = opflag::AttrEps,
    .usage = "",
    .kernel = Kernel::BatchNormGrad,
    .shape = [](ShapeCheck &c) -> std::optional<TensorType> {
      if (!features(c, 0, {1}) || !c.f32(2) || !c.sameShape(0, 2))
        return std::nullopt;
      return c.operand(0);
    },
    .interpret = gradient,
    .gradient = nullptr,
    .eval = nullptr,
    .costly = nullptr,
};

} // namespace mlpc
