// Correctly rounded arithmetic on codes of any format: add, sub, mul, div, fma, sqrt.
//
// Every operation computes its exact result (or, for div and sqrt, the exact quotient or
// root truncated far below the result's precision plus a sticky bit), then rounds once
// with the conversion rules of convert.hpp. Special values follow IEEE 754-2019: 6.1
// (infinity arithmetic), 6.2 and 7.2 (NaN results of invalid operations: inf - inf,
// 0 * inf, 0 / 0, inf / inf, sqrt of a negative number), 6.3 (the sign of an exact zero
// sum is + in every rounding direction but toward_negative, where it is -) and 7.3
// (division by zero gives an infinity). The result then goes through the conversion
// rules of the output format: an infinite result obeys `Saturation` as an infinite input
// would, a NaN result is the format's NaN (+max where the format has none, as NVIDIA
// converts NaN to fp6/fp4), and DAZ (`flush_inputs`) treats subnormal operands as zeros.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

#include "fp8emu/convert.hpp"

namespace fp8emu {
namespace detail {

/// An operand taken apart: its class, sign, and |x| = sig * 2^exp when finite.
struct Unpacked {
  ValueClass cls = ValueClass::zero;
  bool neg = false;
  std::uint64_t sig = 0;
  int exp = 0;
};

/// Takes `code` of `f` apart; with `daz`, a subnormal operand becomes a zero of its sign.
template <class Fmt>
constexpr Unpacked unpack(const Fmt& f, std::uint32_t code, bool daz) {
  Unpacked u{classify(f, code), (code & sign_mask(f)) != 0, 0, 0};
  if (u.cls == ValueClass::subnormal && daz) u.cls = ValueClass::zero;
  if (u.cls != ValueClass::normal && u.cls != ValueClass::subnormal) return u;
  const std::uint32_t mag = code & magnitude_mask(f);
  const int M = f.mantissa_bits;
  const std::uint32_t e_field = mag >> M;
  const std::uint32_t t = mag & ((std::uint32_t{1} << M) - 1u);
  if (e_field == 0 && has_zero(f)) {  // without a zero, field 0 is a normal binade
    u.sig = t;
    u.exp = quantum_min(f);
  } else {
    u.sig = (std::uint64_t{1} << M) | t;
    u.exp = int(e_field) - f.bias - M;
  }
  return u;
}

/// An exact result: NaN, +-inf, +-0, or (sig + t) * 2^exp with 0 <= t < 1 and t != 0
/// exactly when `sticky` is set.
struct Exact {
  ValueClass cls = ValueClass::zero;  // zero, normal (finite nonzero), infinite or nan
  bool neg = false;
  u128 sig = 0;
  int exp = 0;
  bool sticky = false;
};

constexpr Exact exact_nan() { return {ValueClass::nan, false, 0, 0, false}; }
constexpr Exact exact_inf(bool neg) { return {ValueClass::infinite, neg, 0, 0, false}; }
constexpr Exact exact_zero(bool neg) { return {ValueClass::zero, neg, 0, 0, false}; }

/// The sign of an exact zero sum of operands with opposite signs (IEEE 754-2019 6.3).
constexpr bool zero_sum_negative(Rounding r) { return r == Rounding::toward_negative; }

/// Returns the exact sum of two nonzero finite terms (-1)^na sa 2^ea + (-1)^nb sb 2^eb.
constexpr Exact sum_terms(bool na, std::uint64_t sa, int ea, bool nb, std::uint64_t sb, int eb,
                          Rounding r) {
  // 1. Normalise both significands to bit 63, then order them so that |a| >= |b|.
  int la = std::countl_zero(sa), lb = std::countl_zero(sb);
  sa <<= la;
  ea -= la;
  sb <<= lb;
  eb -= lb;
  if (ea < eb || (ea == eb && sa < sb)) {
    std::swap(na, nb);
    std::swap(sa, sb);
    std::swap(ea, eb);
  }
  // 2. a at bit 125 of a 128-bit integer, b aligned to it. When b lies more than 62
  //    binades lower, the bits of b below the unit are only a sticky bit t in (0, 1):
  //    |a| >= 2^125 units and |b| < 2^64 units, so no carry or borrow can reach the
  //    rounding position of any format of at most 64 significant bits.
  const int d = ea - eb;
  const u128 A = u128(sa) << 62;
  u128 B = 0;
  bool sticky = false;
  if (d <= 62) {
    B = u128(sb) << (62 - d);
  } else if (d - 62 < 64) {
    const int s = d - 62;
    B = sb >> s;
    sticky = (sb & ((std::uint64_t{1} << s) - 1)) != 0;
  } else {
    sticky = true;
  }
  // 3. Add or subtract. A - (B + t) = (A - B - 1) + (1 - t) keeps the sticky form.
  Exact e{ValueClass::normal, na, 0, ea - 62, sticky};
  if (na == nb) {
    e.sig = A + B;
  } else {
    e.sig = A - B - (sticky ? 1 : 0);
    if (e.sig == 0 && !sticky) return exact_zero(zero_sum_negative(r));
  }
  return e;
}

/// Returns the exact a + b (the caller negates b for a subtraction).
constexpr Exact add_exact(const Unpacked& a, const Unpacked& b, Rounding r) {
  using VC = ValueClass;
  if (a.cls == VC::nan || b.cls == VC::nan) return exact_nan();
  if (a.cls == VC::infinite || b.cls == VC::infinite) {
    if (a.cls == VC::infinite && b.cls == VC::infinite && a.neg != b.neg) return exact_nan();
    return exact_inf(a.cls == VC::infinite ? a.neg : b.neg);
  }
  const bool za = a.cls == VC::zero, zb = b.cls == VC::zero;
  if (za && zb) return exact_zero(a.neg == b.neg ? a.neg : zero_sum_negative(r));
  if (za) return {VC::normal, b.neg, b.sig, b.exp, false};
  if (zb) return {VC::normal, a.neg, a.sig, a.exp, false};
  return sum_terms(a.neg, a.sig, a.exp, b.neg, b.sig, b.exp, r);
}

/// Returns the exact a * b.
constexpr Exact mul_exact(const Unpacked& a, const Unpacked& b) {
  using VC = ValueClass;
  const bool neg = a.neg != b.neg;
  if (a.cls == VC::nan || b.cls == VC::nan) return exact_nan();
  const bool za = a.cls == VC::zero, zb = b.cls == VC::zero;
  if (a.cls == VC::infinite || b.cls == VC::infinite)
    return za || zb ? exact_nan() : exact_inf(neg);
  if (za || zb) return exact_zero(neg);
  // Significands of formats of at most 32 bits have at most 24 bits: the product fits.
  return {VC::normal, neg, u128(a.sig) * b.sig, a.exp + b.exp, false};
}

/// Returns the exact a * b + c, rounded nowhere.
constexpr Exact fma_exact(const Unpacked& a, const Unpacked& b, const Unpacked& c, Rounding r) {
  using VC = ValueClass;
  const Exact p = mul_exact(a, b);
  if (p.cls == VC::nan || c.cls == VC::nan) return exact_nan();
  if (p.cls == VC::infinite) {
    if (c.cls == VC::infinite && c.neg != p.neg) return exact_nan();
    return p;
  }
  if (c.cls == VC::infinite) return exact_inf(c.neg);
  if (p.cls == VC::zero) {
    if (c.cls == VC::zero) return exact_zero(p.neg == c.neg ? p.neg : zero_sum_negative(r));
    return {VC::normal, c.neg, c.sig, c.exp, false};
  }
  if (c.cls == VC::zero) return p;
  return sum_terms(p.neg, std::uint64_t(p.sig), p.exp, c.neg, c.sig, c.exp, r);
}

/// Returns the quotient a / b, exact or truncated to at least 76 bits plus a sticky bit.
constexpr Exact div_exact(const Unpacked& a, const Unpacked& b) {
  using VC = ValueClass;
  const bool neg = a.neg != b.neg;
  if (a.cls == VC::nan || b.cls == VC::nan) return exact_nan();
  const bool za = a.cls == VC::zero, zb = b.cls == VC::zero;
  const bool ia = a.cls == VC::infinite, ib = b.cls == VC::infinite;
  if ((ia && ib) || (za && zb)) return exact_nan();
  if (ia || zb) return exact_inf(neg);  // includes x / 0 for finite x != 0 (7.3)
  if (za || ib) return exact_zero(neg);
  const u128 num = u128(a.sig) << 100;  // a.sig < 2^24: fits; quotient >= 2^76
  return {VC::normal, neg, num / b.sig, a.exp - b.exp - 100, num % b.sig != 0};
}

/// Returns floor(sqrt(x)) for x < 2^126.
constexpr std::uint64_t isqrt128(u128 x) {
  std::uint64_t r = 0;
  // Bit by bit from the top: the largest r with r^2 <= x (r < 2^63).
  for (int bit = 62; bit >= 0; --bit) {
    const std::uint64_t t = r | (std::uint64_t{1} << bit);
    if (u128(t) * t <= x) r = t;
  }
  return r;
}

/// Returns sqrt(a), truncated to 62 or 63 bits plus a sticky bit.
constexpr Exact sqrt_exact(const Unpacked& a) {
  using VC = ValueClass;
  if (a.cls == VC::nan) return exact_nan();
  if (a.cls == VC::zero) return exact_zero(a.neg);  // sqrt(-0) = -0
  if (a.neg) return exact_nan();
  if (a.cls == VC::infinite) return exact_inf(false);
  // x = sig * 2^s with exp - s even and 2^124 <= x < 2^126, so that the root has 62 or
  // 63 bits: enough for 24 kept bits and 32 random bits of stochastic rounding.
  const int len = 64 - std::countl_zero(a.sig);
  int s = 125 - len;
  if ((a.exp - s) & 1) ++s;
  const u128 x = u128(a.sig) << s;
  const std::uint64_t root = isqrt128(x);
  return {VC::normal, false, root, (a.exp - s) / 2, u128(root) * root != x};
}

/// Rounds an exact result to `f` under `o`: the single rounding of every operation.
template <class Fmt>
constexpr EncodeStatus round_exact(const Fmt& f, Exact e, const ConvertOptions& o,
                                   std::uint32_t random_bits) {
  switch (e.cls) {
    case ValueClass::nan:
      return {nan_input_code(f, false, o.nan)};
    case ValueClass::infinite:
      if (e.neg && !f.is_signed && !drops_sign(f)) return {signed_nan_code(f, false)};
      return {overflow_code(f, e.neg && !drops_sign(f), true, o), false, true};
    case ValueClass::zero: {
      EncodeStatus st{zero_code(f, e.neg)};
      st.inexact = !has_zero(f);  // without a zero: its smallest value
      return st;
    }
    default:
      break;
  }
  // The sign rules of conversion: a scale encodes |x| (drops_sign); other unsigned formats
  // give NaN.
  bool neg = e.neg;
  if (drops_sign(f)) neg = false;
  if (neg && !f.is_signed) return {signed_nan_code(f, false)};
  return encode_wide(f, neg, e.sig, e.exp, o, random_bits, e.sticky);
}

}  // namespace detail

/// Returns a + b in `f`, rounded once from the exact sum under `o`.
template <class Fmt>
constexpr std::uint32_t add(const Fmt& f, std::uint32_t a, std::uint32_t b,
                            const ConvertOptions& o = {}, std::uint32_t random_bits = 0) {
  const bool daz = o.flush_inputs;
  return detail::round_exact(
             f, detail::add_exact(detail::unpack(f, a, daz), detail::unpack(f, b, daz), o.rounding),
             o, random_bits)
      .code;
}

/// Returns a - b in `f`, rounded once from the exact difference under `o`.
template <class Fmt>
constexpr std::uint32_t sub(const Fmt& f, std::uint32_t a, std::uint32_t b,
                            const ConvertOptions& o = {}, std::uint32_t random_bits = 0) {
  const bool daz = o.flush_inputs;
  detail::Unpacked nb = detail::unpack(f, b, daz);
  nb.neg = !nb.neg;  // exact negation; a NaN stays NaN whatever its sign
  return detail::round_exact(f, detail::add_exact(detail::unpack(f, a, daz), nb, o.rounding), o,
                             random_bits)
      .code;
}

/// Returns a * b in `f`, rounded once from the exact product under `o`.
template <class Fmt>
constexpr std::uint32_t mul(const Fmt& f, std::uint32_t a, std::uint32_t b,
                            const ConvertOptions& o = {}, std::uint32_t random_bits = 0) {
  const bool daz = o.flush_inputs;
  return detail::round_exact(
             f, detail::mul_exact(detail::unpack(f, a, daz), detail::unpack(f, b, daz)), o,
             random_bits)
      .code;
}

/// Returns a / b in `f`, rounded once from the exact quotient under `o`.
template <class Fmt>
constexpr std::uint32_t div(const Fmt& f, std::uint32_t a, std::uint32_t b,
                            const ConvertOptions& o = {}, std::uint32_t random_bits = 0) {
  const bool daz = o.flush_inputs;
  return detail::round_exact(
             f, detail::div_exact(detail::unpack(f, a, daz), detail::unpack(f, b, daz)), o,
             random_bits)
      .code;
}

/// Returns a * b + c in `f`, rounded once from the exact result under `o`.
template <class Fmt>
constexpr std::uint32_t fma(const Fmt& f, std::uint32_t a, std::uint32_t b, std::uint32_t c,
                            const ConvertOptions& o = {}, std::uint32_t random_bits = 0) {
  const bool daz = o.flush_inputs;
  return detail::round_exact(f,
                             detail::fma_exact(detail::unpack(f, a, daz), detail::unpack(f, b, daz),
                                               detail::unpack(f, c, daz), o.rounding),
                             o, random_bits)
      .code;
}

/// Returns the square root of a in `f`, rounded once from the exact root under `o`.
template <class Fmt>
constexpr std::uint32_t sqrt(const Fmt& f, std::uint32_t a, const ConvertOptions& o = {},
                             std::uint32_t random_bits = 0) {
  return detail::round_exact(f, detail::sqrt_exact(detail::unpack(f, a, o.flush_inputs)), o,
                             random_bits)
      .code;
}

/// Returns a * b + c where a, b and c have formats of their own, rounded once to `out`.
template <class Out, class FA, class FB, class FC>
constexpr std::uint32_t fma(const Out& out, const FA& fa, std::uint32_t a, const FB& fb,
                            std::uint32_t b, const FC& fc, std::uint32_t c,
                            const ConvertOptions& o = {}, std::uint32_t random_bits = 0) {
  const bool daz = o.flush_inputs;
  return detail::round_exact(out,
                             detail::fma_exact(detail::unpack(fa, a, daz), detail::unpack(fb, b, daz),
                                               detail::unpack(fc, c, daz), o.rounding),
                             o, random_bits)
      .code;
}

}  // namespace fp8emu
