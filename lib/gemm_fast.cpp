// Fast paths of gemm, each equal to gemm_reference bit for bit (tests/test_gemm.cpp):
//
// 1. float32 nearest-even accumulation in sequential-k order: operands decoded to float
//    and packed into panels, a register-blocked xsimd microkernel of fused multiply-adds
//    (each step is round(s + a*b), one rounding, exactly the definition), cache blocking
//    over K that never reorders the k sum of an element, OpenMP over row blocks.
//
// The matrix-unit models have their own fast paths (unit_fast.cpp).
//
// The SIMD loops are in gemm_kernels.hpp, compiled once per target and called
// through the KernelTable of the target in use (simd.hpp); this file decides the path,
// allocates and fills the buffers, and promotes and writes the results.
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
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

void gemm_float32(const CodeMatrix& a, const CodeMatrix& b, float* c, std::int64_t ldc,
                  const GemmOptions& o, const Plan& pl, const detail::KernelTable& kt) {
  static const std::vector<float> none;
  const std::vector<float>& ta = total_bits(a.format) <= 16 ? value_table(a.format) : none;
  const std::vector<float>& tb = total_bits(b.format) <= 16 ? value_table(b.format) : none;
  const std::int64_t M = pl.M, N = pl.N;
  std::vector<float> P(std::size_t(M * N)), T(std::size_t(M * N)), col(static_cast<std::size_t>(N));
  const std::vector<float> b_out = detail::epilogue_columns(o, pl.sp, N);
  const std::int64_t nc_max = std::min(detail::kGemmNC, N), nr = kt.gemm_nr;
  const std::int64_t mc = 8 * std::int64_t(kt.gemm_mr);
  std::vector<float, Aligned64> bpack(
      std::size_t(detail::kGemmKC * ((nc_max + nr - 1) / nr) * nr));
  std::vector<float, Aligned64> apack(
      std::size_t(detail::kGemmKC * mc * std::max(pl.threads, 1)));
  const detail::Float32Work w{ta.data(), tb.data(), detail::strided(a), detail::strided(b),
                              P.data(), T.data(), col.data(), b_out.data(), bpack.data(),
                              apack.data()};
  kt.gemm_float32(pl, o, w, code_bytes(a.format), code_bytes(b.format), c, ldc);
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

}  // namespace detail

}  // namespace fp8emu
