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
  //
  // K is cut into segments of L steps (the scale block or the promotion interval,
  // whichever divides the other; the last segment may be shorter), and the K loop runs in
  // blocks of at most KC steps that hold whole segments or lie inside one segment
  // (float32_block_end). For each register tile the microkernel sums a segment in acc
  // from +0 and, at the segment's end, promotes it while the tile is in registers:
  // tot = fma(acc, s, tot), s = row factor * column factor of the segment, tot starting
  // from +0 — the reference's std::fma(p, s, total) for every element, in the same order.
  // A segment that runs on into the next block leaves acc in P, the totals pass from block
  // to block through T, and the block that ends K writes C through the epilogue.

  static constexpr int NR = 2 * W;
  static constexpr int MR = W >= 16 ? 12 : 6;
  static constexpr std::int64_t KC = kGemmKC, MC = 8 * MR, NC = kGemmNC;

  static std::int64_t min64(std::int64_t a, std::int64_t b) { return a < b ? a : b; }

  // One block [k0, k0 + kc) of the K loop.
  struct Block {
    std::int64_t k0, kc, L;
    std::int64_t len;   // steps of each segment in the block (the last may be shorter)
    std::int64_t nseg;  // segments in the block
    bool opens;         // the block starts inside a segment: acc starts from P
    bool closes;        // its last segment ends in it (else acc goes to P)
    bool last;          // it ends K: the epilogue writes C
    // Returns the first step of segment g (the step whose scales the segment takes).
    std::int64_t segment_start(std::int64_t g) const { return (k0 + g * len) / L * L; }
  };

  static Block block(const GemmPlan& pl, std::int64_t k0) {
    const std::int64_t K = pl.K, L = pl.L, k1 = float32_block_end(k0, K, L);
    Block b{k0, k1 - k0, L, L, 1, false, true, k1 == K};
    if (L <= KC) {
      b.nseg = (b.kc + L - 1) / L;
    } else {
      b.len = b.kc;
      b.opens = k0 % L != 0;
      b.closes = k1 == K || k1 % L == 0;
    }
    return b;
  }

  // Where one register tile reads and writes, each with its leading dimension: P (open
  // partial sums), T (totals between blocks), C, and the epilogue's row and column factors
  // of the tile (MR and NR of them).
  struct TileIO {
    float* p;
    std::int64_t ldp;
    float* t;
    std::int64_t ldt;
    float* c;
    std::int64_t ldc;
    const float* ga;
    const float* bo;
  };

  // The epilogue (gemm.cpp, epilogue_row): g * total, or fma(g, total, beta * c), a NaN
  // result as 0x7FC00000.
  [[gnu::always_inline]] static VF epilogue(VF g, VF total, float beta, const float* c) {
    const VF r = beta == 0.0f ? g * total : fused_fma(g, total, VF(beta) * VF::load_unaligned(c));
    return xsimd::select(xsimd::isnan(r), xsimd::bitwise_cast<VF>(VI(0x7FC00000)), r);
  }

  // One MR x NR tile over one block: ap and bp the packed panels, rf and cf the row and
  // column factors of each segment (MR and NR per segment).
  [[gnu::always_inline]] static void micro(const Block& b, const float* ap, const float* bp,
                                           const float* rf, const float* cf, const TileIO& io,
                                           float beta) {
    const VF zero(0.0f);
    VF acc[MR][2];
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      acc[r][0] = b.opens ? VF::load_unaligned(io.p + r * io.ldp) : zero;
      acc[r][1] = b.opens ? VF::load_unaligned(io.p + r * io.ldp + W) : zero;
    }
    alignas(64) float tot[MR * NR];
    for (std::int64_t g = 0, s0 = 0; g < b.nseg; ++g, s0 += b.len) {
      const std::int64_t s1 = min64(b.kc, s0 + b.len);
      for (std::int64_t k = s0; k < s1; ++k) {
        const VF b0 = VF::load_aligned(bp + k * NR), b1 = VF::load_aligned(bp + k * NR + W);
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) {
          const VF av(ap[k * MR + r]);
          acc[r][0] = fused_fma(av, b0, acc[r][0]);
          acc[r][1] = fused_fma(av, b1, acc[r][1]);
        }
      }
      if (!b.closes) {  // one segment, which runs on into the next block
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) {
          acc[r][0].store_unaligned(io.p + r * io.ldp);
          acc[r][1].store_unaligned(io.p + r * io.ldp + W);
        }
        return;
      }
      // The promotion: the previous total comes from T for the block's first segment
      // (+0 for the first segment of K), else from tot.
      const bool from_zero = b.k0 + s0 < b.L, final = b.last && g + 1 == b.nseg;
      const float* tin = g == 0 ? io.t : tot;
      const std::int64_t ldin = g == 0 ? io.ldt : NR;
      const VF c0 = VF::load_aligned(cf + g * NR), c1 = VF::load_aligned(cf + g * NR + W);
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        const VF row(rf[g * MR + r]);
        const VF t0 = from_zero ? zero : VF::load_unaligned(tin + r * ldin);
        const VF t1 = from_zero ? zero : VF::load_unaligned(tin + r * ldin + W);
        const VF u0 = fused_fma(acc[r][0], row * c0, t0);
        const VF u1 = fused_fma(acc[r][1], row * c1, t1);
        if (final) {
          float* cr = io.c + r * io.ldc;
          const VF ga(io.ga[r]);
          epilogue(ga * VF::load_unaligned(io.bo), u0, beta, cr).store_unaligned(cr);
          epilogue(ga * VF::load_unaligned(io.bo + W), u1, beta, cr + W).store_unaligned(cr + W);
        } else {
          u0.store_aligned(tot + r * NR);
          u1.store_aligned(tot + r * NR + W);
        }
        acc[r][0] = zero;
        acc[r][1] = zero;
      }
    }
    if (!b.last)
      for (int r = 0; r < MR; ++r) std::memcpy(io.t + r * io.ldt, tot + r * NR, NR * sizeof(float));
  }

  // One tile of rows x cols at most MR x NR: the edge tiles go through local tiles, so
  // that the microkernel never touches memory outside M x N.
  static void tile(const Block& b, const float* ap, const float* bp, const float* rf,
                   const float* cf, const TileIO& io, std::int64_t rows, std::int64_t cols,
                   float beta) {
    if (rows == MR && cols == NR) return micro(b, ap, bp, rf, cf, io, beta);
    alignas(64) float pt[MR * NR] = {}, tt[MR * NR] = {}, ct[MR * NR] = {};
    const bool has_prior = b.closes && b.k0 >= b.L;  // totals from earlier blocks in T
    const std::size_t bytes = std::size_t(cols) * sizeof(float);
    for (std::int64_t r = 0; r < rows; ++r) {
      if (b.opens) std::memcpy(pt + r * NR, io.p + r * io.ldp, bytes);
      if (has_prior) std::memcpy(tt + r * NR, io.t + r * io.ldt, bytes);
      if (b.last && beta != 0.0f) std::memcpy(ct + r * NR, io.c + r * io.ldc, bytes);
    }
    micro(b, ap, bp, rf, cf, TileIO{pt, NR, tt, NR, ct, NR, io.ga, io.bo}, beta);
    for (std::int64_t r = 0; r < rows; ++r) {
      if (!b.closes) std::memcpy(io.p + r * io.ldp, pt + r * NR, bytes);
      else if (!b.last) std::memcpy(io.t + r * io.ldt, tt + r * NR, bytes);
      else std::memcpy(io.c + r * io.ldc, ct + r * NR, bytes);
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

  // Packs the rows x cols values at d[r * rs + c * cs] as out[c * ld + r] for c < cols,
  // out[c * ld + r] = 0 for the padding rows rows .. ld - 1 (a panel: k = c, lanes r),
  // reading along whichever of r and c is contiguous.
  template <class T>
  [[gnu::always_inline]] static void pack_panel(const T* d, std::int64_t rs, std::int64_t cs,
                                                const float* table, std::int64_t rows,
                                                std::int64_t cols, std::int64_t ld, float* out) {
    if (rs == 1) {
      for (std::int64_t c = 0; c < cols; ++c)
        for (std::int64_t r = 0; r < rows; ++r) out[c * ld + r] = code_value(table, d[r + c * cs]);
    } else {
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c)
          out[c * ld + r] = code_value(table, d[r * rs + c * cs]);
    }
    if (rows < ld)
      for (std::int64_t c = 0; c < cols; ++c)
        for (std::int64_t r = rows; r < ld; ++r) out[c * ld + r] = 0.0f;
  }

  template <class T>
  static void pack_b(const Strided& s, const float* table, std::int64_t k0, std::int64_t kc,
                     std::int64_t j0, std::int64_t nc, float* out) {
    const T* d = static_cast<const T*>(s.data);
    const std::int64_t panels = (nc + NR - 1) / NR;
#pragma omp for schedule(static)
    for (std::int64_t pnl = 0; pnl < panels; ++pnl) {
      const std::int64_t jb = j0 + pnl * NR, jn = min64(NR, j0 + nc - jb);
      pack_panel(d + k0 * s.rs + jb * s.cs, s.cs, s.rs, table, jn, kc, NR, out + pnl * kc * NR);
    }
  }

  template <class T>
  static void pack_a(const Strided& s, const float* table, std::int64_t i0, std::int64_t mc,
                     std::int64_t k0, std::int64_t kc, float* out) {
    const T* d = static_cast<const T*>(s.data);
    for (std::int64_t pnl = 0; pnl * MR < mc; ++pnl) {
      const std::int64_t ib = i0 + pnl * MR, in = min64(MR, i0 + mc - ib);
      pack_panel(d + ib * s.rs + k0 * s.cs, s.rs, s.cs, table, in, kc, MR, out + pnl * kc * MR);
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

  // The segment factors of the block, per panel: A's row factors sa(i, k) (MR per
  // segment) and B's column factors sb(k, j) (NR per segment) at the segment's first step
  // k, 1 for an operand whose scales do not split K (ScalePlan::segment multiplies the
  // two). Padding rows and columns repeat the last one.
  static void pack_row_factors(const GemmPlan& pl, const Block& b, std::int64_t i0,
                               std::int64_t mc, float* out) {
    const ScaleGrid& g = pl.sp.sa;
    for (std::int64_t pnl = 0; pnl * MR < mc; ++pnl) {
      const std::int64_t ib = i0 + pnl * MR, in = min64(MR, pl.M - ib);
      for (std::int64_t s = 0; s < b.nseg; ++s) {
        float* o = out + (pnl * b.nseg + s) * MR;
        if (!g.k_block) {
          for (std::int64_t r = 0; r < MR; ++r) o[r] = 1.0f;
          continue;
        }
        g.run(ib, b.segment_start(s), 1, 0, in, o);
        for (std::int64_t r = in; r < MR; ++r) o[r] = o[in - 1];
      }
    }
  }

  static void pack_col_factors(const GemmPlan& pl, const Block& b, std::int64_t j0,
                               std::int64_t nc, float* out) {
    const ScaleGrid& g = pl.sp.sb;
    const std::int64_t panels = (nc + NR - 1) / NR;
#pragma omp for schedule(static) nowait
    for (std::int64_t pnl = 0; pnl < panels; ++pnl) {
      const std::int64_t jb = j0 + pnl * NR, jn = min64(NR, pl.N - jb);
      for (std::int64_t s = 0; s < b.nseg; ++s) {
        float* o = out + (pnl * b.nseg + s) * NR;
        if (!g.k_block) {
          for (std::int64_t c = 0; c < NR; ++c) o[c] = 1.0f;
          continue;
        }
        g.run(b.segment_start(s), jb, 0, 1, jn, o);
        for (std::int64_t c = jn; c < NR; ++c) o[c] = o[jn - 1];
      }
    }
  }

  static void float32(const GemmPlan& pl, const GemmOptions& o, const Float32Work& w,
                      int a_bytes, int b_bytes, float* c, std::int64_t ldc) {
    const Pack pa = pick_a(a_bytes), pb = pick_b(b_bytes);
    const std::int64_t M = pl.M, N = pl.N, K = pl.K;
    const float beta = o.beta;
#pragma omp parallel num_threads(pl.threads)
    {
      const std::int64_t tid = omp_get_thread_num();
      float* apack = w.apack + tid * KC * MC;
      float* rpack = w.rpack + tid * w.segments * MC;
      for (std::int64_t jc = 0; jc < N; jc += NC) {
        const std::int64_t nc = min64(NC, N - jc);
        for (std::int64_t k0 = 0; k0 < K;) {
          const Block b = block(pl, k0);
          pack_col_factors(pl, b, jc, nc, w.cpack);
          pb(w.sb, w.tb, k0, b.kc, jc, nc, w.bpack);  // omp for inside; implicit barrier
          const std::int64_t mblocks = (M + MC - 1) / MC;
#pragma omp for schedule(dynamic)
          for (std::int64_t mb = 0; mb < mblocks; ++mb) {
            const std::int64_t i0 = mb * MC, mc = min64(MC, M - i0);
            pa(w.sa, w.ta, i0, mc, k0, b.kc, apack);
            pack_row_factors(pl, b, i0, mc, rpack);
            for (std::int64_t jr = 0; jr < nc; jr += NR)
              for (std::int64_t ir = 0; ir < mc; ir += MR) {
                const std::int64_t i = i0 + ir, j = jc + jr;
                const TileIO io{w.P ? w.P + i * N + j : nullptr, N,
                                w.T ? w.T + i * N + j : nullptr, N,
                                c + i * ldc + j, ldc, w.a_g + i, w.b_out + j};
                tile(b, apack + (ir / MR) * b.kc * MR, w.bpack + (jr / NR) * b.kc * NR,
                     rpack + (ir / MR) * b.nseg * MR, w.cpack + (jr / NR) * b.nseg * NR, io,
                     min64(MR, mc - ir), min64(NR, nc - jr), beta);
              }
          }
          k0 += b.kc;
        }
      }
    }
  }
};

}  // namespace fp8emu::detail
