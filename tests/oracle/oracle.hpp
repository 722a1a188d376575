// The test oracle: an implementation of the format and rounding definitions that
// shares no code with the library.
//
//  - Formats come from its own table, typed in from the specifications (OCP OFP8 and
//    MX v1.0, LLVM APFloat / ml_dtypes, the P3109 interim report, IEEE 754), each with
//    the largest finite value the specification states.
//  - Values are exact, in Boost.Multiprecision cpp_bin_float_quad (113-bit significand):
//    every input (a double), every value of a format, every midpoint and every scaled
//    fraction v * 2^N below is a dyadic number of at most 60 significant bits.
//  - Rounding is decided by finding the two neighbouring representable values with a
//    binary search over codes, then comparing the exact input with them and with
//    their exact midpoint, as the rounding definitions are worded.
// Library types appear only as names of options (Rounding, Saturation).
#pragma once

#include <boost/multiprecision/cpp_bin_float.hpp>
#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "fp8emu/convert.hpp"

namespace oracle {

using Real = boost::multiprecision::cpp_bin_float_quad;

enum class Kind { ieee, fn, fnuz, finite, p3109e, p3109f, e8m0 };

/// One format as its specification states it.
struct Spec {
  std::string name;
  int k;          // total bits
  bool is_signed;
  int e, m, bias;
  Kind kind;
  double stated_max;  // largest finite value stated by the specification
};

inline Spec p3109_spec(int k, int p, bool s, bool ext) {
  // P3109: signed K-P exponent bits, bias 2^(K-P-1); unsigned K-P+1 bits, bias 2^(K-P).
  // Largest finite: the code below +inf (extended) or below NaN (finite), computed here
  // from the definition of the encoding rather than stated.
  const int e = s ? k - p : k - p + 1;
  const int bias = s ? 1 << (k - p - 1) : 1 << (k - p);
  const int m = p - 1;
  const std::uint32_t top = (s ? (1u << (k - 1)) : (1u << k)) - 1;  // all-ones magnitude
  std::uint32_t maxc = top;
  if (!s) maxc -= 1;  // NaN is all ones
  if (ext) maxc -= 1;  // +inf below it (or all ones when signed)
  const std::uint32_t ef = maxc >> m, t = maxc & ((1u << m) - 1);
  const double mx = std::ldexp(double((1u << m) + t), int(ef) - bias - m);
  return {"binary" + std::to_string(k) + "p" + std::to_string(p) + (s ? "s" : "u") +
              (ext ? "e" : "f"),
          k, s, e, m, bias, ext ? Kind::p3109e : Kind::p3109f, mx};
}

/// Every catalog format, as the specifications describe it.
inline const std::vector<Spec>& specs() {
  static const std::vector<Spec> v = [] {
    std::vector<Spec> s = {
        {"e4m3fn", 8, true, 4, 3, 7, Kind::fn, 448},
        {"e5m2", 8, true, 5, 2, 15, Kind::ieee, 57344},
        {"e4m3fnuz", 8, true, 4, 3, 8, Kind::fnuz, 240},
        {"e5m2fnuz", 8, true, 5, 2, 16, Kind::fnuz, 57344},
        {"e4m3", 8, true, 4, 3, 7, Kind::ieee, 240},
        {"e3m4", 8, true, 3, 4, 3, Kind::ieee, 15.5},
        {"e4m3b11fnuz", 8, true, 4, 3, 11, Kind::fnuz, 30},
        {"e2m3fn", 6, true, 2, 3, 1, Kind::finite, 7.5},
        {"e3m2fn", 6, true, 3, 2, 3, Kind::finite, 28},
        {"e2m1fn", 4, true, 2, 1, 1, Kind::finite, 6},
        {"e8m0fnu", 8, false, 8, 0, 127, Kind::e8m0, std::ldexp(1.0, 127)},
    };
    for (int p = 1; p <= 7; ++p)
      for (bool sg : {true, false})
        for (bool ext : {true, false}) s.push_back(p3109_spec(8, p, sg, ext));
    s.push_back({"float16", 16, true, 5, 10, 15, Kind::ieee, 65504});
    s.push_back({"bfloat16", 16, true, 8, 7, 127, Kind::ieee, 0x1.FEp127});
    s.push_back({"tf32", 19, true, 8, 10, 127, Kind::ieee, 0x1.FFCp127});
    s.push_back({"float32", 32, true, 8, 23, 127, Kind::ieee, 0x1.FFFFFEp127});
    return s;
  }();
  return v;
}

inline const Spec& spec(const std::string& name) {
  for (const auto& s : specs())
    if (s.name == name) return s;
  throw std::invalid_argument("oracle: no spec " + name);
}

/// A decoded code.
struct Val {
  enum Cls { nan, inf, fin } cls;
  bool neg;
  Real v;  // signed value for fin (0 for both zeros), +-1 for inf
};

inline std::uint32_t sign_bit(const Spec& s) { return s.is_signed ? 1u << (s.k - 1) : 0u; }
inline std::uint32_t all_ones(const Spec& s) {  // all-ones magnitude
  return s.is_signed ? (1u << (s.k - 1)) - 1 : std::uint32_t((1ull << s.k) - 1);
}

inline Val decode(const Spec& s, std::uint32_t code) {
  const bool neg = s.is_signed && (code >> (s.k - 1)) != 0;
  const std::uint32_t mag = code & all_ones(s);
  const std::uint32_t ef = mag >> s.m, t = mag & ((1u << s.m) - 1);
  const std::uint32_t ef_ones = (1u << s.e) - 1;
  switch (s.kind) {
    case Kind::ieee:
      if (ef == ef_ones) return {t ? Val::nan : Val::inf, neg, Real(neg ? -1 : 1)};
      break;
    case Kind::fn:
      if (mag == all_ones(s)) return {Val::nan, neg, 0};
      break;
    case Kind::fnuz:
      if (neg && mag == 0) return {Val::nan, false, 0};
      break;
    case Kind::finite:
      break;
    case Kind::p3109e:
    case Kind::p3109f:
      if (s.is_signed ? code == sign_bit(s) : code == all_ones(s)) return {Val::nan, false, 0};
      if (s.kind == Kind::p3109e) {
        if (s.is_signed && mag == all_ones(s)) return {Val::inf, neg, Real(neg ? -1 : 1)};
        if (!s.is_signed && code == all_ones(s) - 1) return {Val::inf, false, 1};
      }
      break;
    case Kind::e8m0:
      if (code == all_ones(s)) return {Val::nan, false, 0};
      return {Val::fin, false, boost::multiprecision::ldexp(Real(1), int(code) - s.bias)};
  }
  Real v = ef == 0 ? boost::multiprecision::ldexp(Real(t), 1 - s.bias - s.m)
                   : boost::multiprecision::ldexp(Real((1u << s.m) + t), int(ef) - s.bias - s.m);
  return {Val::fin, neg, neg ? Real(-v) : v};
}

/// Options of one expected conversion; the library's enums name the choices.
struct Mode {
  fp8emu::Rounding r = fp8emu::Rounding::nearest_even;
  fp8emu::Saturation s = fp8emu::Saturation::finite;
  bool nvidia_nan = false;
  bool ftz = false;
  int n = 0;             // stochastic bits
  std::uint64_t R = 0;   // random value
};

/// The per-format facts the rounding needs, found by scanning the codes.
struct Table {
  Spec s;
  std::uint32_t max_mag = 0;  // largest positive finite code; codes 0..max_mag increase
  std::vector<Real> cache;    // values of codes 0..max_mag when small
  Real value(std::uint32_t c) const { return cache.empty() ? decode(s, c).v : cache[c]; }
  Real min_normal() const { return boost::multiprecision::ldexp(Real(1), 1 - s.bias); }
  std::optional<std::uint32_t> nan() const {  // canonical, positive
    switch (s.kind) {
      case Kind::ieee: return (((1u << s.e) - 1) << s.m) | (1u << (s.m - 1));
      case Kind::fn: return all_ones(s);
      case Kind::finite: return std::nullopt;
      default: return s.is_signed && s.kind != Kind::e8m0 ? sign_bit(s) : all_ones(s);
    }
  }
  bool signed_nan() const { return s.kind == Kind::ieee || s.kind == Kind::fn; }
  bool signed_zero() const {
    return s.is_signed && (s.kind == Kind::ieee || s.kind == Kind::fn || s.kind == Kind::finite);
  }
  std::optional<std::uint32_t> inf(bool neg) const {
    if (s.kind == Kind::ieee) return (((1u << s.e) - 1) << s.m) | (neg ? sign_bit(s) : 0);
    if (s.kind == Kind::p3109e) return s.is_signed ? all_ones(s) | (neg ? sign_bit(s) : 0) : all_ones(s) - 1;
    return std::nullopt;
  }
};

inline Table make_table(const Spec& s) {
  Table t{s, 0, {}};
  // The largest positive code whose value is finite.
  std::uint32_t c = all_ones(s);
  while (decode(s, c).cls != Val::fin) --c;
  t.max_mag = c;
  if (s.k <= 16) {
    t.cache.reserve(c + 1);
    for (std::uint32_t i = 0; i <= c; ++i) t.cache.push_back(decode(s, i).v);
  }
  return t;
}

/// The input's neighbours, prepared once and shared by every mode.
struct Prepared {
  enum { nan, inf, zero, negative_unsigned, below_min, exact, between, beyond } kind = nan;
  bool neg = false;
  std::uint32_t lo = 0;     // magnitude code of the lower neighbour (or exact value)
  bool hi_virtual = false;  // the upper neighbour is past the largest finite value
  Real a, lo_v, hi_v;
};

inline Prepared prepare(const Table& t, double x) {
  Prepared p;
  const Spec& s = t.s;
  p.neg = std::signbit(x) && s.kind != Kind::e8m0;
  if (std::isnan(x)) return p.kind = Prepared::nan, p;
  if (!s.is_signed && p.neg && x != 0) return p.kind = Prepared::negative_unsigned, p;
  if (std::isinf(x)) return p.kind = Prepared::inf, p;
  if (x == 0) return p.kind = Prepared::zero, p;
  p.a = abs(Real(x));
  if (p.a < t.value(0)) return p.kind = Prepared::below_min, p;  // e8m0 only
  // Binary search: value(lo) <= a < value(lo + 1).
  std::uint32_t lo = 0, hi = t.max_mag;
  if (t.value(hi) <= p.a) {
    lo = hi;
  } else {
    while (hi - lo > 1) {
      const std::uint32_t mid = lo + (hi - lo) / 2;
      (t.value(mid) <= p.a ? lo : hi) = mid;
    }
  }
  p.lo = lo;
  p.lo_v = t.value(lo);
  if (p.lo_v == p.a) return p.kind = Prepared::exact, p;
  if (lo < t.max_mag) {
    p.hi_v = t.value(lo + 1);
  } else {
    // Past the largest value: the next value the format would have with an unbounded
    // exponent is max + 2^(exponent of max - m).
    int ex;
    boost::multiprecision::frexp(p.lo_v, &ex);
    p.hi_v = p.lo_v + boost::multiprecision::ldexp(Real(1), ex - 1 - s.m);
    p.hi_virtual = true;
    if (p.a >= p.hi_v) return p.kind = Prepared::beyond, p;
  }
  p.kind = Prepared::between;
  return p;
}

/// Integer thresholds of the stochastic rules for N bits: up iff tA + R >= 2^N,
/// tB + 2R + 1 >= 2^(N+1), tC + R >= 2^N.
struct SrThresholds {
  std::uint64_t a, b, c;
};
inline SrThresholds sr_thresholds(const Prepared& p, int n) {
  const Real v = (p.a - p.lo_v) / (p.hi_v - p.lo_v);  // exact: the gap is a power of two
  const Real y = boost::multiprecision::ldexp(v, n);
  const Real fl = floor(y);
  const Real d = y - fl;
  std::uint64_t c = fl.convert_to<std::uint64_t>();
  if (d > Real(0.5) || (d == Real(0.5) && (c & 1))) ++c;
  return {fl.convert_to<std::uint64_t>(),
          floor(boost::multiprecision::ldexp(v, n + 1)).convert_to<std::uint64_t>(), c};
}

inline std::uint32_t max_code(const Table& t, bool neg) {
  return t.max_mag | (neg && t.s.is_signed ? sign_bit(t.s) : 0);
}

inline std::uint32_t nan_code(const Table& t, bool neg) {
  auto n = t.nan();
  if (!n) return t.max_mag;  // documented: formats without NaN give +max (as NVIDIA)
  return t.signed_nan() && neg ? *n | sign_bit(t.s) : *n;
}

inline std::uint32_t overflow(const Table& t, bool neg, bool infinite, const Mode& m) {
  using fp8emu::Rounding;
  using fp8emu::Saturation;
  if (m.s == Saturation::finite) return max_code(t, neg);
  if (!infinite) {
    if (m.s == Saturation::propagate) return max_code(t, neg);
    const bool toward_zero = m.r == Rounding::toward_zero || m.r == Rounding::to_odd ||
                             (m.r == Rounding::toward_positive && neg) ||
                             (m.r == Rounding::toward_negative && !neg);
    if (toward_zero) return max_code(t, neg);
  }
  if (auto i = t.inf(neg)) return *i;
  if (t.nan()) return nan_code(t, neg);
  return max_code(t, neg);
}

inline std::uint32_t zero_code(const Table& t, bool neg) {
  return neg && t.signed_zero() ? sign_bit(t.s) : 0u;
}

/// The code when the input is rounded to its lower (`up` false) or upper neighbour.
inline std::uint32_t finish(const Table& t, const Prepared& p, const Mode& m, bool up) {
  const bool neg = p.neg;
  if (up && p.hi_virtual) return overflow(t, neg, false, m);
  const std::uint32_t mag = up ? p.lo + 1 : p.lo;
  if (mag == 0) return t.s.kind == Kind::e8m0 ? 0u : zero_code(t, neg);
  if (m.ftz && t.s.kind != Kind::e8m0 && t.value(mag) < t.min_normal()) return zero_code(t, neg);
  return mag | (neg ? sign_bit(t.s) : 0);
}

/// The expected code of an input whose result does not depend on rounding, or nothing
/// when the input lies strictly between two neighbours.
inline std::optional<std::uint32_t> fixed(const Table& t, const Prepared& p, const Mode& m) {
  const bool neg = p.neg;
  switch (p.kind) {
    case Prepared::nan:
      if (m.nvidia_nan && t.signed_nan()) return all_ones(t.s);
      return nan_code(t, neg);
    case Prepared::negative_unsigned: return nan_code(t, false);
    case Prepared::inf: return overflow(t, neg, true, m);
    case Prepared::zero: return zero_code(t, neg);
    case Prepared::below_min: return 0u;
    case Prepared::beyond: return overflow(t, neg, false, m);
    case Prepared::exact: return finish(t, p, m, false);
    case Prepared::between: break;
  }
  return std::nullopt;
}

/// The expected code of the prepared input under mode `m`.
inline std::uint32_t expected(const Table& t, const Prepared& p, const Mode& m) {
  using fp8emu::Rounding;
  if (auto c = fixed(t, p, m)) return *c;
  const bool neg = p.neg;
  // Ties go to the neighbour with the even code, round-to-odd to the one with the odd
  // code. Codes increase with magnitude, so of two neighbours exactly one is odd; where
  // m > 0 the code's last bit is the last significand digit (IEEE 754-2019 4.3.1), and
  // for precision 1 (no trailing significand) it is the exponent's last bit, the P3109
  // interim report's "code is even" for P = 1.
  const bool lo_odd = (p.lo & 1) != 0;
  const Real mid = (p.lo_v + p.hi_v) / 2;
  bool up = false;
  switch (m.r) {
    case Rounding::nearest_even: up = p.a > mid || (p.a == mid && lo_odd); break;
    case Rounding::nearest_away: up = p.a >= mid; break;
    case Rounding::toward_zero: up = false; break;
    case Rounding::toward_positive: up = !neg; break;
    case Rounding::toward_negative: up = neg; break;
    case Rounding::to_odd: up = !lo_odd; break;
    default: {
      const SrThresholds th = sr_thresholds(p, m.n);
      const std::uint64_t two_n = std::uint64_t{1} << m.n;
      if (m.r == Rounding::stochastic_a) up = th.a + m.R >= two_n;
      if (m.r == Rounding::stochastic_b) up = th.b + 2 * m.R + 1 >= 2 * two_n;
      if (m.r == Rounding::stochastic_c) up = th.c + m.R >= two_n;
    }
  }
  return finish(t, p, m, up);
}

/// Returns the exact value of float16 / bfloat16 bits, decoded by the oracle.
inline double half_value(std::uint16_t h, bool bf16) {
  static const Spec f16 = spec("float16"), b16 = spec("bfloat16");
  const Val v = decode(bf16 ? b16 : f16, h);
  if (v.cls == Val::nan) return v.neg ? -NAN : NAN;
  if (v.cls == Val::inf) return v.neg ? -INFINITY : INFINITY;
  const double d = v.v.convert_to<double>();
  return v.neg && d == 0 ? -0.0 : d;
}

}  // namespace oracle
