// fp8emu: explanations of conversions (see include/fp8emu/explain.hpp).
#include "fp8emu/explain.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <sstream>

namespace fp8emu {
namespace {

std::string binary(std::uint32_t v, int bits) {
  std::string s;
  for (int i = bits - 1; i >= 0; --i) s += ((v >> i) & 1) ? '1' : '0';
  return s;
}

// Returns the largest magnitude code whose value is <= a (a >= 0 finite), or nothing.
std::optional<std::uint32_t> floor_magnitude(const Format& f, double a) {
  std::uint32_t lo = 0, hi = max_magnitude_code(f);
  if (magnitude_value(f, 0) > a) return std::nullopt;
  if (magnitude_value(f, hi) <= a) return hi;
  while (hi - lo > 1) {  // Invariant: value(lo) <= a < value(hi).
    const std::uint32_t mid = lo + (hi - lo) / 2;
    (magnitude_value(f, mid) <= a ? lo : hi) = mid;
  }
  return lo;
}

}  // namespace

std::string hex_code(std::uint64_t code, int bits) {
  std::string s = "0x";
  for (int i = (bits + 3) / 4 - 1; i >= 0; --i) s += "0123456789ABCDEF"[(code >> (4 * i)) & 0xF];
  return s;
}

std::string_view class_name(ValueClass c) {
  switch (c) {
    case ValueClass::zero: return "zero";
    case ValueClass::subnormal: return "subnormal";
    case ValueClass::normal: return "normal";
    case ValueClass::infinite: return "inf";
    case ValueClass::nan: return "nan";
  }
  return "?";
}

namespace {
template <class T>
std::string shortest_of(T x) {
  if (std::isnan(x)) return std::signbit(x) ? "-nan" : "nan";
  if (std::isinf(x)) return x < 0 ? "-inf" : "inf";
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, p);
}
}  // namespace

std::string shortest(double x) { return shortest_of(x); }
std::string shortest(float x) { return shortest_of(x); }

CodeFields fields(const Format& f, std::uint32_t code) {
  CodeFields c;
  c.code = code;
  c.value_class = classify(f, code);
  c.negative = (code & sign_mask(f)) != 0;
  c.exponent_field = (code & magnitude_mask(f)) >> f.mantissa_bits;
  c.mantissa_field = code & ((1u << f.mantissa_bits) - 1);
  c.value = decode(f, code);
  return c;
}

std::string field_bits(const Format& f, std::uint32_t code) {
  std::string s;
  if (f.is_signed) s = binary(code >> (f.exponent_bits + f.mantissa_bits), 1) + " ";
  s += binary((code & magnitude_mask(f)) >> f.mantissa_bits, f.exponent_bits);
  if (f.mantissa_bits > 0) s += " " + binary(code, f.mantissa_bits);
  return s;
}

Explanation explain(const Format& f, double x, const ConvertOptions& o,
                    std::uint32_t random_bits) {
  validate(o);
  Explanation e;
  e.format = f;
  e.options = o;
  e.input = x;
  const std::uint64_t b = std::bit_cast<std::uint64_t>(x);
  const bool sub = ((b >> 52) & 0x7FF) == 0 && (b << 12) != 0;
  e.status = detail::encode_status(f, x, sub, o, random_bits);
  e.result = fields(f, e.status.code);
  if (!std::isfinite(x)) return e;
  const double a = std::fabs(x);
  const bool neg = std::signbit(x);
  if (neg && !f.is_signed) return e;  // No negative values to bracket x with.
  // Neighbours among the finite values: magnitudes bracket |x|, then apply the sign.
  const auto fl = floor_magnitude(f, a);
  std::optional<std::uint32_t> lo = fl, hi;
  if (fl && magnitude_value(f, *fl) == a)
    hi = fl;
  else if (!fl)
    hi = 0u;
  else if (*fl < max_magnitude_code(f))
    hi = *fl + 1;
  const std::uint32_t sign = neg && f.is_signed ? sign_mask(f) : 0u;
  auto make = [&](std::optional<std::uint32_t> m) -> std::optional<CodeFields> {
    if (!m) return std::nullopt;
    // Magnitude 0 with a sign bit is NaN in fnuz / P3109: zero is unsigned there.
    const std::uint32_t s = (*m == 0 && !has_negative_zero(f)) ? 0u : sign;
    return fields(f, *m | s);
  };
  auto small = make(lo), big = make(hi);
  if (neg) std::swap(small, big);
  e.below = small;
  e.above = big;
  if (lo && hi && *lo != *hi) {
    e.ulp = magnitude_value(f, *hi) - magnitude_value(f, *lo);
  } else if (lo) {  // Exact, or above the largest value: the gap at the top of |x|'s binade.
    const std::uint32_t m = *lo;
    e.ulp = m < max_magnitude_code(f) ? magnitude_value(f, m + 1) - magnitude_value(f, m)
                                      : magnitude_value(f, m) - magnitude_value(f, m - 1);
  }
  if (std::isfinite(e.result.value)) e.error = e.result.value - x;
  return e;
}

