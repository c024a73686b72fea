#include "ir/Interpreter.h"

#include <cmath>
#include <fmt/format.h>

namespace mlpc {
namespace {

llvm::Error fail(std::string message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

// Maps a flat index of `out` to the flat index of an operand broadcast to it.
struct BroadcastIndexer {
  std::vector<int64_t> outShape, strides; // operand strides per output axis (0 = broadcast)
  BroadcastIndexer(const Shape &operand, const Shape &out) : outShape(out), strides(out.size(), 0) {
    int64_t stride = 1;
    for (size_t i = 0; i < operand.size(); ++i) {
      size_t axis = operand.size() - 1 - i, outAxis = out.size() - 1 - i;
      if (operand[axis] != 1)
        strides[outAxis] = stride;
      stride *= operand[axis];
    }
  }
  int64_t operator()(int64_t flat) const {
    int64_t index = 0;
    for (size_t a = outShape.size(); a-- > 0;) {
      index += (flat % outShape[a]) * strides[a];
      flat /= outShape[a];
    }
    return index;
  }
};

struct BatchStats {
  std::vector<double> mean, invStd; // per column
};

BatchStats batchStats(const std::vector<double> &x, int64_t n, int64_t h, double eps) {
  BatchStats s{std::vector<double>(h, 0), std::vector<double>(h, 0)};
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < h; ++j)
      s.mean[j] += x[i * h + j] / n;
  for (int64_t j = 0; j < h; ++j) {
    double var = 0;
    for (int64_t i = 0; i < n; ++i)
      var += (x[i * h + j] - s.mean[j]) * (x[i * h + j] - s.mean[j]);
    s.invStd[j] = 1.0 / std::sqrt(var / (n - 1) + eps);
  }
  return s;
}

// One node's evaluation: its operands' values and shapes, its output buffer.
struct Kernel {
  const Graph &g;
  const Node &n;
  const Values &val;
  std::vector<double> &out;

  const std::vector<double> &in(size_t i) const { return val[n.operands[i]]; }
  const Shape &shapeOf(size_t i) const { return g[n.operands[i]].type.shape; }
  const Shape &os() const { return n.type.shape; }

  llvm::Expected<int64_t> label(size_t operand, int64_t row, int64_t classes) const {
    double y = in(operand)[row];
    if (y < 0 || y >= classes)
      return fail(fmt::format("'{}': label {} in row {} is outside [0, {})", opInfo(n.op).name, y,
                              row, classes));
    return static_cast<int64_t>(y);
  }
  template <typename F> void unary(F f) {
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = f(in(0)[i]);
  }
  template <typename F> void binary(F f) {
    BroadcastIndexer ia(shapeOf(0), os()), ib(shapeOf(1), os());
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = f(in(0)[ia(i)], in(1)[ib(i)]);
  }
};

void elementwise(Kernel &k) {
  const double p = k.n.scalar;
  auto eval = opInfo(k.n.op).eval;
  if (k.n.operands.size() == 1)
    return k.unary([&](double x) { return eval(&x, p); });
  k.binary([&](double a, double b) {
    const double ab[2] = {a, b};
    return eval(ab, p);
  });
}

void reduce(Kernel &k) {
  const Node &n = k.n;
  AxisSplit s(k.shapeOf(0), n.axis);
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t i = 0; i < s.inner; ++i) {
      double acc = n.op == Op::Max ? -INFINITY : 0.0;
      for (int64_t j = 0; j < s.size; ++j) {
        double x = k.in(0)[(o * s.size + j) * s.inner + i];
        acc = n.op == Op::Max ? std::max(acc, x) : acc + x;
      }
      k.out[o * s.inner + i] = n.op == Op::Mean ? acc / s.size : acc;
    }
}

void maxMask(Kernel &k) {
  AxisSplit s(k.shapeOf(0), k.n.axis);
  const std::vector<double> &x = k.in(0);
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t i = 0; i < s.inner; ++i) {
      int64_t best = 0;
      for (int64_t j = 1; j < s.size; ++j)
        if (x[(o * s.size + j) * s.inner + i] > x[(o * s.size + best) * s.inner + i])
          best = j;
      k.out[(o * s.size + best) * s.inner + i] = 1.0;
    }
}

