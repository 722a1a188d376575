// fp8emu: the SIMD kernels of the array path (xsimd 8.1 batches).
//
// Every kernel is a template on the xsimd architecture tag A, instantiated once per SIMD
// target in that target's translation unit (simd.hpp) and reached through its
// KernelTable. A kernel processes whole batches only and returns how many elements it
// did; the caller finishes the tail with the scalar reference (convert.hpp), which also
// defines every bit these kernels produce.
//
// The encoder follows detail::encode_finite step for step on float32 bits, with a 32-bit
// discarded fraction plus a sticky bit instead of 64 bits: a float32 significand has 24
// bits, so the two agree wherever the rounding reads at most 32 fraction bits, which
// holds for every mode with N <= 31 stochastic bits (simd_covers() checks it).
//
// The decoder (decode_batch) computes the float32 bits of a code with integer steps and
// one exact multiply, no table; a DecodePlan built and checked for every code of the
// format (array.cpp) says how, or sends the format to a table lookup.
#pragma once

#include <cstddef>
#include <cstdint>

#include "fp8emu/convert.hpp"
#include "fp8emu/random.hpp"
#include "simd.hpp"
#include "simd_ops.hpp"

namespace fp8emu::detail {

/// Returns random_bits(key, index + lane) for every lane (random.hpp, version 1).
template <class A>
[[gnu::always_inline]] inline u32x<A> random_lanes(const RandomKey& key, std::uint64_t index) {
  using B = u32x<A>;
  constexpr std::uint32_t W = B::size;
  const std::uint32_t lo0 = std::uint32_t(index), hi0 = std::uint32_t(index >> 32);
  B x = B(lo0) + iota<A>();
  // The key-and-high-word term; lanes past a 2^32 boundary of the index have hi0 + 1.
  B mid = B(key.k1 + hi0 * 0x9E3779B9u);
  if (lo0 > 0xFFFFFFFFu - (W - 1))
    mid = xsimd::select(x < B(lo0), B(key.k1 + (hi0 + 1) * 0x9E3779B9u), mid);
  x ^= B(key.k0);
  x ^= x >> 16;
  x *= B(0x7FEB352Du);
  x ^= x >> 15;
  x ^= mid;
  x *= B(0x846CA68Bu);
  x ^= x >> 16;
  return x;
}

/// Encodes one batch of float32 bits `u`; `index` is the random index of lane 0.
template <Rounding R, class A>
[[gnu::always_inline]] inline u32x<A> encode_batch(u32x<A> u, const EncodePlan& p, std::uint64_t index) {
  using B = u32x<A>;
  const B zero(0u), one(1u);
  // 1. Sign, magnitude and the non-finite classes.
  B a = u & B(0x7FFFFFFFu);
  const auto neg = (u >> 31) != zero;
  const auto is_nan = a > B(0x7F800000u);
  const auto is_inf = a == B(0x7F800000u);
  // 2. DAZ: a float32 subnormal input counts as a zero of its sign.
  if (p.daz) a = xsimd::select(a < B(0x00800000u), zero, a);
  const auto is_zero = a == zero;
  // 3. Significand and exponent; a subnormal input has exponent field 0 and weight 2^-149.
  const B E = a >> 23;
  const B Eeff = xsimd::max(E, one);
  const B sig = (a & B(0x7FFFFFu)) | xsimd::select(E != zero, B(0x800000u), zero);
  // 4. The binade offset above emin (0 in the subnormal range) and the number d of
  //    discarded bits: 23 - M in the normal range, more below emin.
  const B top = xsimd::max(Eeff, B(p.ebase));
  const B expo = top - B(p.ebase);
  const B d = (top - Eeff) + B(p.dconst);
  B code;
  if constexpr (R == Rounding::nearest_even) {
    // 5-7 for nearest-even: add half an ulp minus one, plus the last bit of the truncated
    // code ("odd"), then truncate; carries move into the exponent because the code is
    // continuous. d = 0 (a float32 target in its normal range) discards nothing: no bias.
    // sig < 2^24 and the bias < 2^31, so the sum fits; d >= 32 gives 0 (sig < 2^31).
    const B kept = srlv<A>(sig, d);
    const B odd = ((expo << p.M) + kept) & one;
    const B bias = xsimd::select(d == zero, zero, sllv<A>(one, d - one) - one + odd);
    code = (expo << p.M) + srlv<A>(sig + bias, d);
  } else {
    // 5. kept = sig >> d; the discarded bits top-aligned in 32 bits, plus sticky below.
    const B kept = srlv<A>(sig, d);
    const auto wide = d > B(32u);
    const B k = d - B(32u);
    const B frac_wide = srlv<A>(sig, k);
    const B frac = xsimd::select(wide, frac_wide, sllv<A>(sig, B(32u) - d));
    const auto sticky = wide & (sllv<A>(frac_wide, k) != sig);
    // 6. The truncated magnitude code, continuous across binades (as encode_finite).
    code = (expo << p.M) + kept;
    // 7. Round once.
    const auto inexact = (frac != zero) | sticky;
    const B half(0x80000000u);
    auto odd = [&] { return (code & one) != zero; };  // the truncated code's last bit
    xsimd::batch_bool<std::uint32_t, A> up;
    if constexpr (R == Rounding::nearest_away) {
      up = frac >= half;
    } else if constexpr (R == Rounding::toward_zero) {
      up = zero != zero;
    } else if constexpr (R == Rounding::toward_positive) {
      up = inexact & !neg;
    } else if constexpr (R == Rounding::toward_negative) {
      up = inexact & neg;
    } else if constexpr (R == Rounding::to_odd) {
      up = inexact & !odd();
    } else {
      // Stochastic, N <= 31: t = floor(v 2^N); the P3109 conditions rewritten in 32 bits.
      const B rr = random_lanes<A>(p.key, index) & B((1u << p.n) - 1u);
      const B t = frac >> (32 - p.n);
      const B limit(1u << p.n);
      if constexpr (R == Rounding::stochastic_a) {
        up = t + rr >= limit;  // floor(v 2^N) + R >= 2^N
      } else if constexpr (R == Rounding::stochastic_b) {
        // floor(v 2^(N+1)) + 2R + 1 >= 2^(N+1)  <=>  t + R + b >= 2^N, b the next bit.
        const B b = (frac >> (31 - p.n)) & one;
        up = t + rr + b >= limit;
      } else {
        // RNE(v 2^N) + R >= 2^N: t rounded to nearest even on the bits below it.
        const B rest = frac << p.n;
        const auto r_up = (rest > half) | ((rest == half) & (sticky | ((t & one) != zero)));
        up = t + xsimd::select(r_up, one, zero) + rr >= limit;
      }
    }
    code = code + xsimd::select(up, one, zero);
  }
  // 8. Zero (underflow or FTZ), overflow, sign; then the special inputs.
  auto to_zero = code == zero;
  if (p.ftz) to_zero = to_zero | (code < B(1u << p.M));
  const auto overflow = code > B(p.maxmag);
  B res = code | xsimd::select(neg, B(p.sign_mask), zero);
  res = xsimd::select(to_zero, xsimd::select(neg, B(p.zero_neg), B(p.zero_pos)), res);
  res = xsimd::select(overflow, xsimd::select(neg, B(p.ovf_neg), B(p.ovf_pos)), res);
  res = xsimd::select(is_inf, xsimd::select(neg, B(p.inf_neg), B(p.inf_pos)), res);
  if (!p.is_signed) res = xsimd::select(neg & !is_zero, B(p.unsigned_neg), res);
  return xsimd::select(is_nan, xsimd::select(neg, B(p.nan_neg), B(p.nan_pos)), res);
}

/// The constants of DecodePlan `d` as batches, set up once per kernel call.
template <class A>
struct DecodeConsts {
  using I = xsimd::batch<std::int32_t, A>;  // magnitudes < 2^16: signed compares are exact
  using F = xsimd::batch<float, A>;
  I mag_mask, offset, sub_limit, nan_above, sign_mask;
  F sub_scale;
  std::int32_t shift, sign_shift;
  std::uint32_t specials;
  I code[DecodePlan::kMaxSpecials], bits[DecodePlan::kMaxSpecials];
  explicit DecodeConsts(const DecodePlan& d)
      : mag_mask(std::int32_t(d.mag_mask)),
        offset(std::int32_t(d.offset)),
        sub_limit(std::int32_t(d.sub_limit)),
        nan_above(std::int32_t(d.nan_above)),
        sign_mask(std::int32_t(d.sign_mask)),
        sub_scale(d.sub_scale),
        shift(std::int32_t(d.shift)),
        sign_shift(std::int32_t(d.sign_shift)),
        specials(d.specials) {
    for (std::size_t k = 0; k < DecodePlan::kMaxSpecials; ++k) {
      code[k] = I(std::int32_t(d.special_code[k]));
      bits[k] = I(std::int32_t(d.special_bits[k]));
    }
  }
};

/// Decodes one batch of codes to floats without a table, as DecodePlan says (arithmetic);
/// with Sub, the magnitudes below sub_limit through the integer-to-float path.
template <bool Sub, class A>
[[gnu::always_inline]] inline xsimd::batch<float, A> decode_batch(u32x<A> code,
                                                                  const DecodeConsts<A>& k) {
  using I = typename DecodeConsts<A>::I;
  using F = typename DecodeConsts<A>::F;
  const I c = xsimd::bitwise_cast<I>(code);
  const I mag = c & k.mag_mask;
  I r = (mag << k.shift) + k.offset;
  if constexpr (Sub) {
    const F sub = xsimd::to_float(mag) * k.sub_scale;
    r = xsimd::select(mag < k.sub_limit, xsimd::bitwise_cast<I>(sub), r);
  }
  r = xsimd::select(mag > k.nan_above, I(0x7FC00000), r);
  r |= (c & k.sign_mask) << k.sign_shift;
  for (std::uint32_t j = 0; j < k.specials; ++j) r = xsimd::select(c == k.code[j], k.bits[j], r);
  return xsimd::bitwise_cast<F>(r);
}

/// The array kernels of architecture A.
template <class A>
struct ArrayKernels {
  using B = u32x<A>;
  using F = xsimd::batch<float, A>;
  static constexpr std::size_t W = B::size;

