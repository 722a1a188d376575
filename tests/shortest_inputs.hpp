// Inputs for the tests of shortest() without floating-point std::to_chars (test_shortest.cpp,
// and shortest_hash.cpp, which also runs compiled to WebAssembly): sets of floats and
// doubles where the shortest text changes shape (NaN, inf, zeros, subnormals, powers of two
// and ten and their neighbours, whole numbers beyond 2^24 and 2^53, the fixed / scientific
// boundary), and sweeps of bit patterns. Each set is a pure function of its arguments.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "fp8emu/convert.hpp"
#include "rng.hpp"

namespace shortest_inputs {

inline float float_of(std::uint32_t b) {
  float x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}
inline double double_of(std::uint64_t b) {
  double x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}

// x and its k nearest neighbours on each side (2k + 1 values; inf and NaN stay put).
template <class T>
void with_neighbours(std::vector<T>& out, T x, int k) {
  T lo = x, hi = x;
  out.push_back(x);
  for (int i = 0; i < k; ++i) {
    lo = std::nextafter(lo, -std::numeric_limits<T>::infinity());
    hi = std::nextafter(hi, std::numeric_limits<T>::infinity());
    out.push_back(lo);
    out.push_back(hi);
  }
}

/// Every 16-bit pattern as the upper half of a float (every bfloat16; the 8-bit patterns
/// as upper bits are among them): 65536 values.
inline std::vector<float> bfloat16_floats() {
  std::vector<float> v;
  for (std::uint32_t b = 0; b < 65536; ++b) v.push_back(float_of(b << 16));
  return v;
}

/// Every float16 value: 65536 values.
inline std::vector<float> float16_floats() {
  std::vector<float> v;
  for (std::uint32_t b = 0; b < 65536; ++b)
    v.push_back(float(fp8emu::decode(fp8emu::formats::float16{}, b)));
  return v;
}

/// Every exponent field with every value of the top 8 fraction bits, the low 15 bits 0
/// (both signs), 1 and random (random sign): 256 * 256 * 4 = 262144 values.
inline std::vector<float> float32_structured(std::uint64_t seed) {
  SplitMix64 rng(seed);
  std::vector<float> v;
  for (std::uint32_t e = 0; e < 256; ++e)
    for (std::uint32_t hi = 0; hi < 256; ++hi) {
      const std::uint32_t b = e << 23 | hi << 15;
      const std::uint64_t r = rng.next();
      v.push_back(float_of(b));
      v.push_back(float_of(b | 0x80000000u));
      v.push_back(float_of(b | 1));
      v.push_back(float_of(b | std::uint32_t(r & 0x7FFF) | std::uint32_t(r >> 32 & 0x80000000u)));
    }
  return v;
}

/// Patterns 0, stride, 2 * stride, ... below 2^32: ceil(2^32 / stride) values.
inline std::vector<float> float32_stride(std::uint32_t stride) {
  std::vector<float> v;
  for (std::uint64_t b = 0; b < (std::uint64_t{1} << 32); b += stride)
    v.push_back(float_of(std::uint32_t(b)));
  return v;
}

/// Random bit patterns, NaNs and infinities included.
inline std::vector<double> double_random_bits(std::uint64_t seed, std::uint64_t n) {
  SplitMix64 rng(seed);
  std::vector<double> v;
  for (std::uint64_t i = 0; i < n; ++i) v.push_back(double_of(rng.next()));
  return v;
}

/// Random doubles of either sign in [2^-80, 2^80), where fixed and scientific alternate.
inline std::vector<double> double_random_moderate(std::uint64_t seed, std::uint64_t n) {
  SplitMix64 rng(seed);
  std::vector<double> v;
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t r = rng.next();
    const std::uint64_t e = 1023 - 80 + (rng.next() % 160);
    v.push_back(double_of((r & 0x800FFFFFFFFFFFFFull) | e << 52));
  }
  return v;
}

/// Powers of two (subnormal ones included) and of ten, within T's range, each with k
/// neighbours on either side; both signs of powers of two.
template <class T>
std::vector<T> powers(int k) {
  using L = std::numeric_limits<T>;
  std::vector<T> v;
  for (int e = L::min_exponent - L::digits; e < L::max_exponent; ++e) {
    with_neighbours(v, std::ldexp(T(1), e), k);
    with_neighbours(v, -std::ldexp(T(1), e), k);
  }
  for (int e = L::min_exponent10 - L::digits10 - 2; e <= L::max_exponent10; ++e) {
    const std::string s = "1e" + std::to_string(e);
    const T x = std::is_same_v<T, float> ? T(std::strtof(s.c_str(), nullptr))
                                         : T(std::strtod(s.c_str(), nullptr));
    with_neighbours(v, x, k);
  }
  return v;
}

/// Zeros, the extremes (smallest subnormal, largest subnormal, smallest normal, largest,
/// epsilon, 1), each with k neighbours, NaN and inf of both signs, and the subnormals
/// whose significand is below `m` or within `m` of the largest.
template <class T>
std::vector<T> extremes(int k, int m) {
  using L = std::numeric_limits<T>;
  std::vector<T> v{T(0), -T(0), L::infinity(), -L::infinity(), L::quiet_NaN(),
                   -L::quiet_NaN()};
  for (T x : {L::denorm_min(), T(L::min() - L::denorm_min()), L::min(), L::max(), L::epsilon(),
              T(1)}) {
    with_neighbours(v, x, k);
    with_neighbours(v, -x, k);
  }
  for (int j = 1; j <= m; ++j) {
    v.push_back(L::denorm_min() * T(j));
    v.push_back(L::min() - L::denorm_min() * T(j));
  }
  return v;
}

/// Whole numbers from 2^p (p the precision: from there T has no fractions) to 2^64: for
/// each power 2^e, the `k` T values on either side; and `n` random 64-bit integers shifted
/// right by 0 to 63 - p bits (the nearest T).
template <class T>
std::vector<T> whole_numbers(int k, int n, std::uint64_t seed) {
  constexpr int p = std::numeric_limits<T>::digits;
  std::vector<T> v;
  for (int e = p; e <= 64; ++e) with_neighbours(v, std::ldexp(T(1), e), k);
  SplitMix64 rng(seed);
  for (int s = 0; s <= 63 - p; ++s)
    for (int i = 0; i < n; ++i) v.push_back(T(rng.next() >> s));
  return v;
}

}  // namespace shortest_inputs
