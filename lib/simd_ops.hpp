// fp8emu: the few SIMD primitives that xsimd 8.1 lacks or implements as scalar loops.
//
// xsimd 8.1 turns `batch >> batch` into a scalar loop on AVX-512, has no narrowing store,
// loads uint8 through a slow conversion, and gathers lane by lane on AVX-512. Each
// primitive here is a template on the architecture tag: an intrinsic where the
// architecture has one, and a portable loop otherwise, so the kernels stay
// architecture-neutral. Only the per-target translation units (simd_<target>.cpp)
// include this header; each is compiled with its target's -m flags, which define the
// __AVX2__ / __FMA__ / __AVX512F__ macros tested here, and instantiates the primitives
// for its own tag only (simd_kernels.hpp checks that the two agree).
// Per-lane shift counts >= 32 give 0, as vpsrlvd / vpsllvd do.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <xsimd/xsimd.hpp>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace fp8emu::detail {

template <class A>
using u32x = xsimd::batch<std::uint32_t, A>;

template <class A>
inline constexpr bool is_avx512 = std::is_base_of_v<xsimd::avx512f, A>;
template <class A>
inline constexpr bool is_avx2 = std::is_base_of_v<xsimd::avx2, A> && !is_avx512<A>;

/// Returns a * b + c per lane with one rounding. xsimd 8.1 has no AVX-512 fma kernel and
/// falls back to a * b + c (two roundings); FMA3 archs have a fused one.
template <class A>
[[gnu::always_inline]] inline xsimd::batch<float, A> fused_fma(xsimd::batch<float, A> a,
                                                               xsimd::batch<float, A> b,
                                                               xsimd::batch<float, A> c) {
#if defined(__AVX512F__)
  if constexpr (is_avx512<A>) return _mm512_fmadd_ps(a, b, c);
#endif
#if defined(__FMA__)
  if constexpr (std::is_base_of_v<xsimd::fma3<xsimd::avx2>, A> ||
                std::is_base_of_v<xsimd::fma3<xsimd::avx>, A> ||
                std::is_base_of_v<xsimd::fma3<xsimd::sse4_2>, A>)
    return xsimd::fma(a, b, c);
#endif
  constexpr std::size_t W = xsimd::batch<float, A>::size;
  alignas(64) float as[W], bs[W], cs[W];
  a.store_aligned(as);
  b.store_aligned(bs);
  c.store_aligned(cs);
  for (std::size_t i = 0; i < W; ++i) cs[i] = std::fma(as[i], bs[i], cs[i]);
  return xsimd::batch<float, A>::load_aligned(cs);
}

/// Returns x >> n per lane (0 where n >= 32).
template <class A>
[[gnu::always_inline]] inline u32x<A> srlv(u32x<A> x, u32x<A> n) {
#if defined(__AVX512F__)
  if constexpr (is_avx512<A>) return _mm512_srlv_epi32(x, n);
#endif
#if defined(__AVX2__)
  if constexpr (is_avx2<A>) return _mm256_srlv_epi32(x, n);
#endif
  constexpr std::size_t W = u32x<A>::size;
  alignas(64) std::uint32_t xs[W], ns[W];
  x.store_aligned(xs);
  n.store_aligned(ns);
  for (std::size_t i = 0; i < W; ++i) xs[i] = ns[i] >= 32 ? 0 : xs[i] >> ns[i];
  return u32x<A>::load_aligned(xs);
}

/// Returns x << n per lane (0 where n >= 32).
template <class A>
[[gnu::always_inline]] inline u32x<A> sllv(u32x<A> x, u32x<A> n) {
#if defined(__AVX512F__)
  if constexpr (is_avx512<A>) return _mm512_sllv_epi32(x, n);
#endif
#if defined(__AVX2__)
  if constexpr (is_avx2<A>) return _mm256_sllv_epi32(x, n);
#endif
  constexpr std::size_t W = u32x<A>::size;
  alignas(64) std::uint32_t xs[W], ns[W];
  x.store_aligned(xs);
  n.store_aligned(ns);
  for (std::size_t i = 0; i < W; ++i) xs[i] = ns[i] >= 32 ? 0 : xs[i] << ns[i];
  return u32x<A>::load_aligned(xs);
}