  /// Encodes whole batches of float32 bits into codes of type T; returns the count done.
  /// With `amax`, also folds the largest |x| bits of the input into `*amax`.
  // The kernels copy the plan: byte stores to `out` may alias anything reached through a
  // reference, which would reload every constant after each store.
  template <Rounding R, class T>
  static std::size_t encode(const std::uint32_t* in, T* out, std::size_t n,
                            const EncodePlan& plan, std::uint64_t first_index,
                            std::uint32_t* amax) {
    const EncodePlan p = plan;
    const std::size_t whole = n - n % W;
    B m(0u);
    for (std::size_t i = 0; i < whole; i += W) {
      const B u = B::load_unaligned(in + i);
      m = xsimd::max(m, u & B(0x7FFFFFFFu));
      store_narrow<A>(encode_batch<R, A>(u, p, first_index + i), out + i);
    }
    if (amax) *amax = *amax > reduce_max<A>(m) ? *amax : reduce_max<A>(m);
    return whole;
  }

  /// Stores value(i) / scale (no division where scale is 1) for whole batches of lanes
  /// i, i + 1, ... below n; returns the count stored. With `stream`, the lanes before the
  /// first batch-aligned address of `out` come from value(0) and the rest go out with
  /// non-temporal stores (value(i) may run twice for a lane, with the same result).
  template <class Value>
  [[gnu::always_inline]] static std::size_t store_values(float* out, std::size_t n, float scale,
                                                         bool stream, Value&& value) {
    const F s(scale);
    // One loop with the division and one without, so that neither tests the scale.
    auto loops = [&]<bool Scaled>() __attribute__((always_inline)) {
      auto at = [&](std::size_t i) __attribute__((always_inline)) {
        const F v = value(i);
        if constexpr (Scaled)
          return F(v / s);
        else
          return v;
      };
      std::size_t i = 0;
      if (stream && n >= W) {
        constexpr std::size_t bytes = sizeof(F);
        const std::size_t head =
            (bytes - reinterpret_cast<std::uintptr_t>(out) % bytes) % bytes / sizeof(float);
        if (head != 0) {
          alignas(64) float first[W];
          at(0).store_aligned(first);
          for (std::size_t k = 0; k < head; ++k) out[k] = first[k];
          i = head;
        }
        for (; i + W <= n; i += W) store_stream<A>(at(i), out + i);
        stream_fence<A>();
        return i;
      }
      for (; i + W <= n; i += W) at(i).store_unaligned(out + i);
      return i;
    };
    return scale != 1.0f ? loops.template operator()<true>() : loops.template operator()<false>();
  }

