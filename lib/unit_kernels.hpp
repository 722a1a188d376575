// fp8emu: the SIMD kernels of the matrix-unit models (unit_fast.cpp), templates on the
// xsimd architecture tag A, instantiated per target (simd_kernels.hpp). unit_fast.cpp
// decides the path, packs the operands and the block list, and calls these through the
// target's KernelTable. The rules they compute are lib/units/nvidia.cpp (nvidia_block) and
// lib/units/amd_cdna3.cpp (amd_fp8_block, amd_fp16_block); every step below is exact in
// its lanes, which is why each equals its rule bit for bit.
//
// Lanes. A product a b of two operands of at most 16 bits has at most 22 significant bits
// (float16 x float16), and its magnitude lies in [2^-298, 2^256): it is exact in double,
// and so is its scaling by any power of two used below (the results stay normal doubles).
// An operand's model exponent e (units.hpp, UnitTerm) is kept as the power of two 2^e
// (2^-126 for zeros), so E, the largest exponent of a block, is a max of products of
// powers of two, and 2^(F - E) is computed from E's bits. A term rounded to F bits at
// weight 2^E is the integer round(a b 2^(F - E)), below 2^(F + 2) in magnitude, and each
// rounding mode is exact on doubles below 2^52 (round_int). The NVIDIA model on float32
// lanes (GemmPath::unit) uses the same loops where unit_fast.cpp has checked that every
// step is exact in float (truncation only).
//
// Blocking: the K dimension is cut into chunks of whole blocks (about kUnitKC products);
// each element's chain value C is kept in memory between chunks, so a chunk of A's rows
// stays in cache while panels of B's columns pass by. Each element is computed by one
// thread, in k order, whatever the thread count.
#pragma once

#include <omp.h>

#include <cmath>
#include <cstdint>
#include <type_traits>
#include <xsimd/xsimd.hpp>

#include "simd.hpp"
#include "simd_ops.hpp"

namespace fp8emu::detail {

/// Which block rule a matrix-unit kernel computes.
enum class UnitRule : std::uint8_t { nvidia, amd_fp8, amd_fp16 };

template <class A>
struct UnitKernels {
  static constexpr int RU = kUnitRows;     // rows per register block
  static constexpr int VU = kUnitVectors;  // vectors of columns per register block
  template <class T>
  using V = xsimd::batch<T, A>;
  template <class T>
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  template <class T>
  using VB = xsimd::batch<Bits<T>, A>;
  template <class T>
  static constexpr int kCols = VU * int(V<T>::size);

  static std::int64_t min64(std::int64_t a, std::int64_t b) { return a < b ? a : b; }

  // ---------------------------------------------------------------------------------------
  // Exact steps on powers of two and integers.

  template <class T>
  static constexpr Bits<T> kExpField = sizeof(T) == 4 ? Bits<T>(0x7F800000u) : Bits<T>(0x7FF0000000000000ull);
  template <class T>
  static constexpr Bits<T> kOneBits = sizeof(T) == 4 ? Bits<T>(0x3F800000u) : Bits<T>(0x3FF0000000000000ull);

  template <class T>
  [[gnu::always_inline]] static V<T> from_bits(VB<T> b) { return xsimd::bitwise_cast<V<T>>(b); }
  template <class T>
  [[gnu::always_inline]] static VB<T> to_bits(V<T> x) { return xsimd::bitwise_cast<VB<T>>(x); }

  // 2^floor(log2 |x|) for a normal x; 0 for zero and subnormals; inf for inf and NaN.
  template <class T>
  [[gnu::always_inline]] static V<T> pow2_floor(V<T> x) {
    return from_bits<T>(to_bits<T>(x) & VB<T>(kExpField<T>));
  }

  // p / q for powers of two p, q whose quotient is a normal number: the exponent fields
  // subtract.
  template <class T>
  [[gnu::always_inline]] static V<T> ratio(V<T> p, V<T> q) {
    return from_bits<T>(to_bits<T>(p) - to_bits<T>(q) + VB<T>(kOneBits<T>));
  }

