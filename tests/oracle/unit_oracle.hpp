// The oracle for the matrix-unit models: the published rules of MMA-Sim (microsoft/MMA-Sim,
// mmasim/simulator/arithmetic.py at commit 1727461: extract_significand_exponent,
// fused_sum, nv_fused_dot_add, amd_fused_dot_rd_add; the block sizes of nv.py and amd.py)
// written out again in exact arithmetic. Operand values come from the oracle's own
// decoder (oracle.hpp); every significand, shifted term, floor and sum below is a dyadic
// number computed exactly in Boost cpp_bin_float_quad (113 bits: a term has at most 48
// significant bits, a block sum of at most 4096 of them at most 62). The only roundings
// are the ones the rules name: truncation and floor of exact values (std::trunc /
// floor on Real), the NVIDIA output truncation, and the AMD output's float32
// nearest-even (an exact double, at most 40 significant bits, cast to float). Nothing
// here uses the library's arithmetic, unpacking or block rule.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "oracle/oracle.hpp"

namespace oracle::unit {

using boost::multiprecision::ldexp;

/// A product term or C: significand s (exact) and exponent e; the term's value is s 2^e.
struct Term {
  Real s;
  int e;
};

/// extract_significand_exponent: |s| in [1, 2) and its exponent for a normal value; the
/// format's smallest normal exponent emin and |s| < 1 for a subnormal; s = 0 with the
/// exponent -126 for zero (whatever the format).
inline Term split(const Real& x, int emin) {
  if (x == 0) return {Real(0), -126};
  int e = 0;
  (void)boost::multiprecision::frexp(x, &e);  // x = m 2^e, |m| in [0.5, 1)
  e -= 1;                                         // |x| = (2m) 2^(e-1)
  if (e < emin) return {ldexp(x, -emin), emin};
  return {ldexp(x, -e), e};
}

inline Real trunc(const Real& x) { return boost::multiprecision::trunc(x); }
inline Real floor(const Real& x) { return boost::multiprecision::floor(x); }

/// fused_sum: E = the largest exponent; each term truncated toward zero to F fraction
/// bits at weight 2^E; the exact sum, with E. The value is sum 2^E.
inline Term fused_sum(const std::vector<Term>& t, int F) {
  int E = std::numeric_limits<int>::min();
  for (const Term& x : t) E = std::max(E, x.e);
  Real sum = 0;
  for (const Term& x : t) sum += ldexp(trunc(ldexp(x.s, F + x.e - E)), -F);
  return {sum, E};
}

/// One operand pair of a block: the exact values and each format's smallest normal
/// exponent.
struct Pair {
  Real a, b;
  int emin_a, emin_b;
};

inline std::vector<Term> products(const std::vector<Pair>& block) {
  std::vector<Term> t;
  for (const Pair& p : block) {
    const Term x = split(p.a, p.emin_a), y = split(p.b, p.emin_b);
    t.push_back({x.s * y.s, x.e + y.e});
  }
  return t;
}

/// nv_fused_dot_add with a float32 output: C (float32, emin -126) is one more term;
/// the sum is normalised (exponent at least -126) and truncated to `out_bits` fraction
/// bits; a zero sum is +0; from 2^128 up an infinity. With finite operands the float64
/// sum of the products and C is not finite only when C is not (a previous block's
/// infinity or NaN): the result is then C.
inline float nvidia_block(const std::vector<Pair>& block, float c, int F, int out_bits) {
  if (!std::isfinite(c)) return c;
  std::vector<Term> t = products(block);
  t.push_back(split(Real(c), -126));
  const Term r = fused_sum(t, F);
  const Real v = ldexp(r.s, r.e);
  if (v == 0) return 0.0f;
  const Term n = split(v, -126);
  const Real kept = ldexp(ldexp(trunc(ldexp(n.s, out_bits)), -out_bits), n.e);
  if (abs(kept) >= ldexp(Real(1), 128)) return kept < 0 ? -INFINITY : INFINITY;
  return kept.convert_to<float>();  // exact: at most 24 significant bits, in range
}

/// amd_fused_dot_rd_add. A product of magnitude 2^128 or more makes the result an
/// infinity of its sign (NaN when both signs occur). fp8 (`halves`): the even- and
/// odd-indexed products are fused sums apart, aligned to the larger exponent by floor
/// to F bits and added; C is dropped when its exponent is more than 25 below. Otherwise
/// one fused sum of all products and C never dropped. Then the sum is floored to 31
/// fraction bits and C to 24 at the larger of the two exponents, and their sum is
/// rounded to float32 nearest-even.
inline float amd_block(const std::vector<Pair>& block, float c, int F, bool halves) {
  if (!std::isfinite(c)) return c;  // the float64 sum of the products and C (see above)
  bool pinf = false, ninf = false;
  for (const Pair& p : block) {
    const Real q = p.a * p.b;
    pinf |= q >= ldexp(Real(1), 128);
    ninf |= q <= -ldexp(Real(1), 128);
  }
  if (pinf && ninf) return std::numeric_limits<float>::quiet_NaN();
  if (pinf || ninf) return pinf ? INFINITY : -INFINITY;
  const std::vector<Term> t = products(block);
  Term sc = split(Real(c), -126);
  Term s;
  bool drop_c = false;
  if (halves) {
    std::vector<Term> h[2];
    for (std::size_t k = 0; k < t.size(); ++k) h[k % 2].push_back(t[k]);
    Term hs[2];
    int emax = std::numeric_limits<int>::min();
    for (int i = 0; i < 2; ++i)
      if (!h[i].empty()) hs[i] = fused_sum(h[i], F), emax = std::max(emax, hs[i].e);
    Real sum = 0;
    for (int i = 0; i < 2; ++i)
      if (!h[i].empty()) sum += ldexp(floor(ldexp(hs[i].s, F + hs[i].e - emax)), -F);
    s = {sum, emax};
    drop_c = sc.e < std::max(emax, sc.e) - 25;
  } else {
    s = fused_sum(t, F);
  }
  const int E = std::max(s.e, sc.e);
  const Real ss = ldexp(floor(ldexp(s.s, 31 + s.e - E)), -31);
  const Real cs = drop_c ? Real(0) : ldexp(floor(ldexp(sc.s, 24 + sc.e - E)), -24);
  const double v = ldexp(ss + cs, E).convert_to<double>();  // exact (see the file comment)
  return float(v);                                          // nearest-even
}

/// A chain of blocks along k (the output of one block is the C of the next), from C = +0.
template <class Block>
float chain(const std::vector<Pair>& k, std::size_t block, Block f) {
  float c = 0.0f;
  for (std::size_t b0 = 0; b0 < k.size(); b0 += block) {
    const std::vector<Pair> part(k.begin() + std::ptrdiff_t(b0),
                                 k.begin() + std::ptrdiff_t(std::min(k.size(), b0 + block)));
    c = f(part, c);
  }
  return c;
}

}  // namespace oracle::unit