  /// Decodes whole batches of codes as `plan` says (arithmetic, or through its table),
  /// dividing by `scale` unless it is 1, with non-temporal stores where `stream`; ORs
  /// every code into `*seen` (to check their width after). Returns the count done.
  template <class T>
  static std::size_t decode(const T* codes, float* out, std::size_t n, const DecodePlan& plan,
                            float scale, bool stream, std::uint32_t* seen) {
    const Decode how = decoder_of(plan);
    return how == Decode::table
               ? decode_with<Decode::table>(codes, out, n, plan, scale, stream, seen)
           : how == Decode::sub
               ? decode_with<Decode::sub>(codes, out, n, plan, scale, stream, seen)
               : decode_with<Decode::plain>(codes, out, n, plan, scale, stream, seen);
  }

  /// Fake-quantizes whole batches: encode, decode as `dplan` says, divide by `scale`.
  template <Rounding R>
  static std::size_t fake_quantize(const std::uint32_t* in, float* out, std::size_t n,
                                   const EncodePlan& plan, const DecodePlan& dplan, float scale,
                                   bool stream, std::uint64_t first_index, std::uint32_t* amax) {
    const Decode how = decoder_of(dplan);
    return how == Decode::table ? fake_with<R, Decode::table>(in, out, n, plan, dplan, scale,
                                                              stream, first_index, amax)
           : how == Decode::sub ? fake_with<R, Decode::sub>(in, out, n, plan, dplan, scale, stream,
                                                            first_index, amax)
                                : fake_with<R, Decode::plain>(in, out, n, plan, dplan, scale,
                                                              stream, first_index, amax);
  }

