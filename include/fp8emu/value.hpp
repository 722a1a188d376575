// A value type for any compile-time format: fp8emu::Float<formats::e4m3fn> behaves like a
// built-in floating-point type in generic C++ code (operators, comparisons, conversions,
// std::numeric_limits, sqrt, fma, abs, isnan, isinf, isfinite, signbit).
//
// Every operation is correctly rounded (arith.hpp) with the rounding mode `R` and the
// overflow rule `S` of the type. The default, Saturation::none, is IEEE 754 behaviour:
// overflow gives infinity (NaN for formats without infinity, such as e4m3fn, as in
// ml_dtypes). Comparisons are IEEE comparisons of the values: NaN is unordered, and
// +0 == -0.
#pragma once

#include <compare>
#include <cstdint>
#include <limits>

#include "fp8emu/arith.hpp"
#include "fp8emu/convert.hpp"
#include "fp8emu/format.hpp"

namespace fp8emu {

/// A number of format `Fmt` (a StaticFormat) with rounding `R` and overflow rule `S`.
template <class Fmt, Rounding R = Rounding::nearest_even, Saturation S = Saturation::none>
class Float {
  static_assert(!is_stochastic(R), "Float needs a deterministic rounding mode");

 public:
  using format_type = Fmt;
  static constexpr ConvertOptions options{R, S};

  /// Constructs +0 (the smallest value for e8m0fnu, which has no zero).
  constexpr Float() = default;
  /// Constructs the value nearest `x` under the type's rounding.
  explicit Float(double x) : code_(encode(Fmt{}, x, options)) {}
  /// Constructs the value nearest `x` under the type's rounding.
  explicit Float(float x) : code_(encode(Fmt{}, x, options)) {}

  /// Returns the number with code `c`.
  static constexpr Float from_code(std::uint32_t c) {
    Float f;
    f.code_ = c;
    return f;
  }
  /// Returns the code.
  constexpr std::uint32_t code() const { return code_; }

  /// Returns the exact value.
  explicit operator double() const { return decode(Fmt{}, code_); }
  /// Returns the value as a float (exact when the format fits in float).
  explicit operator float() const { return float(decode(Fmt{}, code_)); }

  friend Float operator+(Float a, Float b) { return from_code(add(Fmt{}, a.code_, b.code_, options)); }
  friend Float operator-(Float a, Float b) { return from_code(sub(Fmt{}, a.code_, b.code_, options)); }
  friend Float operator*(Float a, Float b) { return from_code(mul(Fmt{}, a.code_, b.code_, options)); }
  friend Float operator/(Float a, Float b) { return from_code(div(Fmt{}, a.code_, b.code_, options)); }
  /// Returns -a exactly (the format's NaN for a nonzero value of an unsigned format).
  friend Float operator-(Float a) { return Float(-double(a)); }
  friend Float operator+(Float a) { return a; }
  Float& operator+=(Float b) { return *this = *this + b; }
  Float& operator-=(Float b) { return *this = *this - b; }
  Float& operator*=(Float b) { return *this = *this * b; }
  Float& operator/=(Float b) { return *this = *this / b; }

  friend bool operator==(Float a, Float b) { return double(a) == double(b); }
  friend std::partial_ordering operator<=>(Float a, Float b) { return double(a) <=> double(b); }

  /// Returns the correctly rounded square root.
  friend Float sqrt(Float a) { return from_code(fp8emu::sqrt(Fmt{}, a.code_, options)); }
  /// Returns a * b + c with one rounding.
  friend Float fma(Float a, Float b, Float c) {
    return from_code(fp8emu::fma(Fmt{}, a.code_, b.code_, c.code_, options));
  }
  /// Returns |a| (NaN stays NaN).
  friend Float abs(Float a) { return isnan(a) ? a : from_code(a.code_ & magnitude_mask(Fmt{})); }
  friend bool isnan(Float a) { return classify(Fmt{}, a.code_) == ValueClass::nan; }
  friend bool isinf(Float a) { return classify(Fmt{}, a.code_) == ValueClass::infinite; }
  friend bool isfinite(Float a) {
    const ValueClass c = classify(Fmt{}, a.code_);
    return c != ValueClass::nan && c != ValueClass::infinite;
  }
  friend bool signbit(Float a) { return (a.code_ & sign_mask(Fmt{})) != 0; }