void matMul(Kernel &k) {
  const Node &n = k.n;
  const Shape &a = k.shapeOf(0), &b = k.shapeOf(1);
  int64_t m = k.os()[0], cols = k.os()[1], inner = n.transA ? a[0] : a[1];
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < inner; ++p) {
        double av = n.transA ? k.in(0)[p * a[1] + i] : k.in(0)[i * a[1] + p];
        double bv = n.transB ? k.in(1)[j * b[1] + p] : k.in(1)[p * b[1] + j];
        acc += av * bv;
      }
      k.out[i * cols + j] = acc;
    }
}

// Gather (rows of a table) and ScatterAdd (its gradient).
llvm::Error rows(Kernel &k) {
  const bool gather = k.n.op == Op::Gather;
  int64_t count = static_cast<int64_t>(k.in(1).size());
  int64_t e = gather ? k.shapeOf(0)[1] : k.os()[1];
  for (int64_t r = 0; r < count; ++r) {
    auto index = k.label(1, r, gather ? k.shapeOf(0)[0] : k.os()[0]);
    if (!index)
      return index.takeError();
    for (int64_t j = 0; j < e; ++j) {
      if (gather)
        k.out[r * e + j] = k.in(0)[*index * e + j];
      else
        k.out[*index * e + j] += k.in(0)[r * e + j];
    }
  }
  return llvm::Error::success();
}

// Pick (x[n, Y[n]]) and Unpick (its gradient).
llvm::Error pick(Kernel &k) {
  const bool isPick = k.n.op == Op::Pick;
  int64_t count = k.os()[0], classes = isPick ? k.shapeOf(0)[1] : k.os()[1];
  for (int64_t r = 0; r < count; ++r) {
    auto y = k.label(1, r, classes);
    if (!y)
      return y.takeError();
    if (isPick)
      k.out[r] = k.in(0)[r * classes + *y];
    else
      k.out[r * classes + *y] = k.in(0)[r];
  }
  return llvm::Error::success();
}

// BatchNorm, BatchNormXhat, BatchNormInfer and BatchNormGrad.
void batchNorm(Kernel &k) {
  const Node &n = k.n;
  int64_t count = k.os()[0], h = k.os()[1];
  BatchStats s;
  if (n.op == Op::BatchNormInfer) {
    s.mean = k.in(3);
    for (int64_t j = 0; j < h; ++j)
      s.invStd.push_back(1.0 / std::sqrt(k.in(4)[j] + n.scalar));
  } else {
    s = batchStats(k.in(0), count, h, n.scalar);
  }
  auto xhat = [&](int64_t i, int64_t j) { return (k.in(0)[i * h + j] - s.mean[j]) * s.invStd[j]; };
  if (n.op != Op::BatchNormGrad) {
    for (int64_t i = 0; i < count; ++i)
      for (int64_t j = 0; j < h; ++j)
        k.out[i * h + j] =
            n.op == Op::BatchNormXhat ? xhat(i, j) : k.in(1)[j] * xhat(i, j) + k.in(2)[j];
    return;
  }
  // dx = gain * invStd / n * (n*dout - sum(dout) - n/(n-1) * xhat * sum(dout*xhat))
  const std::vector<double> &dout = k.in(2);
  for (int64_t j = 0; j < h; ++j) {
    double sumD = 0, sumDX = 0;
    for (int64_t i = 0; i < count; ++i) {
      sumD += dout[i * h + j];
      sumDX += dout[i * h + j] * xhat(i, j);
    }
    for (int64_t i = 0; i < count; ++i)
      k.out[i * h + j] =
          k.in(1)[j] * s.invStd[j] / count *
          (count * dout[i * h + j] - sumD - double(count) / (count - 1) * xhat(i, j) * sumDX);
  }
}