  // x rounded to an integer under mode R, exact for |x| < 2^52 (2^23 on float lanes):
  // trunc, floor, ceil and nearbyint (ties to even in the default floating-point
  // environment) are one rounding each; ties away and round-to-odd correct the truncation
  // with the exact fraction x - trunc(x).
  template <Rounding R, class T>
  [[gnu::always_inline]] static V<T> round_int(V<T> x) {
    using VT = V<T>;
    if constexpr (R == Rounding::toward_zero) {
      return xsimd::trunc(x);
    } else if constexpr (R == Rounding::toward_negative) {
      return xsimd::floor(x);
    } else if constexpr (R == Rounding::toward_positive) {
      return xsimd::ceil(x);
    } else if constexpr (R == Rounding::nearest_even) {
      return xsimd::nearbyint(x);
    } else if constexpr (R == Rounding::nearest_away) {
      const VT t = xsimd::trunc(x);
      return t + xsimd::select(xsimd::abs(x - t) >= VT(T(0.5)), xsimd::copysign(VT(T(1)), x), VT(T(0)));
    } else {
      static_assert(R == Rounding::to_odd);
      const VT t = xsimd::trunc(x), h = t * VT(T(0.5));
      const auto inexact_even = (t != x) & (xsimd::trunc(h) == h);
      return t + xsimd::select(inexact_even, xsimd::copysign(VT(T(1)), x), VT(T(0)));
    }
  }

  // The same with the mode chosen at run time (unit_fast.cpp admits deterministic modes
  // only).
  template <class T>
  [[gnu::always_inline]] static V<T> round_int(V<T> x, Rounding r) {
    switch (r) {
      case Rounding::toward_zero: return round_int<Rounding::toward_zero, T>(x);
      case Rounding::toward_negative: return round_int<Rounding::toward_negative, T>(x);
      case Rounding::toward_positive: return round_int<Rounding::toward_positive, T>(x);
      case Rounding::nearest_even: return round_int<Rounding::nearest_even, T>(x);
      case Rounding::nearest_away: return round_int<Rounding::nearest_away, T>(x);
      default: return round_int<Rounding::to_odd, T>(x);
    }
  }

  template <bool kRZ, class T>
  [[gnu::always_inline]] static V<T> round_term(V<T> x, Rounding r) {
    if constexpr (kRZ) return xsimd::trunc(x);
    else return round_int<T>(x, r);
  }

  // v rounded to float32 nearest-even and back (the conversions of the target, in the
  // default floating-point environment): the model's output rounding for out = 23 and
  // nearest-even, subnormals (quantum 2^-149) and overflow to infinity included.
  static V<double> float_rne(V<double> v) {
#if defined(__AVX512F__)
    if constexpr (is_avx512<A>) return V<double>(_mm512_cvtps_pd(_mm512_cvtpd_ps(v)));
#endif
#if defined(__AVX__)
    if constexpr (std::is_base_of_v<xsimd::avx, A> && !is_avx512<A>)
      return V<double>(_mm256_cvtps_pd(_mm256_cvtpd_ps(v)));
#endif
    if constexpr (std::is_base_of_v<xsimd::sse2, A> && sizeof(V<double>) == 16) {
      return V<double>(_mm_cvtps_pd(_mm_cvtpd_ps(v)));
    } else {
      alignas(64) double d[V<double>::size];
      v.store_aligned(d);
      for (double& x : d) x = double(float(x));
      return V<double>::load_aligned(d);
    }
  }

