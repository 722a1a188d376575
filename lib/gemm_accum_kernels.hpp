// fp8emu: the SIMD kernels of the float accumulators (gemm_accum.cpp), templates on the
// xsimd architecture tag A and the lane type T (float or double), instantiated per target
// (simd_kernels.hpp). gemm_accum.cpp decides the path, packs the operands and calls these
// through the target's KernelTable.
//
// Every accumulation step of the reference (gemm.cpp, struct Ref) is s' = round(x + y),
// one rounding of an exact sum to the accumulator format. Here x and y are lane values
// (accumulator values, or exact products a * b), and
//  1. TwoSum (Knuth, TAOCP vol. 2, 4.2.2) gives t = fl(x + y) and the exact error e;
//  2. t is made round-to-odd at the lane precision P: where e != 0 and t's last bit is
//     even, t steps one unit toward x + y;
//  3. the round-to-odd value is rounded to the accumulator format in the value domain:
//     y = |t| / q for the quantum q of its binade (a power of two, so exact), rounded to
//     an integer by the mode, times q.
// Rounding to odd at P bits and then to p <= P - 2 bits equals one rounding of the exact
// value to p bits under every deterministic mode (Boldo and Melquiond, "Emulation of FMA
// and correctly rounded sums: proved algorithms using rounding to odd", IEEE Trans.
// Computers 57(4), 2008). Stochastic rounding with N random bits reads the N + 1 bits
// below the last place and whether anything lies below them: the round-to-odd value
// keeps both when p + N + 2 <= P. gemm_accum.cpp only picks a lane type that meets these
// bounds, and one in which every product and every sum is exact or finite. Where every
// sum of the call is exact in float64 (AccumPlan::exact), steps 1 and 2 change nothing and
// are left out (the template flag E of the steps).
#pragma once

#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <type_traits>
#include <xsimd/xsimd.hpp>

#include "fp8emu/random.hpp"
#include "simd.hpp"
#include "simd_ops.hpp"

namespace fp8emu::detail {

template <class A, class T>
struct AccumKernels {
  using V = xsimd::batch<T, A>;
  using U = std::conditional_t<sizeof(T) == 8, std::uint64_t, std::uint32_t>;
  using VU = xsimd::batch<U, A>;
  static constexpr int W = int(V::size);
  static constexpr int MANT = sizeof(T) == 8 ? 52 : 23;  // fraction bits of the lane type
  static constexpr U kExpMask = sizeof(T) == 8 ? U(0x7FF0000000000000ull) : U(0x7F800000u);
  static constexpr U kTwoBias = sizeof(T) == 8 ? U(2046ull << 52) : U(254u << 23);
  static constexpr int RT = kAccumRows;  // rows per register block
  static constexpr int VT = 2;  // vectors of columns per register block
  static constexpr int COLS = VT * W;

  static std::int64_t min64(std::int64_t a, std::int64_t b) { return a < b ? a : b; }

  [[gnu::always_inline]] static V as_v(VU x) { return xsimd::bitwise_cast<V>(x); }
  [[gnu::always_inline]] static VU as_u(V x) { return xsimd::bitwise_cast<VU>(x); }

  // The constants of one call, as lane values.
  struct Consts {
    V emin_value, max_value, ovf_pos, ovf_neg, inf_pos, inf_neg, nan_value, quantum_scale, two_m;
    V two_n, two_n1;
    VU magic;  // added to the bits of 2^e: 1.5 2^(e - M + MANT)
    bool daz, ftz;
    explicit Consts(const AccumPlan& p)
        : emin_value(T(p.emin_value)),
          max_value(T(p.max_value)),
          ovf_pos(T(p.ovf_pos)),
          ovf_neg(T(p.ovf_neg)),
          inf_pos(T(p.inf_pos)),
          inf_neg(T(p.inf_neg)),
          nan_value(T(p.nan_value)),
          quantum_scale(T(std::ldexp(1.0, -p.M))),
          two_m(T(std::ldexp(1.0, p.M))),
          two_n(T(std::ldexp(1.0, p.n))),
          two_n1(T(std::ldexp(1.0, p.n + 1))),
          magic(U((U(MANT - p.M) << MANT) | (U(1) << (MANT - 1)))),
          daz(p.daz),
          ftz(p.ftz) {}
  };

  // An accumulator value as the next step reads it: under DAZ a subnormal is a zero of
  // its sign (the reference unpacks it with flush_inputs).
  [[gnu::always_inline]] static V in(const Consts& c, V s) {
    if (!c.daz) return s;
    return xsimd::select(xsimd::abs(s) < c.emin_value, s * V(T(0)), s);
  }