  /// Widens whole batches of float32 inputs to the bits of x * scale rounded to odd at
  /// float precision (NaN inputs unchanged), the same bits as array.cpp's scalar loop;
  /// folds max |x| bits into `*amax`. Returns the count done, which may stop short of
  /// the last whole batch (the caller does the next batch with the scalar loop).
  static std::size_t scale_to_odd(const float* in, std::size_t n, std::uint32_t* out,
                                  float scale, std::uint32_t* amax) {
    std::size_t j = 0;
    if constexpr (!is_avx512<A>) {
      // p = x * scale rounded to nearest and its error e = fma(x, scale, -p), exact where
      // x = 0 or 2^-100 <= |p| < inf (then no underflow loses bits of the product). The
      // inexact products: p one step toward zero where e and p differ in sign (p was
      // rounded away from zero), then the last bit set. A batch with another lane
      // (a NaN or infinite x, an overflow, a tiny product) ends the kernel.
      const F s(scale);
      const B abs_mask(0x7FFFFFFFu), sign(0x80000000u), zero(0u), one(1u);
      B mv(0u);
      for (; j + W <= n; j += W) {
        const F x = F::load_unaligned(in + j);
        const B b = xsimd::bitwise_cast<B>(x), ab = b & abs_mask;
        const F p = x * s;
        const B pb = xsimd::bitwise_cast<B>(p), pab = pb & abs_mask;
        const auto exact_error = ((pab >= B(0x0D800000u)) & (pab < B(0x7F800000u))) | (ab == zero);
        if (!xsimd::all(exact_error)) break;
        mv = xsimd::max(mv, ab);
        const B e = xsimd::bitwise_cast<B>(fused_fma(x, s, -p));
        const auto inexact = (e & abs_mask) != zero;
        const auto away = inexact & (((e ^ pb) & sign) != zero);
        const B t = xsimd::select(away, pb - one, pb);
        xsimd::select(inexact, t | one, t).store_unaligned(out + j);
      }
      *amax = *amax > reduce_max<A>(mv) ? *amax : reduce_max<A>(mv);
    }
#if defined(__AVX512F__) && defined(__AVX512DQ__)
    if constexpr (is_avx512<A>) {
      // p = x * scale is exact in double (24 + 24 bits); rounded toward zero to float,
      // with the last bit set when inexact, it is p rounded to odd.
      const __m512d s = _mm512_set1_pd(double(scale));
      const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF), inf = _mm512_set1_epi32(0x7F800000);
      const __m512i one = _mm512_set1_epi32(1);
      __m512i mv = _mm512_setzero_si512();
      for (; j + 16 <= n; j += 16) {
        const __m512i b = _mm512_loadu_si512(in + j);
        const __m512i ab = _mm512_and_si512(b, abs_mask);
        mv = _mm512_max_epu32(mv, ab);
        const __m512 x = _mm512_castsi512_ps(b);
        const __m512d p0 = _mm512_mul_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(x)), s);
        const __m512d p1 = _mm512_mul_pd(
            _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1))), s);
        const __m256 t0 = _mm512_cvt_roundpd_ps(p0, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        const __m256 t1 = _mm512_cvt_roundpd_ps(p1, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        const __mmask8 i0 = _mm512_cmp_pd_mask(_mm512_cvtps_pd(t0), p0, _CMP_NEQ_UQ);
        const __mmask8 i1 = _mm512_cmp_pd_mask(_mm512_cvtps_pd(t1), p1, _CMP_NEQ_UQ);
        const __m512i t = _mm512_castpd_si512(
            _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(t0)), _mm256_castps_pd(t1), 1));
        const __mmask16 inexact = __mmask16(i0 | (unsigned(i1) << 8));
        const __m512i odd = _mm512_mask_or_epi32(t, inexact, t, one);
        const __mmask16 nan = _mm512_cmpgt_epu32_mask(ab, inf);
        _mm512_storeu_si512(out + j, _mm512_mask_blend_epi32(nan, odd, b));
      }
      const std::uint32_t m = _mm512_reduce_max_epu32(mv);
      *amax = *amax > m ? *amax : m;
    }
