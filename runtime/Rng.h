//===- Rng.h - Random number generators for data and training ----*- C++ -*-===//
//
// Two generators with different jobs:
//  * Mt19937Py reproduces CPython's `random` module bit for bit, so that
//    `random.seed(42); random.shuffle(words)` in the seed notebooks gives the
//    same train/val/test split here. It is not meant to be fast.
//  * Rng is the fast generator used during training (initialisation, batch
//    sampling, dropout). Its whole state can be saved and restored so that a
//    resumed training run continues the exact same stream.
//
// Both are plain values: no global state, copyable, deterministic.
//
//===----------------------------------------------------------------------===//
#ifndef MLPC_RUNTIME_RNG_H
#define MLPC_RUNTIME_RNG_H

#include <array>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

namespace mlpc {

/// MT19937 seeded and consumed exactly like CPython's random.Random.
class Mt19937Py {
public:
  /// Same as Python `random.seed(seed)` for an int seed. Python seeds with
  /// abs(seed), so a negative seed behaves like its absolute value.
  explicit Mt19937Py(int64_t seed = 42) { seed64(seed); }

  /// For seeds held as uint64_t (values above INT64_MAX included).
  static Mt19937Py fromMagnitude(uint64_t n) {
    Mt19937Py r;
    r.seedMagnitude(n);
    return r;
  }

  /// Re-seed like `random.seed(n)`; n is taken as an unsigned magnitude.
  void seedMagnitude(uint64_t n) {
    // CPython splits abs(n) into 32-bit words, least significant first, and
    // always uses at least one word (seed 0 -> key [0]).
    uint32_t key[2] = {static_cast<uint32_t>(n), static_cast<uint32_t>(n >> 32)};
    initByArray(key, (n >> 32) != 0 ? 2 : 1);
  }

  void seed64(int64_t seed) {
    // Negate in unsigned arithmetic so INT64_MIN does not overflow.
    uint64_t mag = seed < 0 ? 0 - static_cast<uint64_t>(seed) : static_cast<uint64_t>(seed);
    seedMagnitude(mag);
  }

  /// genrand_uint32 from the reference implementation (CPython's copy).
  uint32_t genrandUint32() {
    static constexpr uint32_t Mag01[2] = {0x0u, MatrixA};
    uint32_t y;
    if (Mti >= N) {
      int kk = 0;
      for (; kk < N - M; kk++) {
        y = (Mt[kk] & UpperMask) | (Mt[kk + 1] & LowerMask);
        Mt[kk] = Mt[kk + M] ^ (y >> 1) ^ Mag01[y & 0x1u];
      }
      for (; kk < N - 1; kk++) {
        y = (Mt[kk] & UpperMask) | (Mt[kk + 1] & LowerMask);
        Mt[kk] = Mt[kk + (M - N)] ^ (y >> 1) ^ Mag01[y & 0x1u];
      }
      y = (Mt[N - 1] & UpperMask) | (Mt[0] & LowerMask);
      Mt[N - 1] = Mt[M - 1] ^ (y >> 1) ^ Mag01[y & 0x1u];
      Mti = 0;
    }
    y = Mt[Mti++];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= (y >> 18);
    return y;
  }

  /// Python `getrandbits(k)` for 0 <= k <= 64 (k outside that range is
  /// clamped). For k > 32 CPython fills 32-bit words least significant first
  /// and truncates the last (most significant) word to the remaining bits.
  uint64_t getrandbits(int k) {
    if (k <= 0)
      return 0;
    if (k > 64)
      k = 64;
    if (k <= 32)
      return genrandUint32() >> (32 - k);
    uint64_t lo = genrandUint32();
    uint64_t hi = genrandUint32() >> (64 - k);
    return lo | (hi << 32);
  }

  /// Python `_randbelow_with_getrandbits(n)`: rejection sampling on
  /// bit_length(n) bits. n == 0 returns 0 rather than looping or failing.
  uint64_t randbelow(uint64_t n) {
    if (n == 0)
      return 0;
    int k = bitLength(n);
    uint64_t r = getrandbits(k);
    while (r >= n)
      r = getrandbits(k);
    return r;
  }

  /// Python `random.shuffle(x)`: Fisher-Yates from the end.
  template <class T> void shuffle(std::vector<T> &x) {
    for (size_t i = x.size(); i-- > 1;) {
      size_t j = static_cast<size_t>(randbelow(static_cast<uint64_t>(i) + 1));
      using std::swap;
      swap(x[i], x[j]);
    }
  }

private:
  static constexpr int N = 624;
  static constexpr int M = 397;
  static constexpr uint32_t MatrixA = 0x9908b0dfu;
  static constexpr uint32_t UpperMask = 0x80000000u;
  static constexpr uint32_t LowerMask = 0x7fffffffu;

