// Internal helpers shared by the GEMM reference (gemm.cpp) and its fast paths.
#pragma once

#include <cstdint>
#include <vector>

#include "fp8emu/gemm.hpp"

namespace fp8emu::detail {

/// The grid of scale blocks of one operand, with block sizes resolved.
struct ScaleGrid {
  const Scales* s = nullptr;
  std::int64_t br = 1, bc = 1, grid_cols = 1;
  std::int64_t k_block = 0;  ///< Block length along K when it splits K, else 0.
  /// Returns the scale of element (r, c), without the tensor factor (1 without data).
  float at(std::int64_t r, std::int64_t c) const;
  /// Writes at(r + t * dr, c + t * dc) to out[t] for t < n (dr, dc: 0 or 1).
  void run(std::int64_t r, std::int64_t c, std::int64_t dr, std::int64_t dc, std::int64_t n,
           float* out) const;
  /// Returns the scale of block idx of the grid (row-major), given data.
  float block_value(std::int64_t idx) const;
};

ScaleGrid scale_grid(const Scales& s, std::int64_t rows, std::int64_t cols, bool is_a);

/// The scales of one call: both grids and the block length along K (0: none splits K).
struct ScalePlan {
  ScaleGrid sa, sb;
  std::int64_t kb = 0;
  /// Returns s of the segment starting at k0 for element (i, j): sa(i, k0) * sb(k0, j) over
  /// the grids blocked along K (1 without such a grid).
  float segment(std::int64_t i, std::int64_t k0, std::int64_t j) const {
    if (!kb) return 1.0f;
    return (sa.k_block ? sa.at(i, k0) : 1.0f) * (sb.k_block ? sb.at(k0, j) : 1.0f);
  }
};

ScalePlan scale_plan(const CodeMatrix& a, const CodeMatrix& b, const GemmOptions& o);

/// Elements of a code matrix: (r, c) at data[r * rs + c * cs].
struct Strided {
  const void* data;
  int bytes;
  std::int64_t rs, cs;
  std::uint32_t at(std::int64_t r, std::int64_t c) const {
    const std::int64_t i = r * rs + c * cs;
    return bytes == 1   ? static_cast<const std::uint8_t*>(data)[i]
           : bytes == 2 ? static_cast<const std::uint16_t*>(data)[i]
                        : static_cast<const std::uint32_t*>(data)[i];
  }
};

Strided strided(const CodeMatrix& m);

/// Returns the code of element (r, c).
inline std::uint32_t code_at(const CodeMatrix& m, std::int64_t r, std::int64_t c) {
  return strided(m).at(r, c);
}

/// Returns the significand of float32 c as a signed integer with 23 fraction bits (the
/// exponent is float_exponent(c)).
std::int64_t float_significand(float c);

/// Returns x * 2^sh rounded to an integer under `r` (deterministic modes).
std::int64_t round_shift(std::int64_t x, int sh, Rounding r);

/// Returns s * 2^exp rounded to a float32 with `out_bits` fraction bits (exponent at
/// least -126), +0 for s = 0, +-inf from 2^128 up.
float unit_output(std::int64_t s, int exp, int out_bits, Rounding r);

/// Returns the exponent of float c as the models take it: -126 for zero and subnormals.
int float_exponent(float c);

/// Returns the end of the segment that starts at k0: the next multiple of the scale
/// block kb or of the promotion interval nc (0: none), at most K.
std::int64_t next_boundary(std::int64_t k0, std::int64_t K, std::int64_t kb, std::int64_t nc);

/// Returns b_out(j) for every column: the B scale factor that does not split K (with B's
/// tensor factor).
std::vector<float> epilogue_columns(const GemmOptions& o, const ScalePlan& sp, std::int64_t N);

/// Returns alpha * a_out(i): alpha times A's scale factor of row i that does not split K
/// (with A's tensor factor).
float epilogue_row_factor(const GemmOptions& o, const ScalePlan& sp, std::int64_t i);

/// Writes row i of the result from its totals: out[j] = g * total[j] (+ beta * out[j] when
/// beta != 0) with g = epilogue_row_factor(i) * b_out[j], the scales that do not split K. A
/// NaN result is 0x7FFFFFFF for the matrix-unit models (their NaN), 0x7FC00000 for float
/// accumulators.
void epilogue_row(const GemmOptions& o, const ScalePlan& sp, std::int64_t i, std::int64_t N,
                  const float* b_out, const float* total, float* out);

// The fast kernels (gemm_fast.cpp): `*_applies` says whether the kernel computes the call
// bit for bit as gemm_reference does; the kernel takes checked arguments.

/// float32 nearest-even sequential accumulation (GemmPath::float32).
bool float32_fast_applies(const CodeMatrix& a, const CodeMatrix& b, const GemmOptions& o);
void float32_fast(const CodeMatrix& a, const CodeMatrix& b, float* c, std::int64_t ldc,
                  const GemmOptions& o);

/// A float accumulator other than float32 nearest-even sequential (gemm_accum.cpp):
/// returns GemmPath::accumulator, ::accumulator_wide or ::reference.
GemmPath accumulator_fast_path(const CodeMatrix& a, const CodeMatrix& b, const GemmOptions& o);
void accumulator_fast(const CodeMatrix& a, const CodeMatrix& b, float* c, std::int64_t ldc,
                      const GemmOptions& o, GemmPath path);

// The matrix-unit kernels (unit_fast.cpp).

/// The NVIDIA matrix-unit model: returns GemmPath::unit when every step is exact in
/// float32, GemmPath::unit_wide when it is in float64, else GemmPath::reference.
GemmPath nvidia_fast_path(const CodeMatrix& a, const CodeMatrix& b, const GemmOptions& o);
void nvidia_fast(const CodeMatrix& a, const CodeMatrix& b, float* c, std::int64_t ldc,
                 const GemmOptions& o, GemmPath path);

/// The AMD CDNA3 models (fp8 and fp16 / bf16): returns GemmPath::unit_amd when every step
/// is exact in float64, else GemmPath::reference.
GemmPath amd_fast_path(const CodeMatrix& a, const CodeMatrix& b, const GemmOptions& o);
void amd_fast(const CodeMatrix& a, const CodeMatrix& b, float* c, std::int64_t ldc,
              const GemmOptions& o, GemmPath path);

}  // namespace fp8emu::detail