 private:
  std::uint32_t code_ = 0;
};

namespace detail {

/// Returns the code of 2^e in `f` (a value of the format).
template <class Fmt>
constexpr std::uint32_t pow2_code(const Fmt& f, int e) {
  if (e >= emin(f)) return std::uint32_t(e + f.bias) << f.mantissa_bits;
  return std::uint32_t{1} << (e - quantum_min(f));
}

/// Returns the exponent of the largest finite value of `f`, as a constant expression.
template <class Fmt>
constexpr int emax_constexpr(const Fmt& f) {
  const std::uint32_t m = max_magnitude_code(f);
  return int(m >> f.mantissa_bits) - f.bias;
}

/// floor(x * log10(2)) for |x| < 10^4 (log10(2) = 0.30103 to five digits).
constexpr int floor_log10_2(int x) {
  const long v = long(x) * 30103;
  return int(v >= 0 ? v / 100000 : -((-v + 99999) / 100000));
}

}  // namespace detail
}  // namespace fp8emu

/// numeric_limits of fp8emu::Float, derived from the format description.
template <class Fmt, fp8emu::Rounding R, fp8emu::Saturation S>
class std::numeric_limits<fp8emu::Float<Fmt, R, S>> {
  using T = fp8emu::Float<Fmt, R, S>;
  static constexpr Fmt f{};
  static constexpr int M = Fmt::mantissa_bits;

 public:
  static constexpr bool is_specialized = true;
  static constexpr bool is_signed = Fmt::is_signed;
  static constexpr bool is_integer = false;
  static constexpr bool is_exact = false;
  static constexpr bool has_infinity = fp8emu::has_inf(f);
  static constexpr bool has_quiet_NaN = fp8emu::has_nan(f);
  static constexpr bool has_signaling_NaN = false;
  static constexpr std::float_denorm_style has_denorm =
      fp8emu::has_subnormals(f) ? std::denorm_present : std::denorm_absent;
  static constexpr bool has_denorm_loss = false;
  static constexpr std::float_round_style round_style = fp8emu::option_entry(R).style;
  static constexpr bool is_iec559 = false;
  static constexpr bool is_bounded = true;
  static constexpr bool is_modulo = false;
  static constexpr int digits = M + 1;
  static constexpr int digits10 = fp8emu::detail::floor_log10_2(M);
  static constexpr int max_digits10 = fp8emu::detail::floor_log10_2(M + 1) + 2;
  static constexpr int radix = 2;
  static constexpr int min_exponent = fp8emu::emin(f) + 1;
  static constexpr int min_exponent10 = fp8emu::detail::floor_log10_2(fp8emu::emin(f)) + 1;
  static constexpr int max_exponent = fp8emu::detail::emax_constexpr(f) + 1;
  static constexpr int max_exponent10 =
      fp8emu::detail::floor_log10_2(fp8emu::detail::emax_constexpr(f) + 1);
  static constexpr bool traps = false;
  static constexpr bool tinyness_before = false;

  /// The smallest positive normal value.
  static constexpr T min() noexcept { return T::from_code(fp8emu::detail::pow2_code(f, fp8emu::emin(f))); }
  static constexpr T max() noexcept { return T::from_code(fp8emu::max_magnitude_code(f)); }
  static constexpr T lowest() noexcept {
    return is_signed ? T::from_code(fp8emu::max_magnitude_code(f) | fp8emu::sign_mask(f))
                     : T::from_code(0);
  }
  static constexpr T epsilon() noexcept { return T::from_code(fp8emu::detail::pow2_code(f, -M)); }
  static constexpr T round_error() noexcept {
    return T::from_code(fp8emu::detail::pow2_code(f, -1));
  }
  /// +infinity, or +0 when the format has none (has_infinity is false).
  static constexpr T infinity() noexcept {
    return T::from_code(fp8emu::positive_inf_code(f).value_or(0));
  }
  /// The canonical NaN, or +0 when the format has none (has_quiet_NaN is false).
  static constexpr T quiet_NaN() noexcept { return T::from_code(fp8emu::nan_code(f).value_or(0)); }
  static constexpr T signaling_NaN() noexcept { return quiet_NaN(); }
  static constexpr T denorm_min() noexcept {
    return fp8emu::has_subnormals(f) ? T::from_code(1) : min();
  }
};
