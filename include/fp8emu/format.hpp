// fp8emu: format descriptions.
//
// Sources for every format rule in this file:
//  - OCP 8-bit Floating Point Specification (OFP8) v1.0, 2023; Micikevicius et al.,
//    "FP8 Formats for Deep Learning", arXiv:2209.05433 (e4m3fn, e5m2).
//  - OCP Microscaling Formats (MX) v1.0, 2023; Rouhani et al., arXiv:2310.10537
//    (e2m3fn, e3m2fn, e2m1fn, e8m0fnu).
//  - LLVM APFloat semantics and ml_dtypes (e4m3fnuz, e5m2fnuz, e4m3, e3m4, e4m3b11fnuz).
//  - IEEE SA P3109 interim report (binary{K}p{P}{s|u}{e|f}).
//  - IEEE 754-2019 (float16, float32), Google bfloat16, NVIDIA TensorFloat-32.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace fp8emu {

/// Says which codes of a format are infinities and NaNs, and whether -0 exists.
enum class Policy : std::uint8_t {
  ieee,            ///< IEEE 754: all-ones exponent is inf (mantissa 0) or NaN.
  fn,              ///< No inf; the only NaN is all-ones exponent and mantissa (OCP e4m3fn).
  fnuz,            ///< No inf, no -0; the only NaN is the negative-zero code (AMD, Graphcore).
  finite_only,     ///< Every code is a number: no inf, no NaN (OCP MX e2m3, e3m2, e2m1).
  p3109_extended,  ///< P3109 extended: one zero, one NaN, +inf (and -inf when signed).
  p3109_finite,    ///< P3109 finite: one zero, one NaN, no inf.
  e8m0,            ///< Exponent only: unsigned, no zero, NaN all-ones (OCP MX scale).
};

/// Describes a binary floating-point format at run time.
///
/// Layout of a code, from the most significant bit: [sign] exponent mantissa.
/// `StaticFormat` has the same member names, so every algorithm is written once as
/// `template <class Fmt>` and works on either.
struct Format {
  bool is_signed = true;
  int exponent_bits = 0;
  int mantissa_bits = 0;
  int bias = 0;
  Policy policy = Policy::ieee;

  friend constexpr bool operator==(const Format&, const Format&) = default;
};

/// Describes a binary floating-point format at compile time (same members as `Format`).
template <bool Signed, int E, int M, int Bias, Policy P>
struct StaticFormat {
  static constexpr bool is_signed = Signed;
  static constexpr int exponent_bits = E;
  static constexpr int mantissa_bits = M;
  static constexpr int bias = Bias;
  static constexpr Policy policy = P;
  constexpr operator Format() const { return Format{Signed, E, M, Bias, P}; }
};

/// Compile-time descriptions of the catalog formats most code needs.
namespace formats {
using e4m3fn = StaticFormat<true, 4, 3, 7, Policy::fn>;
using e5m2 = StaticFormat<true, 5, 2, 15, Policy::ieee>;
using e4m3fnuz = StaticFormat<true, 4, 3, 8, Policy::fnuz>;
using e5m2fnuz = StaticFormat<true, 5, 2, 16, Policy::fnuz>;
using e4m3 = StaticFormat<true, 4, 3, 7, Policy::ieee>;
using e3m4 = StaticFormat<true, 3, 4, 3, Policy::ieee>;
using e4m3b11fnuz = StaticFormat<true, 4, 3, 11, Policy::fnuz>;
using e2m3fn = StaticFormat<true, 2, 3, 1, Policy::finite_only>;
using e3m2fn = StaticFormat<true, 3, 2, 3, Policy::finite_only>;
using e2m1fn = StaticFormat<true, 2, 1, 1, Policy::finite_only>;
using e8m0fnu = StaticFormat<false, 8, 0, 127, Policy::e8m0>;
using float16 = StaticFormat<true, 5, 10, 15, Policy::ieee>;
using bfloat16 = StaticFormat<true, 8, 7, 127, Policy::ieee>;
using tf32 = StaticFormat<true, 8, 10, 127, Policy::ieee>;
using float32 = StaticFormat<true, 8, 23, 127, Policy::ieee>;
}  // namespace formats

// ---------------------------------------------------------------------------
// Derived properties. Each is a constexpr function of the description.
// A "magnitude code" is a code with the sign bit cleared; for every format the
// non-negative finite values increase strictly with their magnitude code.
// ---------------------------------------------------------------------------

/// Returns the number of bits of a code of `f`.
template <class Fmt>
constexpr int total_bits(const Fmt& f) {
  return int(f.is_signed) + f.exponent_bits + f.mantissa_bits;
}