  // floor(y) for 0 <= y < 2^MANT: nearest-even by the 2^MANT shift (the lanes' default
  // rounding; the build has -ffp-contract=off), corrected down.
  [[gnu::always_inline]] static V floor_small(V y) {
    const V big(T(std::ldexp(1.0, MANT)));
    const V rn = (y + big) - big;
    return rn - xsimd::select(rn > y, V(T(1)), V(T(0)));
  }
  // The last bit of an integer 0 <= y < 2^MANT, as a mask.
  [[gnu::always_inline]] static auto is_odd(V y) {
    const V big(T(std::ldexp(1.0, MANT)));
    return as_v(as_u(y + big) & VU(U(1))) != V(T(0));
  }

  // round(x + y) in the accumulator format: x and y are lane values as the step reads
  // them, rnd the step's random bits (low N bits, as a lane value) for stochastic modes.
  // E: every sum x + y of the call is exact in the lanes (gemm_accum.cpp's exact_sums), so
  // t0 is the exact sum, TwoSum's error is zero and round-to-odd leaves t0 as it is.
  template <Rounding R, bool E>
  [[gnu::always_inline]] static V step(const Consts& c, V x, V y, V rnd) {
    if constexpr (E) {
      const V t0 = x + y;
      return round<R>(c, t0, t0, rnd);
    }
    // 1. TwoSum.
    const V t0 = x + y;
    const V bp = t0 - x;
    const V err = (x - (t0 - bp)) + (y - bp);
    // 2. Round to odd at the lane precision: step the bits of an even t toward the exact
    //    sum (+1 away from zero when err has t's sign, -1 otherwise).
    const VU tb = as_u(t0);
    const VU need = as_u(xsimd::select(err != V(T(0)), as_v(VU(U(1))), V(T(0)))) & ~tb;  // 0 or 1
    const VU toward = (tb ^ as_u(err)) >> (8 * sizeof(T) - 1);  // 1 where err has the other sign
    const V t = as_v(tb + need - ((need & toward) << 1));
    // The sign of a zero is left as the hardware gives it (+0 for x + (-x), where the
    // reference gives -0 under toward_negative, IEEE 754-2019 6.3; +0 or -0 where the
    // format has no -0): a zero's sign never changes a nonzero sum, and the promotion
    // adds every segment's sum to +0 (fma(p, s, +0)), so it does not reach C.
    return round<R>(c, t0, t, rnd);
  }

  // Rounds t, the round-to-odd lane value of t0 = fl(x + y), to the accumulator format;
  // an infinite or NaN t0 gives the reference's value for it.
  template <Rounding R>
  [[gnu::always_inline]] static V round(const Consts& c, V t0, V t, V rnd) {
    const V a = xsimd::abs(t);
    // The power of two of |t|'s binade, at least 2^emin: the quantum is it times 2^-M.
    const V pw = as_v(as_u(xsimd::max(a, c.emin_value)) & VU(kExpMask));
    const auto neg = t < V(T(0));
    V res, mag;
    if constexpr (R == Rounding::nearest_even) {
      // t + C - C with C = 1.5 2^(MANT) q rounds t to a multiple of q, nearest-even (|t| <
      // 2^(e + 1) <= 2^(MANT - 1) q, as M + 2 <= MANT).
      const V big = as_v(as_u(pw) + c.magic);
      res = (t + big) - big;
      mag = xsimd::abs(res);
    } else {
      const V sgn = xsimd::bitwise_and(t, V(T(-0.0)));
      const V q = pw * c.quantum_scale;  // exact, a subnormal float where q < 2^-126
      // |t| / q = (|t| 2^M) / pw, exact: both factors are powers of two that keep it normal.
      const V yv = (a * c.two_m) * as_v(VU(kTwoBias) - as_u(pw));
      mag = integer<R>(c, yv, neg, rnd) * q;
      res = xsimd::bitwise_or(mag, sgn);
    }
    res = xsimd::select(mag > c.max_value, xsimd::select(neg, c.ovf_neg, c.ovf_pos), res);
    if (c.ftz) res = xsimd::select(mag < c.emin_value, xsimd::bitwise_and(t, V(T(-0.0))), res);
    const auto special = ~(xsimd::abs(t0) <= V(std::numeric_limits<T>::max()));
    if (xsimd::any(special))
      res = xsimd::select(special,
                          xsimd::select(xsimd::isnan(t0), c.nan_value,
                                        xsimd::select(t0 < V(T(0)), c.inf_neg, c.inf_pos)),
                          res);
    return res;
  }

