// The table of matrix-unit models and the steps they share (units.hpp).
#include "units.hpp"

#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "fp8emu/arith.hpp"
#include "../gemm_internal.hpp"

namespace fp8emu::detail {

namespace {

// The order of the presets (accumulation_presets) follows this table.
constexpr std::array<const UnitModelInfo*, 3> kTable = {&kNvidiaUnit, &kAmdCdna3Unit,
                                                        &kAmdCdna3Fp16Unit};

[[noreturn]] void bad(const std::string& msg) { throw std::invalid_argument(msg); }

void check_range(const char* key, int v, UnitRange r) {
  if (v < r.lo || v > r.hi)
    bad("accumulation: " + std::string(key) + " must be " + std::to_string(r.lo) + ".." +
        std::to_string(r.hi));
}

}  // namespace

std::span<const UnitModelInfo* const> unit_models() { return kTable; }

const UnitModelInfo& unit_model_info(UnitModel m) {
  for (const UnitModelInfo* e : kTable)
    if (e->model == m) return *e;
  bad("accumulation: unknown matrix-unit model " + std::to_string(int(m)));
}

void check_unit(const MatrixUnit& u) {
  const UnitModelInfo& e = unit_model_info(u.model);
  check_range("block", u.block, e.block);
  check_range("fbits", u.fraction_bits, e.fraction_bits);
  check_range("out-bits", u.output_fraction_bits, e.output_fraction_bits);
  if (is_stochastic(u.term_rounding) || is_stochastic(u.output_rounding))
    bad("accumulation: matrix-unit roundings must be deterministic");
}

namespace {

int unit_exponent(const Format& f, const Unpacked& u) {
  return u.cls == ValueClass::zero ? -126 : u.exp + f.mantissa_bits;
}

}  // namespace

std::vector<UnitTerm> unit_terms(const UnitBlock& blk) {
  std::vector<UnitTerm> t;
  for (std::int64_t k = blk.k0; k < blk.k1; ++k) {
    const Unpacked a = unpack(blk.a.format, code_at(blk.a, blk.i, k), false);
    const Unpacked b = unpack(blk.b.format, code_at(blk.b, k, blk.j), false);
    const std::int64_t p = std::int64_t(a.sig * b.sig);  // 0 for a zero operand
    t.push_back({a.neg != b.neg ? -p : p,
                 unit_exponent(blk.a.format, a) + unit_exponent(blk.b.format, b),
                 int((k - blk.k0) & 1)});
  }
  return t;
}

bool unit_special(const UnitBlock& blk, float c, float& out) {
  bool any = !std::isfinite(c);
  for (std::int64_t k = blk.k0; k < blk.k1 && !any; ++k) {
    const ValueClass ca = classify(blk.a.format, code_at(blk.a, blk.i, k));
    const ValueClass cb = classify(blk.b.format, code_at(blk.b, k, blk.j));
    any = ca == ValueClass::nan || ca == ValueClass::infinite || cb == ValueClass::nan ||
          cb == ValueClass::infinite;
  }
  if (!any) return false;
  double s = c;
  for (std::int64_t k = blk.k0; k < blk.k1; ++k)
    s += decode(blk.a.format, code_at(blk.a, blk.i, k)) *
         decode(blk.b.format, code_at(blk.b, k, blk.j));
  out = std::isnan(s) ? std::numeric_limits<float>::quiet_NaN() : float(s);
  return true;
}

std::int64_t unit_aligned_sum(const UnitBlock& blk, const std::vector<UnitTerm>& t, int half,
                              int& E) {
  const MatrixUnit& u = blk.unit;
  const int Mab = blk.a.format.mantissa_bits + blk.b.format.mantissa_bits;
  for (const UnitTerm& x : t)
    if (half < 0 || x.half == half) E = std::max(E, x.e);
  std::int64_t S = 0;
  for (const UnitTerm& x : t)
    if (half < 0 || x.half == half)
      S += round_shift(x.p, u.fraction_bits - Mab + x.e - E, u.term_rounding);
  return S;
}

}  // namespace fp8emu::detail
