// Fast paths of gemm, each equal to gemm_reference bit for bit (tests/test_gemm.cpp):
//
// 1. float32 nearest-even accumulation in sequential-k order: operands decoded to float
//    and packed into panels, a register-blocked xsimd microkernel of fused multiply-adds
//    (each step is round(s + a*b), one rounding, exactly the definition), cache blocking
//    over K that never reorders the k sum of an element, OpenMP over row blocks. Each
//    segment's partial sum is scaled and promoted into the total while its tile is in
//    registers, and the block that ends K writes C.
//
// The matrix-unit models have their own fast paths (unit_fast.cpp).
//
// The SIMD loops are in gemm_kernels.hpp, compiled once per target and called
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
