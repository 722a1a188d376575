// Fast paths of the matrix-unit models, each equal to its block rule bit for bit
// (tests/test_gemm.cpp): the path choice, the packed operands and the block list; the SIMD
// loops are in unit_kernels.hpp (its comment says why every step is exact).
//
// - The NVIDIA model on float32 lanes (GemmPath::unit) when every step is exact in float:
//   products of the operand formats are exact floats with exponents in the float range,
//   a block sum of terms truncated to F bits needs at most F + 2 + log2(block + 1) <= 24
//   bits, and both roundings are truncations (the output's clears the low 23 - out bits
//   of the float).
// - The NVIDIA model on float64 lanes (GemmPath::unit_wide) otherwise, when the block sum
//   fits 53 bits (F + 2 + log2(block + 1) <= 53), with any deterministic term and output
//   rounding.
// - The AMD CDNA3 models on float64 lanes (GemmPath::unit_amd) when their totals fit 53
//   bits (max(F + 2, 33) + log2(block + 1) + 1 <= 53), with any deterministic roundings.
// Each needs operands of at most 16 bits with a zero, both finite throughout (a NaN or an
// infinity takes the reference), and a SIMD target.
#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "fp8emu/arith.hpp"
#include "fp8emu/array.hpp"
#include "fp8emu/gemm.hpp"
#include "gemm_internal.hpp"
#include "simd.hpp"

#include <omp.h>

