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

// Returns the probability of rounding up (exact: at most 2^32 counts of at most 2^32).
double odds_probability(const StochasticOdds& o) { return std::ldexp(double(o.up), -o.bits); }

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
  e.random = random_bits;
  if (is_stochastic(o.rounding) && std::isfinite(x) && e.status.inexact) {
    // Every stochastic mode rounds up exactly for the random values R >= some threshold T
    // (convert.hpp, round_up), so T is found by bisection: 2^N - T values round up.
    ConvertOptions rz = o;
    rz.rounding = Rounding::toward_zero;
    rz.stochastic_bits = 0;
    const std::uint32_t down = detail::encode_status(f, x, sub, rz, 0).code;
    auto up = [&](std::uint64_t r) {
      return detail::encode_status(f, x, sub, o, std::uint32_t(r)).code != down;
    };
    const std::uint64_t n = std::uint64_t{1} << o.stochastic_bits;
    std::uint64_t lo = 0, hi = n;  // Invariant: up(r) is false below lo and true from hi on.
    while (lo < hi) {
      const std::uint64_t mid = lo + (hi - lo) / 2;
      if (up(mid))
        hi = mid;
      else
        lo = mid + 1;
    }
    e.odds = StochasticOdds{n - lo, o.stochastic_bits};
  }
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
  if (is_stochastic(e.options.rounding))
    s << "random      R = " << e.random << " (N = " << e.options.stochastic_bits << " bits)\n";
  if (e.odds)
    s << "round away  from zero for " << e.odds->up << " of the " << (std::uint64_t{1} << e.odds->bits)
      << " values of R: probability " << shortest(odds_probability(*e.odds)) << "\n";
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

double parse_value(std::string_view text) {
  const std::string s(text);
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size())
    throw std::invalid_argument("invalid value '" + s +
                                "': expected a number such as 3.3, 0x1p-7, inf or nan");
  // A NaN takes the sign of its text: glibc's strtod keeps it, some C libraries (musl, in
  // the WebAssembly build) return +NaN for "-nan".
  if (std::isnan(v)) return std::copysign(v, s.find('-') != std::string::npos ? -1.0 : 1.0);
  return v;  // Overflow to inf and underflow to 0 are the double's own rounding.
}

std::string variant_note(const Format& f) {
  if (f.policy != Policy::ieee || !f.is_signed) return "";
  const std::string base =
      "e" + std::to_string(f.exponent_bits) + "m" + std::to_string(f.mantissa_bits);
  for (const auto& e : catalog())
    if (e.name == base + "fn" && e.format.bias == f.bias)
      return "note: " + base + " is the IEEE-like variant (max " + shortest(max_finite(f)) +
             ", with infinities); the OCP format is " + base + "fn (max " +
             shortest(max_finite(e.format)) + ")";
  return "";
}

namespace {

json::Value optional_code(const std::optional<std::uint32_t>& c, int bits) {
  return c ? json::Value(hex_code(*c, bits)) : json::Value();
}

// The facts of one code shared by to_json and code_json; numbers as shortest() writes them.
json::Value fields_json(const Format& f, const CodeFields& c) {
  const int bits = total_bits(f);
  return json::Value::object()
      .set("code", c.code)
      .set("hex", hex_code(c.code, bits))
      .set("bits", field_bits(f, c.code))
      .set("class", class_name(c.value_class))
      .set("sign", f.is_signed ? json::Value(c.negative ? 1 : 0) : json::Value())
      .set("exponent_field", c.exponent_field)
      .set("mantissa_field", c.mantissa_field)
      .set("value", shortest(c.value));
}

}  // namespace

