// NVIDIA tensor cores (model = nvidia): aligned, truncated fused sums over blocks of
// products, C one more term.
//
// Sources: MMA-Sim (arXiv 2511.10909), microsoft/MMA-Sim mmasim/simulator/arithmetic.py at
// commit 1727461515d1577e205c4ddc941ff1f6b5315da8 (nv_fused_dot_add) and the block sizes
// of mmasim/simulator/nv.py; Khattak and Mikaitis, "Accurate models of NVIDIA tensor
// cores". docs/gemm.md, "Matrix-unit models" and "Presets".
#include <array>

#include "../gemm_internal.hpp"
#include "units.hpp"

namespace fp8emu::detail {

namespace {

// nv.py: Hopper WGMMA fp8 (k = 32), Ada MMA fp8 (k = 32 as two halves), Blackwell
// TCGen05MMA fp8, Volta m8n8k4, Ampere fp16 (k = 16 as two halves), Hopper fp16.
constexpr std::array<UnitPreset, 6> kPresets = {{
    {"nvidia-h100-fp8", 32, 13, 13, Rounding::toward_zero},
    {"nvidia-ada-fp8", 16, 13, 13, Rounding::toward_zero},
    {"nvidia-b200-fp8", 32, 25, 23, Rounding::toward_zero},
    {"nvidia-v100-fp16", 4, 23, 23, Rounding::toward_zero},
    {"nvidia-a100-fp16", 8, 24, 23, Rounding::toward_zero},
    {"nvidia-h100-fp16", 16, 25, 23, Rounding::toward_zero},
}};

// nv_fused_dot_add, for the products of one block and the accumulator input c.
float nvidia_block(const UnitBlock& blk, float c) {
  // 1. Non-finite operands or c: the float64 sum of the plain products and c. After this
  //    step every operand and c is finite.
  float out;
  if (unit_special(blk, c, out)) return out;
  // 2. The product terms, exact: p with Ma + Mb fraction bits at exponent e (zero
  //    products: exponent -126 + the other operand's). c is one more term, its
  //    significand with 23 fraction bits at its exponent (-126 for zero and subnormals).
  const MatrixUnit& u = blk.unit;
  const int F = u.fraction_bits, ec = float_exponent(c);
  const std::vector<UnitTerm> t = unit_terms(blk);
  // 3. E = the largest exponent of the products and c; each term is rounded to F bits at
  //    weight 2^E (term_rounding) and the rounded terms are added exactly. Invariant: S
  //    is an integer in units 2^(E - F), |S| < (block + 1) 2^(F + 2).
  int E = ec;
  std::int64_t S = unit_aligned_sum(blk, t, -1, E);
  if (c != 0.0f) S += round_shift(float_significand(c), F - 23 + ec - E, u.term_rounding);
  // 4. One rounding of S 2^(E - F) to a float32 with out_bits fraction bits
  //    (output_rounding; +0 for S = 0, an infinity from 2^128 up).
  return unit_output(S, E - F, u.output_fraction_bits, u.output_rounding);
}

constexpr UnitFastKernel kFast = {&nvidia_fast_path, &nvidia_fast};

}  // namespace

const UnitModelInfo kNvidiaUnit = {
    UnitModel::nvidia, "nvidia", kPresets, {1, 4096}, {1, 48}, {1, 23}, &nvidia_block, &kFast,
};

}  // namespace fp8emu::detail