  // unit_output on double lanes: v (exact) rounded to a float32 with `out` fraction bits
  // below its leading bit, exponent at least -126, under r; +-inf from 2^128 up; +0 for
  // zero. In general the quantum Q = 2^(max(floor(log2 |v|), -126) - out) is a normal
  // double, v / Q is below 2^24, so the rounding is exact, and so is its product with Q (a
  // float). Truncation of lanes that are all zero or of magnitude 2^-126 or more clears
  // the low 52 - out bits of the double; nearest-even with out = 23 is float_rne.
  static V<double> output_round(V<double> v, int out, Rounding r) {
    using VD = V<double>;
    if (r == Rounding::nearest_even && out == 23) return float_rne(v) + VD(0.0);
    VD w;
    if (r == Rounding::toward_zero &&
        !xsimd::any((xsimd::abs(v) < VD(0x1p-126)) & (v != VD(0.0)))) {
      w = from_bits<double>(to_bits<double>(v) & VB<double>(~((std::uint64_t{1} << (52 - out)) - 1)));
    } else {
      const VD Q = xsimd::max(pow2_floor<double>(v), VD(0x1p-126)) * VD(std::ldexp(1.0, -out));
      w = round_int<double>(v * ratio<double>(VD(1.0), Q), r) * Q;
    }
    w = xsimd::select(xsimd::abs(w) >= VD(0x1p128), xsimd::copysign(VD(INFINITY), w), w);
    return w + VD(0.0);  // the models return +0 for a zero sum
  }

  // The float32 nearest-even sum of two floats held in double lanes: the double sum,
  // rounded once more to float (exact double rounding: 53 >= 2 * 24 + 2; infinities and
  // NaN pass through the conversion).
  static V<double> float_add(V<double> x, V<double> y) { return float_rne(x + y); }
  static V<float> float_add(V<float> x, V<float> y) { return x + y; }

  // ---------------------------------------------------------------------------------------
  // One register block: RU rows x VU vectors of columns, over the blocks [blo, bhi).