/// Loads W codes of type T (uint8 / uint16 / uint32) zero-extended to 32-bit lanes.
template <class A, class T>
[[gnu::always_inline]] inline u32x<A> load_widen(const T* p) {
  if constexpr (std::is_same_v<T, std::uint32_t>) {
    return u32x<A>::load_unaligned(p);
  } else {
#if defined(__AVX512F__)
    if constexpr (is_avx512<A>) {
      if constexpr (sizeof(T) == 1)
        return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      else
        return _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    }
#endif
#if defined(__AVX2__)
    if constexpr (is_avx2<A>) {
      if constexpr (sizeof(T) == 1)
        return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
      else
        return _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    }
#endif
    constexpr std::size_t W = u32x<A>::size;
    alignas(64) std::uint32_t xs[W];
    for (std::size_t i = 0; i < W; ++i) xs[i] = p[i];
    return u32x<A>::load_aligned(xs);
  }
}

/// Stores W lanes, each known to fit in T, as T (uint8 / uint16 / uint32).
template <class A, class T>
[[gnu::always_inline]] inline void store_narrow(u32x<A> v, T* p) {
  if constexpr (std::is_same_v<T, std::uint32_t>) {
    v.store_unaligned(p);
  } else {
#if defined(__AVX512F__)
    if constexpr (is_avx512<A>) {
      if constexpr (sizeof(T) == 1)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtepi32_epi8(v));
      else
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(v));
      return;
    }
#endif
    constexpr std::size_t W = u32x<A>::size;
    alignas(64) std::uint32_t xs[W];
    v.store_aligned(xs);
    for (std::size_t i = 0; i < W; ++i) p[i] = T(xs[i]);
  }
}

/// Returns table[idx] per lane (xsimd 8.1's AVX-512 gather is a per-lane loop).
template <class A>
[[gnu::always_inline]] inline xsimd::batch<float, A> gather(const float* table, u32x<A> idx) {
#if defined(__AVX512F__)
  if constexpr (is_avx512<A>) return _mm512_i32gather_ps(idx, table, 4);
#endif
#if defined(__AVX2__)
  if constexpr (is_avx2<A>) return _mm256_i32gather_ps(table, idx, 4);
#endif
  constexpr std::size_t W = u32x<A>::size;
  alignas(64) std::uint32_t is[W];
  alignas(64) float vs[W];
  idx.store_aligned(is);
  for (std::size_t i = 0; i < W; ++i) vs[i] = table[is[i]];
  return xsimd::batch<float, A>::load_aligned(vs);
}

/// Stores W floats at `p`, aligned to the batch, with a non-temporal store where the
/// architecture has one (the line goes to memory without being read into the cache).
/// Call stream_fence<A>() after the last one.
template <class A>
[[gnu::always_inline]] inline void store_stream(xsimd::batch<float, A> v, float* p) {
#if defined(__AVX512F__)
  if constexpr (is_avx512<A>) return _mm512_stream_ps(p, v);
#endif
#if defined(__AVX2__)
  if constexpr (is_avx2<A>) return _mm256_stream_ps(p, v);
#endif
#if defined(__SSE2__)
  if constexpr (std::is_same_v<A, xsimd::sse2>) return _mm_stream_ps(p, v);
#endif
  v.store_aligned(p);
}

/// Orders the non-temporal stores before it ahead of every later store.
template <class A>
[[gnu::always_inline]] inline void stream_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

/// Returns the lanes 0, 1, ..., W-1.
template <class A>
[[gnu::always_inline]] inline u32x<A> iota() {
  constexpr std::size_t W = u32x<A>::size;
  alignas(64) std::uint32_t xs[W];
  for (std::size_t i = 0; i < W; ++i) xs[i] = std::uint32_t(i);
  return u32x<A>::load_aligned(xs);
}

/// Returns the largest lane.
template <class A>
[[gnu::always_inline]] inline std::uint32_t reduce_max(u32x<A> v) {
  constexpr std::size_t W = u32x<A>::size;
  alignas(64) std::uint32_t xs[W];
  v.store_aligned(xs);
  std::uint32_t m = 0;
  for (std::size_t i = 0; i < W; ++i) m = xs[i] > m ? xs[i] : m;
  return m;
}

/// Returns the OR of the lanes.
template <class A>
[[gnu::always_inline]] inline std::uint32_t reduce_or(u32x<A> v) {
  constexpr std::size_t W = u32x<A>::size;
  alignas(64) std::uint32_t xs[W];
  v.store_aligned(xs);
  std::uint32_t r = 0;
  for (std::size_t i = 0; i < W; ++i) r |= xs[i];
  return r;
}

}  // namespace fp8emu::detail