  static int bitLength(uint64_t n) {
    int k = 0;
    while (n) {
      ++k;
      n >>= 1;
    }
    return k;
  }

  void initGenrand(uint32_t s) {
    Mt[0] = s;
    for (Mti = 1; Mti < N; Mti++)
      Mt[Mti] = 1812433253u * (Mt[Mti - 1] ^ (Mt[Mti - 1] >> 30)) + static_cast<uint32_t>(Mti);
  }

  void initByArray(const uint32_t *key, int keyLength) {
    initGenrand(19650218u);
    int i = 1, j = 0;
    for (int k = (N > keyLength ? N : keyLength); k; k--) {
      Mt[i] = (Mt[i] ^ ((Mt[i - 1] ^ (Mt[i - 1] >> 30)) * 1664525u)) + key[j] +
              static_cast<uint32_t>(j);
      i++;
      j++;
      if (i >= N) {
        Mt[0] = Mt[N - 1];
        i = 1;
      }
      if (j >= keyLength)
        j = 0;
    }
    for (int k = N - 1; k; k--) {
      Mt[i] = (Mt[i] ^ ((Mt[i - 1] ^ (Mt[i - 1] >> 30)) * 1566083941u)) - static_cast<uint32_t>(i);
      i++;
      if (i >= N) {
        Mt[0] = Mt[N - 1];
        i = 1;
      }
    }
    Mt[0] = 0x80000000u; // MSB is 1, assuring a non-zero initial array.
    Mti = N;
  }

  std::array<uint32_t, N> Mt{};
  int Mti = N + 1;
};

/// Fast training generator: xoshiro256** seeded through splitmix64.
class Rng {
public:
  /// Everything needed to resume the exact stream, including the cached
  /// second value of the last normal() pair.
  struct Snapshot {
    std::array<uint64_t, 4> s{};
    bool hasSpare = false;
    double spare = 0.0;
  };

  explicit Rng(uint64_t seed = 0) { reseed(seed); }

  void reseed(uint64_t seed) {
    // splitmix64 spreads a small seed over 256 bits; it never yields an
    // all-zero state, which would be a fixed point of xoshiro.
    uint64_t x = seed;
    for (auto &w : S) {
      x += 0x9e3779b97f4a7c15ull;
      uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      w = z ^ (z >> 31);
    }
    HasSpare = false;
  }

  uint64_t next() {
    const uint64_t result = rotl(S[1] * 5, 7) * 9;
    const uint64_t t = S[1] << 17;
    S[2] ^= S[0];
    S[3] ^= S[1];
    S[1] ^= S[2];
    S[0] ^= S[3];
    S[2] ^= t;
    S[3] = rotl(S[3], 45);
    return result;
  }

  /// Uniform double in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  /// Unbiased integer in [0, n); returns 0 for n == 0. Lemire's
  /// multiply-and-reject avoids the modulo bias of `next() % n`.
  uint64_t below(uint64_t n) {
    if (n == 0)
      return 0;
    unsigned __int128 m = static_cast<unsigned __int128>(next()) * n;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < n) {
      uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<unsigned __int128>(next()) * n;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

  /// Standard normal via the Marsaglia polar method; every second call
  /// returns the cached spare of the previous pair.
  double normal() {
    if (HasSpare) {
      HasSpare = false;
      return Spare;
    }
    double u, v, s;
    do {
      u = 2.0 * uniform() - 1.0;
      v = 2.0 * uniform() - 1.0;
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    double f = std::sqrt(-2.0 * std::log(s) / s);
    Spare = v * f;
    HasSpare = true;
    return u * f;
  }

  float normalf() { return static_cast<float>(normal()); }

  /// The xoshiro words. setState() drops any cached normal() spare, so for
  /// an exact resume in the middle of normal() pairs use snapshot()/restore().
  /// An all-zero state is a fixed point of xoshiro (it yields only zeros);
  /// only pass states obtained from state().
  std::array<uint64_t, 4> state() const { return S; }
  void setState(const std::array<uint64_t, 4> &st) {
    S = st;
    HasSpare = false;
  }

  Snapshot snapshot() const { return Snapshot{S, HasSpare, Spare}; }
  void restore(const Snapshot &snap) {
    S = snap.s;
    HasSpare = snap.hasSpare;
    Spare = snap.spare;
  }

private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  std::array<uint64_t, 4> S{};
  bool HasSpare = false;
  double Spare = 0.0;
};

} // namespace mlpc

#endif // MLPC_RUNTIME_RNG_H