  template <class T, UnitRule R, bool kRZ, bool kOvf>
  static void tile(const UnitWork& u, const GemmPlan& pl, const GemmOptions& o, std::int64_t blo,
                   std::int64_t bhi, std::int64_t i0, std::int64_t g) {
    using VT = V<T>;
    constexpr int W = int(VT::size), G = VU * W;
    constexpr bool kWide = sizeof(T) == 8;
    static_assert(kWide || (R == UnitRule::nvidia && kRZ && !kOvf), "float lanes: NVIDIA, truncation");
    const MatrixUnit& mu = o.accumulation.unit;
    const int F = mu.fraction_bits;
    const Rounding tr = mu.term_rounding, orr = mu.output_rounding;
    const bool term_input = mu.input == UnitInput::term;
    const std::int64_t K = pl.K, npad = u.npad;
    const T* av = static_cast<const T*>(u.av) + i0 * K;
    const T* ax = static_cast<const T*>(u.ax) + i0 * K;
    const T* bv = static_cast<const T*>(u.bv) + g * K * G;
    const T* bx = static_cast<const T*>(u.bx) + g * K * G;
    T* chain = static_cast<T*>(u.chain) + i0 * npad + g * G;
    float* tot = u.T + i0 * npad + g * G;
    const VT twoF(T(std::ldexp(1.0, F))), twoMinusF(T(std::ldexp(1.0, -F)));
    // A floor under E where it meets no product (an empty half, E1 = 0) or where 2^(F - E)
    // would leave the lanes' range, so that 2^(F - E) and E / emax stay normal numbers:
    // on double lanes 2^-500 (every E is at least 2^-252, every emax at most 2^256); on
    // float lanes 2^(F - 127), below which no nonzero product exists (unit_fast.cpp:
    // emin_a + emin_b >= F - 127), so that the clamp changes only zero terms.
    const VT e_floor(T(kWide ? 0x1p-500 : std::ldexp(1.0, F - 127)));
    // Float lanes, truncation of the output: clear the low 23 - out bits.
    const VB<T> out_mask(Bits<T>(~((Bits<T>(1) << (23 - mu.output_fraction_bits)) - 1)));
    const VT kMinNormal(T(0x1p-126));

    VT c[RU][VU];
    for (int r = 0; r < RU; ++r)
      for (int v = 0; v < VU; ++v) c[r][v] = VT::load_aligned(chain + r * npad + v * W);

    for (std::int64_t bi = blo; bi < bhi; ++bi) {
      const UnitSpan s = u.blocks[bi];
      if (s.first)
        for (int r = 0; r < RU; ++r)
          for (int v = 0; v < VU; ++v) c[r][v] = VT(T(0));
      VT cin[RU][VU], E0[RU][VU], E1[RU][VU];
      for (int r = 0; r < RU; ++r)
        for (int v = 0; v < VU; ++v) {
          cin[r][v] = term_input ? c[r][v] : VT(T(0));
          // NVIDIA: C is a term (exponent -126 for zero and subnormals); AMD: C is not
          // among the fused sums, whose E starts empty (0).
          E0[r][v] = R == UnitRule::nvidia ? xsimd::max(pow2_floor<T>(cin[r][v]), kMinNormal) : VT(T(0));
          E1[r][v] = VT(T(0));
        }
      // Pass 1: E = the largest 2^(e_a + e_b) over the products k0, k0 + step, ... < b1.
      const auto pass1 = [&](std::int64_t k0, std::int64_t step, VT (&E)[RU][VU]) {
        for (std::int64_t k = k0; k < s.b1; k += step) {
          VT b[VU];
          for (int v = 0; v < VU; ++v) b[v] = VT::load_aligned(bx + k * G + v * W);
#pragma GCC unroll 8
          for (int r = 0; r < RU; ++r) {
            const VT a(ax[r * K + k]);
            for (int v = 0; v < VU; ++v) E[r][v] = xsimd::max(E[r][v], a * b[v]);
          }
        }
      };
      // The AMD fp8 rule keeps one E per parity of k - b0 (E0 even, E1 odd).
      constexpr bool kHalves = R == UnitRule::amd_fp8;
      pass1(s.b0, kHalves ? 2 : 1, E0);
      if constexpr (kHalves) pass1(s.b0 + 1, 2, E1);
      // 2^(F - E) per half, from the exponent fields.
      VT sF0[RU][VU], sF1[RU][VU];
      for (int r = 0; r < RU; ++r)
        for (int v = 0; v < VU; ++v) {
          sF0[r][v] = ratio<T>(twoF, xsimd::max(E0[r][v], e_floor));
          sF1[r][v] = ratio<T>(twoF, xsimd::max(E1[r][v], e_floor));
        }
      // Pass 2: the sums of the rounded terms round(a b 2^(F - E)), exact (below 2^53,
      // unit_fast.cpp checks the bit budget); the AMD rules also note products of 2^128
      // or more.
      using VBool = xsimd::batch_bool<T, A>;
      VT S0[RU][VU], S1[RU][VU];
      VBool ovp[RU][VU], ovn[RU][VU];
      for (int r = 0; r < RU; ++r)
        for (int v = 0; v < VU; ++v) {
          S0[r][v] = S1[r][v] = VT(T(0));
          ovp[r][v] = ovn[r][v] = VT(T(0)) != VT(T(0));
        }
      const auto pass2 = [&](std::int64_t k0, std::int64_t step, VT (&S)[RU][VU],
                             const VT (&sF)[RU][VU]) {
        for (std::int64_t k = k0; k < s.b1; k += step) {
          VT b[VU];
          for (int v = 0; v < VU; ++v) b[v] = VT::load_aligned(bv + k * G + v * W);
#pragma GCC unroll 8
          for (int r = 0; r < RU; ++r) {
            const VT a(av[r * K + k]);
            for (int v = 0; v < VU; ++v) {
              const VT p = a * b[v];
              if constexpr (kOvf) {
                ovp[r][v] = ovp[r][v] | (p >= VT(T(0x1p128)));
                ovn[r][v] = ovn[r][v] | (p <= VT(T(-0x1p128)));
              }
              S[r][v] += round_term<kRZ, T>(p * sF[r][v], tr);
            }
          }
        }
      };
      pass2(s.b0, kHalves ? 2 : 1, S0, sF0);
      if constexpr (kHalves) pass2(s.b0 + 1, 2, S1, sF1);
      // The block output, then the chain.
      for (int r = 0; r < RU; ++r)
        for (int v = 0; v < VU; ++v) {
          const VT ci = cin[r][v];
          VT out;
          if constexpr (R == UnitRule::nvidia && !kWide) {
            // C's term trunc(C 2^-E 2^F) in two exact steps (2^(F - E) may exceed float);
            // S 2^(E - F) is exact (at most 24 bits, quantum >= 2^-149); truncation clears
            // the low bits, also of subnormals, whose quantum 2^-149 divides the model's
            // 2^(-126 - out).
            const VT E = E0[r][v];
            const VT tc = xsimd::trunc((ci / E) * twoF);
            out = ((S0[r][v] + tc) * twoMinusF) * E;
            out = from_bits<T>(to_bits<T>(out) & out_mask) + VT(T(0));
          } else if constexpr (R == UnitRule::nvidia) {
            // C's term round(C 2^(F - E)), then one rounding of (S + t_C) 2^(E - F).
            const VT E = E0[r][v];
            const VT tc = round_term<kRZ, T>(ci * sF0[r][v], tr);
            out = output_round((S0[r][v] + tc) * (E * twoMinusF), mu.output_fraction_bits, orr);
          } else {
            // AMD. fp8: the halves floored to the larger exponent emax (an empty half has
            // E1 = 0 and S1 = 0); fp16: one sum. s is in units 2^(emax - F), below
            // 2^(F + 2 + log2 block).
            VT emax, sum;
            if constexpr (R == UnitRule::amd_fp8) {
              emax = xsimd::max(E0[r][v], E1[r][v]);
              sum = xsimd::floor(S0[r][v] * ratio<T>(E0[r][v], emax)) +
                    xsimd::floor(S1[r][v] * ratio<T>(xsimd::max(E1[r][v], e_floor), emax));
            } else {
              emax = E0[r][v];
              sum = S0[r][v];
            }
            // At emax2 = max(emax, 2^e_c): the sum floored to 31 fraction bits, C to 24
            // (fp8: dropped 26 or more binades below emax2); total in units
            // 2^(emax2 - 31), below 2^(max(F + 2, 33) + log2 block + 1) <= 2^53.
            const VT ec = xsimd::max(pow2_floor<T>(ci), kMinNormal);
            const VT emax2 = xsimd::max(emax, ec);
            VT total = xsimd::floor(sum * ratio<T>(emax, emax2) * VT(T(std::ldexp(1.0, 31 - F))));
            VT cpart = xsimd::floor(ci * ratio<T>(VT(T(0x1p24)), emax2)) * VT(T(128));
            if constexpr (R == UnitRule::amd_fp8)
              cpart = xsimd::select(ec >= emax2 * VT(T(0x1p-25)), cpart, VT(T(0)));
            total += cpart;
            out = output_round(total * (emax2 * VT(T(0x1p-31))), mu.output_fraction_bits, orr);
            if constexpr (kOvf) {
              // A product of 2^128 or more: an infinity of its sign, NaN for both signs.
              out = xsimd::select(ovn[r][v], VT(T(-INFINITY)), out);
              out = xsimd::select(ovp[r][v], VT(T(INFINITY)), out);
              out = xsimd::select(ovp[r][v] & ovn[r][v], VT(T(NAN)), out);
            }
          }
          // A C that is infinite or NaN stays (the float64 sum of finite products and C).
          out = xsimd::select(xsimd::isfinite(ci), out, ci);
          c[r][v] = term_input ? out : float_add(c[r][v], out);
        }
      // Promotion at the end of a segment: T = fma(C, s, T) in float32.
      if (s.last)
        for (int r = 0; r < RU; ++r) {
          const std::int64_t i = min64(i0 + r, pl.M - 1);
          for (int v = 0; v < VU; ++v) {
            const std::int64_t j0 = g * G + v * W;
            alignas(64) float sc[W];
            for (int l = 0; l < W; ++l)
              sc[l] = pl.sp.kb ? pl.sp.segment(i, s.s0, min64(j0 + l, pl.N - 1)) : 1.0f;
            float* t = tot + r * npad + v * W;
            if constexpr (kWide) {
              alignas(64) double cl[W];
              c[r][v].store_aligned(cl);
              for (int l = 0; l < W; ++l) t[l] = std::fma(float(cl[l]), sc[l], t[l]);
            } else {
              fused_fma(c[r][v], V<float>::load_aligned(sc), V<float>::load_aligned(t)).store_aligned(t);
            }
          }
        }
    }
    for (int r = 0; r < RU; ++r)
      for (int v = 0; v < VU; ++v) c[r][v].store_aligned(chain + r * npad + v * W);
  }

