// Tests for runtime/Rng.h. The Mt19937Py expectations were produced with
// CPython 3 (`random.seed(...)` then the same calls) and are hard-coded so the
// tests do not need Python.
#include "runtime/Rng.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

using mlpc::Mt19937Py;
using mlpc::Rng;

TEST_CASE("Mt19937Py getrandbits matches CPython", "[rng]") {
  // random.seed(42); [random.getrandbits(k) for k in (1, 5, 32, 33, 64)]
  Mt19937Py r(42);
  CHECK(r.getrandbits(1) == 1u);
  CHECK(r.getrandbits(5) == 3u);
  CHECK(r.getrandbits(32) == 107420369u);
  CHECK(r.getrandbits(33) == 3184935163ull);
  CHECK(r.getrandbits(64) == 4117511471858006928ull);

  Mt19937Py r48(42);
  CHECK(r48.getrandbits(48) == 31338827708829ull);
  CHECK(r48.getrandbits(0) == 0u);
}

TEST_CASE("Mt19937Py seeding matches CPython for several seeds", "[rng]") {
  CHECK(Mt19937Py(0).genrandUint32() == 3626764237u);
  // Python seeds with abs(n).
  CHECK(Mt19937Py(-42).genrandUint32() == 2746317213u);
  CHECK(Mt19937Py(42).genrandUint32() == 2746317213u);
  // Seeds wider than 32 bits use two key words.
  CHECK(Mt19937Py((int64_t(1) << 40) + 5).genrandUint32() == 2166296868u);
  CHECK(Mt19937Py::fromMagnitude(~uint64_t(0)).genrandUint32() == 93740670u);
}

TEST_CASE("Mt19937Py randbelow matches CPython randrange", "[rng]") {
  // random.seed(42); [random.randrange(10) for _ in range(5)]
  Mt19937Py r(42);
  std::vector<uint64_t> got;
  for (int i = 0; i < 5; ++i)
    got.push_back(r.randbelow(10));
  CHECK(got == std::vector<uint64_t>{1, 0, 4, 3, 3});

  Mt19937Py r2(42);
  CHECK(r2.randbelow(1000003) == 670487u);
  CHECK(r2.randbelow(1000003) == 116739u);
  CHECK(r2.randbelow(1000003) == 26225u);
  CHECK(r2.randbelow(0) == 0u);
  CHECK(r2.randbelow(1) == 0u);
}

TEST_CASE("Mt19937Py shuffle matches CPython random.shuffle", "[rng]") {
  auto shuffled = [](Mt19937Py r) {
    std::vector<int> v(10);
    std::iota(v.begin(), v.end(), 0);
    r.shuffle(v);
    return v;
  };
  CHECK(shuffled(Mt19937Py(42)) == std::vector<int>{7, 3, 2, 8, 5, 6, 9, 4, 0, 1});
  CHECK(shuffled(Mt19937Py(0)) == std::vector<int>{7, 8, 1, 5, 3, 4, 2, 0, 9, 6});
  CHECK(shuffled(Mt19937Py((int64_t(1) << 40) + 5)) ==
        std::vector<int>{1, 2, 3, 6, 7, 0, 5, 4, 9, 8});

  // Degenerate sizes must not touch the generator or crash.
  Mt19937Py r(1);
  std::vector<int> empty, one{5};
  r.shuffle(empty);
  r.shuffle(one);
  CHECK(one == std::vector<int>{5});
}

TEST_CASE("Rng is deterministic per seed and differs across seeds", "[rng]") {
  Rng a(123), b(123), c(124);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    uint64_t x = a.next();
    CHECK(x == b.next());
    differs |= x != c.next();
  }
  CHECK(differs);
}

TEST_CASE("Rng uniform and below stay in range", "[rng]") {
  Rng r(7);
  double sum = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    double u = r.uniform();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    sum += u;
  }
  CHECK(sum / n == Approx(0.5).margin(0.01));

  std::vector<int> counts(7, 0);
  for (int i = 0; i < 70000; ++i) {
    uint64_t k = r.below(7);
    REQUIRE(k < 7u);
    counts[k]++;
  }
  for (int c : counts)
    CHECK(c == Approx(10000).margin(500));
  CHECK(r.below(0) == 0u);
  CHECK(r.below(1) == 0u);
  // A huge bound exercises the rejection path without looping forever.
  uint64_t big = (uint64_t(1) << 63) + 1;
  for (int i = 0; i < 100; ++i)
    REQUIRE(r.below(big) < big);
}

TEST_CASE("Rng normal has unit variance", "[rng]") {
  Rng r(99);
  const int n = 200000;
  double sum = 0, sq = 0;
  for (int i = 0; i < n; ++i) {
    double x = r.normal();
    REQUIRE(std::isfinite(x));
    sum += x;
    sq += x * x;
  }
  double mean = sum / n;
  CHECK(mean == Approx(0.0).margin(0.01));
  CHECK(sq / n - mean * mean == Approx(1.0).margin(0.02));
  CHECK(std::isfinite(r.normalf()));
}

TEST_CASE("Rng state round trip resumes the exact stream", "[rng]") {
  Rng r(5);
  for (int i = 0; i < 10; ++i)
    r.next();
  auto st = r.state();
  std::vector<uint64_t> expected;
  for (int i = 0; i < 20; ++i)
    expected.push_back(r.next());

  Rng resumed(0);
  resumed.setState(st);
  for (uint64_t e : expected)
    CHECK(resumed.next() == e);
}

TEST_CASE("Rng snapshot keeps the cached normal spare", "[rng]") {
  Rng r(11);
  r.normal(); // leaves a spare cached
  Rng::Snapshot snap = r.snapshot();
  CHECK(snap.hasSpare);
  std::vector<double> expected;
  for (int i = 0; i < 9; ++i)
    expected.push_back(r.normal());

  Rng resumed(0);
  resumed.restore(snap);
  for (double e : expected)
    CHECK(resumed.normal() == e);

  // setState drops the spare: the next normal comes from a fresh pair.
  Rng dropped(0);
  dropped.setState(snap.s);
  CHECK(dropped.normal() != expected[0]);
}
