// Internal helpers shared by the GEMM reference (gemm.cpp) and its fast paths.
#pragma once

#include <cstdint>

#include "fp8emu/gemm.hpp"

namespace fp8emu::detail {

/// The grid of scale blocks of one operand, with block sizes resolved.
struct ScaleGrid {
  const Scales* s = nullptr;
  std::int64_t br = 1, bc = 1, grid_cols = 1;
  std::int64_t k_block = 0;  ///< Block length along K when it splits K, else 0.
  bool is_a = true;
  /// Returns the scale of element (r, c), without the tensor factor (1 without data).
  float at(std::int64_t r, std::int64_t c) const;
};

ScaleGrid scale_grid(const Scales& s, std::int64_t rows, std::int64_t cols, bool is_a);

/// Returns the code of element (r, c).
std::uint32_t code_at(const CodeMatrix& m, std::int64_t r, std::int64_t c);

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

/// Returns g * total (+ beta * c when beta != 0), a NaN result replaced by nan_bits.
float epilogue(float total, float g, float beta, const float* c, std::uint32_t nan_bits);

/// Returns the bits of a NaN output: 0x7FFFFFFF for the matrix-unit models (their NaN),
/// 0x7FC00000 (the canonical float32 NaN) for float accumulators.
std::uint32_t output_nan_bits(const Accumulation& a);

}  // namespace fp8emu::detail