#else
    (void)in, (void)n, (void)out, (void)scale, (void)amax;
#endif
    return j;
  }

 private:
  // The decoder a kernel call runs: a table lookup, or decode_batch with or without the
  // integer-to-float path.
  enum class Decode { table, sub, plain };
  static Decode decoder_of(const DecodePlan& d) {
    return !d.arithmetic ? Decode::table : d.sub_limit ? Decode::sub : Decode::plain;
  }

  // Returns the floats of the codes `c` as decoder How says.
  template <Decode How>
  [[gnu::always_inline]] static F decode_codes(B c, const DecodeConsts<A>& k, const float* table) {
    if constexpr (How == Decode::table)
      return gather<A>(table, c & B(0xFFFFu));
    else
      return decode_batch<How == Decode::sub, A>(c, k);
  }

  // decode() for one decoder; every constant in a local, so that the stores to `out`
  // cannot make the compiler reload them.
  template <Decode How, class T>
  static std::size_t decode_with(const T* codes, float* out, std::size_t n, const DecodePlan& plan,
                                 float scale, bool stream, std::uint32_t* seen) {
    const DecodeConsts<A> k(plan);
    const float* const table = plan.table;
    B all(0u);
    const std::size_t done = store_values(
        out, n, scale, stream, [&](std::size_t i) __attribute__((always_inline)) {
          const B c = load_widen<A>(codes + i);
          all |= c;
          return decode_codes<How>(c, k, table);
        });
    *seen |= reduce_or<A>(all);
    return done;
  }

  // fake_quantize() for one decoder.
  template <Rounding R, Decode How>
  static std::size_t fake_with(const std::uint32_t* in, float* out, std::size_t n,
                               const EncodePlan& plan, const DecodePlan& dplan, float scale,
                               bool stream, std::uint64_t first_index, std::uint32_t* amax) {
    const EncodePlan p = plan;
    const DecodeConsts<A> k(dplan);
    const float* const table = dplan.table;
    B m(0u);
    const std::size_t done = store_values(
        out, n, scale, stream, [&](std::size_t i) __attribute__((always_inline)) {
          const B u = B::load_unaligned(in + i);
          m = xsimd::max(m, u & B(0x7FFFFFFFu));
          return decode_codes<How>(encode_batch<R, A>(u, p, first_index + i), k, table);
        });
    if (amax) *amax = *amax > reduce_max<A>(m) ? *amax : reduce_max<A>(m);
    return done;
  }
};

}  // namespace fp8emu::detail
