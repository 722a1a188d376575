// fp8emu: scalar conversion, the reference path.
//
// Every conversion rounds once, from the exact input value (double, float, or the
// raw bits of float16 / bfloat16) to the target format; nothing goes through an
// intermediate format. Rules and their sources:
//  - Rounding modes: IEEE 754-2019 section 4.3; round-to-odd as in Boldo and
//    Melquiond (2008); stochastic rounding variants A, B and C as defined in the
//    IEEE SA P3109 interim report. StochasticA is the "carry" rule of hardware
//    stochastic rounding (PTX cvt.rs: add the random bits to the truncated bits,
//    round away from zero on carry out).
//  - "Even" and "odd" name the last bit of the code. For formats of precision 1
//    (P3109 binary{K}p1*, e8m0fnu), which have no trailing significand, that is the
//    exponent field's last bit, as in the P3109 interim report's RoundToPrecision.
//  - Overflow is judged after rounding (OCP OFP8 v1.0 section 5.3, P3109
//    SatFinite / SatPropagate / SatNone; IEEE 754-2019 section 7.4 for which
//    rounding directions overflow to infinity).
//  - NVIDIA NaN option: CUDA 13 cuda_fp8.hpp host code replaces every float NaN
//    by 0x7FFFFFFF before converting, so the result is the positive all-ones NaN.
// docs/conversion.md states every edge case in prose.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>

#include "fp8emu/bit.hpp"
#include "fp8emu/format.hpp"
#include "fp8emu/options.hpp"