/// Returns the mask of the sign bit of `f` (0 for unsigned formats).
template <class Fmt>
constexpr std::uint32_t sign_mask(const Fmt& f) {
  return f.is_signed ? std::uint32_t{1} << (f.exponent_bits + f.mantissa_bits) : 0u;
}

/// Returns the mask of the exponent and mantissa fields of `f`.
template <class Fmt>
constexpr std::uint32_t magnitude_mask(const Fmt& f) {
  return (std::uint32_t{1} << (f.exponent_bits + f.mantissa_bits)) - 1u;
}

/// Returns true when `f` has infinities.
template <class Fmt>
constexpr bool has_inf(const Fmt& f) {
  return f.policy == Policy::ieee || f.policy == Policy::p3109_extended;
}

/// Returns true when `f` has at least one NaN code.
template <class Fmt>
constexpr bool has_nan(const Fmt& f) {
  return f.policy != Policy::finite_only;
}

/// Returns true when `f` has a distinct negative zero.
template <class Fmt>
constexpr bool has_negative_zero(const Fmt& f) {
  return f.is_signed && (f.policy == Policy::ieee || f.policy == Policy::fn ||
                         f.policy == Policy::finite_only);
}

/// Returns true when NaN codes of `f` carry a sign (both signs have NaN codes).
template <class Fmt>
constexpr bool has_signed_nan(const Fmt& f) {
  return f.policy == Policy::ieee || f.policy == Policy::fn;
}

/// Returns true when `f` has a zero code. Exponent field 0 then holds the zero and the
/// subnormals; in a format without a zero (e8m0fnu) it is the smallest normal binade.
template <class Fmt>
constexpr bool has_zero(const Fmt& f) {
  return f.policy != Policy::e8m0;
}

/// Returns true when `f` has a trailing significand field (mantissa bits).
template <class Fmt>
constexpr bool has_trailing_significand(const Fmt& f) {
  return f.mantissa_bits > 0;
}

/// Returns true when `f` has subnormal numbers.
template <class Fmt>
constexpr bool has_subnormals(const Fmt& f) {
  return has_zero(f) && has_trailing_significand(f);
}

/// Returns true when converting x < 0 to `f` encodes |x|: an unsigned format without a
/// zero is a scale (OCP MX v1.0 E8M0, as NVIDIA's __nv_cvt_float_to_e8m0 converts). Other
/// unsigned formats give NaN for x < 0.
template <class Fmt>
constexpr bool drops_sign(const Fmt& f) {
  return !f.is_signed && !has_zero(f);
}

/// Returns the exponent of the smallest normal number of `f`.
template <class Fmt>
constexpr int emin(const Fmt& f) {
  return has_zero(f) ? 1 - f.bias : -f.bias;
}

/// Returns the exponent of the quantum of the smallest binade (emin - mantissa bits).
template <class Fmt>
constexpr int quantum_min(const Fmt& f) {
  return emin(f) - f.mantissa_bits;
}

/// Returns the largest magnitude code of `f` that encodes a finite number.
template <class Fmt>
constexpr std::uint32_t max_magnitude_code(const Fmt& f) {
  const std::uint32_t all = magnitude_mask(f);
  switch (f.policy) {
    case Policy::ieee:  // Largest exponent below all-ones, mantissa all ones.
      return all - (std::uint32_t{1} << f.mantissa_bits);
    case Policy::fn:  // All ones is NaN.
      return all - 1;
    case Policy::fnuz:
    case Policy::finite_only:
      return all;
    case Policy::p3109_extended:  // All ones is +inf (signed); unsigned: NaN, then +inf.
      return f.is_signed ? all - 1 : all - 2;
    case Policy::p3109_finite:  // Unsigned: all ones is NaN.
      return f.is_signed ? all : all - 1;
    case Policy::e8m0:
      return all - 1;
  }
  return 0;
}

/// Returns the non-negative value of magnitude code `m` of `f` (m <= max_magnitude_code).
template <class Fmt>
inline double magnitude_value(const Fmt& f, std::uint32_t m) {
  const int M = f.mantissa_bits;
  const std::uint32_t e_field = m >> M;
  const std::uint32_t t = m & ((std::uint32_t{1} << M) - 1u);
  if (e_field == 0 && has_zero(f)) return std::ldexp(double(t), quantum_min(f));
  return std::ldexp(double((std::uint32_t{1} << M) + t), int(e_field) - f.bias - M);
}

/// Returns the largest finite value of `f`.
template <class Fmt>
inline double max_finite(const Fmt& f) {
  return magnitude_value(f, max_magnitude_code(f));
}

/// Returns the smallest positive normal value of `f`.
template <class Fmt>
inline double min_normal(const Fmt& f) {
  return std::ldexp(1.0, emin(f));
}

