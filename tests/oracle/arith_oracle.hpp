// The oracle for arithmetic: the exact result of an operation is known only through
// comparisons with representable numbers (sign(|x| - v)), done in wide binary floating
// point (Boost cpp_bin_float, 700 bits) where every operand, product and sum of the
// tested formats is exact. Division and square root are compared without being computed:
// |a / b| vs v as |a| vs v |b|, sqrt(a) vs v as a vs v^2. The rounding is then decided
// as in oracle.hpp: find the neighbours by bisection over the codes, compare with their
// midpoint, and for stochastic rounding find floor(v 2^N) by bisection. Nothing here
// uses the library's arithmetic or bit manipulation.
#pragma once

#include <boost/multiprecision/cpp_bin_float.hpp>
#include <functional>

#include "oracle/oracle.hpp"

namespace oracle {

using Big = boost::multiprecision::number<
    boost::multiprecision::cpp_bin_float<700, boost::multiprecision::digit_base_2>>;

/// The exact result of an operation.
struct Target {
  enum Cls { nan, inf, zero, fin } cls = zero;
  bool neg = false;
  std::function<int(const Big&)> cmp;  // sign(|x| - v), v >= 0; fin only
};

inline int sgn(const Big& d) { return d > 0 ? 1 : (d < 0 ? -1 : 0); }

/// A decoded operand: class, sign, and the signed value (0 for zeros).
struct Operand {
  Val::Cls cls;
  bool neg;
  Big v;
  bool zero() const { return cls == Val::fin && v == 0; }
};

inline Operand operand(const Spec& s, std::uint32_t code, bool daz) {
  const Val d = decode(s, code);
  Operand o{d.cls, d.neg, Big(d.v)};
  if (d.cls == Val::fin && daz && d.v != 0 &&
      abs(d.v) < boost::multiprecision::ldexp(Real(1), 1 - s.bias) && s.kind != Kind::e8m0)
    o.v = 0;
  return o;
}

inline Target finite(Big x, fp8emu::Rounding r, bool zero_neg_hint) {
  Target t;
  if (x == 0) {
    t.cls = Target::zero;
    t.neg = zero_neg_hint;
    (void)r;
    return t;
  }
  t.cls = Target::fin;
  t.neg = x < 0;
  const Big ax = abs(x);
  t.cmp = [ax](const Big& v) { return sgn(ax - v); };
  return t;
}

inline Target special(Target::Cls c, bool neg = false) {
  Target t;
  t.cls = c;
  t.neg = neg;
  return t;
}

/// a + b (IEEE 754-2019 6.1-6.3).
inline Target add(const Operand& a, const Operand& b, fp8emu::Rounding r) {
  if (a.cls == Val::nan || b.cls == Val::nan) return special(Target::nan);
  if (a.cls == Val::inf || b.cls == Val::inf) {
    if (a.cls == Val::inf && b.cls == Val::inf && a.neg != b.neg) return special(Target::nan);
    return special(Target::inf, a.cls == Val::inf ? a.neg : b.neg);
  }
  const bool rd = r == fp8emu::Rounding::toward_negative;
  if (a.zero() && b.zero()) return special(Target::zero, a.neg == b.neg ? a.neg : rd);
  return finite(a.v + b.v, r, rd);  // an exact zero of nonzero operands: + (- in rd)
}

inline Operand negate(Operand o) {
  o.neg = !o.neg;
  o.v = -o.v;
  return o;
}

inline Target mul(const Operand& a, const Operand& b) {
  const bool neg = a.neg != b.neg;
  if (a.cls == Val::nan || b.cls == Val::nan) return special(Target::nan);
  if (a.cls == Val::inf || b.cls == Val::inf)
    return a.zero() || b.zero() ? special(Target::nan) : special(Target::inf, neg);
  if (a.zero() || b.zero()) return special(Target::zero, neg);
  return finite(a.v * b.v, fp8emu::Rounding::nearest_even, false);
}

inline Target fma(const Operand& a, const Operand& b, const Operand& c, fp8emu::Rounding r) {
  const Target p = mul(a, b);
  if (p.cls == Target::nan || c.cls == Val::nan) return special(Target::nan);
  if (p.cls == Target::inf) {
    if (c.cls == Val::inf && c.neg != p.neg) return special(Target::nan);
    return p;
  }
  if (c.cls == Val::inf) return special(Target::inf, c.neg);
  const bool rd = r == fp8emu::Rounding::toward_negative;
  if (p.cls == Target::zero && c.zero()) return special(Target::zero, p.neg == c.neg ? p.neg : rd);
  return finite(a.v * b.v + c.v, r, rd);
}

inline Target div(const Operand& a, const Operand& b) {
  const bool neg = a.neg != b.neg;
  if (a.cls == Val::nan || b.cls == Val::nan) return special(Target::nan);
  const bool ia = a.cls == Val::inf, ib = b.cls == Val::inf;
  if ((ia && ib) || (a.zero() && b.zero())) return special(Target::nan);
  if (ia || b.zero()) return special(Target::inf, neg);
  if (a.zero() || ib) return special(Target::zero, neg);
  Target t;
  t.cls = Target::fin;
  t.neg = neg;
  const Big aa = abs(a.v), ab = abs(b.v);
  t.cmp = [aa, ab](const Big& v) { return sgn(aa - v * ab); };
  return t;
}

inline Target sqrt(const Operand& a) {
  if (a.cls == Val::nan) return special(Target::nan);
  if (a.zero()) return special(Target::zero, a.neg);
  if (a.neg) return special(Target::nan);
  if (a.cls == Val::inf) return special(Target::inf);
  Target t;
  t.cls = Target::fin;
  const Big x = a.v;
  t.cmp = [x](const Big& v) { return sgn(x - v * v); };
  return t;
}

/// The largest j in [0, 2^n) with lo + j * gap / 2^n <= |x|.
inline std::uint64_t floor_scaled(const Target& x, const Big& lo, const Big& gap, int n) {
  std::uint64_t a = 0, b = std::uint64_t{1} << n;  // invariant: ok(a), !ok(b)
  while (b - a > 1) {
    const std::uint64_t mid = a + (b - a) / 2;
    (x.cmp(lo + ldexp(gap * Big(mid), -n)) >= 0 ? a : b) = mid;
  }
  return a;
}

/// Where an exact result lies among the codes of a format: found once, then rounded in
/// any number of modes by `expected`.
struct Located {
  enum { special, below_min, exact, between, beyond } kind = special;
  Prepared p{};
  int c_mid = 0;  // sign(|x| - midpoint of the neighbours)
};

inline Located locate(const Table& t, const Target& x) {
  Located l;
  const Spec& s = t.s;
  const bool e8m0 = s.kind == Kind::e8m0;
  if (x.cls != Target::fin) return l;
  l.p.neg = x.neg && !e8m0;
  if (l.p.neg && !s.is_signed) return l;
  if (x.cmp(Big(t.value(0))) < 0) return l.kind = Located::below_min, l;  // e8m0 only
  // Bisection: the largest code with value <= |x|.
  std::uint32_t lo = 0, hi = t.max_mag;
  if (x.cmp(Big(t.value(hi))) >= 0) {
    lo = hi;
  } else {
    while (hi - lo > 1) {
      const std::uint32_t mid = lo + (hi - lo) / 2;
      (x.cmp(Big(t.value(mid))) >= 0 ? lo : hi) = mid;
    }
  }
  l.p.lo = lo;
  l.p.lo_v = t.value(lo);
  if (x.cmp(Big(l.p.lo_v)) == 0) return l.kind = Located::exact, l;
  if (lo < t.max_mag) {
    l.p.hi_v = t.value(lo + 1);
  } else {
    int ex;
    boost::multiprecision::frexp(l.p.lo_v, &ex);
    l.p.hi_v = l.p.lo_v + boost::multiprecision::ldexp(Real(1), ex - 1 - s.m);
    l.p.hi_virtual = true;
    if (x.cmp(Big(l.p.hi_v)) >= 0) return l.kind = Located::beyond, l;
  }
  l.kind = Located::between;
  l.c_mid = x.cmp((Big(l.p.lo_v) + Big(l.p.hi_v)) / 2);
  return l;
}

/// The code the operation must return in `t` under mode `m`.
inline std::uint32_t expected(const Table& t, const Target& x, const Located& l, const Mode& m) {
  using fp8emu::Rounding;
  const Spec& s = t.s;
  const bool e8m0 = s.kind == Kind::e8m0;
  switch (x.cls) {
    case Target::nan:
      return m.nvidia_nan && t.signed_nan() ? all_ones(s) : nan_code(t, false);
    case Target::inf:
      if (x.neg && !s.is_signed && !e8m0) return nan_code(t, false);
      return overflow(t, x.neg && !e8m0, true, m);
    case Target::zero:
      return e8m0 ? 0u : zero_code(t, x.neg);
    case Target::fin:
      break;
  }
  const Prepared& p = l.p;
  switch (l.kind) {
    case Located::special: return nan_code(t, false);  // negative result, unsigned format
    case Located::below_min: return 0u;
    case Located::exact: return finish(t, p, m, false);
    case Located::beyond: return overflow(t, p.neg, false, m);
    case Located::between: break;
  }
  const bool neg = p.neg;
  // Ties to the even code, round-to-odd to the odd code (as oracle::expected).
  const bool lo_odd = (p.lo & 1) != 0;
  const int c_mid = l.c_mid;
  bool up = false;
  switch (m.r) {
    case Rounding::nearest_even: up = c_mid > 0 || (c_mid == 0 && lo_odd); break;
    case Rounding::nearest_away: up = c_mid >= 0; break;
    case Rounding::toward_zero: up = false; break;
    case Rounding::toward_positive: up = !neg; break;
    case Rounding::toward_negative: up = neg; break;
    case Rounding::to_odd: up = !lo_odd; break;
    default: {
      const Big lov(p.lo_v), gap = Big(p.hi_v) - Big(p.lo_v);
      const int n = m.n;
      const std::uint64_t two_n = std::uint64_t{1} << n;
      if (m.r == Rounding::stochastic_a) {
        up = floor_scaled(x, lov, gap, n) + m.R >= two_n;
      } else if (m.r == Rounding::stochastic_b) {
        up = floor_scaled(x, lov, gap, n + 1) + 2 * m.R + 1 >= 2 * two_n;
      } else {
        std::uint64_t c = floor_scaled(x, lov, gap, n);
        const int half = x.cmp(lov + ldexp(gap * (Big(c) + Big(0.5)), -n));
        if (half > 0 || (half == 0 && (c & 1))) ++c;
        up = c + m.R >= two_n;
      }
    }
  }
  return finish(t, p, m, up);
}

/// The smallest random value R (< 2^n) that rounds |x| up in stochastic mode `r`, or 2^n
/// when none does; for a result strictly between two neighbours. Testing R_min - 1 and
/// R_min checks the one place where the mode's decision changes.
inline std::uint64_t sr_min_up(const Target& x, const Located& l, fp8emu::Rounding r, int n) {
  const Big lov(l.p.lo_v), gap = Big(l.p.hi_v) - Big(l.p.lo_v);
  const std::uint64_t two_n = std::uint64_t{1} << n;
  if (r == fp8emu::Rounding::stochastic_a) return two_n - floor_scaled(x, lov, gap, n);
  if (r == fp8emu::Rounding::stochastic_b) {
    const std::uint64_t fb = floor_scaled(x, lov, gap, n + 1);  // R >= (2^(n+1) - 1 - fb) / 2
    return (2 * two_n - 1 - fb + 1) / 2;
  }
  std::uint64_t c = floor_scaled(x, lov, gap, n);
  const int half = x.cmp(lov + ldexp(gap * (Big(c) + Big(0.5)), -n));
  if (half > 0 || (half == 0 && (c & 1))) ++c;
  return two_n - std::min(c, two_n);
}

}  // namespace oracle
