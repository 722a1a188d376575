// AMD MI300 (CDNA3) matrix cores: fp8 (model = amd_cdna3) and fp16 / bf16
// (model = amd_cdna3_fp16).
//
// Source: MMA-Sim (arXiv 2511.10909), microsoft/MMA-Sim mmasim/simulator/arithmetic.py at
// commit 1727461515d1577e205c4ddc941ff1f6b5315da8 (amd_fused_dot_rd_add, with and without
// is_fp8) and the group sizes of mmasim/simulator/amd.py. docs/gemm.md, "Matrix-unit
// models" and "Presets".
#include <algorithm>
#include <array>
#include <bit>
#include <climits>
#include <cmath>
#include <limits>

#include "../gemm_internal.hpp"
#include "units.hpp"

namespace fp8emu::detail {

namespace {

// amd.py: CDNA3 fp8 in groups of 16 (is_fp8); fp16 and bf16 in groups of min(8, k).
constexpr std::array<UnitPreset, 1> kFp8Presets = {{
    {"amd-mi300-fp8", 16, 24, 23, Rounding::nearest_even},
}};
constexpr std::array<UnitPreset, 1> kFp16Presets = {{
    {"amd-mi300-fp16", 8, 24, 23, Rounding::nearest_even},
}};

// Products beyond float32: a product of magnitude 2^128 or more makes the result an
// infinity of its sign, NaN when there are such products of both signs.
bool amd_overflow(const UnitBlock& blk, const std::vector<UnitTerm>& t, float& out) {
  const int Mab = blk.a.format.mantissa_bits + blk.b.format.mantissa_bits;
  bool pos = false, neg = false;
  for (const UnitTerm& x : t) {
    if (x.p == 0) continue;
    const std::uint64_t mag = x.p < 0 ? 0 - std::uint64_t(x.p) : std::uint64_t(x.p);
    if (63 - std::countl_zero(mag) + x.e - Mab >= 128) (x.p < 0 ? neg : pos) = true;
  }
  if (!pos && !neg) return false;
  out = pos && neg ? std::numeric_limits<float>::quiet_NaN() : pos ? INFINITY : -INFINITY;
  return true;
}

// amd_fused_dot_rd_add with is_fp8, for the products of one block and the input c.
float amd_fp8_block(const UnitBlock& blk, float c) {
  // 1. Non-finite operands or c: the float64 sum of the plain products and c. After this
  //    step every operand and c is finite.
  float out;
  if (unit_special(blk, c, out)) return out;
  // 2. The product terms, exact; a product of 2^128 or more gives an infinity (NaN for
  //    both signs). After this step every product is below 2^128.
  const MatrixUnit& u = blk.unit;
  const int F = u.fraction_bits;
  const std::vector<UnitTerm> t = unit_terms(blk);
  if (amd_overflow(blk, t, out)) return out;
  // 3. The even-indexed and the odd-indexed products are two fused sums: Sh[h] in units
  //    2^(Eh[h] - F), each term rounded to F bits (term_rounding) at the half's largest
  //    exponent Eh[h]; c is not among them. A half without products (a block of one)
  //    keeps Eh = kNone.
  constexpr int kNone = INT_MIN / 4;
  int Eh[2] = {kNone, kNone};
  const std::int64_t Sh[2] = {unit_aligned_sum(blk, t, 0, Eh[0]),
                              unit_aligned_sum(blk, t, 1, Eh[1])};
  // 4. The halves are aligned to emax = the larger exponent by floor and added: s in
  //    units 2^(emax - F).
  const int emax = std::max(Eh[0], Eh[1]);
  std::int64_t s = 0;
  for (int h = 0; h < 2; ++h)
    if (Eh[h] != kNone) s += round_shift(Sh[h], Eh[h] - emax, Rounding::toward_negative);
  // 5. At emax2 = max(emax, e_c) the sum is floored to 31 fraction bits and c to 24; c is
  //    dropped when its exponent is 26 or more below emax2. total is in units 2^(emax2 - 31).
  const int ec = float_exponent(c);
  const int emax2 = std::max(emax, ec);
  std::int64_t total = 0;
  if (s != 0) total = round_shift(s, (emax - F) - (emax2 - 31), Rounding::toward_negative);
  if (c != 0.0f && ec >= emax2 - 25)
    total += round_shift(float_significand(c), (ec - 23) - (emax2 - 24), Rounding::toward_negative) *
             128;
  // 6. One rounding to float32 (output_rounding; subnormals kept, an infinity from 2^128 up).
  return unit_output(total, emax2 - 31, u.output_fraction_bits, u.output_rounding);
}

// amd_fused_dot_rd_add without is_fp8 (fp16 and bf16), for one block and the input c.
float amd_fp16_block(const UnitBlock& blk, float c) {
  // 1. Non-finite operands or c: the float64 sum of the plain products and c.
  float out;
  if (unit_special(blk, c, out)) return out;
  // 2. The product terms, exact (the block has at least one); a product of 2^128 or more
  //    gives an infinity (NaN for both signs).
  const MatrixUnit& u = blk.unit;
  const int F = u.fraction_bits;
  const std::vector<UnitTerm> t = unit_terms(blk);
  if (amd_overflow(blk, t, out)) return out;
  // 3. One fused sum of all the products: S in units 2^(E - F), each term rounded to F bits
  //    (term_rounding) at their largest exponent E; c is not among them.
  int E = INT_MIN / 4;
  const std::int64_t S = unit_aligned_sum(blk, t, -1, E);
  // 4. At E2 = max(E, e_c) the sum is floored to 31 fraction bits and c to 24 (c is never
  //    dropped) and the two are added: total in units 2^(E2 - 31).
  const int ec = float_exponent(c);
  const int E2 = std::max(E, ec);
  std::int64_t total = round_shift(S, (E - F) - (E2 - 31), Rounding::toward_negative);
  total += round_shift(float_significand(c), (ec - 23) - (E2 - 24), Rounding::toward_negative) *
           128;
  // 5. One rounding to float32 (output_rounding; subnormals kept, an infinity from 2^128 up).
  return unit_output(total, E2 - 31, u.output_fraction_bits, u.output_rounding);
}

constexpr UnitFastKernel kFast = {&amd_fast_path, &amd_fast};

}  // namespace

const UnitModelInfo kAmdCdna3Unit = {
    UnitModel::amd_cdna3, "amd_cdna3", kFp8Presets, {1, 4096}, {1, 48}, {1, 23},
    &amd_fp8_block,       &kFast,
};

const UnitModelInfo kAmdCdna3Fp16Unit = {
    UnitModel::amd_cdna3_fp16, "amd_cdna3_fp16", kFp16Presets, {1, 4096}, {1, 48}, {1, 23},
    &amd_fp16_block,           &kFast,
};

}  // namespace fp8emu::detail