/// Returns the smallest positive value of `f` (a subnormal when `f` has them).
template <class Fmt>
inline double min_positive(const Fmt& f) {
  return has_subnormals(f) ? std::ldexp(1.0, quantum_min(f)) : min_normal(f);
}

/// Returns the machine epsilon of `f`: the gap between 1 and the next larger value.
template <class Fmt>
inline double epsilon(const Fmt& f) {
  return std::ldexp(1.0, -f.mantissa_bits);
}

/// Returns the exponent of the largest finite value of `f`.
template <class Fmt>
inline int emax(const Fmt& f) {
  return std::ilogb(max_finite(f));
}

/// Returns the canonical NaN code of `f` (positive where NaNs are signed).
/// Formats without NaN (`finite_only`) have none.
template <class Fmt>
constexpr std::optional<std::uint32_t> nan_code(const Fmt& f) {
  const std::uint32_t all = magnitude_mask(f);
  switch (f.policy) {
    case Policy::ieee:  // Quiet NaN: all-ones exponent, top mantissa bit set.
      return (all >> f.mantissa_bits << f.mantissa_bits) |
             (f.mantissa_bits > 0 ? std::uint32_t{1} << (f.mantissa_bits - 1) : 0u);
    case Policy::fn:
      return all;
    case Policy::fnuz:
      return sign_mask(f);
    case Policy::finite_only:
      return std::nullopt;
    case Policy::p3109_extended:
    case Policy::p3109_finite:
      return f.is_signed ? sign_mask(f) : all;
    case Policy::e8m0:
      return all;
  }
  return std::nullopt;
}

/// Returns the code of +infinity of `f`, if it has one.
template <class Fmt>
constexpr std::optional<std::uint32_t> positive_inf_code(const Fmt& f) {
  if (f.policy == Policy::ieee) return magnitude_mask(f) >> f.mantissa_bits << f.mantissa_bits;
  if (f.policy == Policy::p3109_extended)
    return f.is_signed ? magnitude_mask(f) : magnitude_mask(f) - 1;
  return std::nullopt;
}

/// Returns the code of -infinity of `f`, if it has one.
template <class Fmt>
constexpr std::optional<std::uint32_t> negative_inf_code(const Fmt& f) {
  if (!f.is_signed) return std::nullopt;
  if (auto p = positive_inf_code(f)) return *p | sign_mask(f);
  return std::nullopt;
}

/// Returns the number of codes of `f` that encode finite numbers (both zeros counted).
template <class Fmt>
constexpr std::uint64_t finite_code_count(const Fmt& f) {
  const std::uint64_t per_sign = std::uint64_t{max_magnitude_code(f)} + 1;
  return f.is_signed ? 2 * per_sign - (has_negative_zero(f) ? 0 : 1) : per_sign;
}

/// Returns the number of distinct finite values of `f` (+0 and -0 are one value).
template <class Fmt>
constexpr std::uint64_t finite_value_count(const Fmt& f) {
  return finite_code_count(f) - (has_negative_zero(f) ? 1 : 0);
}

/// Returns true when every value of `f` is exactly representable as a float.
template <class Fmt>
inline bool fits_float(const Fmt& f) {
  // Every finite value is a multiple of 2^quantum_min below 2^(emax+1) with at most
  // mantissa_bits + 1 significant bits; float holds exactly those when these hold.
  return f.mantissa_bits <= 23 && emax(f) <= 127 && quantum_min(f) >= -149;
}

// ---------------------------------------------------------------------------
// Catalog and parsing (lib/format.cpp).
// ---------------------------------------------------------------------------

/// Describes one named format of the catalog.
struct CatalogEntry {
  std::string_view name;
  Format format;
  std::string_view source;  ///< Where the format is defined.
};

/// Returns every named format, in a stable order.
std::span<const CatalogEntry> catalog();

/// Returns the reason why `f` is not a valid format, or nothing when it is.
std::optional<std::string> check(const Format& f);

/// Returns the format named `spelling`, or throws std::invalid_argument with a clear message.
///
/// Accepts a catalog name (`e4m3fn`), a P3109 name `binary{K}p{P}{s|u}{e|f}`, or
/// `e{E}m{M}[:bias={B}][:policy={NAME}][:unsigned]` with NAME a `policy_name` (default bias
/// 2^(E-1)-1, default policy ieee).
Format parse_format(std::string_view spelling);

/// Returns the catalog name of `f`, or its generic spelling when it is not in the catalog.
std::string format_name(const Format& f);

/// Returns the name of `p` as it is spelled in format names and docs.
std::string_view policy_name(Policy p);

}  // namespace fp8emu