  // ---------------------------------------------------------------------------------------
  // The driver: the threads share out M blocks of kUnitMC rows x groups of panels (at most
  // kUnitNC columns); each does the chunks of its item in order, and in each chunk every
  // panel of the group, so that the chunk of A's rows stays in cache. No element depends
  // on another, so no barrier separates the chunks. Then the epilogue.

  template <class T, UnitRule R, bool kRZ, bool kOvf>
  static void run(const GemmPlan& pl, const GemmOptions& o, const UnitWork& u, float* c,
                  std::int64_t ldc) {
    const std::int64_t panels = u.npad / kCols<T>, groups = u.mpad / RU;
    const std::int64_t per_mb = kUnitMC / RU, mblocks = (groups + per_mb - 1) / per_mb;
    const std::int64_t per_pg = kUnitNC / kCols<T>, pgroups = (panels + per_pg - 1) / per_pg;
#pragma omp parallel num_threads(pl.threads)
    {
#pragma omp for collapse(2) schedule(dynamic)
      for (std::int64_t mb = 0; mb < mblocks; ++mb)
        for (std::int64_t pg = 0; pg < pgroups; ++pg)
          for (std::int64_t ch = 0; ch < u.nchunks; ++ch)
            for (std::int64_t g = pg * per_pg; g < min64(panels, (pg + 1) * per_pg); ++g)
              for (std::int64_t rg = mb * per_mb; rg < min64(groups, (mb + 1) * per_mb); ++rg)
                tile<T, R, kRZ, kOvf>(u, pl, o, u.chunks[ch], u.chunks[ch + 1], rg * RU, g);
      gemm_finish(pl, o, u.T, u.npad, c, ldc, u.b_out);
    }
  }