namespace fp8emu {

/// Selects how an inexact value is rounded (names and traits: option_table<Rounding>).
enum class Rounding : std::uint8_t {
  nearest_even,     ///< Nearest, ties to the even code (IEEE roundTiesToEven).
  nearest_away,     ///< Nearest, ties away from zero (IEEE roundTiesToAway).
  toward_zero,      ///< Truncate (IEEE roundTowardZero).
  toward_positive,  ///< Up (IEEE roundTowardPositive).
  toward_negative,  ///< Down (IEEE roundTowardNegative).
  to_odd,           ///< Truncate, then set the last bit when inexact.
  stochastic_a,     ///< P3109 StochasticA: away iff floor(v 2^N) + R >= 2^N (hardware carry rule).
  stochastic_b,     ///< P3109 StochasticB: away iff floor(v 2^(N+1)) + 2R + 1 >= 2^(N+1).
  stochastic_c,     ///< P3109 StochasticC: away iff RNE(v 2^N) + R >= 2^N.
};

/// Says which way a rounding mode takes a value beyond the largest finite one under
/// Saturation::none: toward infinity where it rounds away from zero, else to max finite
/// (IEEE 754-2019 7.4; round-to-odd, a truncation with a sticky last bit, stops at max).
enum class RoundingDirection : std::uint8_t {
  either,           ///< Nearest or stochastic: away from zero on either sign.
  toward_zero,      ///< Never away from zero (truncation, round-to-odd).
  toward_positive,  ///< Away from zero for positive values only.
  toward_negative,  ///< Away from zero for negative values only.
};

/// Describes one rounding mode: its names and the traits every layer reads.
struct RoundingEntry {
  Rounding value;
  std::string_view name;         ///< As the command line, specs and recipes spell it.
  std::string_view description;  ///< One line, for help texts.
  bool stochastic;               ///< Reads N random bits (ConvertOptions::stochastic_bits).
  RoundingDirection overflow;    ///< Which way it takes a value beyond max finite.
  std::float_round_style style;  ///< std::numeric_limits<Float<F, mode>>::round_style.
};

template <>
struct option_table<Rounding> {
  static constexpr std::string_view what = "rounding";
  static constexpr std::array<RoundingEntry, 9> entries = {{
      {Rounding::nearest_even, "rne", "nearest, ties to even", false, RoundingDirection::either,
       std::round_to_nearest},
      {Rounding::nearest_away, "rna", "nearest, ties away from zero", false,
       RoundingDirection::either, std::round_indeterminate},
      {Rounding::toward_zero, "rz", "toward zero", false, RoundingDirection::toward_zero,
       std::round_toward_zero},
      {Rounding::toward_positive, "ru", "toward +inf", false, RoundingDirection::toward_positive,
       std::round_toward_infinity},
      {Rounding::toward_negative, "rd", "toward -inf", false, RoundingDirection::toward_negative,
       std::round_toward_neg_infinity},
      {Rounding::to_odd, "ro", "to odd", false, RoundingDirection::toward_zero,
       std::round_indeterminate},
      {Rounding::stochastic_a, "sr-a", "stochastic A (hardware carry rule)", true,
       RoundingDirection::either, std::round_indeterminate},
      {Rounding::stochastic_b, "sr-b", "stochastic B", true, RoundingDirection::either,
       std::round_indeterminate},
      {Rounding::stochastic_c, "sr-c", "stochastic C", true, RoundingDirection::either,
       std::round_indeterminate},
  }};
};

/// Returns true for the stochastic rounding modes.
constexpr bool is_stochastic(Rounding r) { return option_entry(r).stochastic; }

/// The number of random bits N of a stochastic mode when the caller does not choose one:
/// all 32 bits of the element's random word (random_bits() in random.hpp).
inline constexpr int default_stochastic_bits = 32;

/// Returns default_stochastic_bits for a stochastic mode and 0 otherwise.
constexpr int default_stochastic_bits_for(Rounding r) {
  return is_stochastic(r) ? default_stochastic_bits : 0;
}

/// Selects what happens to values whose rounded magnitude exceeds the largest finite value.
enum class Saturation : std::uint8_t {
  finite,     ///< Clamp to +-max finite; infinite inputs too (OCP "saturating", P3109 SatFinite).
  propagate,  ///< Clamp finite overflow to +-max; keep infinite inputs infinite (P3109 SatPropagate).
  none,       ///< Overflow gives inf (NaN where the format has no inf), or max finite for
              ///< toward-zero directions (IEEE 754 7.4; P3109 SatNone).
};

template <>
struct option_table<Saturation> {
  static constexpr std::string_view what = "saturation";
  static constexpr std::array<OptionName<Saturation>, 3> entries = {{
      {Saturation::finite, "finite", "overflow and inf clamp to +-max"},
      {Saturation::propagate, "propagate", "finite overflow clamps, inf stays inf"},
      {Saturation::none, "none", "overflow gives inf, or NaN without inf"},
  }};
};

/// Selects the code produced from a NaN input.
enum class NanEncoding : std::uint8_t {
  canonical,  ///< The format's canonical NaN, keeping the input's sign where NaNs are signed.
  nvidia,     ///< NVIDIA's float path: the positive all-ones NaN (0x7F for e4m3fn and e5m2).
};

template <>
struct option_table<NanEncoding> {
  static constexpr std::string_view what = "NaN mode";
  static constexpr std::array<OptionName<NanEncoding>, 2> entries = {{
      {NanEncoding::canonical, "canonical", "the format's NaN, with the input's sign"},
      {NanEncoding::nvidia, "nvidia", "every NaN -> 0x7F"},
  }};
};

/// Describes one conversion: rounding, overflow, NaN and subnormal handling.
struct ConvertOptions {
  Rounding rounding = Rounding::nearest_even;
  Saturation saturation = Saturation::finite;
  NanEncoding nan = NanEncoding::canonical;
  bool flush_inputs = false;   ///< DAZ: subnormal inputs (of the input type) count as zero.
  bool flush_outputs = false;  ///< FTZ: results that round to a subnormal become zero.
  int stochastic_bits = 0;     ///< N, the number of random bits (1..32) of stochastic modes.
};

/// Throws std::invalid_argument when `o` is inconsistent (stochastic mode without 1..32 bits).
inline void validate(const ConvertOptions& o) {
  if (is_stochastic(o.rounding) && (o.stochastic_bits < 1 || o.stochastic_bits > 32))
    throw std::invalid_argument("stochastic rounding needs 1 to 32 random bits, got " +
                                std::to_string(o.stochastic_bits));
}

/// Classifies a code.
enum class ValueClass : std::uint8_t { zero, subnormal, normal, infinite, nan };

/// Reports what happened during one encode, for teaching and diagnostics.
struct EncodeStatus {
  std::uint32_t code = 0;
  bool inexact = false;    ///< The result differs from the input value.
  bool overflow = false;   ///< The rounded magnitude exceeded the largest finite value.
  bool underflow = false;  ///< A nonzero input gave zero, or a subnormal result was inexact.
  bool flushed = false;    ///< DAZ or FTZ replaced a subnormal by zero.
};

namespace detail {

/// Returns true when the truncated magnitude code must move up by one.
///
/// `frac` holds the discarded bits of the exact magnitude, top-aligned (frac / 2^64
/// is the fraction v in [0,1) of an ulp), `sticky` is set when nonzero bits lie below
/// those 64. The input is inexact: frac or sticky is nonzero.
constexpr bool round_up(Rounding r, bool negative, bool odd, std::uint64_t frac, bool sticky,
                        int n, std::uint32_t random_bits) {
  constexpr std::uint64_t half = std::uint64_t{1} << 63;
  switch (r) {
    case Rounding::nearest_even:
      return frac > half || (frac == half && (sticky || odd));
    case Rounding::nearest_away:
      return frac >= half;
    case Rounding::toward_zero:
      return false;
    case Rounding::toward_positive:
      return !negative;
    case Rounding::toward_negative:
      return negative;
    case Rounding::to_odd:
      return !odd;
    case Rounding::stochastic_a: {
      // floor(v 2^N) + R >= 2^N.
      const std::uint64_t rr = random_bits & ((std::uint64_t{1} << n) - 1);
      return (frac >> (64 - n)) + rr >= (std::uint64_t{1} << n);
    }
    case Rounding::stochastic_b: {
      // floor(v 2^(N+1)) + 2R + 1 >= 2^(N+1).
      const std::uint64_t rr = random_bits & ((std::uint64_t{1} << n) - 1);
      return (frac >> (63 - n)) + 2 * rr + 1 >= (std::uint64_t{1} << (n + 1));
    }
    case Rounding::stochastic_c: {
      // RNE(v 2^N) + R >= 2^N, where RNE rounds the N-bit integer part with the rest.
      const std::uint64_t rr = random_bits & ((std::uint64_t{1} << n) - 1);
      const std::uint64_t t = frac >> (64 - n);
      const std::uint64_t rest = frac << n;  // n >= 1, so the shift is below 64.
      const bool up = rest > half || (rest == half && (sticky || (t & 1)));
      return t + up + rr >= (std::uint64_t{1} << n);
    }
  }
  return false;
}

/// Returns the code of +-max finite.
template <class Fmt>
constexpr std::uint32_t max_code(const Fmt& f, bool negative) {
  return max_magnitude_code(f) | (negative ? sign_mask(f) : 0u);
}

/// Returns the code of zero with the given sign, where the format keeps it.
template <class Fmt>
constexpr std::uint32_t zero_code(const Fmt& f, bool negative) {
  if (!has_zero(f)) return 0;  // No zero: the smallest value, 2^-bias.
  return negative && has_negative_zero(f) ? sign_mask(f) : 0u;
}

/// Returns the NaN code for a NaN produced with sign `negative` (or +max without NaN).
template <class Fmt>
constexpr std::uint32_t signed_nan_code(const Fmt& f, bool negative) {
  if (!has_nan(f)) return max_magnitude_code(f);  // NVIDIA's choice for fp6/fp4.
  const std::uint32_t nan = *nan_code(f);
  return has_signed_nan(f) && negative ? nan | sign_mask(f) : nan;
}

/// Returns the code for a NaN input.
template <class Fmt>
constexpr std::uint32_t nan_input_code(const Fmt& f, bool negative, NanEncoding mode) {
  if (mode == NanEncoding::nvidia && has_signed_nan(f)) return magnitude_mask(f);
  return signed_nan_code(f, negative);
}

/// Returns the code for a result beyond the largest finite value: an infinite input
/// (`infinite`) or a finite input whose rounded magnitude overflowed.
template <class Fmt>
constexpr std::uint32_t overflow_code(const Fmt& f, bool negative, bool infinite,
                                      const ConvertOptions& o) {
  if (o.saturation == Saturation::finite) return max_code(f, negative);
  if (!infinite) {
    if (o.saturation == Saturation::propagate) return max_code(f, negative);
    // Saturation::none: directions that never round away from zero stop at max.
    const RoundingDirection d = option_entry(o.rounding).overflow;
    if (d == RoundingDirection::toward_zero ||
        (d == RoundingDirection::toward_positive && negative) ||
        (d == RoundingDirection::toward_negative && !negative))
      return max_code(f, negative);
  }
  if (has_inf(f)) return negative ? *negative_inf_code(f) : *positive_inf_code(f);
  if (has_nan(f)) return signed_nan_code(f, negative);
  return max_code(f, negative);  // Neither inf nor NaN: always saturates.
}

/// Encodes a finite nonzero magnitude (sig + t) * 2^exp2 with sign `negative`, where
/// 0 < sig < 2^64 and 0 <= t < 1 is known only through `sticky_in` (t != 0).
///
/// Invariant: this is the only place where a value is rounded.
template <class Fmt>
constexpr EncodeStatus encode_finite(const Fmt& f, bool negative, std::uint64_t sig, int exp2,
                                     const ConvertOptions& o, std::uint32_t random_bits,
                                     bool sticky_in = false) {
  EncodeStatus st;
  const int M = f.mantissa_bits;
  // 1. Normalise: the leading bit of sig at position 63, so |x| in [2^e, 2^(e+1)).
  const int lz = std::countl_zero(sig);
  sig <<= lz;
  exp2 -= lz;
  const int e = exp2 + 63;
  // 2. The quantum 2^q of the result: the binade's ulp, or the subnormal ulp below emin.
  const int q = (e > emin(f) ? e : emin(f)) - M;
  // 3. Split |x| / 2^q into the kept integer and the discarded fraction (64 bits,
  //    top-aligned, plus a sticky bit); s >= 63 - M >= 40 for formats of at most 24 bits.
  const int s = q - exp2;
  const std::uint64_t kept = s < 64 ? sig >> s : 0;
  std::uint64_t frac;
  bool sticky;
  if (s <= 64) {
    frac = s == 64 ? sig : sig << (64 - s);
    sticky = false;
  } else if (s < 128) {
    frac = sig >> (s - 64);
    sticky = (sig & ((std::uint64_t{1} << (s - 64)) - 1)) != 0;
  } else {
    frac = 0;
    sticky = true;
  }
  sticky = sticky || sticky_in;
  // 4. The truncated magnitude code. The formula is continuous across binades and the
  //    subnormal boundary, so "next value up" is always code + 1. Without a zero, code 0
  //    is the smallest value, one step above where the formula puts zero.
  const int zero_offset = has_zero(f) ? 0 : 1;
  std::int64_t code = (std::int64_t(q - quantum_min(f)) << M) + std::int64_t(kept) - zero_offset;
  // 5. Round once. Stochastic modes check N here, where it is used (a bad N throws).
  st.inexact = frac != 0 || sticky;
  if (st.inexact && is_stochastic(o.rounding)) validate(o);
  // "Odd" is the last bit of the truncated code: the last significand digit (IEEE
  // 754-2019 4.3.1) where M > 0. With M = 0 (P3109 precision 1, e8m0fnu) it is the
  // exponent field's last bit, as the P3109 interim report's RoundToPrecision decides
  // "the code is even" for P = 1; ties go to the even code, round-to-odd to the odd one.
  const bool odd = (code & 1) != 0;
  if (st.inexact)
    code += round_up(o.rounding, negative, odd, frac, sticky, o.stochastic_bits, random_bits);
  // 6. Below the smallest value: zero (without a zero: the smallest value, code 0).
  if (code <= 0) {
    st.underflow = true;
    st.code = zero_code(f, negative);
    return st;
  }
  // 7. Overflow, judged on the rounded magnitude.
  if (code > std::int64_t(max_magnitude_code(f))) {
    st.overflow = true;
    st.code = overflow_code(f, negative, false, o);
    return st;
  }
  // 8. Subnormal results: underflow when inexact; FTZ flushes them.
  const bool subnormal = has_subnormals(f) && code < (std::int64_t{1} << M);
  if (subnormal && st.inexact) st.underflow = true;
  if (subnormal && o.flush_outputs) {
    st.flushed = true;
    st.inexact = true;
    st.code = zero_code(f, negative);
    return st;
  }
  st.code = std::uint32_t(code) | (negative ? sign_mask(f) : 0u);
  return st;
}

__extension__ using u128 = unsigned __int128;

/// Encodes a finite nonzero magnitude (sig + t) * 2^exp2 with a 128-bit significand:
/// the top 64 bits are kept and what falls below them joins the sticky bit.
template <class Fmt>
constexpr EncodeStatus encode_wide(const Fmt& f, bool negative, u128 sig, int exp2,
                                   const ConvertOptions& o, std::uint32_t random_bits,
                                   bool sticky_in = false) {
  const std::uint64_t hi = std::uint64_t(sig >> 64);
  const int drop = hi == 0 ? 0 : 64 - std::countl_zero(hi);
  const bool sticky =
      sticky_in || (drop > 0 && (std::uint64_t(sig) & ((std::uint64_t{1} << drop) - 1)) != 0);
  return encode_finite(f, negative, std::uint64_t(sig >> drop), exp2 + drop, o, random_bits,
                       sticky);
}

/// Encodes a double; `input_subnormal` tells whether DAZ applies to this input.
template <class Fmt>
constexpr EncodeStatus encode_status(const Fmt& f, double x, bool input_subnormal,
                                     const ConvertOptions& o, std::uint32_t random_bits) {
  const std::uint64_t bits = detail::bit_cast<std::uint64_t>(x);
  bool negative = (bits >> 63) != 0;
  const int biased = int((bits >> 52) & 0x7FF);
  std::uint64_t sig = bits & ((std::uint64_t{1} << 52) - 1);
  // 1. NaN.
  if (biased == 0x7FF && sig != 0) return {nan_input_code(f, negative, o.nan)};
  // 2. Sign rules of unsigned formats: a scale (drops_sign: e8m0fnu) encodes |x|, as
  //    NVIDIA's __nv_cvt_float_to_e8m0 does; P3109 unsigned formats give NaN for x < 0.
  if (drops_sign(f)) negative = false;
  const bool flushed = o.flush_inputs && input_subnormal;
  const bool is_zero = (biased == 0 && sig == 0) || flushed;
  if (negative && !f.is_signed && !is_zero) return {signed_nan_code(f, false)};
  // 3. Infinity.
  if (biased == 0x7FF) return {overflow_code(f, negative, true, o), false, true};
  // 4. Zero, and DAZ (a flushed subnormal is a zero of its sign).
  if (is_zero) {
    EncodeStatus st{zero_code(f, negative)};
    st.flushed = flushed;
    st.inexact = flushed || !has_zero(f);
    return st;
  }
  // 5. Finite nonzero: |x| = sig * 2^exp2.
  int exp2;
  if (biased == 0) {
    exp2 = -1074;
  } else {
    sig |= std::uint64_t{1} << 52;
    exp2 = biased - 1075;
  }
  return encode_finite(f, negative, sig, exp2, o, random_bits);
}

/// Encodes x * scale, rounded once from the exact product; DAZ judges `x` itself
/// (`input_subnormal`), before scaling. Requires a finite scale > 0.
template <class Fmt>
constexpr EncodeStatus encode_scaled_status(const Fmt& f, double x, bool input_subnormal,
                                            float scale, const ConvertOptions& o,
                                            std::uint32_t random_bits) {
  const std::uint64_t bits = detail::bit_cast<std::uint64_t>(x);
  const int biased = int((bits >> 52) & 0x7FF);
  const std::uint64_t mant = bits & ((std::uint64_t{1} << 52) - 1);
  // 1. A scale > 0 keeps NaN, infinities, zeros and flushed inputs as they are.
  if (scale == 1.0f || biased == 0x7FF || (biased == 0 && mant == 0) ||
      (o.flush_inputs && input_subnormal))
    return encode_status(f, x, input_subnormal, o, random_bits);
  // 2. The sign rules of encode_status for a finite nonzero input.
  bool negative = (bits >> 63) != 0;
  if (drops_sign(f)) negative = false;
  if (negative && !f.is_signed) return {signed_nan_code(f, false)};
  // 3. The exact product of the significands: at most 53 + 24 bits, in 128 bits.
  const std::uint64_t sx = biased == 0 ? mant : mant | (std::uint64_t{1} << 52);
  const int ex = biased == 0 ? -1074 : biased - 1075;
  const std::uint32_t sbits = detail::bit_cast<std::uint32_t>(scale);
  const int sb = int(sbits >> 23);
  const std::uint64_t ss = sb == 0 ? (sbits & 0x7FFFFF) : (sbits & 0x7FFFFF) | 0x800000;
  const int es = sb == 0 ? -149 : sb - 150;
  // 4. Round the exact product once.
  return encode_wide(f, negative, u128(sx) * ss, ex + es, o, random_bits);
}

}  // namespace detail

/// Returns the code nearest `x` in `f` under `o` (one rounding from the exact double).
/// `random_bits` supplies R for stochastic modes (its low `o.stochastic_bits` bits).
template <class Fmt>
constexpr std::uint32_t encode(const Fmt& f, double x, const ConvertOptions& o = {},
                               std::uint32_t random_bits = 0) {
  const std::uint64_t b = detail::bit_cast<std::uint64_t>(x);
  const bool sub = ((b >> 52) & 0x7FF) == 0 && (b << 12) != 0;
  return detail::encode_status(f, x, sub, o, random_bits).code;
}

/// Returns the code of float `x` in `f` under `o`; DAZ judges float subnormals.
template <class Fmt>
constexpr std::uint32_t encode(const Fmt& f, float x, const ConvertOptions& o = {},
                               std::uint32_t random_bits = 0) {
  const std::uint32_t b = detail::bit_cast<std::uint32_t>(x);
  const bool sub = ((b >> 23) & 0xFF) == 0 && (b << 9) != 0;
  return detail::encode_status(f, double(x), sub, o, random_bits).code;
}

/// Returns the code of `x * scale` in `f` under `o`, rounded once from the exact product;
/// DAZ judges `x` as a double. Throws std::invalid_argument unless scale is finite and > 0.
template <class Fmt>
constexpr std::uint32_t encode_scaled(const Fmt& f, double x, float scale,
                                      const ConvertOptions& o = {},
                                      std::uint32_t random_bits = 0) {
  if (!(scale > 0.0f && scale <= std::numeric_limits<float>::max()))
    throw std::invalid_argument("the scale must be finite and greater than zero");
  const std::uint64_t b = detail::bit_cast<std::uint64_t>(x);
  const bool sub = ((b >> 52) & 0x7FF) == 0 && (b << 12) != 0;
  return detail::encode_scaled_status(f, x, sub, scale, o, random_bits).code;
}

/// Returns the classification of `code` in `f`; throws std::out_of_range for a code
/// wider than the format.
template <class Fmt>
constexpr ValueClass classify(const Fmt& f, std::uint32_t code) {
  if (total_bits(f) < 32 && code >> total_bits(f))
    throw std::out_of_range("code " + std::to_string(code) + " does not fit in " +
                            std::to_string(total_bits(f)) + " bits");
  const std::uint32_t mag = code & magnitude_mask(f);
  const bool neg = (code & sign_mask(f)) != 0;
  const int M = f.mantissa_bits;
  switch (f.policy) {
    case Policy::ieee:
      if ((mag >> M) == (magnitude_mask(f) >> M))
        return (mag & ((1u << M) - 1)) ? ValueClass::nan : ValueClass::infinite;
      break;
    case Policy::fn:
      if (mag == magnitude_mask(f)) return ValueClass::nan;
      break;
    case Policy::fnuz:
      if (neg && mag == 0) return ValueClass::nan;
      break;
    case Policy::finite_only:
      break;
    case Policy::p3109_extended:
    case Policy::p3109_finite:
      if (code == *nan_code(f)) return ValueClass::nan;
      if (has_inf(f) && (code == *positive_inf_code(f) ||
                         (f.is_signed && code == *negative_inf_code(f))))
        return ValueClass::infinite;
      break;
    case Policy::e8m0:
      return code == *nan_code(f) ? ValueClass::nan : ValueClass::normal;
  }
  if (mag == 0) return ValueClass::zero;
  return (mag >> M) == 0 ? ValueClass::subnormal : ValueClass::normal;
}

/// Returns the exact value of `code` in `f` as a double (NaN keeps the code's sign where
/// NaNs are signed); throws std::out_of_range for a code wider than the format.
template <class Fmt>
inline double decode(const Fmt& f, std::uint32_t code) {
  const bool neg = (code & sign_mask(f)) != 0;
  switch (classify(f, code)) {
    case ValueClass::nan: {
      const double nan = std::numeric_limits<double>::quiet_NaN();
      return neg && has_signed_nan(f) ? -nan : nan;
    }
    case ValueClass::infinite:
      return neg ? -std::numeric_limits<double>::infinity()
                 : std::numeric_limits<double>::infinity();
    default: {
      const double v = magnitude_value(f, code & magnitude_mask(f));
      return neg ? -v : v;
    }
  }
}

/// Returns the exact value of `code` as a float; throws std::domain_error when the
/// values of `f` do not all fit in float (see fits_float).
template <class Fmt>
inline float decode_float(const Fmt& f, std::uint32_t code) {
  if (!fits_float(f)) throw std::domain_error("the values of this format do not fit in float");
  return float(decode(f, code));
}

/// Returns the code of the float16 value with bits `h` in `f` under `o`.
template <class Fmt>
inline std::uint32_t encode_float16_bits(const Fmt& f, std::uint16_t h,
                                         const ConvertOptions& o = {},
                                         std::uint32_t random_bits = 0) {
  const bool sub = (h & 0x7C00) == 0 && (h & 0x3FF) != 0;
  return detail::encode_status(f, decode(formats::float16{}, h), sub, o, random_bits).code;
}

/// Returns the code of the bfloat16 value with bits `b` in `f` under `o`.
template <class Fmt>
inline std::uint32_t encode_bfloat16_bits(const Fmt& f, std::uint16_t b,
                                          const ConvertOptions& o = {},
                                          std::uint32_t random_bits = 0) {
  const bool sub = (b & 0x7F80) == 0 && (b & 0x7F) != 0;
  // bfloat16 is the top half of a float32: widening is exact and keeps NaN signs.
  const float x = detail::bit_cast<float>(std::uint32_t{b} << 16);
  return detail::encode_status(f, double(x), sub, o, random_bits).code;
}

}  // namespace fp8emu
