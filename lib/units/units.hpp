// The table of matrix-unit models: for each model its name, its presets, the ranges of
// its parameters, its scalar block rule and an optional fast kernel. One file per model
// family defines the entries (nvidia.cpp, amd_cdna3.cpp); units.cpp holds the table and
// the steps every model shares. docs/gemm.md, "Matrix-unit models", states each rule.
//
// Source: MMA-Sim (Microsoft, arXiv 2511.10909), microsoft/MMA-Sim
// mmasim/simulator/arithmetic.py at commit 1727461515d1577e205c4ddc941ff1f6b5315da8, with
// the block sizes of mmasim/simulator/nv.py and amd.py.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "fp8emu/gemm.hpp"

namespace fp8emu::detail {

/// The products a(i, k) b(k, j), k in [k0, k1), of one block (one instruction).
struct UnitBlock {
  const CodeMatrix& a;
  const CodeMatrix& b;
  const MatrixUnit& unit;
  std::int64_t i, j, k0, k1;
};

/// One preset of a model: its name and the parameters it sets.
struct UnitPreset {
  std::string_view name;
  int block, fraction_bits, output_fraction_bits;
  Rounding output_rounding;
};

/// An inclusive range of a parameter.
struct UnitRange {
  int lo, hi;
};

/// The fast kernels of a model: `path` returns the path that computes a call bit for bit
/// as the scalar block rule does (GemmPath::reference when none does), `run` computes it
/// on that path (arguments already checked).
struct UnitFastKernel {
  GemmPath (*path)(const CodeMatrix& a, const CodeMatrix& b, const GemmOptions& o);
  void (*run)(const CodeMatrix& a, const CodeMatrix& b, float* c, std::int64_t ldc,
              const GemmOptions& o, GemmPath path);
};

/// One matrix-unit model.
struct UnitModelInfo {
  UnitModel model;
  std::string_view name;
  /// Its presets; the first is the one a spec of other parameters starts from.
  std::span<const UnitPreset> presets;
  UnitRange block, fraction_bits, output_fraction_bits;
  /// Returns the float32 output of one block given its accumulator input c.
  float (*block_rule)(const UnitBlock& blk, float c);
  /// nullptr when the model has none (gemm then runs the scalar rule).
  const UnitFastKernel* fast;
};

/// Returns the models, in the order of their presets.
std::span<const UnitModelInfo* const> unit_models();

/// Returns the entry of `m`; throws std::invalid_argument for UnitModel::none or a value
/// that no entry has (a model is never routed to another's rule).
const UnitModelInfo& unit_model_info(UnitModel m);

/// Throws std::invalid_argument when `u` is outside its model's ranges or asks for a
/// stochastic rounding.
void check_unit(const MatrixUnit& u);

// The entries, defined one file per model family.
extern const UnitModelInfo kNvidiaUnit;        // units/nvidia.cpp
extern const UnitModelInfo kAmdCdna3Unit;      // units/amd_cdna3.cpp
extern const UnitModelInfo kAmdCdna3Fp16Unit;  // units/amd_cdna3.cpp

// Steps every model shares (units.cpp).

/// One product term: its significand product p (Ma + Mb fraction bits, signed), the
/// exponent e of its unnormalised significand s_a s_b in [0, 4), and the parity of its
/// index in the block. An operand's exponent is that of s in [1, 2) when normal, the
/// format's smallest normal exponent when subnormal, and -126 when zero whatever the
/// format (arithmetic.py, extract_significand_exponent): a zero product still takes part
/// in the largest exponent E, with p = 0.
struct UnitTerm {
  std::int64_t p;
  int e, half;
};

/// Returns the terms of the block, in k order.
std::vector<UnitTerm> unit_terms(const UnitBlock& blk);

/// The NaN / infinity rule of the models: when an operand of the block or c is NaN or
/// infinite, sets `out` to the float64 sum of the plain products and c (a quiet NaN or
/// that infinity) and returns true.
bool unit_special(const UnitBlock& blk, float c, float& out);

/// The fused sum of the terms of one half (-1: all), arithmetic.py fused_sum: E becomes
/// the largest exponent of those terms (starting from its value), each term is rounded to
/// F = blk.unit.fraction_bits bits at weight 2^E with the term rounding, and the rounded
/// terms are added exactly. Returns the sum in units 2^(E - F).
std::int64_t unit_aligned_sum(const UnitBlock& blk, const std::vector<UnitTerm>& t, int half,
                              int& E);

}  // namespace fp8emu::detail
