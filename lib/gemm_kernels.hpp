// fp8emu: the SIMD kernels of the GEMM fast paths (gemm_fast.cpp), templates on the xsimd
// architecture tag A, instantiated per target (simd.hpp). gemm_fast.cpp decides the path,
// allocates and fills the buffers, and calls these through the target's KernelTable.
#pragma once

#include <omp.h>

#include <cstdint>
#include <cstring>
#include <xsimd/xsimd.hpp>

#include "simd.hpp"
#include "simd_ops.hpp"

namespace fp8emu::detail {

template <class A>
struct GemmKernels {
  using VF = xsimd::batch<float, A>;
  using VI = xsimd::batch<std::int32_t, A>;
  static constexpr int W = int(VF::size);

  // -------------------------------------------------------------------------------------
  // 1. float32 sequential accumulation.

  static constexpr int NR = 2 * W;
  static constexpr int MR = W >= 16 ? 12 : 6;
  static constexpr std::int64_t KC = kGemmKC, MC = 8 * MR, NC = kGemmNC;

  static std::int64_t min64(std::int64_t a, std::int64_t b) { return a < b ? a : b; }

  // acc[r][v] (+)= a[k][r] * b[k][v] over k = 0 .. kc - 1, in order; p has leading dim ldp.
  template <bool kFirst>
  [[gnu::always_inline]] static void micro(std::int64_t kc, const float* ap, const float* bp,
                                           float* p, std::int64_t ldp) {
    VF acc[MR][2];
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      if constexpr (kFirst) {
        acc[r][0] = VF(0.0f);
        acc[r][1] = VF(0.0f);
      } else {
        acc[r][0] = VF::load_unaligned(p + r * ldp);
        acc[r][1] = VF::load_unaligned(p + r * ldp + W);
      }
    }
    for (std::int64_t k = 0; k < kc; ++k) {
      const VF b0 = VF::load_aligned(bp + k * NR), b1 = VF::load_aligned(bp + k * NR + W);
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        const VF av(ap[k * MR + r]);
        acc[r][0] = fused_fma(av, b0, acc[r][0]);
        acc[r][1] = fused_fma(av, b1, acc[r][1]);
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      acc[r][0].store_unaligned(p + r * ldp);
      acc[r][1].store_unaligned(p + r * ldp + W);
    }
  }

  // The value of code c (a float32 bit pattern for 4-byte codes).
  template <class T>
  [[gnu::always_inline]] static float code_value(const float* table, T c) {
    if constexpr (sizeof(T) == 4) {
      float v;
      std::memcpy(&v, &c, 4);
      return v;
    } else {
      return table[c];
    }
  }

  template <class T>
  static void pack_b(const Strided& s, const float* table, std::int64_t k0, std::int64_t kc,
                     std::int64_t j0, std::int64_t nc, float* out) {
    const T* d = static_cast<const T*>(s.data);
    const std::int64_t panels = (nc + NR - 1) / NR;
#pragma omp for schedule(static)
    for (std::int64_t pnl = 0; pnl < panels; ++pnl) {
      float* o = out + pnl * kc * NR;
      const std::int64_t jb = j0 + pnl * NR, jn = min64(NR, j0 + nc - jb);
      for (std::int64_t k = 0; k < kc; ++k)
        for (std::int64_t c = 0; c < NR; ++c)
          o[k * NR + c] = c < jn ? code_value(table, d[(k0 + k) * s.rs + (jb + c) * s.cs]) : 0.0f;
    }
  }

  template <class T>
  static void pack_a(const Strided& s, const float* table, std::int64_t i0, std::int64_t mc,
                     std::int64_t k0, std::int64_t kc, float* out) {
    const T* d = static_cast<const T*>(s.data);
    for (std::int64_t pnl = 0; pnl * MR < mc; ++pnl) {
      float* o = out + pnl * kc * MR;
      const std::int64_t ib = i0 + pnl * MR, in = min64(MR, i0 + mc - ib);
      for (std::int64_t k = 0; k < kc; ++k)
        for (std::int64_t r = 0; r < MR; ++r)
          o[k * MR + r] = r < in ? code_value(table, d[(ib + r) * s.rs + (k0 + k) * s.cs]) : 0.0f;
    }
  }

  using Pack = void (*)(const Strided&, const float*, std::int64_t, std::int64_t, std::int64_t,
                        std::int64_t, float*);

  static Pack pick_a(int bytes) {
    return bytes == 1 ? &pack_a<std::uint8_t> : bytes == 2 ? &pack_a<std::uint16_t> : &pack_a<std::uint32_t>;
  }
  static Pack pick_b(int bytes) {
    return bytes == 1 ? &pack_b<std::uint8_t> : bytes == 2 ? &pack_b<std::uint16_t> : &pack_b<std::uint32_t>;
  }