  // |t| / q rounded to an integer under R (every mode but nearest_even).
  template <Rounding R>
  [[gnu::always_inline]] static V integer(const Consts& c, V yv, xsimd::batch_bool<T, A> neg, V rnd) {
    const V one(T(1)), zero(T(0));
    const V fl = floor_small(yv);
    const V frac = yv - fl;
    V r;
    if constexpr (R == Rounding::nearest_away) {
      r = fl + xsimd::select(frac >= V(T(0.5)), one, zero);
    } else if constexpr (R == Rounding::toward_zero) {
      r = fl;
    } else if constexpr (R == Rounding::toward_positive) {
      r = fl + xsimd::select((frac > zero) & ~neg, one, zero);
    } else if constexpr (R == Rounding::toward_negative) {
      r = fl + xsimd::select((frac > zero) & neg, one, zero);
    } else if constexpr (R == Rounding::to_odd) {
      r = fl + xsimd::select((frac > zero) & ~is_odd(fl), one, zero);
    } else if constexpr (R == Rounding::stochastic_a) {
      // floor(v 2^N) + R >= 2^N.
      const V tt = floor_small(frac * c.two_n);
      r = fl + xsimd::select(tt + rnd >= c.two_n, one, zero);
    } else if constexpr (R == Rounding::stochastic_b) {
      // floor(v 2^(N+1)) + 2R + 1 >= 2^(N+1).
      const V tt = floor_small(frac * c.two_n1);
      r = fl + xsimd::select(tt + rnd * V(T(2)) + one >= c.two_n1, one, zero);
    } else {
      // RNE(v 2^N) + R >= 2^N; a rest of exactly one half has nothing below it.
      const V f2 = frac * c.two_n;
      const V tt = floor_small(f2);
      const V rest = f2 - tt;
      const auto rup = (rest > V(T(0.5))) | ((rest == V(T(0.5))) & is_odd(tt));
      r = fl + xsimd::select(tt + xsimd::select(rup, one, zero) + rnd >= c.two_n, one, zero);
    }
    return r;
  }

  // (x * m) mod 2^32 per lane, for lanes holding values below 2^32 (both lane widths).
  [[gnu::always_inline]] static VU mul_lo32(VU x, std::uint32_t m) {
    if constexpr (sizeof(U) == 4) {
      return x * VU(m);
    } else {
#if defined(__AVX512F__)
      if constexpr (is_avx512<A>) return VU(_mm512_mul_epu32(x, _mm512_set1_epi64(m))) & VU(0xFFFFFFFFull);
#endif
#if defined(__AVX2__)
      if constexpr (is_avx2<A>) return VU(_mm256_mul_epu32(x, _mm256_set1_epi64x(m))) & VU(0xFFFFFFFFull);
#endif
#if defined(__SSE2__)
      if constexpr (std::is_same_v<A, xsimd::sse2>) return VU(_mm_mul_epu32(x, _mm_set1_epi64x(m))) & VU(0xFFFFFFFFull);
#endif
      alignas(64) U xs[W];
      x.store_aligned(xs);
      for (int l = 0; l < W; ++l) xs[l] = U(std::uint32_t(xs[l]) * m);
      return VU::load_aligned(xs);
    }
  }

  // The random bits of the steps of one register block (random.hpp's random_bits,
  // vectorized): element (i, j), product k, step st has index ((i N + j) K + k) 4 + st,
  // so lane l of a vector of columns has stride 4K. Float64 lanes hold whole indices;
  // float32 lanes only low words (gemm_accum.cpp keeps every index of a call below 2^32
  // there, so the high word is 0).
  struct Random {
    RandomKey key;
    U mask;
    VU base[RT][VT];  // the index of (i0 + r, j0 + v W + l, k = 0, st = 0)

    Random(const AccumPlan& p, std::int64_t N, std::int64_t K, std::int64_t i0, std::int64_t j0)
        : key(p.key), mask(U(p.n >= 32 ? 0xFFFFFFFFu : (std::uint32_t{1} << p.n) - 1u)) {
      for (int r = 0; r < RT; ++r)
        for (int v = 0; v < VT; ++v) {
          alignas(64) U b0[W];
          for (int l = 0; l < W; ++l)
            b0[l] = U(((std::uint64_t(i0 + r) * N + std::uint64_t(j0 + v * W + l)) *
                       std::uint64_t(K)) * 4);
          base[r][v] = VU::load_aligned(b0);
        }
    }