// CrossEntropy and CrossEntropyGrad.
llvm::Error crossEntropy(Kernel &k) {
  const Shape &ls = k.shapeOf(0);
  int64_t count = ls[0], classes = ls[1];
  for (int64_t r = 0; r < count; ++r) {
    auto y = k.label(1, r, classes);
    if (!y)
      return y.takeError();
    const double *row = &k.in(0)[r * classes];
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < classes; ++j)
      mx = std::max(mx, row[j]);
    for (int64_t j = 0; j < classes; ++j)
      sum += std::exp(row[j] - mx);
    if (k.n.op == Op::CrossEntropy) {
      k.out[0] += (std::log(sum) + mx - row[*y]) / count;
    } else {
      for (int64_t j = 0; j < classes; ++j)
        k.out[r * classes + j] = (std::exp(row[j] - mx) / sum - (j == *y)) / count * k.in(2)[0];
    }
  }
  return llvm::Error::success();
}

llvm::Error leaf(Kernel &k, const std::map<std::string, std::vector<double>> &leaves) {
  const Node &n = k.n;
  auto it = leaves.find(n.name);
  if (it == leaves.end())
    return fail(fmt::format("no value bound for '{}'", n.name));
  if (it->second.size() != k.out.size())
    return fail(fmt::format("'{}' has {} elements, expected {} for {}", n.name, it->second.size(),
                            k.out.size(), toString(n.type)));
  k.out = it->second;
  return llvm::Error::success();
}

llvm::Error evaluate(Kernel &k, const std::map<std::string, std::vector<double>> &leaves) {
  switch (k.n.op) {
  case Op::Input:
  case Op::Param:
  case Op::State:
    return leaf(k, leaves);
  case Op::Const:
    k.out[0] = k.n.scalar;
    return llvm::Error::success();
    // The records of ir/ops/Elementwise.def, in double (OpInfo::eval).
#define UNARY(Enum, ...) case Op::Enum:
#define BINARY(Enum, ...) case Op::Enum:
#include "ir/ops/Elementwise.def"
    elementwise(k);
    return llvm::Error::success();
  case Op::Sum:
  case Op::Mean:
  case Op::Max:
    reduce(k);
    return llvm::Error::success();
  case Op::MaxMask:
    maxMask(k);
    return llvm::Error::success();
  case Op::MatMul:
    matMul(k);
    return llvm::Error::success();
  case Op::Reshape:
    k.out = k.in(0);
    return llvm::Error::success();
  case Op::Broadcast: {
    BroadcastIndexer ia(k.shapeOf(0), k.os());
    for (size_t i = 0; i < k.out.size(); ++i)
      k.out[i] = k.in(0)[ia(i)];
    return llvm::Error::success();
  }
  case Op::Gather:
  case Op::ScatterAdd:
    return rows(k);
  case Op::Pick:
  case Op::Unpick:
    return pick(k);
  case Op::BatchNorm:
  case Op::BatchNormXhat:
  case Op::BatchNormInfer:
  case Op::BatchNormGrad:
    batchNorm(k);
    return llvm::Error::success();
  case Op::CrossEntropy:
  case Op::CrossEntropyGrad:
    return crossEntropy(k);
  }
  return fail(fmt::format("internal error: no kernel for op {}", static_cast<int>(k.n.op)));
}

} // namespace

llvm::Expected<Values> interpret(const Graph &g,
                                 const std::map<std::string, std::vector<double>> &leaves) {
  Values val(g.size());
  for (ValueId v = 0; v < g.size(); ++v) {
    val[v].assign(g[v].type.numel(), 0.0);
    Kernel k{g, g[v], val, val[v]};
    if (llvm::Error e = evaluate(k, leaves))
      return e;
  }
  return val;
}

} // namespace mlpc
