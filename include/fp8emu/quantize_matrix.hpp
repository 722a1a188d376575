// fp8emu: one step from a float matrix to the codes and scales fp8emu::gemm takes.
//
// The scalings are those of the FP8 training recipes: none, one scale per tensor (given,
// or computed from the tensor's amax by Transformer Engine's rule, Transformer Engine
// transformer_engine/pytorch/fp8.py `_default_sf_compute` and
// transformer_engine/common/recipe/delayed_scaling.cu), one per row or column, one per
// R x C block (DeepSeek-V3, arXiv 2412.19437), MX blocks of 32 along K with e8m0 scales
// (OCP Microscaling Formats v1.0, section 6.3; or NVIDIA's rounding up, arXiv 2506.08027),
// and NVFP4 (blocks of 16 along K, e4m3fn block scales, a float32 tensor scale; Transformer
// Engine's reference quantizer,
// transformer_engine/pytorch/custom_recipes/quantization_ref_nvfp4.py). docs/arrays.md
// states each rule at its edges.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fp8emu/array.hpp"
#include "fp8emu/gemm.hpp"

namespace fp8emu {

/// Returns max |x| over `x` (0 when empty), NaN when an element is NaN; threaded as the
/// array functions are, and the same whatever the thread count.
float amax(std::span<const float> x, const Execution& exec = {});

/// Returns Transformer Engine's scale for a tensor of largest magnitude `amax` in a
/// format of largest finite value `fmax`: (fmax / amax) / 2^margin, rounded once to
/// float32; rounded down to a power of two with `pow2`; 1 when amax is 0, NaN or
/// infinite, or when the scale is not a finite float. amax times the scale may exceed
/// fmax by half an ulp of the scale: a saturating cast maps it to fmax.
float auto_scale(double fmax, double amax, int margin = 0, bool pow2 = false);

/// How an MX block's shared exponent follows from its amax.
enum class MxRule : std::uint8_t {
  floor,  ///< OCP MX v1.0: floor(log2 amax) - emax of the element format (may saturate).
  ceil,   ///< NVIDIA (arXiv 2506.08027): the smallest e with amax <= fmax 2^e.
};

/// Returns the name of `r` ("floor", "ceil").
std::string_view mx_rule_name(MxRule r);

/// Returns the e8m0 exponent of an MX block of largest magnitude `amax` with elements of
/// `elem`, by rule `r`: -127 for amax 0 or NaN, 127 for an infinite amax, clamped to
/// [-127, 127]. The block is quantized times 2^-e; its e8m0 scale code is e + 127.
int mx_exponent(const Format& elem, double amax, MxRule r = MxRule::floor);

/// The kinds of scaling of quantize_matrix.
enum class MatrixScaling : std::uint8_t {
  none,    ///< No scale: codes of x.
  tensor,  ///< One float32 scale (given, or auto_scale of the tensor's amax).
  row,     ///< One float32 scale per row (auto_scale of the row's amax).
  column,  ///< One float32 scale per column.
  block,   ///< One float32 scale per block of block_rows x block_cols (auto_scale).
  mx,      ///< Blocks of 32 along K (A: 1 x 32, B: 32 x 1; or block_rows x block_cols when
           ///< given), e8m0 scales (mx_exponent).
  nvfp4,   ///< Blocks of 16 along K (or as given), e4m3fn block scales and a float32
           ///< tensor scale.
};

/// Returns the name of `s` ("none", "tensor", "row", "column", "block", "mx", "nvfp4").
std::string_view matrix_scaling_name(MatrixScaling s);

/// Which GEMM operand a matrix is: A (M x K, K along columns) or B (K x N, K along rows).
enum class Operand : std::uint8_t { a, b };

/// A logical rows x cols float32 matrix: element (r, c) at data[r ld + c] (row-major) or
/// data[c ld + r] (column-major); ld 0 means packed.
struct FloatMatrix {
  const float* data = nullptr;
  std::int64_t rows = 0, cols = 0;
  Layout layout = Layout::row_major;
  std::int64_t ld = 0;
};

/// How quantize_matrix scales and converts.
struct MatrixQuantizeOptions {
  MatrixScaling scaling = MatrixScaling::none;
  Operand operand = Operand::a;  ///< Which dimension is K (mx, nvfp4).
  float scale = 0.0f;            ///< tensor: the quantization scale (x scale is rounded); 0: auto.
  float inverse = 0.0f;          ///< tensor: the dequantization scale gemm gets; 0: 1 / scale.
  std::int64_t block_rows = 0,
               block_cols = 0;  ///< block: the block shape (0: the whole dimension).
  int margin = 0;               ///< tensor (auto), row, column, block: auto_scale's margin.
  bool pow2 = false;            ///< tensor (auto), row, column, block: power-of-two scales.
  MxRule mx_rule = MxRule::floor;
  Layout out_layout = Layout::row_major;  ///< The layout of the codes (packed).
  /// Conversion, random stream and threads. Element i of the codes in out_layout order
  /// takes the random bits of index first_index + i; `scale` is ignored.
  ArrayOptions array{};
};

/// Codes and scales of a matrix, as fp8emu::gemm takes them (matrix() and scales()).
struct QuantizedMatrix {
  Format format = formats::e4m3fn{};
  std::int64_t rows = 0, cols = 0;
  Layout layout = Layout::row_major;   ///< The layout of the codes (packed).
  std::vector<std::uint32_t> storage;  ///< The codes, code_bytes(format) bytes each.
  // The scales gemm takes (scales()): block scales row-major over the grid of blocks of
  // the logical rows x cols matrix, and a tensor scale.
  ScaleEncoding encoding = ScaleEncoding::float32;
  std::int64_t scale_block_rows = 0, scale_block_cols = 0;  ///< 0: the whole dimension.
  float tensor = 1.0f;                                      ///< The tensor dequantization scale.
  std::vector<float> float_scales;        ///< Dequantization scales 1 / s (float32 encoding).
  std::vector<std::uint8_t> code_scales;  ///< e8m0 or e4m3 scale codes.
  /// Quantization scales s (x s was rounded), one per block of block_rows x block_cols of
  /// the codes as stored (the packed array in `layout` order), row-major over that grid;
  /// one entry for none and tensor (block_rows = block_cols = 0).
  std::vector<float> quant_scales;
  std::int64_t block_rows = 0, block_cols = 0;
  double amax = 0;                 ///< max |x| of the matrix (NaN when an element is NaN).
  std::vector<double> block_amax;  ///< Work space: the amax of each block.
  std::vector<float> packed;       ///< Work space: the input packed when it was not.
  /// Returns the codes as a CodeMatrix over `storage`.
  CodeMatrix matrix() const { return {format, storage.data(), rows, cols, layout, 0}; }
  /// Returns the scales for GemmOptions::a_scales / b_scales (pointing into this object).
  Scales scales() const;
};

/// Quantizes the matrix `x` to codes of `f` with the scaling of `o` into `out` (its
/// vectors reused), and returns out.amax. Throws std::invalid_argument for a format of
/// more than 32 bits, a null or inconsistent view, a negative block shape, a given scale
/// not finite and > 0, and nvfp4 of an input with NaN or infinity (block and row scales
/// of such a block are 1, MX exponents as mx_exponent says).
double quantize_matrix(const FloatMatrix& x, const Format& f, const MatrixQuantizeOptions& o,
                       QuantizedMatrix& out);

/// Returns the quantized matrix (quantize_matrix into a new QuantizedMatrix).
QuantizedMatrix quantize_matrix(const FloatMatrix& x, const Format& f,
                                const MatrixQuantizeOptions& o);

/// The scale of a float GEMM operand as `fp8emu gemm --a-scale` spells it (docs/gemm.md,
/// "Command line"): none; one tensor scale X (x / X is quantized, X dequantizes); auto
/// (x s is quantized with s = auto_scale of the operand's amax, 1 / s dequantizes); or
/// block scales by quantize_matrix (block, mx, nvfp4).
struct OperandScale {
  MatrixScaling scaling = MatrixScaling::none;  ///< none, tensor, block, mx or nvfp4.
  float scale = 0.0f;                           ///< tensor: X; 0 means auto.
  std::int64_t block_rows = 0, block_cols = 0;  ///< block, mx, nvfp4: the block shape.
  std::string spelling;                         ///< The spec it was parsed from.
};

/// Returns the scale `spec` spells for operand `op`: "" (none), a number > 0 that is
/// finite as a float32 (decimal or hex; the tensor scale X), "auto", "block:RxC" (R, C in
/// 1..2^30), "mx" (blocks of 32 along K: A 1 x 32, B 32 x 1) or "nvfp4" (16 along K).
/// Throws std::invalid_argument naming `what` (the option, "--a-scale"); the message
/// lists the accepted spellings, with `more` (", FILE.npy") after auto.
OperandScale parse_operand_scale(std::string_view spec, Operand op, std::string_view what,
                                 std::string_view more = "");

/// Returns the format of an operand scaled by `s` when none is given: e2m1fn for nvfp4,
/// e4m3fn otherwise.
Format default_operand_format(const OperandScale& s);

/// A row-major packed rows x cols matrix of float32 or float64 values, or float16 bits.
struct FloatOperand {
  enum class Type : std::uint8_t { float16, float32, float64 };
  const void* data = nullptr;
  Type type = Type::float32;
  std::int64_t rows = 0, cols = 0;
};

/// Quantizes the float operand `x` to codes of `f` (nearest-even, saturating) with the
/// scale `s`, as `fp8emu gemm` does, into `out` (row-major codes; out.scales() are the
/// scales gemm takes): none and tensor scales quantize each value from its own type;
/// auto takes auto_scale of the amax (1 when the amax is 0, NaN or infinite; out.amax
/// tells); block, mx and nvfp4 are quantize_matrix's, of float32 or float16 values (exact
/// in float32) without NaN or infinity. Throws std::invalid_argument, the message
/// starting with `what` (the option, "--a-scale") for errors of the scale.
void quantize_operand(const FloatOperand& x, const Format& f, const OperandScale& s,
                      std::string_view what, QuantizedMatrix& out, const Execution& exec = {});

}  // namespace fp8emu