    // R, the low N random bits of step (r, v, k, st), as lane values.
    [[gnu::always_inline]] V at(int r, int v, std::int64_t k, int st) const {
      const VU m32(U(0xFFFFFFFFu));
      VU x, mid;
      if constexpr (sizeof(U) == 8) {
        const VU idx = base[r][v] + VU(U(4 * k + st));
        x = idx & m32;
        mid = (VU(U(key.k1)) + mul_lo32(idx >> 32, 0x9E3779B9u)) & m32;
      } else {
        x = base[r][v] + VU(U(4 * k + st));
        mid = VU(U(key.k1));
      }
      x ^= VU(U(key.k0));
      x ^= x >> 16;
      x = mul_lo32(x, 0x7FEB352Du);
      x ^= x >> 15;
      x ^= mid;
      x = mul_lo32(x, 0x846CA68Bu);
      x ^= x >> 16;
      // The integer R as a lane value: R + 2^MANT from its bits, minus 2^MANT.
      const V big(T(std::ldexp(1.0, MANT)));
      return as_v((x & VU(mask)) | as_u(big)) - big;
    }
  };

  // One register block: RT rows from i0, COLS columns from j0, over one segment.
  struct Block {
    const Consts& c;
    const Random* rng;  // null for deterministic modes
    const T* a;  // row i0 of A's values, leading dimension K
    const T* b;  // the panel: K x COLS
    std::int64_t K, i0, j0;

    template <Rounding R>
    [[gnu::always_inline]] V rand(int r, int v, std::int64_t k, int st) const {
      if constexpr (is_stochastic(R)) return rng->at(r, v, k, st);
      else return V(T(0));
    }

    template <Rounding R, bool E>
    void sequential(std::int64_t k0, std::int64_t k1, V (&s)[RT][VT]) const {
      for (int r = 0; r < RT; ++r)
        for (int v = 0; v < VT; ++v) s[r][v] = V(T(0));
      for (std::int64_t k = k0; k < k1; ++k) {
        V bv[VT];
        for (int v = 0; v < VT; ++v) bv[v] = V::load_aligned(b + k * COLS + v * W);
#pragma GCC unroll 4
        for (int r = 0; r < RT; ++r) {
          const V av(a[r * K + k]);
#pragma GCC unroll 2
          for (int v = 0; v < VT; ++v) {
            if constexpr (E) {
              // The exact product and the exact sum in one fma.
              const V t0 = xsimd::fma(av, bv[v], in(c, s[r][v]));
              s[r][v] = round<R>(c, t0, t0, rand<R>(r, v, k, 0));
            } else {
              s[r][v] = step<R, E>(c, in(c, s[r][v]), av * bv[v], rand<R>(r, v, k, 0));
            }
          }
        }
      }
    }

    template <Rounding R, bool E>
    void kahan(std::int64_t k0, std::int64_t k1, V (&s)[RT][VT]) const {
      V cc[RT][VT];
      for (int r = 0; r < RT; ++r)
        for (int v = 0; v < VT; ++v) s[r][v] = cc[r][v] = V(T(0));
      for (std::int64_t k = k0; k < k1; ++k) {
        V bv[VT];
        for (int v = 0; v < VT; ++v) bv[v] = V::load_aligned(b + k * COLS + v * W);
        for (int r = 0; r < RT; ++r) {
          const V av(a[r * K + k]);
          for (int v = 0; v < VT; ++v) {
            // y = p - c; t = s + y; c = (t - s) - y; s = t; each step rounded.
            const V y = step<R, E>(c, -in(c, cc[r][v]), av * bv[v], rand<R>(r, v, k, 0));
            const V sv = in(c, s[r][v]), yv = in(c, y);
            const V t = step<R, E>(c, sv, yv, rand<R>(r, v, k, 1));
            const V d = step<R, E>(c, in(c, t), -sv, rand<R>(r, v, k, 2));
            cc[r][v] = step<R, E>(c, in(c, d), -yv, rand<R>(r, v, k, 3));
            s[r][v] = t;
          }
        }
      }
    }