  // One tile of the partial-sum buffer P: the microkernel writes through a local tile at
  // the edges so that it never touches memory outside M x N.
  static void tile(bool first, std::int64_t kc, const float* ap, const float* bp, float* p,
                   std::int64_t ldp, std::int64_t rows, std::int64_t cols) {
    if (rows == MR && cols == NR) {
      if (first) micro<true>(kc, ap, bp, p, ldp);
      else micro<false>(kc, ap, bp, p, ldp);
      return;
    }
    alignas(64) float t[MR * NR] = {};
    if (!first)
      for (std::int64_t r = 0; r < rows; ++r) std::memcpy(t + r * NR, p + r * ldp, cols * sizeof(float));
    if (first) micro<true>(kc, ap, bp, t, NR);
    else micro<false>(kc, ap, bp, t, NR);
    for (std::int64_t r = 0; r < rows; ++r) std::memcpy(p + r * ldp, t + r * NR, cols * sizeof(float));
  }

  // Adds the segment's partial sums P into the total T: T = fma(P, s_ij, T) (the first
  // segment starts from T = +0). s_ij = segment(i, k0, j) is the product of a row factor
  // and a column factor, each computed once (the same float product as
  // ScalePlan::segment).
  static void promote(const GemmPlan& pl, std::int64_t k0, bool first, const float* P, float* T,
                      float* col) {
#pragma omp for schedule(static)
    for (std::int64_t j = 0; j < pl.N; ++j) col[j] = pl.sp.kb && pl.sp.sb.k_block ? pl.sp.sb.at(k0, j) : 1.0f;
#pragma omp for schedule(static)
    for (std::int64_t i = 0; i < pl.M; ++i) {
      const float row = pl.sp.kb && pl.sp.sa.k_block ? pl.sp.sa.at(i, k0) : 1.0f;
      const float* p = P + i * pl.N;
      float* t = T + i * pl.N;
      std::int64_t j = 0;
      for (; j + W <= pl.N; j += W) {
        const VF s = VF(row) * VF::load_unaligned(col + j);
        const VF t0 = first ? VF(0.0f) : VF::load_unaligned(t + j);
        fused_fma(VF::load_unaligned(p + j), s, t0).store_unaligned(t + j);
      }
      for (; j < pl.N; ++j) {
        const VF s(row * col[j]);
        const VF t0(first ? 0.0f : t[j]);
        t[j] = fused_fma(VF(p[j]), s, t0).get(0);
      }
    }
  }

  static void float32(const GemmPlan& pl, const GemmOptions& o, const Float32Work& w,
                      int a_bytes, int b_bytes, float* c, std::int64_t ldc) {
    const Pack pa = pick_a(a_bytes), pb = pick_b(b_bytes);
    const std::int64_t M = pl.M, N = pl.N, K = pl.K;
    bool first_segment = true;
#pragma omp parallel num_threads(pl.threads)
    {
      float* apack = w.apack + std::int64_t(omp_get_thread_num()) * KC * MC;
      if (K == 0) {
#pragma omp for schedule(static)
        for (std::int64_t i = 0; i < M * N; ++i) w.T[i] = 0.0f;
      }
      for (std::int64_t s0 = 0; s0 < K; s0 += pl.L) {
        const std::int64_t s1 = min64(K, s0 + pl.L);
        for (std::int64_t jc = 0; jc < N; jc += NC) {
          const std::int64_t nc = min64(NC, N - jc);
          for (std::int64_t k0 = s0; k0 < s1; k0 += KC) {
            const std::int64_t kc = min64(KC, s1 - k0);
            pb(w.sb, w.tb, k0, kc, jc, nc, w.bpack);  // omp for inside; implicit barrier
            const std::int64_t mblocks = (M + MC - 1) / MC;
#pragma omp for schedule(dynamic)
            for (std::int64_t mb = 0; mb < mblocks; ++mb) {
              const std::int64_t i0 = mb * MC, mc = min64(MC, M - i0);
              pa(w.sa, w.ta, i0, mc, k0, kc, apack);
              for (std::int64_t jr = 0; jr < nc; jr += NR)
                for (std::int64_t ir = 0; ir < mc; ir += MR)
                  tile(k0 == s0, kc, apack + (ir / MR) * kc * MR, w.bpack + (jr / NR) * kc * NR,
                       w.P + (i0 + ir) * N + jc + jr, N, min64(MR, mc - ir), min64(NR, nc - jr));
            }
          }
        }
        promote(pl, s0, first_segment, w.P, w.T, w.col);
#pragma omp single
        first_segment = false;
      }
      gemm_finish(pl, o, w.T, pl.N, c, ldc, w.b_out);
    }
  }
};

}  // namespace fp8emu::detail
