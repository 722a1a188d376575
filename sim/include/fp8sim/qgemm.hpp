// The GEMM of a training step under a recipe: both operands quantized by
// fp8emu::quantize_matrix with the role's scaling, then multiplied by fp8emu's GEMM with the role's
// accumulation and the dequantization factors as its scales (as Transformer Engine
// passes scale_inv to cuBLASLt). Statistics of every quantization are gathered here.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "fp8emu/array.hpp"
#include "fp8emu/gemm.hpp"
#include "fp8emu/quantize_matrix.hpp"
#include "fp8sim/recipe.hpp"

namespace fp8sim {

/// What quantizing one tensor did, summed over the elements (and over steps by merge).
struct QuantStats {
  double amax = 0;              ///< max |x| (NaN when an element is NaN).
  std::int64_t count = 0;       ///< Elements quantized.
  std::int64_t nonzero = 0;     ///< Elements with x != 0.
  std::int64_t flushed = 0;     ///< Nonzero elements that became zero (underflow).
  std::int64_t saturated = 0;   ///< Elements with |x * scale| above the format's max finite.
  double signal = 0, noise = 0; ///< Sum of x^2 and of (x - dequantized)^2.
  std::int64_t uses = 0;        ///< Quantizations merged.
  void merge(const QuantStats& o);
  /// Returns 10 log10(signal / noise) in dB (+inf when noise is 0, NaN without signal).
  double sqnr_db() const;
  double flushed_fraction() const { return nonzero ? double(flushed) / double(nonzero) : 0.0; }
  double saturated_fraction() const { return count ? double(saturated) / double(count) : 0.0; }
};

/// The state of one operand slot across steps: delayed scaling's amax history, and the
/// statistics since the last reset.
struct OperandState {
  std::vector<float> history;  ///< Ring buffer of amax values (delayed scaling).
  std::int64_t recorded = 0;   ///< Amax values pushed so far.
  float scale = 1.0f;          ///< Delayed scale in use (Transformer Engine starts at 1).
  /// The largest amax of this step's quantizations while delayed scaling defers its push
  /// to the end of the step (GemmContext::defer_amax: data-parallel micro-batches); -1
  /// when none (NaN wins, as in QuantStats::amax). Not part of a checkpoint: it is -1
  /// between steps.
  double step_amax = -1;
  QuantStats stats;
};

/// A logical matrix of floats: element (r, c) at data[r * ld + c] (row-major) or
/// data[c * ld + r] (column-major); ld 0 means packed.
struct MatView {
  const float* data = nullptr;
  std::int64_t rows = 0, cols = 0;
  fp8emu::Layout layout = fp8emu::Layout::row_major;
  std::int64_t ld = 0;
};

/// What one GEMM call needs besides its operands.
struct GemmContext {
  std::uint64_t seed = 0;    ///< Stochastic rounding: random bits of element i of operand
  std::uint64_t stream = 0;  ///<   a are keyed by (seed, 2 stream), of b by (seed, 2 stream + 1).
  bool update = true;        ///< Push amax into delayed histories (training, not evaluation).
  bool stats = true;         ///< Gather QuantStats.
  fp8emu::Execution exec{};
  /// With update: record the amax in OperandState::step_amax instead of pushing it, so
  /// that the step's micro-batches all quantize with the scale of the step's start
  /// (record_amax).
  bool defer_amax = false;
};

/// Reusable buffers of one thread of work (the codes and scales of A and B, and the
/// Hadamard-transformed operands).
struct GemmWorkspace {
  fp8emu::QuantizedMatrix quantized[2];
  std::vector<float> rotated[2];
};

/// The signs d of the random Hadamard transform: the fixed vector of Transformer Engine's
/// NVFP4 recipe (transformer_engine/pytorch/tensor/nvfp4_tensor.py,
/// get_wgrad_sign_vector), the same for every layer, step and seed.
inline constexpr std::array<float, kHadamardSize> kHadamardSigns = {1, 1,  1,  -1, 1, -1, -1, -1,
                                                                    -1, -1, -1, 1, -1, 1, -1, -1};

/// Replaces every full run of 16 elements of each row of the R x K row-major matrix `x`
/// by v Q with Q = D H / 4: D = diag(kHadamardSigns), H the Sylvester Hadamard matrix of
/// order 16 (H_ic = (-1)^popcount(i & c)); Q is orthogonal, so two operands transformed
/// alike along K keep their product. A last run shorter than 16 is left as it is. In
/// float32, in a fixed order: v_i d_i / 4 (exact above the subnormal range), then the four
/// butterfly stages (a + b, a - b) of the fast Walsh-Hadamard transform.
void hadamard_transform(float* x, std::int64_t rows, std::int64_t k);

/// Computes C (M x N, row-major, leading dimension ldc) = A B (+ C when accumulate) with A
/// (M x K) and B (K x N) quantized as `role` says, updating the two operand states. An
/// operand with `hadamard` is transformed along K first (hadamard_transform). Under NVFP4
/// scaling an operand with a NaN or infinity has no scale: C is all NaN, as the tensor
/// scale would be, and the operand's amax is NaN.
void recipe_gemm(const RoleSpec& role, const MatView& a, const MatView& b, float* c,
                 std::int64_t ldc, bool accumulate, OperandState& sa, OperandState& sb,
                 const GemmContext& ctx, GemmWorkspace& ws);

/// Returns true when fp8emu::gemm takes one of its fast paths, not the scalar reference,
/// for the GEMMs of `role` on finite operands (probed on a small GEMM quantized as the
/// role says; fp8emu::gemm_has_fast_path).
bool recipe_gemm_fast_path(const RoleSpec& role);

/// Returns fp8emu::auto_scale(fmax, amax, s.margin, s.pow2): the per-tensor scale
/// (max / amax) / 2^margin of Transformer Engine.
float amax_scale(const Scaling& s, double fmax, double amax);

/// Delayed scaling's update of `st` after a quantization whose amax was `amax` (fmax: the
/// format's max finite value): pushes a finite amax into the history and sets the scale of
/// the next quantization from it (Transformer Engine); a non-finite amax is not recorded.
void push_amax(const Scaling& s, double fmax, OperandState& st, double amax);

/// Delayed scaling's bookkeeping after a quantization whose amax was `amax`: push_amax,
/// or with `defer` the maximum into st.step_amax (NaN wins), pushed once at the end of the
/// step by push_step_amax.
void record_amax(const Scaling& s, double fmax, OperandState& st, double amax, bool defer);

/// Pushes st.step_amax (when a quantization recorded one: not -1) with push_amax and
/// resets it to -1.
void push_step_amax(const Scaling& s, double fmax, OperandState& st);

/// Returns fp8emu::mx_exponent of a block with this amax: the smallest e with
/// amax <= fmax 2^e (NVIDIA, arXiv 2506.08027), or floor(log2 amax) - emax_elem (OCP MX
/// v1.0, mx_floor); -127 for amax 0; clamped to [-127, 127].
int mx_exponent(const Scaling& s, const fp8emu::Format& elem, double amax);

}  // namespace fp8sim
