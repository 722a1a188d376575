// Precision recipes: how each GEMM of a training step quantizes its operands and
// accumulates, and in what precision the master weights and optimizer state are stored.
// A recipe is data: a named preset, a small key = value file, or either with overrides.
// docs/simulator.md lists every key and what each option does at its edges.
//
// Sources of the named recipes:
//  - FP8 "hybrid" (e4m3 forward, e5m2 gradients), per-tensor scaling, saturating casts:
//    Micikevicius et al. 2022, "FP8 formats for deep learning", arXiv 2209.05433;
//  - delayed scaling (amax history 1024, algorithm max, margin 0) and current scaling:
//    NVIDIA Transformer Engine, transformer_engine.common.recipe.DelayedScaling and
//    Float8CurrentScaling;
//  - 1x128 activation / gradient blocks and 128x128 weight blocks, e4m3 everywhere,
//    promotion of the tensor-core sum every 128 products, bf16 AdamW moments, the output
//    head in higher precision: DeepSeek-V3 technical report, arXiv 2412.19437, section 3.3;
//  - MXFP8: OCP Microscaling Formats v1.0 (blocks of 32, e8m0 scales); e4m3 for every
//    tensor and the scale rounded up: Mishra et al., "Recipes for pre-training LLMs with
//    MXFP8", arXiv 2506.08027;
//  - e5m2 for every tensor (the FP8 paper's contrast to its hybrid): arXiv 2209.05433;
//  - NVFP4 (e2m1 elements, 1x16 blocks with e4m3 scales and a float32 tensor scale, 16x16
//    weight blocks, stochastic rounding of gradients, a 16-point random Hadamard transform
//    of both weight-gradient inputs, the last layers in bf16): NVIDIA, "Pretraining large
//    language models with NVFP4", arXiv 2509.25149; Transformer Engine's NVFP4BlockScaling
//    (transformer_engine/common/recipe/__init__.py) and its fixed sign vector
//    (transformer_engine/pytorch/tensor/nvfp4_tensor.py, get_wgrad_sign_vector);
//  - MXFP6 and MXFP4 training (e3m2 weights, activations and gradients; e2m1 weights with
//    e3m2 activations and gradients; OCP's scale rule): Rouhani et al., "Microscaling data
//    formats for deep learning", arXiv 2310.10537;
//  - FP8 gradient all-reduce (the key `comm`): per-tensor scales shared across the ranks
//    (their minimum) and the automatic scaling factor mu: Peng et al., "FP8-LM: Training
//    FP8 large language models", arXiv 2310.18313, section 3.1;
//  - FP8 products summed in float16: Wang et al., "Training deep neural networks with 8-bit
//    floating point numbers", arXiv 1812.08011 (16-bit accumulation needs chunking);
//    DeepSeek-V3, arXiv 2412.19437, section 3.3.2 (limited accumulation precision).
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "fp8emu/convert.hpp"
#include "fp8emu/format.hpp"
#include "fp8emu/gemm.hpp"