    // S(lo, n) = round(S(lo, n/2) + S(lo + n/2, n - n/2)); S(lo, 1) = round(p_lo + 0).
    template <Rounding R, bool E>
    void pairwise(std::int64_t lo, std::int64_t n, V (&s)[RT][VT]) const {
      if (n == 1) {
        V bv[VT];
        for (int v = 0; v < VT; ++v) bv[v] = V::load_aligned(b + lo * COLS + v * W);
        for (int r = 0; r < RT; ++r) {
          const V av(a[r * K + lo]);
          for (int v = 0; v < VT; ++v)
            s[r][v] = step<R, E>(c, V(T(0)), av * bv[v], rand<R>(r, v, lo, 0));
        }
        return;
      }
      const std::int64_t m = n / 2;
      V right[RT][VT];
      pairwise<R, E>(lo, m, s);
      pairwise<R, E>(lo + m, n - m, right);
      for (int r = 0; r < RT; ++r)
        for (int v = 0; v < VT; ++v)
          s[r][v] = step<R, E>(c, in(c, s[r][v]), in(c, right[r][v]), rand<R>(r, v, lo + m, 1));
    }

    template <Rounding R, bool E>
    void blocked(std::int64_t k0, std::int64_t k1, std::int64_t chunk, V (&s)[RT][VT]) const {
      for (int r = 0; r < RT; ++r)
        for (int v = 0; v < VT; ++v) s[r][v] = V(T(0));
      for (std::int64_t c0 = k0; c0 < k1; c0 += chunk) {
        V part[RT][VT];
        sequential<R, E>(c0, min64(c0 + chunk, k1), part);
        for (int r = 0; r < RT; ++r)
          for (int v = 0; v < VT; ++v)
            s[r][v] = step<R, E>(c, in(c, s[r][v]), in(c, part[r][v]), rand<R>(r, v, c0, 1));
      }
    }
  };

  template <Rounding R, bool E>
  static void block(const GemmPlan& pl, const AccumWork& w, const Consts& c, std::int64_t i0,
                    std::int64_t j0) {
    const AccumPlan& p = w.p;
    const std::int64_t K = pl.K;
    std::optional<Random> rng;
    if constexpr (is_stochastic(R)) rng.emplace(p, pl.N, K, i0, j0);
    const Block blk{c, rng ? &*rng : nullptr, static_cast<const T*>(w.a) + i0 * K,
                    static_cast<const T*>(w.b) + (j0 / COLS) * K * COLS, K, i0, j0};
    alignas(64) float total[RT][COLS] = {};
    alignas(64) T part[RT][COLS];
    for (std::int64_t k0 = 0; k0 < K;) {
      const std::int64_t k1 = next_boundary(k0, K, pl.sp.kb, p.promote);
      V s[RT][VT];
      if (p.kahan) blk.template kahan<R, E>(k0, k1, s);
      else if (p.order == SumOrder::pairwise) blk.template pairwise<R, E>(k0, k1 - k0, s);
      else if (p.order == SumOrder::blocked) blk.template blocked<R, E>(k0, k1, p.chunk, s);
      else blk.template sequential<R, E>(k0, k1, s);
      for (int r = 0; r < RT; ++r)
        for (int v = 0; v < VT; ++v) s[r][v].store_aligned(&part[r][v * W]);
      // Promotion: total = fma(p, s, total) in float, as the reference.
      for (int r = 0; r < RT; ++r) {
        const std::int64_t i = min64(i0 + r, pl.M - 1);
        for (int l = 0; l < COLS; ++l) {
          const std::int64_t j = min64(j0 + l, pl.N - 1);
          total[r][l] = std::fma(float(part[r][l]), pl.sp.segment(i, k0, j), total[r][l]);
        }
      }
      k0 = k1;
    }
    for (int r = 0; r < RT; ++r)
      std::memcpy(w.T + (i0 + r) * w.npad + j0, total[r], sizeof(float) * COLS);
  }

  template <Rounding R>
  static void run(const GemmPlan& pl, const GemmOptions& o, const AccumWork& w, float* cmat,
                  std::int64_t ldc) {
    const Consts c(w.p);
    const std::int64_t cgroups = w.npad / COLS, rgroups = w.mpad / RT;
#pragma omp parallel num_threads(pl.threads)
    {
#pragma omp for schedule(dynamic) collapse(2)
      for (std::int64_t cg = 0; cg < cgroups; ++cg)
        for (std::int64_t rg = 0; rg < rgroups; ++rg) {
          // Exact sums are only taken on float64 lanes (gemm_accum.cpp).
          if constexpr (sizeof(T) == 8) {
            if (w.p.exact) block<R, true>(pl, w, c, rg * RT, cg * COLS);
            else block<R, false>(pl, w, c, rg * RT, cg * COLS);
          } else {
            block<R, false>(pl, w, c, rg * RT, cg * COLS);
          }
        }
      gemm_finish(pl, o, w.T, w.npad, cmat, ldc, w.b_out);
    }
  }
};

}  // namespace fp8emu::detail
