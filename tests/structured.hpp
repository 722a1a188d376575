// The structured input set: for a target format (described by the oracle's Spec) and an
// input type, every value that decides rounding (see test_structured.cpp for the list).
// Shared by the scalar sweep against the oracle and the array sweep of the SIMD path.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <vector>

#include "oracle/oracle.hpp"
#include "rng.hpp"

namespace structured {

// Input types: precision p, smallest normal exponent, largest exponent.
struct InType {
  bool is_float;
  int p, emin, emax;
};
constexpr InType kFloat{true, 24, -126, 127};
constexpr InType kDouble{false, 53, -1022, 1023};

template <class T>
inline bool representable(double v) {
  return double(T(v)) == v;
}

inline std::vector<double> structured_inputs(const oracle::Spec& s, const InType& in) {
  std::set<double> out;
  const int m = s.m;
  const int emin_t = s.kind == oracle::Kind::e8m0 ? -s.bias : 1 - s.bias;
  const int qmin = emin_t - m;
  const int emax_t = std::ilogb(s.stated_max);
  SplitMix64 rng(0x5EED0000 + s.k * 131 + m);
  const int e_lo = std::max(in.emin - in.p + 1, qmin - 3);
  const int e_hi = std::min(in.emax, emax_t + 3);
  for (int e = e_lo; e <= e_hi; ++e) {
    const int q = std::max(e, emin_t) - m;              // target quantum exponent
    const int ulp_e = std::max(e, in.emin) - in.p + 1;  // input ulp exponent
    const int kb = std::max(e - q, 0);                  // kept bits below the leading one
    std::vector<std::uint64_t> patterns;
    if (kb <= 7) {
      for (std::uint64_t i = 0; i < (std::uint64_t{1} << kb); ++i) patterns.push_back(i);
    } else {
      const std::uint64_t ones = (std::uint64_t{1} << kb) - 1;
      patterns = {0, 1, 2, ones / 2, ones - 1, ones, ones / 3, 2 * (ones / 3)};
      for (int i = 0; i < 8; ++i) patterns.push_back(rng.next() & ones);
    }
    for (std::uint64_t pat : patterns) {
      const int L = q - ulp_e;  // input bits below the quantum
      std::vector<std::uint64_t> tails = {0};
      if (L >= 1 && L <= 62) {
        const std::uint64_t h = std::uint64_t{1} << (L - 1);
        tails = {0, 1, h - 1, h, h + 1, 2 * h - 1};
      }
      for (std::uint64_t tail : tails) {
        double v;
        if (e >= q) {
          const std::uint64_t K = (std::uint64_t{1} << kb) | pat;
          if (L >= 1 && L <= 62 && kb + 1 + L <= 63)
            v = std::ldexp(double((K << L) | tail), ulp_e);
          else
            v = std::ldexp(double(K), q);
        } else {  // below the quantum: only the leading bit and tails
          v = std::ldexp(1.0, e) + (tail ? std::ldexp(double(tail), ulp_e) : 0.0);
        }
        const bool ok = in.is_float ? representable<float>(v) : representable<double>(v);
        if (ok && v != 0) out.insert(v);
      }
    }
  }
  const double extremes[] = {
      in.is_float ? double(std::numeric_limits<float>::denorm_min())
                  : std::numeric_limits<double>::denorm_min(),
      in.is_float ? double(std::numeric_limits<float>::min()) : std::numeric_limits<double>::min(),
      in.is_float ? double(std::numeric_limits<float>::max()) : std::numeric_limits<double>::max(),
      0.0, std::numeric_limits<double>::infinity()};
  for (double v : extremes) out.insert(v);
  std::vector<double> all;
  for (double v : out) {
    all.push_back(v);
    all.push_back(-v);
  }
  all.push_back(std::numeric_limits<double>::quiet_NaN());
  all.push_back(-std::numeric_limits<double>::quiet_NaN());
  return all;
}

}  // namespace structured
