// Fast paths of gemm, each equal to gemm_reference bit for bit (tests/test_gemm.cpp):
//
// 1. float32 nearest-even accumulation in sequential-k order: operands decoded to float
//    and packed into panels, a register-blocked xsimd microkernel of fused multiply-adds
//    (each step is round(s + a*b), one rounding, exactly the definition), cache blocking
//    over K that never reorders the k sum of an element, OpenMP over row blocks. Each
//    segment's partial sum is scaled and promoted into the total while its tile is in
//    registers, and the block that ends K writes C.
//
// 2. The NVIDIA matrix-unit model when every step is exact in float32: products of the
//    operand formats are exact floats, each term truncated to F bits at weight 2^E is an
//    integer-valued float trunc(p * 2^(F-E)), and a block sum of them needs at most
//    F + 2 + log2(block + 1) <= 24 bits. Then the block result is (S 2^-F) 2^E exactly, and
//    truncation of the output to `out` fraction bits clears the low 23 - out bits of the
//    float (for subnormal results too, whose quantum 2^-149 the model's 2^(-126-out)
//    is a multiple of).
//
// The SIMD loops of both are in gemm_kernels.hpp, compiled once per target and called
// through the KernelTable of the target in use (simd.hpp); this file decides the path,
// allocates and fills the buffers, and writes C from the unit kernel's totals (gemm_finish).
#include <omp.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "fp8emu/arith.hpp"
#include "fp8emu/array.hpp"
#include "fp8emu/gemm.hpp"
#include "gemm_internal.hpp"
#include "simd.hpp"