namespace fp8sim {

/// Thrown for a bad recipe name, file, key or value; the message says which.
struct RecipeError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

/// How the scale factor of a quantized operand is chosen.
enum class ScalingKind : std::uint8_t {
  none,     ///< Plain cast: the value itself is rounded (scale 1).
  current,  ///< From the amax of the operand itself, per block of a grid (tensor, row, tile).
  delayed,  ///< Per tensor, from an amax history of previous steps (Transformer Engine).
  mx,       ///< OCP MX: blocks of 32 along K, power-of-two (e8m0) scales.
  nvfp4,    ///< NVFP4: blocks (1 x 16 or as given) with e4m3fn scales, a float32 tensor scale.
};

/// Which amax of the history a delayed scale uses (Transformer Engine amax_compute_algo).
enum class AmaxAlgo : std::uint8_t { max, most_recent };

/// The scaling of one operand. Blocks are described on the operand stored with its
/// reduction dimension K contiguous (R rows of K: R = M for A, N for B); 0 means the
/// whole dimension, so (0, 0) is per tensor and (1, 0) is per row (per output channel).
struct Scaling {
  ScalingKind kind = ScalingKind::none;
  std::int64_t block_rows = 0, block_k = 0;  ///< current, mx, nvfp4: the block grid.
  bool pow2 = false;         ///< current / delayed: round the scale down to a power of two.
  int history = 1024;        ///< delayed: amax history length (>= 1).
  AmaxAlgo algo = AmaxAlgo::max;
  int margin = 0;            ///< delayed / current: scale = (max / amax) / 2^margin.
  bool mx_floor = false;     ///< mx: OCP's floor(log2 amax) - emax rule instead of rounding up.
};

/// The length of the random Hadamard transform (OperandSpec::hadamard).
inline constexpr int kHadamardSize = 16;

/// One operand of a GEMM role: its format, scaling and conversion (rounding, overflow).
struct OperandSpec {
  fp8emu::Format format = fp8emu::formats::float32{};
  Scaling scaling;
  fp8emu::ConvertOptions convert{fp8emu::Rounding::nearest_even, fp8emu::Saturation::finite};
  /// 0, or kHadamardSize: before quantization, every run of 16 elements along K is
  /// multiplied by the orthogonal matrix D H / 4 (hadamard_transform). Both operands of a
  /// role must agree, so that the product is kept up to rounding.
  int hadamard = 0;
};

/// The three GEMMs of a linear layer y = x W^T (W stored out x in):
/// fprop y = x W^T, dgrad dx = dy W, wgrad dW = dy^T x.
enum class Role : std::uint8_t { fprop, dgrad, wgrad };
inline constexpr int kRoles = 3;

/// One GEMM role: operand A (fprop: input, dgrad and wgrad: output gradient), operand B
/// (fprop and dgrad: weight, wgrad: input), and the accumulation.
struct RoleSpec {
  OperandSpec a, b;
  fp8emu::Accumulation accumulation;
};

/// Storage precision of master weights or an optimizer moment: values are rounded to
/// `format` after every update (float32: kept as computed). `scaled` stores value * s with
/// a per-tensor current scale s (amax to the format's max), as FP8-LM does for moments.
struct Storage {
  fp8emu::Format format = fp8emu::formats::float32{};
  fp8emu::Rounding rounding = fp8emu::Rounding::nearest_even;  ///< nearest_even or stochastic_c
  bool scaled = false;
  bool exact() const { return format == fp8emu::Format(fp8emu::formats::float32{}); }
};

/// The number format of the data-parallel gradient all-reduce (the recipe key `comm`;
/// fp8sim/allreduce.hpp models it): float32 (exact sums in a fixed order) or a lossy
/// ring whose partial sums travel as bf16, e4m3fn or e5m2 codes.
enum class CommFormat : std::uint8_t { fp32, bf16, e4m3fn, e5m2 };

/// How a lossy all-reduce scales the gradients before they are quantized: `none` (a
/// plain cast), or `auto` (FP8-LM, arXiv 2310.18313 section 3.1: per-tensor scales shared
/// across the ranks and the automatic scaling factor mu; docs/simulator.md, "Data-parallel
/// training").
enum class CommScaling : std::uint8_t { none, automatic };

/// The gradient communication of data-parallel training (LmConfig::ranks > 1).
struct GradComm {
  CommFormat format = CommFormat::fp32;
  CommScaling scaling = CommScaling::none;
  bool operator==(const GradComm&) const = default;
  /// The fp8emu format of the codes (float32 for fp32).
  fp8emu::Format code_format() const;
};

/// Parses a communication spec: fp32 | bf16[:auto] | e4m3fn[:none] | e5m2[:none] (the
/// FP8 formats scale automatically unless `:none`, bf16 only with `:auto`). Throws
/// RecipeError.
GradComm parse_comm(std::string_view spec);
/// Returns the canonical spec of `c` (parse_comm reads it back): the format, followed by
/// the scaling where it is not the format's default.
std::string comm_spec(const GradComm& c);

/// GEMM layers that keep another precision: every GEMM layer with a name matching
/// `pattern` (`*` matches any run of characters, everything else itself) takes the roles
/// of the named recipe `recipe` instead of the recipe's own (the recipe key
/// `layer.PATTERN = RECIPE`). Storage precisions stay the recipe's; the named recipe's
/// own storage and overrides are not used. A pattern is 1 to 64 characters of
/// [A-Za-z0-9._*-] (valid_layer_pattern).
struct LayerOverride {
  std::string pattern;
  std::string recipe;
  RoleSpec roles[kRoles];
};

/// Returns true when `name` matches the glob `pattern` (`*`: any run of characters).
bool layer_matches(std::string_view pattern, std::string_view name);

/// Returns true for a layer pattern of 1 to 64 characters of [A-Za-z0-9._*-].
bool valid_layer_pattern(std::string_view pattern);

/// A complete precision recipe.
struct Recipe {
  std::string name;
  std::string description;  ///< One line: what it is and where it comes from.
  RoleSpec roles[kRoles];
  Storage master;           ///< Master weights (and biases).
  Storage moment1, moment2; ///< AdamW first / second moment; SGD momentum uses moment1.
  std::vector<LayerOverride> layers;  ///< Per-layer precision, first match wins.
  GradComm comm;            ///< Gradient all-reduce of data-parallel training (key `comm`).
  const RoleSpec& role(Role r) const { return roles[int(r)]; }
  /// The role of a GEMM layer known by `names` (its name and aliases): that of the first
  /// override matching one of them, else role(r).
  const RoleSpec& role(Role r, std::span<const std::string> names) const;
};

/// Returns the names of the named recipes, in a stable order.
std::span<const std::string_view> recipe_names();

/// Returns the named recipe `name`; throws RecipeError for an unknown name.
Recipe named_recipe(std::string_view name);

/// Returns `s` without leading and trailing blanks (spaces, tabs, a carriage return), as
/// recipe keys and values are read.
std::string_view trim_blanks(std::string_view s);

/// The longest recipe name.
inline constexpr std::size_t kMaxRecipeNameLength = 64;

/// Returns true for a name that is safe as part of a file name: 1 to 64 characters of
/// [A-Za-z0-9._-], not starting with '.' (names become checkpoint and plot-data files).
bool valid_recipe_name(std::string_view name);

/// Applies one `key = value` setting to `r` (docs/simulator.md lists the keys); throws
/// RecipeError naming the key for a bad key or value.
void set_recipe_key(Recipe& r, std::string_view key, std::string_view value);

/// Reads a recipe file: `key = value` lines, `#` comments; `base = NAME` (first) starts
/// from a named recipe, `name = ...` names it (default: the file's stem). A key given
/// twice and a second `base` are errors. Throws RecipeError with the file name and line
/// number.
Recipe load_recipe_file(const std::string& path);

/// Throws RecipeError when the recipe cannot run: its name is not valid_recipe_name, both
/// operands of a role split K into blocks of different lengths, only one operand of a role
/// has the Hadamard transform, an MX or NVFP4 element format is wider than 8 bits, a
/// conversion is inconsistent, or a layer override has a bad pattern or such a role.
void check_recipe(const Recipe& r);

/// Returns a recipe from a name or a path ending in ".recipe".
Recipe resolve_recipe(std::string_view spec);

/// Returns the recipe as `key = value` lines that load_recipe_file reads back.
std::string recipe_text(const Recipe& r);

/// Parses a scaling spec: none | tensor | row | block:RxK[:pow2] | delayed[:history=N]
/// [:algo=max|most_recent][:margin=M][:pow2] | mx[:floor] | nvfp4[:RxK]. Throws RecipeError.
Scaling parse_scaling(std::string_view spec);
/// Returns the canonical spec of `s` (parse_scaling reads it back).
std::string scaling_spec(const Scaling& s);

/// Parses a storage spec: a format name (fp32, bf16, f16 and the catalog names) followed
/// by optional `:sr` (stochastic rounding) and `:scaled`. Throws RecipeError.
Storage parse_storage(std::string_view spec);
std::string storage_spec(const Storage& s);

}  // namespace fp8sim
