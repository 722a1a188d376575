// Fast paths of gemm, each equal to gemm_reference bit for bit (tests/test_gemm.cpp):
//
// 1. float32 nearest-even accumulation in sequential-k order: operands decoded to float
//    and packed into panels, a register-blocked xsimd microkernel of fused multiply-adds
//    (each step is round(s + a*b), one rounding, exactly the definition), cache blocking
//    over K that never reorders the k sum of an element, OpenMP over row blocks.
//
// 2. The NVIDIA matrix-unit model when every step is exact in float32: products of the
//    operand formats are exact floats, each term truncated to F bits at weight 2^E is an
//    integer-valued float trunc(p * 2^(F-E)), and a block sum of them needs at most
//    F + 2 + log2(block + 1) <= 24 bits. Then the block result is (S 2^-F) 2^E exactly, and
//    truncation of the output to `out` fraction bits clears the low 23 - out bits of the
//    float (for subnormal results too, whose quantum 2^-149 the model's 2^(-126-out)
//    is a multiple of).
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "fp8emu/arith.hpp"
#include "fp8emu/gemm.hpp"
#include "gemm_internal.hpp"
#include "simd_ops.hpp"

namespace fp8emu {
namespace {

using Arch = xsimd::default_arch;
using VF = xsimd::batch<float, Arch>;
constexpr int W = int(VF::size);

bool is_float32(const Format& f) { return f == Format(formats::float32{}); }

bool has_nonfinite(const CodeMatrix& m) {
  const detail::Strided s = detail::strided(m);
  const std::vector<float>& t = value_table(m.format);
  for (std::int64_t r = 0; r < m.rows; ++r)
    for (std::int64_t c = 0; c < m.cols; ++c)
      if (!std::isfinite(t[s.at(r, c)])) return true;
  return false;
}

// Segments are regular when one of the scale block and the promotion interval divides
// the other (or only one is set): every segment but the last has length L.
std::int64_t segment_length(std::int64_t K, std::int64_t kb, std::int64_t nc) {
  if (kb && nc) {
    if (kb % nc && nc % kb) return -1;
    return std::min(kb, nc);
  }
  if (kb) return kb;
  if (nc) return nc;
  return std::max<std::int64_t>(K, 1);
}

struct Plan {
  std::int64_t M, N, K, L;
  detail::ScalePlan sp;
  int threads;
};

Plan make_plan(const CodeMatrix& a, const CodeMatrix& b, const GemmOptions& o) {
  Plan p;
  p.M = a.rows;
  p.N = b.cols;
  p.K = a.cols;
  p.sp = detail::scale_plan(a, b, o);
  p.L = segment_length(p.K, p.sp.kb, o.accumulation.promote_interval);
  p.threads = o.exec.threads > 0 ? o.exec.threads : omp_get_max_threads();
  return p;
}

// Codes of at most 16 bits decode through a table; float32 codes are their own bits.
bool operand_decodable(const Format& f) { return total_bits(f) <= 16 || is_float32(f); }

// The value of code c (a float32 bit pattern for 4-byte codes).
template <class T>
inline float code_value(const float* table, T c) {
  if constexpr (sizeof(T) == 4) return std::bit_cast<float>(c);
  else return table[c];
}

bool float32_path(const CodeMatrix& a, const CodeMatrix& b, const GemmOptions& o) {
  const Accumulation& acc = o.accumulation;
  return o.exec.simd && acc.unit.model == UnitModel::none && is_float32(acc.format) &&
         acc.convert.rounding == Rounding::nearest_even &&
         acc.convert.saturation == Saturation::none && !acc.convert.flush_inputs &&
         !acc.convert.flush_outputs && acc.order == SumOrder::sequential && !acc.kahan &&
         operand_decodable(a.format) && operand_decodable(b.format);
}

bool unit_path_formats(const Format& fa, const Format& fb, const MatrixUnit& u) {
  const auto bitlen = [](int x) { return 32 - std::countl_zero(std::uint32_t(x)); };
  const int emax_a = int(std::ilogb(max_finite(fa))), emax_b = int(std::ilogb(max_finite(fb)));
  return total_bits(fa) <= 16 && total_bits(fb) <= 16 && fa.policy != Policy::e8m0 &&
         fb.policy != Policy::e8m0 && fa.mantissa_bits + fb.mantissa_bits + 2 <= 24 &&
         quantum_min(fa) + quantum_min(fb) >= -149 &&
         emin(fa) + emin(fb) >= u.fraction_bits - 127 && emax_a + emax_b + 2 <= 127 &&
         u.fraction_bits + 2 + bitlen(u.block + 1) <= 24;
}

bool unit_path(const CodeMatrix& a, const CodeMatrix& b, const GemmOptions& o) {
  const MatrixUnit& u = o.accumulation.unit;
  return o.exec.simd && u.model == UnitModel::nvidia && u.term_rounding == Rounding::toward_zero &&
         u.output_rounding == Rounding::toward_zero && unit_path_formats(a.format, b.format, u);
}

// ---------------------------------------------------------------------------
// 1. float32 sequential accumulation.
// ---------------------------------------------------------------------------

constexpr int NR = 2 * W;
constexpr int MR = W >= 16 ? 12 : 6;
constexpr std::int64_t KC = 256, MC = 8 * MR, NC = 4096;

// acc[r][v] (+)= a[k][r] * b[k][v] over k = 0 .. kc - 1, in order; p has leading dim ldp.
template <bool kFirst>
inline void micro(std::int64_t kc, const float* ap, const float* bp, float* p, std::int64_t ldp) {
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
      acc[r][0] = detail::fused_fma(av, b0, acc[r][0]);
      acc[r][1] = detail::fused_fma(av, b1, acc[r][1]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    acc[r][0].store_unaligned(p + r * ldp);
    acc[r][1].store_unaligned(p + r * ldp + W);
  }
}

template <class T>
void pack_b(const detail::Strided& s, const float* table, std::int64_t k0, std::int64_t kc,
            std::int64_t j0, std::int64_t nc, float* out) {
  const T* d = static_cast<const T*>(s.data);
  const std::int64_t panels = (nc + NR - 1) / NR;
#pragma omp for schedule(static)
  for (std::int64_t pnl = 0; pnl < panels; ++pnl) {
    float* o = out + pnl * kc * NR;
    const std::int64_t jb = j0 + pnl * NR, jn = std::min<std::int64_t>(NR, j0 + nc - jb);
    for (std::int64_t k = 0; k < kc; ++k)
      for (std::int64_t c = 0; c < NR; ++c)
        o[k * NR + c] = c < jn ? code_value(table, d[(k0 + k) * s.rs + (jb + c) * s.cs]) : 0.0f;
  }
}

template <class T>
void pack_a(const detail::Strided& s, const float* table, std::int64_t i0, std::int64_t mc,
            std::int64_t k0, std::int64_t kc, float* out) {
  const T* d = static_cast<const T*>(s.data);
  for (std::int64_t pnl = 0; pnl * MR < mc; ++pnl) {
    float* o = out + pnl * kc * MR;
    const std::int64_t ib = i0 + pnl * MR, in = std::min<std::int64_t>(MR, i0 + mc - ib);
    for (std::int64_t k = 0; k < kc; ++k)
      for (std::int64_t r = 0; r < MR; ++r)
        o[k * MR + r] = r < in ? code_value(table, d[(ib + r) * s.rs + (k0 + k) * s.cs]) : 0.0f;
  }
}

using PackA = void (*)(const detail::Strided&, const float*, std::int64_t, std::int64_t, std::int64_t,
                       std::int64_t, float*);
using PackB = void (*)(const detail::Strided&, const float*, std::int64_t, std::int64_t, std::int64_t,
                       std::int64_t, float*);

PackA pick_a(int bytes) {
  return bytes == 1 ? &pack_a<std::uint8_t> : bytes == 2 ? &pack_a<std::uint16_t> : &pack_a<std::uint32_t>;
}
PackB pick_b(int bytes) {
  return bytes == 1 ? &pack_b<std::uint8_t> : bytes == 2 ? &pack_b<std::uint16_t> : &pack_b<std::uint32_t>;
}

// One tile of the partial-sum buffer P: the microkernel writes through a local tile at the
// edges so that it never touches memory outside M x N.
inline void tile(bool first, std::int64_t kc, const float* ap, const float* bp, float* p,
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
// segment starts from T = +0).
// s_ij = segment(i, k0, j) is the product of a row factor and a column factor, each
// computed once (the same float product as ScalePlan::segment).
void promote(const Plan& pl, std::int64_t k0, bool first, const float* P, float* T, float* col) {
#pragma omp for schedule(static)
  for (std::int64_t j = 0; j < pl.N; ++j) col[j] = pl.sp.kb && pl.sp.sb.k_block ? pl.sp.sb.at(k0, j) : 1.0f;
#pragma omp for schedule(static)
  for (std::int64_t i = 0; i < pl.M; ++i) {
    const float row = pl.sp.kb && pl.sp.sa.k_block ? pl.sp.sa.at(i, k0) : 1.0f;
    for (std::int64_t j = 0; j < pl.N; ++j) {
      const float t = first ? 0.0f : T[i * pl.N + j];
      T[i * pl.N + j] = std::fma(P[i * pl.N + j], row * col[j], t);
    }
  }
}

// Writes C from the totals T (leading dimension ldt).
void finish(const Plan& pl, const GemmOptions& o, const float* T, std::int64_t ldt, float* c,
            std::int64_t ldc, const float* b_out) {
#pragma omp for schedule(static)
  for (std::int64_t i = 0; i < pl.M; ++i) detail::epilogue_row(o, pl.sp, i, pl.N, b_out, T + i * ldt, c + i * ldc);
}

void gemm_float32(const CodeMatrix& a, const CodeMatrix& b, float* c, std::int64_t ldc,
                  const GemmOptions& o, const Plan& pl) {
  static const std::vector<float> none;
  const std::vector<float>& ta = total_bits(a.format) <= 16 ? value_table(a.format) : none;
  const std::vector<float>& tb = total_bits(b.format) <= 16 ? value_table(b.format) : none;
  const detail::Strided sa = detail::strided(a), sb = detail::strided(b);
  const PackA pa = pick_a(code_bytes(a.format));
  const PackB pb = pick_b(code_bytes(b.format));
  const std::int64_t M = pl.M, N = pl.N, K = pl.K;
  std::vector<float> P(std::size_t(M * N)), T(std::size_t(M * N)), col(static_cast<std::size_t>(N));
  const std::vector<float> b_out = detail::epilogue_columns(o, pl.sp, N);
  const std::int64_t nc_max = std::min(NC, N);
  std::vector<float, xsimd::aligned_allocator<float>> bpack(
      std::size_t(KC * ((nc_max + NR - 1) / NR) * NR));
  bool first_segment = true;
#pragma omp parallel num_threads(pl.threads)
  {
    std::vector<float, xsimd::aligned_allocator<float>> apack(std::size_t(KC * MC));
    if (K == 0) {
#pragma omp for schedule(static)
      for (std::int64_t i = 0; i < M * N; ++i) T[i] = 0.0f;
    }
    for (std::int64_t s0 = 0; s0 < K; s0 += pl.L) {
      const std::int64_t s1 = std::min(K, s0 + pl.L);
      for (std::int64_t jc = 0; jc < N; jc += NC) {
        const std::int64_t nc = std::min(NC, N - jc);
        for (std::int64_t k0 = s0; k0 < s1; k0 += KC) {
          const std::int64_t kc = std::min(KC, s1 - k0);
          pb(sb, tb.data(), k0, kc, jc, nc, bpack.data());  // omp for inside; implicit barrier
          const std::int64_t mblocks = (M + MC - 1) / MC;
#pragma omp for schedule(dynamic)
          for (std::int64_t mb = 0; mb < mblocks; ++mb) {
            const std::int64_t i0 = mb * MC, mc = std::min(MC, M - i0);
            pa(sa, ta.data(), i0, mc, k0, kc, apack.data());
            for (std::int64_t jr = 0; jr < nc; jr += NR)
              for (std::int64_t ir = 0; ir < mc; ir += MR)
                tile(k0 == s0, kc, apack.data() + (ir / MR) * kc * MR, bpack.data() + (jr / NR) * kc * NR,
                     P.data() + (i0 + ir) * N + jc + jr, N, std::min<std::int64_t>(MR, mc - ir),
                     std::min<std::int64_t>(NR, nc - jr));
          }
        }
      }
      promote(pl, s0, first_segment, P.data(), T.data(), col.data());
#pragma omp single
      first_segment = false;
    }
    finish(pl, o, T.data(), pl.N, c, ldc, b_out.data());
  }
}

// ---------------------------------------------------------------------------
// 2. The NVIDIA matrix-unit model.
// ---------------------------------------------------------------------------

constexpr int RU = 12;  // rows per register block
constexpr int VU = 1;  // vectors of columns per register block

// Operand values and 2^(unit exponent) (2^-126 for zeros), row-major over (row, k) for A
// and (k, column) for B, B's columns padded to a multiple of VU * W (padding lanes are
// computed and dropped).
struct UnitOperands {
  std::vector<float> av, ax;
  std::vector<float, xsimd::aligned_allocator<float>> bv, bx;
  std::int64_t npad;
};

// 2^e of every code, e the operand's exponent as the model takes it (gemm.cpp, Ref::Term):
// -126 for zeros; NaN and infinities (which never reach this path) 0.
std::vector<float> unit_exp_table(const Format& f) {
  std::vector<float> t(std::size_t{1} << total_bits(f));
  for (std::size_t c = 0; c < t.size(); ++c) {
    const detail::Unpacked u = detail::unpack(f, std::uint32_t(c), false);
    const bool finite_nonzero = u.cls == ValueClass::normal || u.cls == ValueClass::subnormal;
    t[c] = finite_nonzero ? std::ldexp(1.0f, u.exp + f.mantissa_bits)
           : u.cls == ValueClass::zero ? 0x1p-126f
                                       : 0.0f;
  }
  return t;
}

inline VF pow2_bits(xsimd::batch<std::int32_t, Arch> field) {
  return xsimd::bitwise_cast<VF>(field << 23);
}

void unit_block_row(const UnitOperands& u, const Plan& pl, const GemmOptions& o, std::int64_t i0,
                    std::int64_t j0, float* T) {
  using VI = xsimd::batch<std::int32_t, Arch>;
  const MatrixUnit& mu = o.accumulation.unit;
  const int F = mu.fraction_bits;
  const float twoF = std::ldexp(1.0f, F), twoMinusF = std::ldexp(1.0f, -F);
  const VI mask(std::int32_t(~((1u << (23 - mu.output_fraction_bits)) - 1u)));
  const bool term_input = mu.input == UnitInput::term;
  const std::int64_t K = pl.K, npad = u.npad;
  VF total[RU][VU], cacc[RU][VU];
  for (int r = 0; r < RU; ++r)
    for (int v = 0; v < VU; ++v) total[r][v] = VF(0.0f);
  for (std::int64_t s0 = 0; s0 < K; s0 += pl.L) {
    const std::int64_t s1 = std::min(K, s0 + pl.L);
    for (int r = 0; r < RU; ++r)
      for (int v = 0; v < VU; ++v) cacc[r][v] = VF(0.0f);
    for (std::int64_t b0 = s0; b0 < s1; b0 += mu.block) {
      const std::int64_t b1 = std::min(s1, b0 + mu.block);
      VF cin[RU][VU], E[RU][VU], acc[RU][VU];
      for (int r = 0; r < RU; ++r)
        for (int v = 0; v < VU; ++v) {
          cin[r][v] = term_input ? cacc[r][v] : VF(0.0f);
          // 2^ec: the exponent field of C, at least 1 (zero and subnormals: -126), at most
          // 254 (an infinite C is restored after the block).
          const VI field = xsimd::bitwise_cast<xsimd::batch<std::int32_t, Arch>>(cin[r][v]) >> 23 & VI(0xFF);
          E[r][v] = pow2_bits(xsimd::min(xsimd::max(field, VI(1)), VI(254)));
          acc[r][v] = VF(0.0f);
        }
      // Pass 1: E = max over the block of 2^(e_a + e_b), zero operands with e = -126 (a
      // term below 2^-126, or flushed to 0 by the float product, is below C's and changes
      // nothing).
      for (std::int64_t k = b0; k < b1; ++k) {
        VF bx[VU];
        for (int v = 0; v < VU; ++v) bx[v] = VF::load_aligned(&u.bx[k * npad + j0 + v * W]);
#pragma GCC unroll 12
        for (int r = 0; r < RU; ++r) {
          const VF ax(u.ax[(i0 + r) * K + k]);
          for (int v = 0; v < VU; ++v) E[r][v] = xsimd::max(E[r][v], ax * bx[v]);
        }
      }
      // 2^(F - E), clamped where no nonzero product exists (all terms are then zero).
      VF sF[RU][VU];
      for (int r = 0; r < RU; ++r)
        for (int v = 0; v < VU; ++v) {
          const VI ef = xsimd::bitwise_cast<xsimd::batch<std::int32_t, Arch>>(E[r][v]) >> 23;
          sF[r][v] = pow2_bits(xsimd::min(VI(F + 254) - ef, VI(254)));
        }
      // Pass 2: the sum of trunc(p 2^(F-E)), exact in float.
      for (std::int64_t k = b0; k < b1; ++k) {
        VF bv[VU];
        for (int v = 0; v < VU; ++v) bv[v] = VF::load_aligned(&u.bv[k * npad + j0 + v * W]);
#pragma GCC unroll 12
        for (int r = 0; r < RU; ++r) {
          const VF av(u.av[(i0 + r) * K + k]);
          for (int v = 0; v < VU; ++v) acc[r][v] += xsimd::trunc((av * bv[v]) * sF[r][v]);
        }
      }
      for (int r = 0; r < RU; ++r)
        for (int v = 0; v < VU; ++v) {
          // C's term: trunc(C 2^-E 2^F), scaled in two exact steps.
          const VF tc = xsimd::trunc((cin[r][v] / E[r][v]) * VF(twoF));
          VF out = ((acc[r][v] + tc) * VF(twoMinusF)) * E[r][v];
          out = xsimd::bitwise_cast<VF>(xsimd::bitwise_cast<xsimd::batch<std::int32_t, Arch>>(out) & mask);
          out = out + VF(0.0f);  // the models return +0 for a zero sum
          out = xsimd::select(xsimd::isinf(cin[r][v]), cin[r][v], out);
          cacc[r][v] = term_input ? out : cacc[r][v] + out;
        }
    }
    // Promotion: T = fma(P, s, T).
    for (int r = 0; r < RU; ++r) {
      const std::int64_t i = std::min(i0 + r, pl.M - 1);
      for (int v = 0; v < VU; ++v) {
        alignas(64) float s[W];
        for (int l = 0; l < W; ++l) s[l] = pl.sp.segment(i, s0, std::min(j0 + v * W + l, pl.N - 1));
        total[r][v] = detail::fused_fma(cacc[r][v], VF::load_aligned(s), total[r][v]);
      }
    }
  }
  for (int r = 0; r < RU; ++r)
    for (int v = 0; v < VU; ++v) total[r][v].store_unaligned(T + r * npad + j0 + v * W);
}

void gemm_unit(const CodeMatrix& a, const CodeMatrix& b, float* c, std::int64_t ldc,
               const GemmOptions& o, const Plan& pl) {
  const std::int64_t M = pl.M, N = pl.N, K = pl.K;
  const std::int64_t G = VU * W, npad = (N + G - 1) / G * G, mpad = (M + RU - 1) / RU * RU;
  UnitOperands u;
  u.npad = npad;
  const std::vector<float>& tav = value_table(a.format);
  const std::vector<float>& tbv = value_table(b.format);
  const std::vector<float> tax = unit_exp_table(a.format), tbx = unit_exp_table(b.format);
  u.av.assign(std::size_t(mpad * K), 0.0f);
  u.ax.assign(std::size_t(mpad * K), 0.0f);
  u.bv.assign(std::size_t(K * npad), 0.0f);
  u.bx.assign(std::size_t(K * npad), 0.0f);
  const detail::Strided sa = detail::strided(a), sb = detail::strided(b);
  std::vector<float> T(std::size_t(mpad * npad));
  const std::vector<float> b_out = detail::epilogue_columns(o, pl.sp, N);
#pragma omp parallel num_threads(pl.threads)
  {
#pragma omp for schedule(static)
    for (std::int64_t i = 0; i < M; ++i)
      for (std::int64_t k = 0; k < K; ++k) {
        const std::uint32_t code = sa.at(i, k);
        u.av[i * K + k] = tav[code];
        u.ax[i * K + k] = tax[code];
      }
#pragma omp for schedule(static)
    for (std::int64_t k = 0; k < K; ++k)
      for (std::int64_t j = 0; j < N; ++j) {
        const std::uint32_t code = sb.at(k, j);
        u.bv[k * npad + j] = tbv[code];
        u.bx[k * npad + j] = tbx[code];
      }
    const std::int64_t cgroups = npad / G, rgroups = mpad / RU;
#pragma omp for schedule(dynamic) collapse(2)
    for (std::int64_t cg = 0; cg < cgroups; ++cg)
      for (std::int64_t rg = 0; rg < rgroups; ++rg)
        unit_block_row(u, pl, o, rg * RU, cg * G, T.data() + rg * RU * npad);
    finish(pl, o, T.data(), npad, c, ldc, b_out.data());
  }
}

}  // namespace

// The entry points (gemm_internal.hpp); gemm (gemm.cpp) chooses among them.
namespace detail {

namespace {

// Segments of one length, and a nonempty result.
bool regular(const Plan& pl) { return pl.L >= 0 && pl.M != 0 && pl.N != 0; }

}  // namespace

bool float32_fast_applies(const CodeMatrix& a, const CodeMatrix& b, const GemmOptions& o) {
  return regular(make_plan(a, b, o)) && float32_path(a, b, o);
}

void float32_fast(const CodeMatrix& a, const CodeMatrix& b, float* c, std::int64_t ldc,
                  const GemmOptions& o) {
  gemm_float32(a, b, c, ldc, o, make_plan(a, b, o));
}

bool nvidia_fast_applies(const CodeMatrix& a, const CodeMatrix& b, const GemmOptions& o) {
  return regular(make_plan(a, b, o)) && unit_path(a, b, o) && !has_nonfinite(a) &&
         !has_nonfinite(b);
}

void nvidia_fast(const CodeMatrix& a, const CodeMatrix& b, float* c, std::int64_t ldc,
                 const GemmOptions& o) {
  gemm_unit(a, b, c, ldc, o, make_plan(a, b, o));
}

}  // namespace detail

}  // namespace fp8emu
