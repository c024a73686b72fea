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

} // namespace

llvm::Expected<Values> interpret(const Graph &g,
                                 const std::map<std::string, std::vector<double>> &leaves) {
  Values val(g.size());
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node &n = g[v];
    auto in = [&](size_t i) -> const std::vector<double> & { return val[n.operands[i]]; };
    auto shapeOf = [&](size_t i) -> const Shape & { return g[n.operands[i]].type.shape; };
    std::vector<double> &out = val[v];
    out.assign(n.type.numel(), 0.0);
    const Shape &os = n.type.shape;

    auto unary = [&](auto f) {
      for (size_t i = 0; i < out.size(); ++i)
        out[i] = f(in(0)[i]);
    };
    auto binary = [&](auto f) {
      BroadcastIndexer ia(shapeOf(0), os), ib(shapeOf(1), os);
      for (size_t i = 0; i < out.size(); ++i)
        out[i] = f(in(0)[ia(i)], in(1)[ib(i)]);
    };
    auto label = [&](size_t operand, int64_t row, int64_t classes) -> llvm::Expected<int64_t> {
      double y = in(operand)[row];
      if (y < 0 || y >= classes)
        return fail(fmt::format("'{}': label {} in row {} is outside [0, {})", opInfo(n.op).name, y,
                                row, classes));
      return static_cast<int64_t>(y);
    };

    switch (n.op) {
    case Op::Input:
    case Op::Param:
    case Op::State: {
      auto it = leaves.find(n.name);
      if (it == leaves.end())
        return fail(fmt::format("no value bound for '{}'", n.name));
      if (it->second.size() != out.size())
        return fail(fmt::format("'{}' has {} elements, expected {} for {}", n.name,
                                it->second.size(), out.size(), toString(n.type)));
      out = it->second;
      break;
    }
    case Op::Const:
      out[0] = n.scalar;
      break;
    case Op::Add:
      binary([](double a, double b) { return a + b; });
      break;
    case Op::Sub:
      binary([](double a, double b) { return a - b; });
      break;
    case Op::Mul:
      binary([](double a, double b) { return a * b; });
      break;
    case Op::Div:
      binary([](double a, double b) { return a / b; });
      break;
    case Op::Neg:
      unary([](double a) { return -a; });
      break;
    case Op::Pow:
      unary([&](double a) { return std::pow(a, n.scalar); });
      break;
    case Op::Tanh:
      unary([](double a) { return std::tanh(a); });
      break;
    case Op::Sigmoid:
      unary([](double a) { return 1 / (1 + std::exp(-a)); });
      break;
    case Op::Relu:
      unary([](double a) { return a > 0 ? a : 0.0; });
      break;
    case Op::Exp:
      unary([](double a) { return std::exp(a); });
      break;
    case Op::Log:
      unary([](double a) { return std::log(a); });
      break;
    case Op::Step:
      unary([](double a) { return a > 0 ? 1.0 : 0.0; });
      break;

    case Op::Sum:
    case Op::Mean:
    case Op::Max: {
      AxisSplit s(shapeOf(0), n.axis);
      for (int64_t o = 0; o < s.outer; ++o)
        for (int64_t i = 0; i < s.inner; ++i) {
          double acc = n.op == Op::Max ? -INFINITY : 0.0;
          for (int64_t k = 0; k < s.size; ++k) {
            double x = in(0)[(o * s.size + k) * s.inner + i];
            acc = n.op == Op::Max ? std::max(acc, x) : acc + x;
          }
          out[o * s.inner + i] = n.op == Op::Mean ? acc / s.size : acc;
        }
      break;
    }
    case Op::MaxMask: {
      AxisSplit s(shapeOf(0), n.axis);
      for (int64_t o = 0; o < s.outer; ++o)
        for (int64_t i = 0; i < s.inner; ++i) {
          int64_t best = 0;
          for (int64_t k = 1; k < s.size; ++k)
            if (in(0)[(o * s.size + k) * s.inner + i] > in(0)[(o * s.size + best) * s.inner + i])
              best = k;
          out[(o * s.size + best) * s.inner + i] = 1.0;
        }
      break;
    }
    case Op::MatMul: {
      const Shape &a = shapeOf(0), &b = shapeOf(1);
      int64_t m = os[0], cols = os[1], k = n.transA ? a[0] : a[1];
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < cols; ++j) {
          double acc = 0;
          for (int64_t p = 0; p < k; ++p) {
            double av = n.transA ? in(0)[p * a[1] + i] : in(0)[i * a[1] + p];
            double bv = n.transB ? in(1)[j * b[1] + p] : in(1)[p * b[1] + j];
            acc += av * bv;
          }
          out[i * cols + j] = acc;
        }
      break;
    }
    case Op::Reshape:
      out = in(0);
      break;
    case Op::Broadcast: {
      BroadcastIndexer ia(shapeOf(0), os);
      for (size_t i = 0; i < out.size(); ++i)
        out[i] = in(0)[ia(i)];
      break;
    }
    case Op::Gather: {
      int64_t rows = static_cast<int64_t>(in(1).size()), e = shapeOf(0)[1];
      for (int64_t r = 0; r < rows; ++r) {
        auto index = label(1, r, shapeOf(0)[0]);
        if (!index)
          return index.takeError();
        for (int64_t j = 0; j < e; ++j)
          out[r * e + j] = in(0)[*index * e + j];
      }
      break;
    }
    case Op::ScatterAdd: {
      int64_t rows = static_cast<int64_t>(in(1).size()), e = os[1];
      for (int64_t r = 0; r < rows; ++r) {
        auto index = label(1, r, os[0]);
        if (!index)
          return index.takeError();
        for (int64_t j = 0; j < e; ++j)
          out[*index * e + j] += in(0)[r * e + j];
      }
      break;
    }
    case Op::Pick:
    case Op::Unpick: {
      int64_t rows = os[0], k = n.op == Op::Pick ? shapeOf(0)[1] : os[1];
      for (int64_t r = 0; r < rows; ++r) {
        auto y = label(1, r, k);
        if (!y)
          return y.takeError();
        if (n.op == Op::Pick)
          out[r] = in(0)[r * k + *y];
        else
          out[r * k + *y] = in(0)[r];
      }
      break;
    }
    case Op::BatchNorm:
    case Op::BatchNormXhat:
    case Op::BatchNormInfer:
    case Op::BatchNormGrad: {
      int64_t rows = os[0], h = os[1];
      BatchStats s;
      if (n.op == Op::BatchNormInfer) {
        s.mean = in(3);
        for (int64_t j = 0; j < h; ++j)
          s.invStd.push_back(1.0 / std::sqrt(in(4)[j] + n.scalar));
      } else {
        s = batchStats(in(0), rows, h, n.scalar);
      }
      auto xhat = [&](int64_t i, int64_t j) {
        return (in(0)[i * h + j] - s.mean[j]) * s.invStd[j];
      };
      if (n.op != Op::BatchNormGrad) {
        for (int64_t i = 0; i < rows; ++i)
          for (int64_t j = 0; j < h; ++j)
            out[i * h + j] =
                n.op == Op::BatchNormXhat ? xhat(i, j) : in(1)[j] * xhat(i, j) + in(2)[j];
        break;
      }
      // dx = gain * invStd / n * (n*dout - sum(dout) - n/(n-1) * xhat * sum(dout*xhat))
      const std::vector<double> &dout = in(2);
      for (int64_t j = 0; j < h; ++j) {
        double sumD = 0, sumDX = 0;
        for (int64_t i = 0; i < rows; ++i) {
          sumD += dout[i * h + j];
          sumDX += dout[i * h + j] * xhat(i, j);
        }
        for (int64_t i = 0; i < rows; ++i)
          out[i * h + j] =
              in(1)[j] * s.invStd[j] / rows *
              (rows * dout[i * h + j] - sumD - double(rows) / (rows - 1) * xhat(i, j) * sumDX);
      }
      break;
    }
    case Op::CrossEntropy:
    case Op::CrossEntropyGrad: {
      const Shape &ls = shapeOf(0);
      int64_t rows = ls[0], k = ls[1];
      for (int64_t r = 0; r < rows; ++r) {
        auto y = label(1, r, k);
        if (!y)
          return y.takeError();
        const double *row = &in(0)[r * k];
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < k; ++j)
          mx = std::max(mx, row[j]);
        for (int64_t j = 0; j < k; ++j)
          sum += std::exp(row[j] - mx);
        if (n.op == Op::CrossEntropy) {
          out[0] += (std::log(sum) + mx - row[*y]) / rows;
        } else {
          for (int64_t j = 0; j < k; ++j)
            out[r * k + j] = (std::exp(row[j] - mx) / sum - (j == *y)) / rows * in(2)[0];
        }
      }
      break;
    }
    }
  }
  return val;
}

} // namespace mlpc
