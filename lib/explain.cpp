// fp8emu: explanations of conversions (see include/fp8emu/explain.hpp).
#include "fp8emu/explain.hpp"

#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <type_traits>

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
// The spelling of a NaN or an infinity, or "" for a finite x.
template <class T>
std::string special_text(T x) {
  if (std::isnan(x)) return std::signbit(x) ? "-nan" : "nan";
  if (std::isinf(x)) return x < 0 ? "-inf" : "inf";
  return "";
}

// A decimal digits * 10^exponent with `length` significant digits.
struct Decimal {
  std::uint64_t digits = 0;
  int length = 0;
  int exponent = 0;
};

constexpr std::uint64_t pow10(int n) {
  std::uint64_t p = 1;
  while (n-- > 0) p *= 10;
  return p;
}

// The T nearest to the decimal (strtod and strtof round correctly, in glibc and in musl,
// which emscripten uses). The text has no decimal point, so no locale changes it.
template <class T>
T read(const Decimal& d) {
  char buf[48];
  char* p = std::to_chars(buf, buf + 24, d.digits).ptr;
  *p++ = 'e';
  *std::to_chars(p, buf + sizeof buf - 1, d.exponent).ptr = '\0';
  if constexpr (std::is_same_v<T, float>)
    return std::strtof(buf, nullptr);
  else
    return std::strtod(buf, nullptr);
}

// The n-digit decimal nearest to a (> 0, finite), ties to even: printf's %.{n-1}e.
Decimal nearest(double a, int n) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*e", n - 1, a);
  Decimal d{0, n, 0};
  const char* c = buf;
  for (; *c != 'e'; ++c)  // Digits only: the locale may change the decimal point.
    if (*c >= '0' && *c <= '9') d.digits = d.digits * 10 + std::uint64_t(*c - '0');
  d.exponent = int(std::strtol(c + 1, nullptr, 10)) - (n - 1);
  return d;
}

// The n-digit decimal nearest to a, from r, a rounded to more digits: rounding r again
// agrees with rounding a (the boundaries, n-digit decimals and their midpoints, have
// r's digits, and rounding is monotone) except where r is a midpoint; there, ask printf.
Decimal nearest(double a, int n, const Decimal& r) {
  if (n == r.length) return r;
  const std::uint64_t q = pow10(r.length - n), rem = r.digits % q;
  if (rem == q / 2) return nearest(a, n);
  Decimal d{r.digits / q, n, r.exponent + (r.length - n)};
  if (rem > q / 2 && ++d.digits == pow10(n)) d.digits = pow10(n - 1), ++d.exponent;
  return d;
}

// The n-digit decimal nearest to a (> 0, finite) that reads back as a, if one does.
// When the nearest, printf's %.{n-1}e (ties to even, as to_chars resolves them), does
// not, it lies outside a's rounding interval, and so does every n-digit decimal on the
// same side or farther away; the one left is the next above a where the interval is
// wider above than below: at a power of two above the smallest normal.
template <class T>
std::optional<Decimal> digits_of(T a, int n, const Decimal& r) {
  const Decimal d = nearest(double(a), n, r);
  const T y = read<T>(d);
  if (y == a) return d;
  int e2 = 0;
  if (y > a || std::frexp(a, &e2) != T(0.5) || a <= std::numeric_limits<T>::min())
    return std::nullopt;
  Decimal up = d;  // d is below a (y < a, and rounding is monotone): the next one up.
  if (++up.digits == pow10(n)) up.digits = pow10(n - 1), ++up.exponent;
  if (read<T>(up) == a) return up;
  return std::nullopt;
}

template <class T>
std::string shortest_portable_of(T x) {
  if (std::string s = special_text(x); !s.empty()) return s;
  const bool neg = std::signbit(x);
  if (x == 0) return neg ? "-0" : "0";
  const T a = std::fabs(x);
  // strtod and strtof set errno on the texts of subnormals: errno is left as to_chars
  // leaves it.
  const int saved_errno = errno;
  // max_digits10 digits always read back. If an n-digit decimal reads back, so does an
  // (n + 1)-digit one (the same with a zero appended), so the fewest digits are found by
  // bisection.
  const Decimal r = nearest(double(a), std::numeric_limits<T>::max_digits10);
  int lo = 1, hi = r.length;
  Decimal d = r;
  while (lo < hi) {
    const int mid = lo + (hi - lo) / 2;
    if (auto m = digits_of(a, mid, r)) {
      d = *m;
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  // The fewest digits have no trailing zero (else fewer would read back), so both
  // spellings' lengths follow from the digits; to_chars takes the shorter, fixed on a tie.
  const int n = d.length, p = d.exponent, e = p + n - 1;
  const int sci_len = n + (n > 1) + 2 + (std::abs(e) >= 100 ? 3 : 2);
  const int fixed_len = p >= 0 ? n + p : n <= -p ? 2 - p : n + 1;
  const std::string digits = std::to_string(d.digits);
  std::string s = neg ? "-" : "";
  if (fixed_len > sci_len) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "e%c%02d", e < 0 ? '-' : '+', std::abs(e));
    s += digits.substr(0, 1);
    if (n > 1) s += "." + digits.substr(1);
    s += buf;
  } else if (p >= 0) {
    // A whole number is spelled exactly, as printf's %.0f does (2^60 is
    // 1152921504606846976), not as its shortest digits and zeros.
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.0f", double(a));
    s += buf;
  } else if (n <= -p) {
    s += "0." + std::string(std::size_t(-p - n), '0') + digits;
  } else {
    s += digits.substr(0, std::size_t(n + p)) + "." + digits.substr(std::size_t(n + p));
  }
  errno = saved_errno;
  return s;
}
}  // namespace

namespace detail {
std::string shortest_portable(double x) { return shortest_portable_of(x); }
std::string shortest_portable(float x) { return shortest_portable_of(x); }
}  // namespace detail

namespace {
template <class T>
std::string shortest_of(T x) {
#if defined(__cpp_lib_to_chars) && __cpp_lib_to_chars >= 201611L
  if (std::string s = special_text(x); !s.empty()) return s;
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, p);
#else
  return detail::shortest_portable(x);
#endif
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
  const std::uint64_t b = detail::bit_cast<std::uint64_t>(x);
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