  static bool rz(const GemmOptions& o) {
    return o.accumulation.unit.term_rounding == Rounding::toward_zero;
  }

  static void nvidia_float(const GemmPlan& pl, const GemmOptions& o, const UnitWork& u, float* c,
                           std::int64_t ldc) {
    run<float, UnitRule::nvidia, true, false>(pl, o, u, c, ldc);
  }
  static void nvidia_double(const GemmPlan& pl, const GemmOptions& o, const UnitWork& u, float* c,
                            std::int64_t ldc) {
    if (rz(o)) run<double, UnitRule::nvidia, true, false>(pl, o, u, c, ldc);
    else run<double, UnitRule::nvidia, false, false>(pl, o, u, c, ldc);
  }
  template <UnitRule R>
  static void amd(const GemmPlan& pl, const GemmOptions& o, const UnitWork& u, float* c,
                  std::int64_t ldc) {
    if (rz(o)) {
      if (u.overflow) run<double, R, true, true>(pl, o, u, c, ldc);
      else run<double, R, true, false>(pl, o, u, c, ldc);
    } else {
      if (u.overflow) run<double, R, false, true>(pl, o, u, c, ldc);
      else run<double, R, false, false>(pl, o, u, c, ldc);
    }
  }
};

}  // namespace fp8emu::detail
