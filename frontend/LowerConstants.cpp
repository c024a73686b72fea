// Compile-time evaluation for the lowering: dimension expressions, shapes,
// constant exponents and parameter initializers, and the size limits every
// declared or computed tensor must respect before anything is allocated.
#include "frontend/LoweringImpl.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace mlpc::detail {

std::optional<int64_t> Lowerer::evalInt(const Expr &e) {
  switch (e.kind) {
  case ExprKind::Number:
    if (!e.isInteger) {
      diags_.error(e.loc, fmt::format("expected an integer, found '{}'", e.number));
      return std::nullopt;
    }
    return e.integer;
  case ExprKind::Ident: {
    auto it = dims_.find(e.name);
    if (it != dims_.end())
      return it->second;
    if (!poisoned_.count(e.name))
      diags_.error(e.loc, fmt::format("unknown dimension '{}'", e.name));
    return std::nullopt;
  }
  case ExprKind::Unary: {
    auto v = evalInt(*e.args[0]);
    if (v && *v == INT64_MIN) {
      diags_.error(e.loc, "integer overflow in dimension expression");
      return std::nullopt;
    }
    return v ? std::optional<int64_t>(-*v) : std::nullopt;
  }
  case ExprKind::Binary: {
    auto a = evalInt(*e.args[0]);
    auto b = evalInt(*e.args[1]);
    if (!a || !b)
      return std::nullopt;
    int64_t r = 0;
    bool overflow = false;
    switch (e.op) {
    case '+':
      overflow = __builtin_add_overflow(*a, *b, &r);
      break;
    case '-':
      overflow = __builtin_sub_overflow(*a, *b, &r);
      break;
    case '*':
      overflow = __builtin_mul_overflow(*a, *b, &r);
      break;
    case '/':
      // INT64_MIN / -1 is the one quotient that overflows (and `%` traps on it).
      if (*a == INT64_MIN && *b == -1) {
        overflow = true;
        break;
      }
      if (*b == 0 || *a % *b != 0) {
        diags_.error(e.loc, fmt::format("dimension division {} / {} is not exact", *a, *b));
        return std::nullopt;
      }
      r = *a / *b;
      break;
    default:
      diags_.error(e.loc, fmt::format("operator '{}' is not allowed in a dimension", e.op));
      return std::nullopt;
    }
    if (overflow) {
      diags_.error(e.loc, "integer overflow in dimension expression");
      return std::nullopt;
    }
    return r;
  }
  default:
    diags_.error(e.loc, "expected an integer dimension expression");
    return std::nullopt;
  }
}

std::optional<Shape> Lowerer::evalShape(const std::vector<ExprPtr> &dims, SourceLoc where) {
  Shape shape;
  bool ok = true;
  int64_t numel = 1;
  for (const ExprPtr &d : dims) {
    auto v = evalInt(*d);
    if (!v) {
      ok = false;
      continue;
    }
    if (*v <= 0) {
      diags_.error(d->loc, fmt::format("dimension must be positive, got {}", *v));
      ok = false;
      continue;
    }
    if (__builtin_mul_overflow(numel, *v, &numel) || numel > kMaxTensorElements) {
      diags_.error(d->loc,
                   fmt::format("tensor is too large: more than {} elements", kMaxTensorElements));
      return std::nullopt;
    }
    shape.push_back(*v);
  }
  if (ok && shape.empty()) {
    diags_.error(where, "a shape needs at least one dimension");
    return std::nullopt;
  }
  return ok ? std::optional<Shape>(shape) : std::nullopt;
}

std::optional<double> Lowerer::evalConst(const Expr &e) {
  switch (e.kind) {
  case ExprKind::Number:
    return e.number;
  case ExprKind::Ident:
    if (auto it = dims_.find(e.name); it != dims_.end())
      return static_cast<double>(it->second);
    break;
  case ExprKind::Unary:
    if (auto v = evalConst(*e.args[0]))
      return -*v;
    return std::nullopt;
  case ExprKind::Binary: {
    auto a = evalConst(*e.args[0]);
    auto b = a ? evalConst(*e.args[1]) : std::nullopt;
    if (!a || !b)
      return std::nullopt;
    switch (e.op) {
    case '+':
      return *a + *b;
    case '-':
      return *a - *b;
    case '*':
      return *a * *b;
    case '/':
      return *a / *b;
    case '^':
      return std::pow(*a, *b);
    default:
      break;
    }
    break;
  }
  default:
    break;
  }
  diags_.error(e.loc, "expected a constant expression");
  return std::nullopt;
}

std::optional<InitExpr> Lowerer::lowerInit(const Expr &e) {
  using K = InitExpr::Kind;
  switch (e.kind) {
  case ExprKind::Number:
    return InitExpr{K::Number, e.number, {}};
  case ExprKind::Ident:
    if (e.name == "randn")
      return InitExpr{K::Randn, 0, {}};
    if (e.name == "zeros")
      return InitExpr{K::Zeros, 0, {}};
    if (e.name == "ones")
      return InitExpr{K::Ones, 0, {}};
    if (auto it = dims_.find(e.name); it != dims_.end())
      return InitExpr{K::Number, static_cast<double>(it->second), {}};
    diags_.error(e.loc, fmt::format("unknown name '{}' in initializer (expected randn, zeros, "
                                    "ones, a number or a dimension)",
                                    e.name));
    return std::nullopt;
  case ExprKind::Unary: {
    auto a = lowerInit(*e.args[0]);
    if (!a)
      return std::nullopt;
    return InitExpr{K::Neg, 0, {*a}};
  }
  case ExprKind::Binary: {
    static const std::map<char, K> kinds = {
        {'+', K::Add}, {'-', K::Sub}, {'*', K::Mul}, {'/', K::Div}};
    auto it = kinds.find(e.op);
    if (it == kinds.end()) {
      diags_.error(e.loc, fmt::format("operator '{}' is not allowed in an initializer", e.op));
      return std::nullopt;
    }
    auto a = lowerInit(*e.args[0]);
    auto b = lowerInit(*e.args[1]);
    if (!a || !b)
      return std::nullopt;
    return InitExpr{it->second, 0, {*a, *b}};
  }
  case ExprKind::Call:
    if (e.name == "sqrt" && e.args.size() == 1) {
      auto a = lowerInit(*e.args[0]);
      if (!a)
        return std::nullopt;
      return InitExpr{K::Sqrt, 0, {*a}};
    }
    diags_.error(e.loc,
                 fmt::format("unknown initializer function '{}' (expected sqrt(x))", e.name));
    return std::nullopt;
  default:
    diags_.error(e.loc, "unsupported expression in initializer");
    return std::nullopt;
  }
}

bool Lowerer::account(const TensorType &t, SourceLoc loc, bool isParam) {
  // numel() is safe here: every shape already passed kMaxTensorElements.
  const int64_t bytes = t.numel() * 4; // f32 and i32 alike
  auto add = [&](int64_t &total, int64_t limit, const char *what) {
    if (total > limit) // already reported
      return true;
    total = std::min(total + bytes, limit + 1);
    if (total <= limit)
      return true;
    diags_.error(loc, fmt::format("{} too large: more than {} GiB ({} bytes) in total", what,
                                  limit >> 30, limit));
    return false;
  };
  if (isParam && !add(paramBytes_, kMaxParamBytes, "the parameters are"))
    return false;
  return add(forwardBytes_, kMaxForwardBytes, "the values of the forward pass are");
}

} // namespace mlpc::detail