namespace fp8emu::detail {

namespace {

template <class T>
using Aligned = std::vector<T, xsimd::aligned_allocator<T, 64>>;

int bitlen(int x) { return 32 - std::countl_zero(std::uint32_t(x)); }

bool has_nonfinite(const CodeMatrix& m) {
  const Strided s = strided(m);
  const std::vector<float>& t = value_table(m.format);
  for (std::int64_t r = 0; r < m.rows; ++r)
    for (std::int64_t c = 0; c < m.cols; ++c)
      if (!std::isfinite(t[s.at(r, c)])) return true;
  return false;
}

bool deterministic(Rounding r) { return !is_stochastic(r); }

// What every unit path needs: a SIMD target, a nonempty result, operands of at most 16
// bits (decoded through tables) with a zero, rounding modes that round_int computes.
bool unit_common(const CodeMatrix& a, const CodeMatrix& b, const GemmOptions& o) {
  const MatrixUnit& u = o.accumulation.unit;
  return o.exec.simd && active_kernels() && a.rows != 0 && b.cols != 0 &&
         total_bits(a.format) <= 16 && total_bits(b.format) <= 16 && has_zero(a.format) &&
         has_zero(b.format) && deterministic(u.term_rounding) && deterministic(u.output_rounding);
}

// Every step of the NVIDIA model exact in float32: products exact (at most 24 bits, quantum
// at least 2^-149), every nonzero product's exponent at least F - 127 (2^(F - E) is a
// float), products below 2^126, block sums of at most 24 bits, truncations.
bool nvidia_float_exact(const Format& fa, const Format& fb, const MatrixUnit& u) {
  return fa.mantissa_bits + fb.mantissa_bits + 2 <= 24 && quantum_min(fa) + quantum_min(fb) >= -149 &&
         emin(fa) + emin(fb) >= u.fraction_bits - 127 && emax(fa) + emax(fb) + 2 <= 127 &&
         u.fraction_bits + 2 + bitlen(u.block + 1) <= 24 &&
         u.term_rounding == Rounding::toward_zero && u.output_rounding == Rounding::toward_zero;
}

// 2^e of every code of f, e the operand's exponent as the models take it (units.hpp,
// UnitTerm): 2^-126 for zeros; NaN and infinities (which never reach these paths) 0.
template <class T>
std::vector<T> exp_table(const Format& f) {
  std::vector<T> t(std::size_t{1} << total_bits(f));
  for (std::size_t c = 0; c < t.size(); ++c) {
    const Unpacked u = unpack(f, std::uint32_t(c), false);
    const bool finite_nonzero = u.cls == ValueClass::normal || u.cls == ValueClass::subnormal;
    t[c] = finite_nonzero ? T(std::ldexp(1.0, u.exp + f.mantissa_bits))
           : u.cls == ValueClass::zero ? T(0x1p-126)
                                       : T(0);
  }
  return t;
}

template <class T>
std::vector<T> values(const Format& f) {
  const std::vector<float>& v = value_table(f);
  return std::vector<T>(v.begin(), v.end());
}

// Runs kernel `fn` (lanes T, `cols` columns per panel) on the packed operands.
template <class T>
void run_unit(const CodeMatrix& a, const CodeMatrix& b, float* c, std::int64_t ldc,
              const GemmOptions& o, UnitFn fn, int cols) {
  const KernelTable& kt = *active_kernels();
  note_kernels_used(kt);
  const MatrixUnit& mu = o.accumulation.unit;
  GemmPlan pl{a.rows, b.cols, a.cols, 0, scale_plan(a, b, o),
              o.exec.threads > 0 ? o.exec.threads : omp_get_max_threads()};
  const std::int64_t M = pl.M, N = pl.N, K = pl.K, G = cols, RU = kUnitRows;
  const std::int64_t npad = (N + G - 1) / G * G, mpad = (M + RU - 1) / RU * RU;
  // The blocks of every segment, in k order (the reference's next_boundary), and chunks
  // of whole blocks of about kUnitKC products.
  std::vector<UnitSpan> blocks;
  std::vector<std::int64_t> chunks = {0};
  std::int64_t in_chunk = 0;
  for (std::int64_t s0 = 0; s0 < K;) {
    const std::int64_t s1 = next_boundary(s0, K, pl.sp.kb, o.accumulation.promote_interval);
    for (std::int64_t b0 = s0; b0 < s1; b0 += mu.block) {
      const std::int64_t b1 = std::min<std::int64_t>(b0 + mu.block, s1);
      blocks.push_back({b0, b1, s0, b0 == s0, b1 == s1});
      in_chunk += b1 - b0;
      if (in_chunk >= kUnitKC) {
        chunks.push_back(std::int64_t(blocks.size()));
        in_chunk = 0;
      }
    }
    s0 = s1;
  }
  if (chunks.back() != std::int64_t(blocks.size())) chunks.push_back(std::int64_t(blocks.size()));
  const std::vector<T> tav = values<T>(a.format), tbv = values<T>(b.format);
  const std::vector<T> tax = exp_table<T>(a.format), tbx = exp_table<T>(b.format);
  // A row-major over (row, k), padding rows 0; B in panels of G columns [npad / G][K][G],
  // padding columns 0 (computed and dropped).
  std::vector<T> av(std::size_t(mpad * K), T(0)), ax(std::size_t(mpad * K), T(0));
  Aligned<T> bv(std::size_t(K * npad), T(0)), bx(std::size_t(K * npad), T(0));
  Aligned<T> chain(std::size_t(mpad * npad), T(0));
  Aligned<float> tot(std::size_t(mpad * npad), 0.0f);
  const Strided sa = strided(a), sb = strided(b);
  const std::vector<float> b_out = epilogue_columns(o, pl.sp, N);
#pragma omp parallel num_threads(pl.threads)
  {
#pragma omp for schedule(static)
    for (std::int64_t i = 0; i < M; ++i)
      for (std::int64_t k = 0; k < K; ++k) {
        const std::uint32_t code = sa.at(i, k);
        av[std::size_t(i * K + k)] = tav[code];
        ax[std::size_t(i * K + k)] = tax[code];
      }
#pragma omp for schedule(static)
    for (std::int64_t k = 0; k < K; ++k)
      for (std::int64_t j = 0; j < N; ++j) {
        const std::uint32_t code = sb.at(k, j);
        const std::size_t at = std::size_t(((j / G) * K + k) * G + j % G);
        bv[at] = tbv[code];
        bx[at] = tbx[code];
      }
  }
  const bool overflow = max_finite(a.format) * max_finite(b.format) >= 0x1p128;
  const UnitWork w{av.data(), ax.data(), bv.data(), bx.data(), npad, mpad, blocks.data(),
                   chunks.data(), std::int64_t(chunks.size()) - 1, chain.data(), tot.data(),
                   b_out.data(), overflow};
  fn(pl, o, w, c, ldc);
}

}  // namespace

GemmPath nvidia_fast_path(const CodeMatrix& a, const CodeMatrix& b, const GemmOptions& o) {
  const MatrixUnit& u = o.accumulation.unit;
  if (!unit_common(a, b, o)) return GemmPath::reference;
  const bool narrow = nvidia_float_exact(a.format, b.format, u);
  if (!narrow && u.fraction_bits + 2 + bitlen(u.block + 1) > 53) return GemmPath::reference;
  if (has_nonfinite(a) || has_nonfinite(b)) return GemmPath::reference;
  return narrow ? GemmPath::unit : GemmPath::unit_wide;
}

void nvidia_fast(const CodeMatrix& a, const CodeMatrix& b, float* c, std::int64_t ldc,
                 const GemmOptions& o, GemmPath path) {
  const KernelTable& kt = *active_kernels();
  if (path == GemmPath::unit) run_unit<float>(a, b, c, ldc, o, kt.unit_nvidia_float, kt.unit_cols_float);
  else run_unit<double>(a, b, c, ldc, o, kt.unit_nvidia_double, kt.unit_cols_double);
}

GemmPath amd_fast_path(const CodeMatrix& a, const CodeMatrix& b, const GemmOptions& o) {
  const MatrixUnit& u = o.accumulation.unit;
  if (!unit_common(a, b, o)) return GemmPath::reference;
  if (std::max(u.fraction_bits + 2, 33) + bitlen(u.block + 1) + 1 > 53) return GemmPath::reference;
  if (has_nonfinite(a) || has_nonfinite(b)) return GemmPath::reference;
  return GemmPath::unit_amd;
}

void amd_fast(const CodeMatrix& a, const CodeMatrix& b, float* c, std::int64_t ldc,
              const GemmOptions& o, GemmPath) {
  const KernelTable& kt = *active_kernels();
  run_unit<double>(a, b, c, ldc, o,
                   o.accumulation.unit.model == UnitModel::amd_cdna3 ? kt.unit_amd_fp8 : kt.unit_amd_fp16,
                   kt.unit_cols_double);
}

}  // namespace fp8emu::detail