namespace fp8emu {
namespace {

using Plan = detail::GemmPlan;
// Buffers the kernels load with aligned loads: 64 bytes, enough for every target (xsimd's
// default alignment is that of the target this file is compiled for, the baseline).
using Aligned64 = xsimd::aligned_allocator<float, 64>;

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

bool float32_path(const CodeMatrix& a, const CodeMatrix& b, const GemmOptions& o) {
  const Accumulation& acc = o.accumulation;
  return o.exec.simd && detail::active_kernels() && acc.unit.model == UnitModel::none &&
         is_float32(acc.format) && acc.convert.rounding == Rounding::nearest_even &&
         acc.convert.saturation == Saturation::none && !acc.convert.flush_inputs &&
         !acc.convert.flush_outputs && acc.order == SumOrder::sequential && !acc.kahan &&
         operand_decodable(a.format) && operand_decodable(b.format);
}

bool unit_path_formats(const Format& fa, const Format& fb, const MatrixUnit& u) {
  const auto bitlen = [](int x) { return 32 - std::countl_zero(std::uint32_t(x)); };
  const int emax_a = int(std::ilogb(max_finite(fa))), emax_b = int(std::ilogb(max_finite(fb)));
  return total_bits(fa) <= 16 && total_bits(fb) <= 16 && has_zero(fa) &&
         has_zero(fb) && fa.mantissa_bits + fb.mantissa_bits + 2 <= 24 &&
         quantum_min(fa) + quantum_min(fb) >= -149 &&
         emin(fa) + emin(fb) >= u.fraction_bits - 127 && emax_a + emax_b + 2 <= 127 &&
         u.fraction_bits + 2 + bitlen(u.block + 1) <= 24;
}

bool unit_path(const CodeMatrix& a, const CodeMatrix& b, const GemmOptions& o) {
  const MatrixUnit& u = o.accumulation.unit;
  return o.exec.simd && detail::active_kernels() && u.model == UnitModel::nvidia &&
         u.term_rounding == Rounding::toward_zero && u.output_rounding == Rounding::toward_zero &&
         unit_path_formats(a.format, b.format, u);
}

// ---------------------------------------------------------------------------
// 1. float32 sequential accumulation.
// ---------------------------------------------------------------------------

}  // namespace

// Writes C from the totals T (leading dimension ldt).
void detail::gemm_finish(const Plan& pl, const GemmOptions& o, const float* T, std::int64_t ldt,
                         float* c, std::int64_t ldc, const float* b_out) {
#pragma omp for schedule(static)
  for (std::int64_t i = 0; i < pl.M; ++i) detail::epilogue_row(o, pl.sp, i, pl.N, b_out, T + i * ldt, c + i * ldc);
}

namespace {

// Scratch floats of the calling thread, aligned to 64 bytes and uninitialized (the kernel
// writes each before it reads it), kept from call to call: a training loop calls gemm
// with the same shapes again and again, and fresh pages on every call cost page faults.
class Scratch {
 public:
  // Returns room for the given counts of floats, one aligned piece for each.
  template <std::size_t N>
  std::array<float*, N> get(const std::array<std::int64_t, N>& counts) {
    std::size_t total = 0;
    for (std::int64_t n : counts) total += (std::size_t(n) + 15) / 16 * 16;
    if (total > size_) {
      void* p = std::aligned_alloc(64, std::max<std::size_t>(total, 16) * sizeof(float));
      if (!p) throw std::bad_alloc();
      data_.reset(static_cast<float*>(p));
      size_ = total;
    }
    std::array<float*, N> out;
    float* at = data_.get();
    for (std::size_t i = 0; i < N; ++i) {
      out[i] = counts[i] > 0 ? at : nullptr;
      at += (std::size_t(counts[i]) + 15) / 16 * 16;
    }
    return out;
  }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> data_;
  std::size_t size_ = 0;
};

void gemm_float32(const CodeMatrix& a, const CodeMatrix& b, float* c, std::int64_t ldc,
                  const GemmOptions& o, const Plan& pl, const detail::KernelTable& kt) {
  const std::int64_t M = pl.M, N = pl.N, K = pl.K, L = pl.L, KC = detail::kGemmKC;
  const std::vector<float> b_out = detail::epilogue_columns(o, pl.sp, N);
  if (K == 0) {  // every total is +0
    const std::vector<float> zeros(std::size_t(N), 0.0f);
    for (std::int64_t i = 0; i < M; ++i)
      detail::epilogue_row(o, pl.sp, i, N, b_out.data(), zeros.data(), c + i * ldc);
    return;
  }
  static const std::vector<float> none;
  const std::vector<float>& ta = total_bits(a.format) <= 16 ? value_table(a.format) : none;
  const std::vector<float>& tb = total_bits(b.format) <= 16 ? value_table(b.format) : none;
  const std::int64_t nr = kt.gemm_nr, mr = kt.gemm_mr, mc = 8 * mr;
  const std::int64_t mpad = (M + mr - 1) / mr * mr, npad = (N + nr - 1) / nr * nr;
  const std::int64_t ncpad = (std::min(detail::kGemmNC, N) + nr - 1) / nr * nr;
  const std::int64_t threads = std::max(pl.threads, 1);
  // Segments longer than a block keep partial sums in P; totals pass between blocks in T
  // when a segment ends before the last block.
  const std::int64_t segments = L <= KC ? KC / L : 1;
  const bool need_p = L > KC && K > KC;
  const bool need_t = detail::float32_block_end(0, K, L) < K && std::min(L, K) < K;
  thread_local Scratch scratch;
  const auto [P, T, a_g, b_pad, bpack, cpack, apack, rpack] =
      scratch.get<8>({need_p ? M * N : 0, need_t ? M * N : 0, mpad, npad, KC * ncpad,
                      segments * ncpad, KC * mc * threads, segments * mc * threads});
  for (std::int64_t i = 0; i < mpad; ++i)
    a_g[i] = detail::epilogue_row_factor(o, pl.sp, std::min(i, M - 1));
  for (std::int64_t j = 0; j < npad; ++j) b_pad[j] = b_out[std::size_t(std::min(j, N - 1))];
  const detail::Float32Work w{ta.data(), tb.data(), detail::strided(a), detail::strided(b),
                              P,         T,         a_g,                b_pad,
                              segments,  bpack,     cpack,              apack,
                              rpack};
  kt.gemm_float32(pl, o, w, code_bytes(a.format), code_bytes(b.format), c, ldc);
}

// ---------------------------------------------------------------------------
// 2. The NVIDIA matrix-unit model.
// ---------------------------------------------------------------------------

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

void gemm_unit(const CodeMatrix& a, const CodeMatrix& b, float* c, std::int64_t ldc,
               const GemmOptions& o, const Plan& pl, const detail::KernelTable& kt) {
  const std::int64_t M = pl.M, N = pl.N, K = pl.K;
  const std::int64_t G = kt.unit_cols, RU = detail::kUnitRows;
  const std::int64_t npad = (N + G - 1) / G * G, mpad = (M + RU - 1) / RU * RU;
  const std::vector<float>& tav = value_table(a.format);
  const std::vector<float>& tbv = value_table(b.format);
  const std::vector<float> tax = unit_exp_table(a.format), tbx = unit_exp_table(b.format);
  // Operand values and 2^(unit exponent) (2^-126 for zeros), row-major over (row, k) for
  // A and (k, column) for B, B's columns padded to a multiple of G (padding lanes are
  // computed and dropped).
  std::vector<float> av(std::size_t(mpad * K), 0.0f), ax(std::size_t(mpad * K), 0.0f);
  std::vector<float, Aligned64> bv(std::size_t(K * npad), 0.0f),
      bx(std::size_t(K * npad), 0.0f);
  const detail::Strided sa = detail::strided(a), sb = detail::strided(b);
  std::vector<float> T(std::size_t(mpad * npad));
  const std::vector<float> b_out = detail::epilogue_columns(o, pl.sp, N);
#pragma omp parallel num_threads(pl.threads)
  {
#pragma omp for schedule(static)
    for (std::int64_t i = 0; i < M; ++i)
      for (std::int64_t k = 0; k < K; ++k) {
        const std::uint32_t code = sa.at(i, k);
        av[i * K + k] = tav[code];
        ax[i * K + k] = tax[code];
      }
#pragma omp for schedule(static)
    for (std::int64_t k = 0; k < K; ++k)
      for (std::int64_t j = 0; j < N; ++j) {
        const std::uint32_t code = sb.at(k, j);
        bv[k * npad + j] = tbv[code];
        bx[k * npad + j] = tbx[code];
      }
  }
  const detail::UnitWork u{av.data(), ax.data(), bv.data(), bx.data(), npad, mpad, T.data(),
                           b_out.data()};
  kt.gemm_unit(pl, o, u, c, ldc);
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
  const KernelTable& kt = *active_kernels();
  note_kernels_used(kt);
  gemm_float32(a, b, c, ldc, o, make_plan(a, b, o), kt);
}

GemmPath nvidia_fast_path(const CodeMatrix& a, const CodeMatrix& b, const GemmOptions& o) {
  return regular(make_plan(a, b, o)) && unit_path(a, b, o) && !has_nonfinite(a) &&
                 !has_nonfinite(b)
             ? GemmPath::unit
             : GemmPath::reference;
}

void nvidia_fast(const CodeMatrix& a, const CodeMatrix& b, float* c, std::int64_t ldc,
                 const GemmOptions& o, GemmPath) {
  const KernelTable& kt = *active_kernels();
  note_kernels_used(kt);
  gemm_unit(a, b, c, ldc, o, make_plan(a, b, o), kt);
}

}  // namespace detail

}  // namespace fp8emu