json::Value to_json(const Explanation& e) {
  const Format& f = e.format;
  const bool finite = std::isfinite(e.input);
  const bool has_error = finite && std::isfinite(e.result.value) && e.ulp > 0;
  auto neighbour = [&](const std::optional<CodeFields>& c) {
    return c && finite ? fields_json(f, *c) : json::Value();
  };
  json::Value odds;
  if (e.odds)
    odds = json::Value::object()
               .set("up", e.odds->up)
               .set("of", std::uint64_t{1} << e.odds->bits)
               .set("probability", shortest(odds_probability(*e.odds)));
  const bool stochastic = is_stochastic(e.options.rounding);
  return json::Value::object()
      .set("format", format_name(f))
      .set("input", shortest(e.input))
      .set("rounding", to_string(e.options.rounding))
      .set("saturation", to_string(e.options.saturation))
      .set("nan", to_string(e.options.nan))
      .set("daz", e.options.flush_inputs)
      .set("ftz", e.options.flush_outputs)
      .set("sr_bits", stochastic ? json::Value(e.options.stochastic_bits) : json::Value())
      .set("random", stochastic ? json::Value(e.random) : json::Value())
      .set("result", fields_json(f, e.result))
      .set("below", neighbour(e.below))
      .set("above", neighbour(e.above))
      .set("ulp", has_error ? json::Value(shortest(e.ulp)) : json::Value())
      .set("error", has_error ? json::Value(shortest(e.error)) : json::Value())
      .set("error_ulps", has_error ? json::Value(shortest(e.error / e.ulp)) : json::Value())
      .set("relative_error", has_error && e.input != 0
                                 ? json::Value(shortest(e.error / std::fabs(e.input)))
                                 : json::Value())
      .set("inexact", e.status.inexact)
      .set("overflow", e.status.overflow)
      .set("underflow", e.status.underflow)
      .set("flushed", e.status.flushed)
      .set("round_away", odds)
      .set("status", status_text(e))
      .set("text", to_text(e));
}

json::Value code_json(const Format& f, std::uint32_t code) {
  const CodeFields c = fields(f, code);
  json::Value v = fields_json(f, c);
  v.set("format", format_name(f));
  v.set("text", code_text(f, code));
  return v;
}

std::string code_text(const Format& f, std::uint32_t code) {
  const CodeFields c = fields(f, code);
  return "format      " + format_name(f) + "\ncode        " + hex_code(code, total_bits(f)) +
         " = " + field_bits(f, code) + "  (" + std::string(class_name(c.value_class)) +
         ")\nvalue       " + shortest(c.value) + "\n";
}

json::Value format_json(const Format& f) {
  const int bits = total_bits(f);
  std::string source;
  for (const auto& e : catalog())
    if (e.format == f) source = e.source;
  return json::Value::object()
      .set("name", format_name(f))
      .set("bits", bits)
      .set("signed", f.is_signed)
      .set("exponent_bits", f.exponent_bits)
      .set("mantissa_bits", f.mantissa_bits)
      .set("bias", f.bias)
      .set("policy", policy_name(f.policy))
      .set("max_finite", shortest(max_finite(f)))
      .set("min_normal", shortest(min_normal(f)))
      .set("min_positive", shortest(min_positive(f)))
      .set("epsilon", shortest(epsilon(f)))
      .set("emin", emin(f))
      .set("emax", emax(f))
      .set("finite_codes", finite_code_count(f))
      .set("has_inf", has_inf(f))
      .set("has_nan", has_nan(f))
      .set("has_negative_zero", has_negative_zero(f))
      .set("has_subnormals", has_subnormals(f))
      .set("nan_code", optional_code(nan_code(f), bits))
      .set("pos_inf_code", optional_code(positive_inf_code(f), bits))
      .set("neg_inf_code", optional_code(negative_inf_code(f), bits))
      .set("source", source)
      .set("note", variant_note(f));
}

std::vector<Binade> binades(const Format& f) {
  const std::uint32_t top = max_magnitude_code(f);
  // The smallest magnitude code whose value is >= a, or top + 1.
  auto ceil_code = [&](double a) -> std::uint64_t {
    const auto fl = floor_magnitude(f, a);
    if (!fl) return 0;
    return magnitude_value(f, *fl) == a ? *fl : std::uint64_t{*fl} + 1;
  };
  std::vector<Binade> out;
  for (int k = std::ilogb(min_positive(f)); k <= emax(f); ++k) {
    const std::uint64_t first = ceil_code(std::ldexp(1.0, k));
    const std::uint64_t end = ceil_code(std::ldexp(1.0, k + 1));
    if (end <= first) continue;
    Binade b;
    b.exponent = k;
    b.count = end - first;
    const auto m = std::uint32_t(first);
    b.first = m;
    b.spacing = m < top ? magnitude_value(f, m + 1) - magnitude_value(f, m)
                        : magnitude_value(f, m) - magnitude_value(f, m - 1);
    b.subnormal = classify(f, m) == ValueClass::subnormal;
    out.push_back(b);
  }
  return out;
}

}  // namespace fp8emu