std::string to_text(const Explanation& e) {
  const Format& f = e.format;
  const int bits = total_bits(f);
  std::ostringstream s;
  s << "format      " << format_name(f) << " (" << bits << " bits: "
    << (f.is_signed ? "1 sign, " : "no sign, ") << f.exponent_bits << " exponent, "
    << f.mantissa_bits << " mantissa; bias " << f.bias << "; policy " << policy_name(f.policy)
    << ")\n";
  s << "input       " << shortest(e.input) << "\n";
  s << "rounding    " << to_string(e.options.rounding) << ", saturation "
    << to_string(e.options.saturation) << "\n";
  const CodeFields& r = e.result;
  s << "code        " << hex_code(r.code, bits) << " = " << field_bits(f, r.code) << "  ("
    << class_name(r.value_class) << ")\n";
  if (f.is_signed) s << "  sign      " << (r.negative ? "1 (-)" : "0 (+)") << "\n";
  s << "  exponent  " << binary(r.exponent_field, f.exponent_bits) << "b = " << r.exponent_field;
  if (r.value_class == ValueClass::normal) {
    s << ", unbiased " << r.exponent_field << " - " << f.bias << " = "
      << int(r.exponent_field) - f.bias;
  } else if (r.value_class == ValueClass::subnormal) {
    s << ", subnormal: exponent emin = " << emin(f);
  }
  s << "\n";
  if (f.mantissa_bits > 0) {
    s << "  mantissa  " << binary(r.mantissa_field, f.mantissa_bits) << "b = " << r.mantissa_field;
    const double frac = std::ldexp(double(r.mantissa_field), -f.mantissa_bits);
    if (r.value_class == ValueClass::normal)
      s << ", significand 1 + " << r.mantissa_field << "/" << (1u << f.mantissa_bits) << " = "
        << shortest(1 + frac);
    else if (r.value_class == ValueClass::subnormal)
      s << ", significand 0 + " << r.mantissa_field << "/" << (1u << f.mantissa_bits) << " = "
        << shortest(frac);
    s << "\n";
  }
  s << "value       " << shortest(r.value) << "\n";
  auto nb = [&](const std::optional<CodeFields>& c) {
    return c ? shortest(c->value) + " (" + hex_code(c->code, bits) + ")" : std::string("none");
  };
  if (std::isfinite(e.input))
    s << "neighbours  " << nb(e.below) << " <= x <= " << nb(e.above) << "\n";
  if (std::isfinite(e.input) && std::isfinite(r.value) && e.ulp > 0) {
    s << "error       " << shortest(e.error) << " = " << shortest(e.error / e.ulp)
      << " ulp (ulp here = " << shortest(e.ulp) << ")";
    if (e.input != 0) s << ", relative " << shortest(e.error / std::fabs(e.input));
    s << "\n";
  }
  s << "status      " << status_text(e) << "\n";
  return s.str();
}

std::string status_text(const Explanation& e) {
  const Format& f = e.format;
  const CodeFields& r = e.result;
  const std::string result = shortest(r.value) + " (" + hex_code(r.code, total_bits(f)) + ")";
  // 1. Inputs the format has no counterpart for: the code stands for something else.
  if (std::isnan(e.input)) {
    if (r.value_class == ValueClass::nan) return "NaN input -> NaN";
    return "not representable: " + format_name(f) + " has no NaN; NaN input -> " + result;
  }
  const bool negative = std::signbit(e.input) && e.input != 0;
  if (negative && !f.is_signed && !drops_sign(f))
    return "not representable: negative input to an unsigned format -> NaN";
  // 2. The rounding, of |x| where the format drops the sign.
  std::ostringstream s;
  if (negative && drops_sign(f)) s << "sign dropped (" << format_name(f) << " encodes |x|); |x| ";
  const EncodeStatus& st = e.status;
  if (!st.inexact && !st.overflow && !st.underflow && !st.flushed) s << "exact";
  if (st.inexact && !st.overflow) s << "inexact";
  if (st.overflow)
    s << "overflow: "
      << (std::isfinite(e.input) ? "rounded magnitude exceeds max " : "infinite input, ")
      << shortest(max_finite(f)) << " -> " << class_name(r.value_class)
      << (r.value_class == ValueClass::normal ? " (saturated)" : "");
  if (st.underflow) s << ", underflow" << (r.value_class == ValueClass::zero ? " to zero" : "");
  if (st.flushed) s << ", flushed (DAZ/FTZ)";
  return s.str();
}

}  // namespace fp8emu
