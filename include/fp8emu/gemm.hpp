// Matrix multiply on codes: D = alpha * (A B) + beta * C, with the accumulation described
// as data (docs/gemm.md gives each definition in full, with its source).
//
// Sources:
//  - matrix-unit models: MMA-Sim (Microsoft, arXiv 2511.10909; microsoft/MMA-Sim
//    mmasim/simulator/arithmetic.py at commit 1727461, nv.py, amd.py) and Khattak and
//    Mikaitis, "Accurate models of NVIDIA tensor cores"; the AMD CDNA3 fp8 and fp16/bf16
//    models from MMA-Sim;
//  - promotion every N_C products: DeepSeek-V3 (arXiv 2412.19437, section 3.3.2);
//  - block scaling: DeepSeek-V3 1x128 / 128x128, OCP MX v1.0 (blocks of 32, e8m0 scales),
//    NVFP4 (blocks of 16, e4m3fn scales, one float32 tensor scale);
//  - pairwise summation: the recursive split of MMA-Sim's pairwise_dot (m = n / 2).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "fp8emu/array.hpp"
#include "fp8emu/convert.hpp"
#include "fp8emu/format.hpp"
#include "fp8emu/options.hpp"

namespace fp8emu {

/// Storage order of a matrix.
enum class Layout : std::uint8_t { row_major, col_major };

/// A matrix of codes of one format: uint8_t elements for formats of at most 8 bits,
/// uint16_t up to 16 bits, uint32_t beyond. Element (r, c) is data[r * ld + c]
/// (row-major) or data[c * ld + r] (column-major); ld 0 means packed.
struct CodeMatrix {
  Format format = formats::e4m3fn{};
  const void* data = nullptr;
  std::int64_t rows = 0, cols = 0;
  Layout layout = Layout::row_major;
  std::int64_t ld = 0;
};

/// Returns the size in bytes of one code of `f` in a CodeMatrix or a code array (1, 2 or 4).
int code_bytes(const Format& f);

/// How scale factors are stored.
enum class ScaleEncoding : std::uint8_t {
  float32,  ///< float values (finite and > 0 for meaningful results; used as they are).
  e8m0,     ///< e8m0fnu codes (OCP MX): 2^(code - 127); 0xFF is NaN.
  e4m3,     ///< e4m3fn codes (NVFP4's ue4m3 scales); the sign bit is ignored.
};

template <>
struct option_table<ScaleEncoding> {
  static constexpr std::string_view what = "scale encoding";
  static constexpr std::array<OptionName<ScaleEncoding>, 3> entries = {{
      {ScaleEncoding::float32, "float32", "float values"},
      {ScaleEncoding::e8m0, "e8m0", "e8m0fnu codes (OCP MX), 2^(code - 127)"},
      {ScaleEncoding::e4m3, "e4m3", "e4m3fn codes (NVFP4), the sign bit ignored"},
  }};
};

/// The scale factors of one operand: one per block of block_rows x block_cols elements,
/// stored row-major over the grid of blocks (ceil(rows / block_rows) x ceil(cols /
/// block_cols)). A block size of 0 means the whole dimension; data == nullptr means all
/// ones. `tensor` is one more factor for the whole operand (NVFP4's float32 scale).
struct Scales {
  const void* data = nullptr;
  ScaleEncoding encoding = ScaleEncoding::float32;
  std::int64_t block_rows = 0, block_cols = 0;
  float tensor = 1.0f;
};

/// Order in which a float accumulator adds the products of one segment.
enum class SumOrder : std::uint8_t {
  sequential,  ///< s = round(s + p_k) for k = k0, k0 + 1, ... from s = +0.
  pairwise,    ///< Recursive halves: S(lo, n) = round(S(lo, n/2) + S(lo + n/2, n - n/2)).
  blocked,     ///< Sequential sums over chunks of `chunk` products, then their sequential sum.
};

template <>
struct option_table<SumOrder> {
  static constexpr std::string_view what = "order";
  static constexpr std::array<OptionName<SumOrder>, 3> entries = {{
      {SumOrder::sequential, "sequential", "one product after another"},
      {SumOrder::pairwise, "pairwise", "recursive halves"},
      {SumOrder::blocked, "blocked", "sequential over chunks, then over the chunk sums"},
  }};
};

/// Which published matrix-unit model replaces the float accumulator.
enum class UnitModel : std::uint8_t {
  none,            ///< A float accumulator (Accumulation::format and ::convert).
  nvidia,          ///< NVIDIA tensor cores: aligned, truncated fused sums over blocks of products.
  amd_cdna3,       ///< AMD MI300 (CDNA3) fp8: odd / even halves, floors, then nearest-even.
  amd_cdna3_fp16,  ///< AMD MI300 (CDNA3) fp16 / bf16: one fused sum, C floored in, nearest-even.
};

/// Returns the name of `m` ("none", "nvidia", "amd_cdna3", "amd_cdna3_fp16").
std::string_view unit_model_name(UnitModel m);

/// How a matrix unit takes its accumulator input C (the output of the previous block).
enum class UnitInput : std::uint8_t {
  term,      ///< C is one more term, aligned and rounded with the products (NVIDIA).
  separate,  ///< The block is computed with C = +0, then added to C in float32 nearest-even.
};

/// Parameters of a matrix-unit model (docs/gemm.md, "Matrix-unit models").
struct MatrixUnit {
  UnitModel model = UnitModel::none;
  int block = 32;                              ///< Products per fused step (one instruction).
  int fraction_bits = 13;                      ///< F: bits kept below the largest exponent.
  Rounding term_rounding = Rounding::toward_zero;    ///< Of each aligned term to F bits.
  int output_fraction_bits = 23;               ///< Fraction bits of the float32 block output.
  Rounding output_rounding = Rounding::toward_zero;  ///< Of the block output.
  UnitInput input = UnitInput::term;
};

/// The accumulation of a dot product: a float accumulator (format, rounding, order,
/// compensation) or a matrix-unit model, with optional promotion to a float32 total.
struct Accumulation {
  Format format = formats::float32{};
  /// Rounding of every accumulation step; overflow follows IEEE (Saturation::none) by default.
  ConvertOptions convert{Rounding::nearest_even, Saturation::none};
  SumOrder order = SumOrder::sequential;
  int chunk = 0;              ///< Products per chunk of SumOrder::blocked.
  bool kahan = false;         ///< Kahan-compensated sequential sum (order sequential only).
  int promote_interval = 0;   ///< N_C: partial sums restart every N_C products and are
                              ///< added to a float32 total; 0 = never.
  MatrixUnit unit;            ///< unit.model != none replaces format/convert/order/kahan.
  std::uint64_t seed = 0, stream = 0;  ///< Random bits of stochastic accumulation.
};

/// Describes one GEMM call.
struct GemmOptions {
  float alpha = 1.0f, beta = 0.0f;
  Accumulation accumulation;
  Scales a_scales, b_scales;
  Execution exec;
};

/// Returns the names of the accumulation presets, in a stable order.
std::span<const std::string_view> accumulation_presets();

/// Returns an accumulation from a spec: a preset name or `fp32`, optionally followed by
/// comma-separated key=value overrides (docs/gemm.md lists the keys). Throws
/// std::invalid_argument with a clear message for a bad spec.
Accumulation parse_accumulation(std::string_view spec);

/// Returns the canonical spec string of `a` (parse_accumulation reads it back).
std::string accumulation_spec(const Accumulation& a);

/// Throws std::invalid_argument when the operands, scales or options are inconsistent.
void check_gemm(const CodeMatrix& a, const CodeMatrix& b, const float* c, std::int64_t ldc,
                const GemmOptions& o);

/// Computes C (M x N, row-major, leading dimension ldc) = alpha * A B + beta * C under
/// `o`; C is not read when beta == 0. The fast paths (blocked, SIMD, threaded) equal
/// gemm_reference bit for bit.
void gemm(const CodeMatrix& a, const CodeMatrix& b, float* c, std::int64_t ldc,
          const GemmOptions& o = {});

/// The plain scalar definition of gemm (threaded over rows only).
void gemm_reference(const CodeMatrix& a, const CodeMatrix& b, float* c, std::int64_t ldc,
                    const GemmOptions& o = {});

/// The code path that computes a gemm call (docs/gemm.md, "Which calls are fast").
enum class GemmPath : std::uint8_t {
  reference,         ///< gemm_reference.
  float32,           ///< float32 accumulation: packed panels and a SIMD microkernel of FMAs.
  accumulator,       ///< A float accumulator of at most 16 bits on float32 lanes.
  accumulator_wide,  ///< A float accumulator of at most 16 bits on float64 lanes.
  unit,              ///< The NVIDIA matrix-unit model on float32 lanes.
  unit_wide,         ///< The NVIDIA matrix-unit model on float64 lanes.
  unit_amd,          ///< An AMD CDNA3 matrix-unit model on SIMD lanes.
};

template <>
struct option_table<GemmPath> {
  static constexpr std::string_view what = "gemm path";
  static constexpr std::array<OptionName<GemmPath>, 7> entries = {{
      {GemmPath::reference, "reference", "the scalar reference"},
      {GemmPath::float32, "float32", "float32 accumulation, SIMD fused multiply-adds"},
      {GemmPath::accumulator, "accumulator", "a float accumulator on float32 lanes"},
      {GemmPath::accumulator_wide, "accumulator-wide", "a float accumulator on float64 lanes"},
      {GemmPath::unit, "unit", "the NVIDIA matrix-unit model on float32 lanes"},
      {GemmPath::unit_wide, "unit-wide", "the NVIDIA matrix-unit model on float64 lanes"},
      {GemmPath::unit_amd, "unit-amd", "an AMD CDNA3 matrix-unit model on SIMD lanes"},
  }};
};

/// Returns the name of `p` (its entry in option_table<GemmPath>).
std::string_view gemm_path_name(GemmPath p);

/// Returns the path gemm takes for these arguments (the one it dispatches on).
GemmPath gemm_path(const CodeMatrix& a, const CodeMatrix& b, const GemmOptions& o);

/// Returns the name of the path gemm takes for these arguments ("reference" when none of
/// the fast paths computes them).
inline std::string_view gemm_fast_path(const CodeMatrix& a, const CodeMatrix& b,
                                       const GemmOptions& o) {
  return gemm_path_name(gemm_path(a, b, o));
}

/// Returns true when gemm takes a fast path (not the reference) for these arguments.
inline bool gemm_has_fast_path(const CodeMatrix& a, const CodeMatrix& b, const GemmOptions& o) {
  return gemm_path(a, b, o) != GemmPath::reference;
}

}  // namespace fp8emu
