// GEMM: the reference against independent computations and hand-derived cases, the fast
// paths against the reference bit for bit, the accumulation spec parser, and the
// DeepSeek-V3-style error check of the nvidia-h100-fp8 model.
#include <bit>
#include <cmath>
#include <cstdio>
#include <random>
#include <sstream>
#include <vector>

#include "fp8emu/arith.hpp"
#include "fp8emu/gemm.hpp"
#include "oracle/arith_oracle.hpp"
#include "oracle/unit_oracle.hpp"
#include "gemm_codes.hpp"
#include "rng.hpp"
#include "simd_targets.hpp"
#include "sweep.hpp"

using namespace fp8emu;

namespace {

using test::Codes;

// Random finite codes (and, with `specials`, an occasional NaN or infinity; with
// `zeros`, +-0 for about a third of the elements and for every element of some rows).
Codes random_codes(Format f, std::int64_t r, std::int64_t c, std::uint64_t seed, Layout l,
                   bool specials = false, bool zeros = false) {
  Codes m(f, r, c, l);
  SplitMix64 rng(seed);
  const std::uint32_t mask = total_bits(f) >= 32 ? ~0u : (1u << total_bits(f)) - 1;
  for (std::int64_t i = 0; i < r; ++i) {
    const bool zero_row = zeros && rng.next() % 8 == 0;
    for (std::int64_t j = 0; j < c; ++j) {
      std::uint32_t code;
      do {
        code = std::uint32_t(rng.next()) & mask;
        if (zeros && (zero_row || rng.next() % 3 == 0)) code &= sign_mask(f);
        const ValueClass k = classify(f, code);
        if (k != ValueClass::nan && k != ValueClass::infinite) break;
        if (specials && rng.next() % 64 == 0) break;
      } while (true);
      m.set(i, j, code);
    }
  }
  return m;
}

std::vector<float> run(bool fast, const Codes& a, const Codes& b, const GemmOptions& o,
                       const std::vector<float>& c0 = {}) {
  std::vector<float> c = c0.empty() ? std::vector<float>(std::size_t(a.rows * b.cols), 0.0f) : c0;
  if (fast) gemm(a.view(), b.view(), c.data(), b.cols, o);
  else gemm_reference(a.view(), b.view(), c.data(), b.cols, o);
  return c;
}

float gemm1(const Codes& a, const Codes& b, const Accumulation& acc) {
  GemmOptions o;
  o.accumulation = acc;
  return run(false, a, b, o)[0];
}

// A 1 x K by K x 1 product from values.
std::pair<Codes, Codes> dot(Format fa, Format fb, const std::vector<double>& x,
                            const std::vector<double>& y) {
  Codes a(fa, 1, std::int64_t(x.size())), b(fb, std::int64_t(y.size()), 1);
  for (std::size_t k = 0; k < x.size(); ++k) {
    a.set_value(0, std::int64_t(k), x[k]);
    b.set_value(std::int64_t(k), 0, y[k]);
    REQUIRE(decode(fa, encode(fa, x[k])) == x[k]);  // the inputs are exact
    REQUIRE(decode(fb, encode(fb, y[k])) == y[k]);
  }
  return {a, b};
}

std::uint32_t bits(float x) { return std::bit_cast<std::uint32_t>(x); }

}  // namespace

TEST_CASE("gemm reference, float32 sequential: equals a plain loop of fmaf", "[gemm]") {
  // Products of e4m3fn x e5m2 are exact floats; the definition is then s = fmaf(a, b, s)
  // from s = +0, in k order: the CPU's fused multiply-add is an independent oracle.
  std::uint64_t n = 0, bad = 0, cells = 0;
  for (int t = 0; t < 20; ++t) cells += std::uint64_t((1 + t % 5) * (1 + (t * 7) % 9));
  for (int t = 0; t < 20; ++t) {
    const std::int64_t M = 1 + t % 5, N = 1 + (t * 7) % 9, K = 1 + (t * 13) % 70;
    const Codes a = random_codes(formats::e4m3fn{}, M, K, 100 + t, Layout::row_major, true);
    const Codes b = random_codes(formats::e5m2{}, K, N, 200 + t, Layout::col_major, true);
    const std::vector<float> c = run(false, a, b, GemmOptions{});
    for (std::int64_t i = 0; i < M; ++i)
      for (std::int64_t j = 0; j < N; ++j) {
        float s = 0.0f;
        for (std::int64_t k = 0; k < K; ++k)
          s = std::fma(float(decode(a.f, a.at(i, k))),
                       float(decode(b.f, b.at(k, j))), s);
        s = s + 0.0f;
        const float r = c[std::size_t(i * N + j)];
        ++n;
        if (std::isnan(s) ? !(std::isnan(r) && bits(r) == 0x7FC00000u) : bits(s) != bits(r)) ++bad;
      }
  }
  CHECK(n == cells);
  CHECK(bad == 0);
}

TEST_CASE("gemm reference, float16 accumulator: each step is the oracle's fma", "[gemm]") {
  // Mixed formats: e4m3fn x e5m2 products added to a float16 sum, rounded once per step
  // (oracle/arith_oracle.hpp decides each rounding from exact values).
  const oracle::Spec& sa = oracle::spec("e4m3fn");
  const oracle::Spec& sb = oracle::spec("e5m2");
  const oracle::Spec& sh = oracle::spec("float16");
  const oracle::Table th = oracle::make_table(sh);
  std::uint64_t n = 0, bad = 0;
  for (Rounding r : {Rounding::nearest_even, Rounding::toward_zero, Rounding::toward_negative}) {
    Accumulation acc;
    acc.format = formats::float16{};
    acc.convert.rounding = r;
    for (int t = 0; t < 40; ++t) {
      const std::int64_t K = 1 + t;
      const Codes a = random_codes(formats::e4m3fn{}, 1, K, 300 + t, Layout::row_major);
      const Codes b = random_codes(formats::e5m2{}, K, 1, 400 + t, Layout::row_major);
      std::uint32_t s = 0;  // float16 code
      for (std::int64_t k = 0; k < K; ++k) {
        const oracle::Target x = oracle::fma(oracle::operand(sa, a.at(0, k), false),
                                             oracle::operand(sb, b.at(k, 0), false),
                                             oracle::operand(sh, s, false), r);
        s = oracle::expected(th, x, oracle::locate(th, x), oracle::Mode{r, Saturation::none});
      }
      ++n;
      const float want = float(oracle::half_value(std::uint16_t(s), false)) + 0.0f;
      const float got = gemm1(a, b, acc);
      if (std::isnan(want) ? !std::isnan(got) : bits(want) != bits(got)) ++bad;
    }
  }
  CHECK(n == 120);
  CHECK(bad == 0);
}

TEST_CASE("gemm accumulation options: hand-derived cases", "[gemm]") {
  const Format h = formats::float16{};
  // float16 keeps 11 significant bits: 2048 + 1 = 2049 is a tie between 2048 (even) and
  // 2050, so it rounds to 2048.
  auto [a, b] = dot(h, h, {2048, 1, 1, 1}, {1, 1, 1, 1});
  Accumulation acc = parse_accumulation("fp16");
  // Sequential: ((2048 + 1) + 1) + 1, each step back to 2048.
  CHECK(gemm1(a, b, acc) == 2048.0f);
  // Pairwise: (2048 + 1) + (1 + 1) = 2048 + 2 = 2050 (exact).
  CHECK(gemm1(a, b, parse_accumulation("fp16,order=pairwise")) == 2050.0f);
  // Blocked, chunks of 2: the same split as pairwise here: 2050.
  CHECK(gemm1(a, b, parse_accumulation("fp16,order=blocked,chunk=2")) == 2050.0f);
  // Promotion every 2: float16 partial sums 2048 and 2, added in float32: 2050.
  CHECK(gemm1(a, b, parse_accumulation("fp16,promote=2")) == 2050.0f);
  // Promotion every 3: partials 2048 (2048 + 1 + 1) and 1: 2049 in float32.
  CHECK(gemm1(a, b, parse_accumulation("fp16,promote=3")) == 2049.0f);
  // float32 accumulation: exact, 2051.
  CHECK(gemm1(a, b, parse_accumulation("fp32")) == 2051.0f);
  // Toward +inf in float16: 2048 + 1 -> 2050, + 1 -> 2052, + 1 -> 2054.
  CHECK(gemm1(a, b, parse_accumulation("fp16,rounding=ru")) == 2054.0f);

  // Kahan: 1 + 16 x 2^-11 in float16. Each 2^-11 is half an ulp of 1 and ties to 1
  // (stagnation); compensation carries it: 1 + 2^-7 exactly.
  std::vector<double> x(17, std::ldexp(1.0, -11)), y(17, 1.0);
  x[0] = 1;
  auto [ka, kb] = dot(h, h, x, y);
  CHECK(gemm1(ka, kb, parse_accumulation("fp16")) == 1.0f);
  CHECK(gemm1(ka, kb, parse_accumulation("fp16,kahan=1")) == 1.0f + 0x1p-7f);

  // Stochastic rounding in bfloat16 recovers what nearest-even loses: 1 + 1000 x 2^-10
  // stays 1 under nearest-even (2^-10 is a quarter ulp); the expected value under SR is
  // 1 + 1000/1024 = 1.977, and the standard deviation about 0.12 (1000 steps of at most
  // half an ulp, 2^-8 each): 0.6 is 5 standard deviations (false failure < 1e-6, fixed
  // seed).
  std::vector<double> sx(1001, std::ldexp(1.0, -10)), sy(1001, 1.0);
  sx[0] = 1;
  auto [sa, sb] = dot(formats::bfloat16{}, formats::bfloat16{}, sx, sy);
  CHECK(gemm1(sa, sb, parse_accumulation("bf16")) == 1.0f);
  const float sr = gemm1(sa, sb, parse_accumulation("bf16,rounding=sr-a,sr-bits=16,seed=7"));
  CHECK(std::fabs(sr - 1.9766f) < 0.6f);
  CHECK(sr != 1.0f);
  // The same seed gives the same result; another seed (almost surely) another.
  CHECK(gemm1(sa, sb, parse_accumulation("bf16,rounding=sr-a,sr-bits=16,seed=7")) == sr);
}

TEST_CASE("matrix-unit models: hand-derived cases that tell each parameter apart", "[gemm][unit]") {
  const Format e4 = formats::e4m3fn{}, e5 = formats::e5m2{};
  const auto h100 = parse_accumulation("nvidia-h100-fp8");

  SECTION("truncation of terms to 13 bits differs from rounding") {
    // Products: 1 * 1 (s = 1, e = 0) and (3 x 2^-8) * 2^-7: in e4m3fn both are subnormal
    // with the unit exponent -6 (s = 0.75 and 0.5): s = 0.375, e = -12. E = 0. The second
    // term at weight 2^-13 is 0.375 * 2^(13 - 12) = 0.75: truncated, 0; rounded, 1 (2^-13).
    auto [a, b] = dot(e4, e4, {1, 3 * std::ldexp(1.0, -8)}, {1, std::ldexp(1.0, -7)});
    CHECK(gemm1(a, b, h100) == 1.0f);
    CHECK(gemm1(a, b, parse_accumulation("nvidia-h100-fp8,term-rounding=rne")) == 1.0f + 0x1p-13f);
    // float32 keeps it exactly: 1 + 3 x 2^-15.
    CHECK(gemm1(a, b, parse_accumulation("fp32")) == 1.0f + 3 * 0x1p-15f);
  }

  SECTION("block size 16 differs from 32") {
    // k = 0: +1, k = 1: -1, k = 16: 2^-7 * 2^-7 (s = 0.25, e = -12), other products 0.
    // One block of 32: E = 0, the small term 0.25 * 2^1 = 0.5 truncates to 0: the sum is 0.
    // Blocks of 16: the first gives C = +0; the second has E = max(-126, -12) = -12 and
    // keeps 0.25 * 2^13 = 2048 units of 2^-25: 2^-14.
    std::vector<double> x(32, 0.0), y(32, 0.0);
    x[0] = 1, y[0] = 1, x[1] = -1, y[1] = 1, x[16] = std::ldexp(1.0, -7), y[16] = std::ldexp(1.0, -7);
    auto [a, b] = dot(e4, e4, x, y);
    CHECK(bits(gemm1(a, b, h100)) == 0u);  // +0
    CHECK(gemm1(a, b, parse_accumulation("nvidia-ada-fp8")) == 0x1p-14f);
    CHECK(gemm1(a, b, parse_accumulation("nvidia-h100-fp8,block=16")) == 0x1p-14f);
  }

  SECTION("the accumulator C is truncated at every block") {
    // Block 1 (k < 32): 1 and 2^-7 * 2^-6 (s = 0.5, e = -12; at E = 0 the term is 0.5 *
    // 2^1 = 1 unit of 2^-13): C = 1 + 2^-13, kept (13 fraction bits).
    // Block 2: 2 * 2 (s = 1, e = 2): E = 2, and C's term trunc((1 + 2^-13) 2^-2 2^13) =
    // 2048 drops the 2^-13: the result is 4 + 1 = 5. With C added separately in float32:
    // 5 + 2^-13.
    std::vector<double> x(64, 0.0), y(64, 0.0);
    x[0] = 1, y[0] = 1, x[1] = std::ldexp(1.0, -7), y[1] = std::ldexp(1.0, -6), x[40] = 2, y[40] = 2;
    auto [a, b] = dot(e4, e4, x, y);
    CHECK(gemm1(a, b, h100) == 5.0f);
    CHECK(gemm1(a, b, parse_accumulation("nvidia-h100-fp8,input=separate")) == 5.0f + 0x1p-13f);
    CHECK(gemm1(a, b, parse_accumulation("fp32")) == 5.0f + 0x1p-13f);
  }

  SECTION("13 fraction bits (Hopper fp8) differ from 25 (Blackwell)") {
    // e5m2: 1 * 1 and 2^-10 * 2^-10 = 2^-20 (e = -20). F = 13 drops it; F = 25 keeps it,
    // and the 23-bit output holds 1 + 2^-20.
    auto [a, b] = dot(e5, e5, {1, std::ldexp(1.0, -10)}, {1, std::ldexp(1.0, -10)});
    CHECK(gemm1(a, b, h100) == 1.0f);
    CHECK(gemm1(a, b, parse_accumulation("nvidia-b200-fp8")) == 1.0f + 0x1p-20f);
    // The output rounding: 1 + 2^-20 + 2^-21... with out-bits=13 even F = 25 truncates it.
    CHECK(gemm1(a, b, parse_accumulation("nvidia-b200-fp8,out-bits=13")) == 1.0f);
  }

  SECTION("AMD MI300: the halves are aligned by floor, not truncation") {
    // e5m2fnuz: k = 0 (even half): 1 * 1; k = 1 (odd half): -(2^-15 * 2^-15) = -2^-30.
    // Even: S0 = 2^24 at E0 = 0. Odd: S1 = -2^24 at E1 = -30. Aligned to E = 0 by floor:
    // floor(-2^-6) = -1, so the sum is 2^24 - 1 units of 2^-24: 1 - 2^-24, a float32.
    // The NVIDIA models truncate toward zero (1.0); float32 rounds 1 - 2^-30 to 1.0.
    const Format f = formats::e5m2fnuz{};
    auto [a, b] = dot(f, f, {1, -std::ldexp(1.0, -15)}, {1, std::ldexp(1.0, -15)});
    CHECK(gemm1(a, b, parse_accumulation("amd-mi300-fp8")) == 1.0f - 0x1p-24f);
    CHECK(gemm1(a, b, parse_accumulation("nvidia-b200-fp8")) == 1.0f);
    CHECK(gemm1(a, b, parse_accumulation("fp32")) == 1.0f);
  }

  SECTION("NaN and infinity follow the float64 sum of the products") {
    // e5m2 codes: 0x7C is +inf, 0x3C is 1, 0x00 is 0.
    auto [a, b] = dot(e5, e5, {0, 1}, {1, 1});
    a.set(0, 0, 0x7C);
    CHECK(std::isinf(gemm1(a, b, h100)));
    auto [c, d] = dot(e5, e5, {0, 0}, {0, 1});
    c.set(0, 0, 0x7C);
    CHECK(bits(gemm1(c, d, h100)) == 0x7FFFFFFFu);  // inf * 0: the model's NaN
  }
}

TEST_CASE("matrix-unit models: properties", "[gemm][unit]") {
  // With many fraction bits and a block longer than K, the NVIDIA model is the exact sum
  // rounded once toward zero: compare with the exact sum of e4m3fn products (at most
  // 2^9 x 2^9 apart: exact in double for K <= 64), truncated to float32.
  std::uint64_t n = 0, bad = 0;
  for (int t = 0; t < 200; ++t) {
    const std::int64_t K = 1 + t % 64;
    const Codes a = random_codes(formats::e4m3fn{}, 1, K, 500 + t, Layout::row_major);
    const Codes b = random_codes(formats::e4m3fn{}, K, 1, 600 + t, Layout::row_major);
    double exact = 0;  // products are 8-bit, exponents within 2^-18 .. 2^18: exact
    for (std::int64_t k = 0; k < K; ++k)
      exact += decode(a.f, a.at(0, k)) * decode(b.f, b.at(k, 0));
    float want = float(exact);
    if (std::fabs(double(want)) > std::fabs(exact)) want = std::nextafter(want, 0.0f);  // toward zero
    want = want + 0.0f;
    const float got = gemm1(a, b, parse_accumulation("nvidia-h100-fp8,fbits=48,block=4096,out-bits=23"));
    ++n;
    if (bits(got) != bits(want)) ++bad;
    // Nearest-even output: the exact sum rounded once.
    const float got_rne = gemm1(
        a, b, parse_accumulation("nvidia-h100-fp8,fbits=48,block=4096,out-bits=23,out-rounding=rne"));
    if (bits(got_rne) != bits(float(exact) + 0.0f)) ++bad;
  }
  CHECK(n == 200);
  CHECK(bad == 0);

  // Permutations: within one block the model is a fused sum, so permuting k inside a
  // block does not change the result; permuting across blocks can.
  const Codes a = random_codes(formats::e4m3fn{}, 1, 64, 700, Layout::row_major);
  const Codes b = random_codes(formats::e4m3fn{}, 64, 1, 701, Layout::row_major);
  Codes pa = a, pb = b;
  for (int k = 0; k < 32; ++k) {  // reverse each block of 32
    pa.set(0, k, a.at(0, 31 - k));
    pb.set(k, 0, b.at(31 - k, 0));
    pa.set(0, 32 + k, a.at(0, 63 - k));
    pb.set(32 + k, 0, b.at(63 - k, 0));
  }
  const auto h100 = parse_accumulation("nvidia-h100-fp8");
  CHECK(bits(gemm1(a, b, h100)) == bits(gemm1(pa, pb, h100)));
}

namespace {

// A product of one row of A and one column of B by the oracle of the published rules
// (oracle/unit_oracle.hpp): operand values from the oracle's decoder, the model given by
// its MMA-Sim parameters.
struct UnitRule {
  enum Kind { nvidia, amd_fused, amd_halves } kind;
  std::size_t block;
  int F, out_bits;  // out_bits: NVIDIA only
};

float oracle_dot(const Codes& a, const Codes& b, const UnitRule& u) {
  const oracle::Spec& sa = oracle::spec(format_name(a.f));
  const oracle::Spec& sb = oracle::spec(format_name(b.f));
  std::vector<oracle::unit::Pair> k;
  for (std::int64_t i = 0; i < a.cols; ++i) {
    const oracle::Val x = oracle::decode(sa, a.at(0, i)), y = oracle::decode(sb, b.at(i, 0));
    REQUIRE(x.cls == oracle::Val::fin);  // the oracle covers finite operands
    REQUIRE(y.cls == oracle::Val::fin);
    k.push_back({x.v, y.v, 1 - sa.bias, 1 - sb.bias});
  }
  return oracle::unit::chain(k, u.block, [&](const std::vector<oracle::unit::Pair>& blk, float c) {
    if (u.kind == UnitRule::nvidia) return oracle::unit::nvidia_block(blk, c, u.F, u.out_bits);
    return oracle::unit::amd_block(blk, c, u.F, u.kind == UnitRule::amd_halves);
  });
}

// The same bits, or both NaN (the library writes the models' NaN 0x7FFFFFFF).
bool same_result(float want, float got) {
  return std::isnan(want) ? std::isnan(got) : bits(want) == bits(got);
}

// Codes of 1 x K and K x 1 operands from their codes.
std::pair<Codes, Codes> dot_codes(Format fa, Format fb, const std::vector<std::uint32_t>& x,
                                  const std::vector<std::uint32_t>& y) {
  Codes a(fa, 1, std::int64_t(x.size())), b(fb, std::int64_t(y.size()), 1);
  for (std::size_t k = 0; k < x.size(); ++k) a.set(0, std::int64_t(k), x[k]), b.set(std::int64_t(k), 0, y[k]);
  return {a, b};
}

const UnitRule kAmdFp16{UnitRule::amd_fused, 8, 24, 0};
const UnitRule kAmdFp8{UnitRule::amd_halves, 16, 24, 0};
const UnitRule kH100Fp16{UnitRule::nvidia, 16, 25, 23};

}  // namespace

TEST_CASE("amd-mi300-fp16: MMA-Sim's CDNA3 fp16 rule, hand-derived cases", "[gemm][unit]") {
  // MMA-Sim amd.py: CDNA3 fp16 and bf16 MFMA take groups of 8 products through one fused
  // sum (arithmetic.py, amd_fused_dot_rd_add without is_fp8). Every case is checked
  // against the derivation in its comment and against the oracle.
  const Format h = formats::float16{}, bf = formats::bfloat16{};
  const auto fp16 = parse_accumulation("amd-mi300-fp16");

  SECTION("one fused sum of the block, not odd and even halves") {
    // float16 codes: 0x3C00 = 1, 0x0200 = 2^-15 (subnormal: s = 0.5, e = -14), 0x8200 =
    // -2^-15. Products: 1 (s = 1, e = 0) and -2^-30 (s = -0.25, e = -28). One fused sum:
    // E = 0, the second term trunc(-0.25 2^(24 - 28)) = 0: the block gives 1; the second
    // block (zeros) keeps C = 1. The fp8 rule sums the halves apart and aligns the odd
    // one by floor: floor(-2^-6) units of 2^-24, so 1 - 2^-24.
    std::vector<std::uint32_t> x(16, 0), y(16, 0);
    x[0] = 0x3C00, x[1] = 0x0200, y[0] = 0x3C00, y[1] = 0x8200;
    auto [a, b] = dot_codes(h, h, x, y);
    CHECK(gemm1(a, b, fp16) == 1.0f);
    CHECK(oracle_dot(a, b, kAmdFp16) == 1.0f);
    CHECK(gemm1(a, b, parse_accumulation("amd-mi300-fp8")) == 1.0f - 0x1p-24f);
    CHECK(oracle_dot(a, b, kAmdFp8) == 1.0f - 0x1p-24f);
  }

  SECTION("C is floored in at 24 bits, never dropped") {
    // Block 1: -2^-12 * 2^-12 gives C = -2^-24 (s = -1, e = -24). Block 2: 2^10 * 2^10 = 2^20
    // (E = 20). C at weight 2^20 with 24 fraction bits: floor(-2^-20) = -1 unit, so the
    // sum is 2^20 - 2^-4 (a float32). The fp8 rule drops C, 44 binades below: 2^20; float32
    // accumulation rounds 2^20 - 2^-24 to 2^20.
    std::vector<double> x(16, 0.0), y(16, 0.0);
    x[0] = -std::ldexp(1.0, -12), y[0] = std::ldexp(1.0, -12), x[8] = 1024, y[8] = 1024;
    auto [a, b] = dot(h, h, x, y);
    CHECK(gemm1(a, b, fp16) == 0x1p20f - 0x1p-4f);
    CHECK(oracle_dot(a, b, kAmdFp16) == 0x1p20f - 0x1p-4f);
    CHECK(gemm1(a, b, parse_accumulation("amd-mi300-fp8,block=8")) == 0x1p20f);
    CHECK(gemm1(a, b, parse_accumulation("fp32")) == 0x1p20f);
  }

  SECTION("blocks of 8 products") {
    // k = 0: 1 * 1; k = 8: (-1.5 2^-13) * 2^-12 (s = -1.5, e = -25). Blocks of 8: the second
    // block has C = 1, its sum -1.5 at 2^-25 floored to 31 bits at 2^0: -96 units of 2^-31,
    // so 1 - 3 2^-26, nearest-even 1 - 2^-24. One block of 16: E = 0 and the term
    // trunc(-1.5 2^(24 - 25)) = 0: 1.
    std::vector<double> x(16, 0.0), y(16, 0.0);
    x[0] = 1, y[0] = 1, x[8] = -1.5 * std::ldexp(1.0, -13), y[8] = std::ldexp(1.0, -12);
    auto [a, b] = dot(h, h, x, y);
    CHECK(gemm1(a, b, fp16) == 1.0f - 0x1p-24f);
    CHECK(oracle_dot(a, b, kAmdFp16) == 1.0f - 0x1p-24f);
    CHECK(gemm1(a, b, parse_accumulation("amd-mi300-fp16,block=16")) == 1.0f);
    CHECK(oracle_dot(a, b, {UnitRule::amd_fused, 16, 24, 0}) == 1.0f);
  }

  SECTION("the output is rounded to nearest even") {
    // 1 * 1 and (1.5 2^-12) * 2^-11 (s = 1.5, e = -23): at E = 0 with 24 bits the term is 3
    // units of 2^-24, the sum 1 + 3 2^-24, a tie between 1 + 2^-23 and 1 + 2^-22 (even).
    auto [a, b] = dot(h, h, {1, 1.5 * std::ldexp(1.0, -12)}, {1, std::ldexp(1.0, -11)});
    CHECK(gemm1(a, b, fp16) == 1.0f + 0x1p-22f);
    CHECK(oracle_dot(a, b, kAmdFp16) == 1.0f + 0x1p-22f);
    CHECK(gemm1(a, b, parse_accumulation("amd-mi300-fp16,out-rounding=rz")) == 1.0f + 0x1p-23f);
  }

  SECTION("bfloat16: a zero operand has the exponent -126") {
    // bfloat16 codes: 0x2180 = 2^-60, 0x7180 = 2^100. Products 2^-120 (e = -120) and
    // 0 * 2^100 (s = 0, e = -126 + 100 = -26): E = -26 and trunc(2^(24 - 120 + 26)) = 0:
    // +0. Leaving the zero product out would give 2^-120, as float32 does.
    std::vector<std::uint32_t> x(16, 0), y(16, 0);
    x[0] = 0x2180, y[0] = 0x2180, y[1] = 0x7180;
    auto [a, b] = dot_codes(bf, bf, x, y);
    CHECK(bits(gemm1(a, b, fp16)) == 0u);
    CHECK(bits(oracle_dot(a, b, kAmdFp16)) == 0u);
    CHECK(gemm1(a, b, parse_accumulation("fp32")) == 0x1p-120f);
  }

  SECTION("bfloat16: a product of 2^128 or more is an infinity") {
    // 2^64 * 2^64 = 2^128 and 2^63 * -2^64 = -2^127: the model returns +inf although the
    // sum 2^127 is finite (NVIDIA: 2^127); with products of both signs beyond, NaN.
    auto [a, b] = dot(bf, bf, {0x1p64, 0x1p63}, {0x1p64, -0x1p64});
    CHECK(gemm1(a, b, fp16) == INFINITY);
    CHECK(oracle_dot(a, b, kAmdFp16) == INFINITY);
    CHECK(gemm1(a, b, parse_accumulation("nvidia-h100-fp16")) == 0x1p127f);
    auto [c, d] = dot(bf, bf, {0x1p64, 0x1p64}, {0x1p64, -0x1p64});
    CHECK(bits(gemm1(c, d, fp16)) == 0x7FFFFFFFu);
    CHECK(std::isnan(oracle_dot(c, d, kAmdFp16)));
  }
}

TEST_CASE("nvidia: a zero operand has the exponent -126 (MMA-Sim arithmetic.py)", "[gemm][unit]") {
  // bfloat16 codes: 0x2180 = 2^-60, 0x7180 = 2^100. Under nvidia-h100-fp16 (16 products,
  // F = 25) the products are 2^-120 (e = -120) and 0 * 2^100 (s = 0, e = -126 + 100 = -26);
  // C = +0 has e = -126. E = -26, and the first term trunc(2^(25 - 120 + 26)) = 0: the
  // result is +0 (zeros left out: 2^-120).
  const Format bf = formats::bfloat16{};
  std::vector<std::uint32_t> x(16, 0), y(16, 0);
  x[0] = 0x2180, y[0] = 0x2180, y[1] = 0x7180;
  auto [a, b] = dot_codes(bf, bf, x, y);
  CHECK(bits(gemm1(a, b, parse_accumulation("nvidia-h100-fp16"))) == 0u);
  CHECK(bits(oracle_dot(a, b, kH100Fp16)) == 0u);
  CHECK(gemm1(a, b, parse_accumulation("fp32")) == 0x1p-120f);
  // With A's second code 0x3F80 = 1 instead of 0, the product 2^100 is a nonzero term:
  // E = 100 and the result 2^100 (the term 2^-120 truncates away as before).
  a.set(0, 1, 0x3F80);
  CHECK(gemm1(a, b, parse_accumulation("nvidia-h100-fp16")) == 0x1p100f);
}

TEST_CASE("matrix-unit models equal the exact-arithmetic oracle of MMA-Sim's rules", "[gemm][unit]") {
  // Random 1 x K by K x 1 products, K = 1..70 (several chained blocks), with many zero
  // operands (a third), operands of nearby exponents (so that terms interact) and some
  // spread over the whole range; every finite code can occur.
  struct Case {
    const char* spec;
    Format fa, fb;
    UnitRule rule;
  };
  const std::vector<Case> cases = {
      {"amd-mi300-fp16", formats::float16{}, formats::float16{}, kAmdFp16},
      {"amd-mi300-fp16", formats::bfloat16{}, formats::bfloat16{}, kAmdFp16},
      {"amd-mi300-fp16", formats::float16{}, formats::bfloat16{}, kAmdFp16},
      {"amd-mi300-fp8", formats::e4m3fnuz{}, formats::e5m2fnuz{}, kAmdFp8},
      {"amd-mi300-fp8", formats::e5m2fnuz{}, formats::e5m2fnuz{}, kAmdFp8},
      {"nvidia-h100-fp16", formats::bfloat16{}, formats::bfloat16{}, kH100Fp16},
      {"nvidia-h100-fp16", formats::float16{}, formats::float16{}, kH100Fp16},
      {"nvidia-a100-fp16", formats::bfloat16{}, formats::bfloat16{}, {UnitRule::nvidia, 8, 24, 23}},
      {"nvidia-v100-fp16", formats::float16{}, formats::float16{}, {UnitRule::nvidia, 4, 23, 23}},
      {"nvidia-h100-fp8", formats::e4m3fn{}, formats::e5m2{}, {UnitRule::nvidia, 32, 13, 13}},
      {"nvidia-ada-fp8", formats::e5m2{}, formats::e5m2{}, {UnitRule::nvidia, 16, 13, 13}},
      {"nvidia-b200-fp8", formats::e4m3fn{}, formats::e4m3fn{}, {UnitRule::nvidia, 32, 25, 23}},
  };
  constexpr int kTrials = 300;
  Sweep sweep("matrix-unit models vs the MMA-Sim rule oracle: " + std::to_string(cases.size()) +
              " configurations x " + std::to_string(kTrials) + " dot products");
  SplitMix64 rng(13);
  const auto code = [&](const Format& f, int base) {
    const int M = f.mantissa_bits, E = f.exponent_bits, bits = total_bits(f);
    std::uint32_t c;
    do {
      c = std::uint32_t(rng.next()) & ((1u << bits) - 1);
      const std::uint64_t pick = rng.next() % 8;
      if (pick < 3) c &= sign_mask(f);  // +-0 (the fnuz -0 code is NaN: redrawn)
      else if (pick < 7) {             // exponent field near `base`
        const int ef = std::clamp(base + int(rng.next() % 7) - 3, 0, (1 << E) - 1);
        c = (c & ~(((1u << E) - 1) << M)) | (std::uint32_t(ef) << M);
      }
    } while (classify(f, c) == ValueClass::nan || classify(f, c) == ValueClass::infinite);
    return c;
  };
  for (const Case& cs : cases) {
    int differ = 0;
    for (int t = 0; t < kTrials; ++t) {
      const int K = 1 + int(rng.next() % 70);
      const int ba = int(rng.next() % (1u << cs.fa.exponent_bits));
      const int bb = int(rng.next() % (1u << cs.fb.exponent_bits));
      Codes a(cs.fa, 1, K), b(cs.fb, K, 1);
      for (int k = 0; k < K; ++k) a.set(0, k, code(cs.fa, ba)), b.set(k, 0, code(cs.fb, bb));
      const float want = oracle_dot(a, b, cs.rule);
      const float got = gemm1(a, b, parse_accumulation(cs.spec));
      if (same_result(want, got)) {
        sweep.add(1, 0);
        continue;
      }
      std::ostringstream m;
      m << cs.spec << " " << format_name(cs.fa) << " x " << format_name(cs.fb) << " K=" << K << " codes";
      for (int k = 0; k < K; ++k) m << " " << std::hex << a.at(0, k) << "*" << b.at(k, 0);
      m << ": oracle " << std::hexfloat << want << ", library " << got;
      sweep.add(1, 1, {m.str()});
      ++differ;
    }
    if (differ)
      std::printf("  %s %s x %s: %d of %d differ\n", cs.spec, format_name(cs.fa).c_str(),
                  format_name(cs.fb).c_str(), differ, kTrials);
  }
  sweep.finish(cases.size() * kTrials);
}

namespace {

struct FastCase {
  std::string name;
  Format fa, fb;
  std::string acc;
  GemmPath path;  // the fast path the case is for
  bool specials = false;
  // 0 none, 1 tensor+row/col, 2 blocks 1x16 / 16x16 (6: 16x16 / 16x16), 3 MX-32, 4 NVFP4,
  // 5 DeepSeek-V3 (float32 blocks of 1x128 for A, 128x128 for B)
  int scales = 0;
  bool zeros = false;
  bool tiny = false;  // magnitudes in [2^-75, 2^-61): products near and below 2^-126
  bool beta = false;  // beta != 0 for every shape (else for every third)
};

// Replaces every element by a random value of magnitude in [2^-75, 2^-61) (exact in
// bfloat16, where products of two of them reach float32's subnormal range), and one in
// eight by a zero.
void make_tiny(Codes& m, std::uint64_t seed) {
  SplitMix64 rng(seed);
  bool exact = true;
  for (std::int64_t i = 0; i < m.rows; ++i)
    for (std::int64_t j = 0; j < m.cols; ++j) {
      const double mag = std::ldexp(1.0 + double(rng.next() % 128) / 128, -75 + int(rng.next() % 14));
      const double v = rng.next() % 8 == 0 ? 0.0 : rng.next() % 2 ? -mag : mag;
      exact = exact && decode(m.f, encode(m.f, v)) == v;
      m.set_value(i, j, v);
    }
  REQUIRE(exact);
}

}  // namespace

TEST_CASE("gemm fast paths equal the reference bit for bit", "[gemm][fast]") {
  test::for_each_simd_target([&](std::string_view simd) {
    constexpr GemmPath F32 = GemmPath::float32, UNIT = GemmPath::unit;
    constexpr GemmPath UNIT_WIDE = GemmPath::unit_wide, UNIT_AMD = GemmPath::unit_amd;
    const Format E4 = formats::e4m3fn{}, E5 = formats::e5m2{}, F16 = formats::float16{},
                 BF16 = formats::bfloat16{};
    const std::vector<FastCase> cases = {
        {"fp32 e4m3 x e5m2", formats::e4m3fn{}, formats::e5m2{}, "fp32", F32, true},
        {"fp32 f16 x bf16", formats::float16{}, formats::bfloat16{}, "fp32", F32, true},
        {"fp32 f16 x bf16 zeros", formats::float16{}, formats::bfloat16{}, "fp32", F32, false, 0, true},
        {"fp32 float32 x e4m3", formats::float32{}, formats::e4m3fn{}, "fp32", F32, true},
        {"fp32 float32 x float32", formats::float32{}, formats::float32{}, "fp32,promote=64", F32, true},
        {"fp32 promote 8", formats::e4m3fn{}, formats::e4m3fn{}, "fp32,promote=8", F32},
        {"fp32 tensor+row scales", formats::e4m3fn{}, formats::e5m2{}, "fp32", F32, false, 1},
        {"fp32 blocks 1x16 16x16", formats::e4m3fn{}, formats::e4m3fn{}, "fp32", F32, false, 2},
        {"fp32 MX-32", formats::e4m3fn{}, formats::e4m3fn{}, "fp32", F32, false, 3},
        {"fp32 NVFP4", formats::e2m1fn{}, formats::e2m1fn{}, "fp32", F32, false, 4},
        // Segment layouts: the scale block and the promotion interval nested both ways,
        // segments longer than the kernel's K block (256), blocks that do not divide it.
        {"fp32 MX-32 promote 64", formats::e4m3fn{}, formats::e4m3fn{}, "fp32,promote=64", F32, false, 3},
        {"fp32 MX-32 promote 16", formats::e4m3fn{}, formats::e4m3fn{}, "fp32,promote=16", F32, false, 3},
        {"fp32 MX-32 promote 96", formats::e4m3fn{}, formats::e5m2{}, "fp32,promote=96", F32, false, 3},
        {"fp32 MX-32 specials", formats::e4m3fn{}, formats::e5m2{}, "fp32", F32, true, 3},
        {"fp32 NVFP4 beta", formats::e2m1fn{}, formats::e2m1fn{}, "fp32", F32, false, 4, false, false, true},
        {"fp32 DeepSeek 1x128 128x128", formats::e4m3fn{}, formats::e4m3fn{}, "fp32", F32, false, 5},
        {"fp32 DeepSeek promote 64", formats::e4m3fn{}, formats::e4m3fn{}, "fp32,promote=64", F32, false, 5},
        {"fp32 promote 96", formats::e4m3fn{}, formats::e4m3fn{}, "fp32,promote=96", F32},
        {"fp32 promote 300", formats::e4m3fn{}, formats::e4m3fn{}, "fp32,promote=300", F32},
        {"fp32 blocks 16x16 16x16", formats::e4m3fn{}, formats::e4m3fn{}, "fp32", F32, false, 6},
        {"h100-fp8", formats::e4m3fn{}, formats::e4m3fn{}, "nvidia-h100-fp8", UNIT},
        {"h100-fp8 e5m2", formats::e5m2{}, formats::e4m3fn{}, "nvidia-h100-fp8", UNIT},
        {"h100-fp8 zeros", formats::e4m3fn{}, formats::e5m2{}, "nvidia-h100-fp8", UNIT, false, 0, true},
        {"h100-fp8 f16 x f16 zeros", formats::float16{}, formats::float16{}, "nvidia-h100-fp8", UNIT, false, 0, true},
        {"ada-fp8", formats::e4m3fn{}, formats::e5m2{}, "nvidia-ada-fp8", UNIT},
        {"ada-fp8 f16 x e5m2 zeros", formats::float16{}, formats::e5m2{}, "nvidia-ada-fp8", UNIT, false, 0, true},
        {"h100-fp8 promote 64", formats::e4m3fn{}, formats::e4m3fn{}, "nvidia-h100-fp8,promote=64", UNIT},
        {"h100-fp8 separate", formats::e4m3fn{}, formats::e4m3fn{}, "nvidia-h100-fp8,input=separate", UNIT},
        {"h100-fp8 blocks", formats::e4m3fn{}, formats::e4m3fn{}, "nvidia-h100-fp8", UNIT, false, 2},
        {"h100-fp8 out-bits 7", formats::e4m3fn{}, formats::e4m3fn{}, "nvidia-h100-fp8,out-bits=7,fbits=9,block=8", UNIT},
        // The NVIDIA model on float64 lanes: F beyond float32, bfloat16 operands, other
        // roundings.
        {"b200-fp8", E4, E4, "nvidia-b200-fp8", UNIT_WIDE},
        {"b200-fp8 e5m2 zeros", E5, E4, "nvidia-b200-fp8", UNIT_WIDE, false, 0, true},
        {"b200-fp8 promote 64", E4, E5, "nvidia-b200-fp8,promote=64", UNIT_WIDE},
        {"b200-fp8 separate", E4, E4, "nvidia-b200-fp8,input=separate", UNIT_WIDE},
        {"b200-fp8 blocks", E4, E4, "nvidia-b200-fp8", UNIT_WIDE, false, 2},
        {"b200-fp8 MX-32", E4, E4, "nvidia-b200-fp8", UNIT_WIDE, false, 3},
        {"b200-fp8 blocks, promote 24 (uneven segments)", E4, E4, "nvidia-b200-fp8,promote=24", UNIT_WIDE, false, 2},
        {"h100-fp8 blocks, promote 24 (uneven segments)", E4, E5, "nvidia-h100-fp8,promote=24", UNIT, false, 2},
        {"mi300-fp16 blocks, promote 40 (uneven segments)", F16, F16, "amd-mi300-fp16,promote=40", UNIT_AMD, false, 2},
        {"v100-fp16 f16", F16, F16, "nvidia-v100-fp16", UNIT_WIDE},
        {"v100-fp16 e4m3 x e5m2", E4, E5, "nvidia-v100-fp16", UNIT_WIDE},
        {"a100-fp16 f16 zeros", F16, F16, "nvidia-a100-fp16", UNIT_WIDE, false, 0, true},
        {"a100-fp16 e5m2", E5, E5, "nvidia-a100-fp16", UNIT_WIDE},
        {"h100-fp16 f16", F16, F16, "nvidia-h100-fp16", UNIT_WIDE},
        {"h100-fp16 e4m3 x e5m2", E4, E5, "nvidia-h100-fp16", UNIT_WIDE},
        {"h100-fp16 f16 promote 32", F16, F16, "nvidia-h100-fp16,promote=32", UNIT_WIDE},
        {"h100-fp16 f16 separate", F16, F16, "nvidia-h100-fp16,input=separate", UNIT_WIDE},
        {"h100-fp16 bf16", BF16, BF16, "nvidia-h100-fp16", UNIT_WIDE},
        {"h100-fp16 bf16 zeros", BF16, BF16, "nvidia-h100-fp16", UNIT_WIDE, false, 0, true},
        {"h100-fp16 bf16 tiny", BF16, BF16, "nvidia-h100-fp16", UNIT_WIDE, false, 0, false, true},
        {"h100-fp8 bf16 x bf16", BF16, BF16, "nvidia-h100-fp8", UNIT_WIDE},
        {"h100-fp8 bf16 separate", BF16, BF16, "nvidia-h100-fp8,input=separate", UNIT_WIDE},
        {"h100-fp8 rne terms and output", E4, E4, "nvidia-h100-fp8,term-rounding=rne,out-rounding=rne", UNIT_WIDE},
        {"h100-fp8 ru terms, rd output", E4, E5, "nvidia-h100-fp8,term-rounding=ru,out-rounding=rd", UNIT_WIDE},
        {"h100-fp8 rna terms, odd output", E4, E4, "nvidia-h100-fp8,term-rounding=rna,out-rounding=ro", UNIT_WIDE},
        {"h100-fp16 ro terms, ru output, tiny", BF16, BF16, "nvidia-h100-fp16,term-rounding=ro,out-rounding=ru", UNIT_WIDE, false, 0, false, true},
        {"b200 rd terms, rna output", F16, F16, "nvidia-b200-fp8,term-rounding=rd,out-rounding=rna", UNIT_WIDE},
        {"b200 out-bits 12 fbits 30 block 7", E4, F16, "nvidia-b200-fp8,out-bits=12,fbits=30,block=7", UNIT_WIDE},
        {"nvidia fbits 44 block 5", F16, F16, "nvidia-h100-fp16,fbits=44,block=5", UNIT_WIDE},
        // The AMD CDNA3 models on float64 lanes.
        {"mi300-fp8", E4, E4, "amd-mi300-fp8", UNIT_AMD},
        {"mi300-fp8 e5m2 x e4m3 zeros", E5, E4, "amd-mi300-fp8", UNIT_AMD, false, 0, true},
        {"mi300-fp8 f16 x f16", F16, F16, "amd-mi300-fp8", UNIT_AMD},
        {"mi300-fp8 promote 64", E4, E4, "amd-mi300-fp8,promote=64", UNIT_AMD},
        {"mi300-fp8 separate", E4, E5, "amd-mi300-fp8,input=separate", UNIT_AMD},
        {"mi300-fp8 blocks", E4, E4, "amd-mi300-fp8", UNIT_AMD, false, 2},
        {"mi300-fp8 bf16 (overflow)", BF16, BF16, "amd-mi300-fp8", UNIT_AMD},
        {"mi300-fp8 bf16 tiny", BF16, BF16, "amd-mi300-fp8", UNIT_AMD, false, 0, false, true},
        {"mi300-fp8 fbits 40 block 5", E4, F16, "amd-mi300-fp8,fbits=40,block=5", UNIT_AMD},
        {"mi300-fp8 ru terms, rz output, out-bits 9", E4, E4, "amd-mi300-fp8,term-rounding=ru,out-rounding=rz,out-bits=9", UNIT_AMD},
        {"mi300-fp16 f16", F16, F16, "amd-mi300-fp16", UNIT_AMD},
        {"mi300-fp16 f16 zeros", F16, F16, "amd-mi300-fp16", UNIT_AMD, false, 0, true},
        {"mi300-fp16 bf16 (overflow)", BF16, BF16, "amd-mi300-fp16", UNIT_AMD},
        {"mi300-fp16 bf16 zeros", BF16, BF16, "amd-mi300-fp16", UNIT_AMD, false, 0, true},
        {"mi300-fp16 bf16 tiny", BF16, BF16, "amd-mi300-fp16", UNIT_AMD, false, 0, false, true},
        {"mi300-fp16 e4m3 x e5m2", E4, E5, "amd-mi300-fp16", UNIT_AMD},
        {"mi300-fp16 promote 8", F16, F16, "amd-mi300-fp16,promote=8", UNIT_AMD},
        {"mi300-fp16 separate", BF16, BF16, "amd-mi300-fp16,input=separate", UNIT_AMD},
        {"mi300-fp16 MX-32", E4, E4, "amd-mi300-fp16", UNIT_AMD, false, 3},
        {"mi300-fp16 rne terms, rna output, out-bits 10", F16, F16, "amd-mi300-fp16,term-rounding=rne,out-rounding=rna,out-bits=10", UNIT_AMD},
        {"mi300-fp16 fbits 12 block 3", F16, BF16, "amd-mi300-fp16,fbits=12,block=3", UNIT_AMD},
    };
    Sweep sweep(test::simd_label(simd) + "gemm fast path vs reference: " + std::to_string(cases.size()) +
                " configurations x 8 shapes x 2 layouts x 3 thread counts");
    struct Shape {
      std::int64_t M, N, K;
    };
    const std::vector<Shape> shapes = {{1, 1, 1},   {13, 33, 1},  {12, 32, 256}, {25, 47, 300},
                                       {7, 100, 65}, {50, 17, 513}, {97, 65, 33},
                                       {20, 37, 700}};
    // Every element of every (case, shape, layout) is compared for 3 thread counts.
    std::uint64_t cells = 0;
    for (const Shape& sh : shapes) cells += std::uint64_t(sh.M * sh.N);
    const std::uint64_t expected = cases.size() * 2 * 3 * cells;
    int seed = 0;
    for (const FastCase& fc : cases) {
      for (const Shape& s : shapes)
        for (Layout la : {Layout::row_major, Layout::col_major}) {
          ++seed;
          Codes a = random_codes(fc.fa, s.M, s.K, 1000 + seed, la, fc.specials, fc.zeros);
          Codes b = random_codes(fc.fb, s.K, s.N, 2000 + seed,
                                 la == Layout::row_major ? Layout::col_major : Layout::row_major,
                                 fc.specials, fc.zeros);
          if (fc.tiny) {
            make_tiny(a, 4000 + seed);
            make_tiny(b, 5000 + seed);
          }
          GemmOptions o;
          o.accumulation = parse_accumulation(fc.acc);
          std::vector<float> fsa, fsb;
          std::vector<std::uint8_t> csa, csb;
          SplitMix64 rng(3000 + seed);
          const auto pow2 = [&] { return std::ldexp(1.0f, int(rng.next() % 9) - 4); };
          if (fc.scales == 1) {
            fsa.resize(std::size_t(s.M));
            for (auto& v : fsa) v = pow2() * 1.25f;
            o.a_scales = {fsa.data(), ScaleEncoding::float32, 1, 0, 0.75f};
            o.b_scales = {nullptr, ScaleEncoding::float32, 0, 0, 3.0f};
            o.alpha = 0.5f;
          } else if (fc.scales == 2 || fc.scales == 6) {
            const std::int64_t kb = (s.K + 15) / 16, ra = fc.scales == 6 ? 16 : 1;
            fsa.resize(std::size_t((s.M + ra - 1) / ra * kb));
            fsb.resize(std::size_t(kb * ((s.N + 15) / 16)));
            for (auto& v : fsa) v = pow2() * 1.5f;
            for (auto& v : fsb) v = pow2();
            o.a_scales = {fsa.data(), ScaleEncoding::float32, ra, 16, 1.0f};
            o.b_scales = {fsb.data(), ScaleEncoding::float32, 16, 16, 1.0f};
          } else if (fc.scales == 3 || fc.scales == 4) {
            const std::int64_t bk = fc.scales == 3 ? 32 : 16, kb = (s.K + bk - 1) / bk;
            csa.resize(std::size_t(s.M * kb));
            csb.resize(std::size_t(kb * s.N));
            for (auto& v : csa) v = std::uint8_t(fc.scales == 3 ? 120 + rng.next() % 15 : 0x30 + rng.next() % 32);
            for (auto& v : csb) v = std::uint8_t(fc.scales == 3 ? 120 + rng.next() % 15 : 0x30 + rng.next() % 32);
            const ScaleEncoding enc = fc.scales == 3 ? ScaleEncoding::e8m0 : ScaleEncoding::e4m3;
            o.a_scales = {csa.data(), enc, 1, bk, fc.scales == 4 ? 0.375f : 1.0f};
            o.b_scales = {csb.data(), enc, bk, 1, 1.0f};
          } else if (fc.scales == 5) {
            const std::int64_t kb = (s.K + 127) / 128;
            fsa.resize(std::size_t(s.M * kb));
            fsb.resize(std::size_t(kb * ((s.N + 127) / 128)));
            for (auto& v : fsa) v = pow2() * 1.75f;
            for (auto& v : fsb) v = pow2() * 1.25f;
            o.a_scales = {fsa.data(), ScaleEncoding::float32, 1, 128, 1.0f};
            o.b_scales = {fsb.data(), ScaleEncoding::float32, 128, 128, 1.0f};
          }
          std::vector<float> c0(std::size_t(s.M * s.N));
          for (auto& v : c0) v = float(int(rng.next() % 17) - 8) * 0.25f;
          if (fc.beta || seed % 3 == 0) o.beta = -0.5f;
          o.exec.threads = 1;
          // The comparison means something only if gemm takes the path the case is for.
          INFO(fc.name << " M=" << s.M << " N=" << s.N << " K=" << s.K);
          REQUIRE(gemm_path_name(gemm_path(a.view(), b.view(), o)) == gemm_path_name(fc.path));
          const std::vector<float> want = run(false, a, b, o, c0);
          std::uint64_t bad = 0;
          std::vector<std::string> msgs;
          for (int threads : {1, 2, 3}) {
            o.exec.threads = threads;
            const std::vector<float> got = run(true, a, b, o, c0);
            for (std::size_t e = 0; e < got.size(); ++e)
              if (bits(got[e]) != bits(want[e])) {
                if (++bad <= 3)
                  msgs.push_back(fc.name + " M=" + std::to_string(s.M) + " N=" + std::to_string(s.N) +
                                 " K=" + std::to_string(s.K) + " threads " + std::to_string(threads) +
                                 " element " + std::to_string(e) + ": reference " +
                                 std::to_string(want[e]) + ", fast " + std::to_string(got[e]));
              }
            sweep.add(got.size(), 0);
          }
          if (!msgs.empty()) sweep.add(0, bad, msgs);
        }
    }
    sweep.finish(expected);
    // bfloat16 operands take the float64 lanes (their products, 2^-266 to 2^256, do not
    // fit float32's range; they are normal doubles), not the float32 ones; an operand
    // that is NaN or infinite takes the reference.
    Codes a = random_codes(formats::bfloat16{}, 4, 32, 1, Layout::row_major);
    const Codes b = random_codes(formats::bfloat16{}, 32, 4, 2, Layout::row_major);
    GemmOptions o;
    for (const char* spec : {"nvidia-h100-fp8", "nvidia-h100-fp16"}) {
      o.accumulation = parse_accumulation(spec);
      CHECK(gemm_path(a.view(), b.view(), o) == GemmPath::unit_wide);
    }
    for (const char* spec : {"amd-mi300-fp8", "amd-mi300-fp16"}) {
      o.accumulation = parse_accumulation(spec);
      CHECK(gemm_path(a.view(), b.view(), o) == GemmPath::unit_amd);
    }
    a.set(2, 5, 0x7FC0);  // NaN
    for (const char* spec : {"nvidia-h100-fp8", "amd-mi300-fp16"}) {
      o.accumulation = parse_accumulation(spec);
      CHECK(gemm_path(a.view(), b.view(), o) == GemmPath::reference);
    }
    // A promotion interval and a scale block of which neither divides the other cut K at
    // both: the float32 kernel needs segments of one length, so the float accumulator
    // kernels on float64 lanes compute those, bit for bit.
    const Codes a8 = random_codes(formats::e4m3fn{}, 4, 256, 3, Layout::row_major);
    const Codes b8 = random_codes(formats::e4m3fn{}, 256, 4, 4, Layout::row_major);
    const std::vector<std::uint8_t> sa(4 * 8, 127), sb(8 * 4, 127);
    GemmOptions mx;
    mx.a_scales = {sa.data(), ScaleEncoding::e8m0, 1, 32, 1.0f};
    mx.b_scales = {sb.data(), ScaleEncoding::e8m0, 32, 1, 1.0f};
    for (const char* spec : {"fp32,promote=100", "fp32,promote=48"}) {
      mx.accumulation = parse_accumulation(spec);
      CHECK(gemm_path(a8.view(), b8.view(), mx) == GemmPath::accumulator_wide);
      const std::vector<float> c0(16, 0.0f);
      const std::vector<float> want = run(false, a8, b8, mx, c0), got = run(true, a8, b8, mx, c0);
      for (std::size_t e = 0; e < got.size(); ++e) CHECK(bits(got[e]) == bits(want[e]));
    }
    mx.accumulation = parse_accumulation("fp32,promote=96");
    CHECK(gemm_path(a8.view(), b8.view(), mx) == GemmPath::float32);
  });
}

TEST_CASE("accumulation specs: presets, overrides and errors", "[gemm]") {
  CHECK(accumulation_presets().size() == 11);
  for (std::string_view p : accumulation_presets()) {
    const Accumulation a = parse_accumulation(p);
    const Accumulation b = parse_accumulation(accumulation_spec(a));  // round trip
    CHECK(accumulation_spec(b) == accumulation_spec(a));
  }
  const Accumulation h = parse_accumulation("nvidia-h100-fp8");
  CHECK(h.unit.model == UnitModel::nvidia);
  CHECK(h.unit.block == 32);
  CHECK(h.unit.fraction_bits == 13);
  CHECK(h.unit.output_fraction_bits == 13);
  CHECK(h.unit.term_rounding == Rounding::toward_zero);
  // A spec of changed model parameters keeps its model: CDNA3 fp16 is not CDNA3 fp8.
  for (const char* spec : {"amd-mi300-fp16,block=16", "amd-mi300-fp8,fbits=20", "nvidia-h100-fp16,block=8"}) {
    const Accumulation x = parse_accumulation(spec);
    INFO(spec << " -> " << accumulation_spec(x));
    CHECK(parse_accumulation(accumulation_spec(x)).unit.model == x.unit.model);
    CHECK(accumulation_spec(parse_accumulation(accumulation_spec(x))) == accumulation_spec(x));
  }
  CHECK(parse_accumulation("amd-mi300-fp16").unit.model == UnitModel::amd_cdna3_fp16);
  CHECK(unit_model_name(UnitModel::amd_cdna3_fp16) == "amd_cdna3_fp16");
  const Accumulation p = parse_accumulation("nvidia-h100-fp8,promote=128,block=16");
  CHECK(p.promote_interval == 128);
  CHECK(p.unit.block == 16);
  const Accumulation f = parse_accumulation("fp32,format=bfloat16,rounding=sr-b,order=pairwise");
  CHECK(f.format == Format(formats::bfloat16{}));
  CHECK(f.convert.stochastic_bits == default_stochastic_bits);
  CHECK(f.order == SumOrder::pairwise);
  CHECK_THROWS_WITH(parse_accumulation("h100"), Catch::Contains("unknown preset 'h100'"));
  CHECK_THROWS_WITH(parse_accumulation("fp32,order=random"), Catch::Contains("order must be"));
  CHECK_THROWS_WITH(parse_accumulation("fp32,block"), Catch::Contains("expected key=value"));
  CHECK_THROWS_WITH(parse_accumulation("fp32,fbits=99"), Catch::Contains("fbits=99 must be"));
  CHECK_THROWS_WITH(parse_accumulation("fp32,colour=red"), Catch::Contains("unknown key 'colour'"));
  CHECK_THROWS_WITH(parse_accumulation("fp32,format=e9m9"), Catch::Contains("exponent bits"));
  // A sum of products of either sign needs a signed accumulator with a zero.
  for (const char* f : {"e8m0fnu", "binary8p3ue", "binary8p4uf"})
    CHECK_THROWS_WITH(parse_accumulation(std::string("fp32,format=") + f),
                      Catch::Contains(std::string("accumulator format ") + f + " has no sign"));
  CHECK_NOTHROW(parse_accumulation("fp32,format=binary8p3se"));
  // Argument checks.
  const Codes a(formats::e4m3fn{}, 2, 3), b(formats::e4m3fn{}, 4, 2);
  std::vector<float> c(4);
  CHECK_THROWS_WITH(gemm(a.view(), b.view(), c.data(), 2), Catch::Contains("shape mismatch"));
  GemmOptions o;
  o.accumulation = parse_accumulation("fp32,order=blocked");
  const Codes b2(formats::e4m3fn{}, 3, 2);
  CHECK_THROWS_WITH(gemm(a.view(), b2.view(), c.data(), 2, o), Catch::Contains("chunk >= 1"));
  o = {};
  o.accumulation.format = formats::e8m0fnu{};  // set directly, past the parser
  CHECK_THROWS_WITH(gemm(a.view(), b2.view(), c.data(), 2, o),
                    Catch::Contains("accumulator format e8m0fnu has no sign"));
  CHECK_THROWS_WITH(gemm_reference(a.view(), b2.view(), c.data(), 2, o),
                    Catch::Contains("accumulator format e8m0fnu has no sign"));
  std::vector<float> s1(2 * 1), s2(1 * 2);
  o = {};
  o.a_scales = {s1.data(), ScaleEncoding::float32, 1, 2, 1.0f};
  o.b_scales = {s2.data(), ScaleEncoding::float32, 1, 1, 1.0f};
  CHECK_THROWS_WITH(gemm(a.view(), b2.view(), c.data(), 2, o), Catch::Contains("differ from B's"));
}

TEST_CASE("nvidia-h100-fp8 error for K = 4096 (DeepSeek-V3 3.3.2)", "[gemm][unit]") {
  // N(0,1) inputs quantized to e4m3fn; errors against the float64 product of the
  // quantized values, so that only the accumulation differs.
  const std::int64_t M = 16, N = 16, K = 4096;
  std::mt19937_64 gen(2412);  // fixed seed
  std::normal_distribution<double> nd;
  Codes a(formats::e4m3fn{}, M, K), b(formats::e4m3fn{}, K, N);
  for (std::int64_t i = 0; i < M; ++i)
    for (std::int64_t k = 0; k < K; ++k) a.set_value(i, k, nd(gen));
  for (std::int64_t k = 0; k < K; ++k)
    for (std::int64_t j = 0; j < N; ++j) b.set_value(k, j, nd(gen));
  std::vector<double> exact(std::size_t(M * N), 0.0);
  double sum_abs_max = 0;
  for (std::int64_t i = 0; i < M; ++i)
    for (std::int64_t j = 0; j < N; ++j) {
      double s = 0, sa = 0;
      for (std::int64_t k = 0; k < K; ++k) {
        const double p = decode(a.f, a.at(i, k)) * decode(b.f, b.at(k, j));
        s += p;
        sa += std::fabs(p);
      }
      exact[std::size_t(i * N + j)] = s;
      sum_abs_max = std::max(sum_abs_max, sa);
    }
  // Relative error of an element: |C - exact| / |exact|, over elements with |exact| >= 8
  // (the typical magnitude is sqrt(K) = 64; smaller values make any ratio meaningless).
  const auto max_rel = [&](const std::string& spec) {
    GemmOptions o;
    o.accumulation = parse_accumulation(spec);
    // The fast paths where a SIMD target is compiled in; the reference elsewhere.
    const GemmPath want = !simd_targets().empty() ? (spec == "fp32" ? GemmPath::float32 : GemmPath::unit)
                                                  : GemmPath::reference;
    REQUIRE(gemm_path(a.view(), b.view(), o) == want);
    const std::vector<float> c = run(true, a, b, o);
    CHECK(c == run(false, a, b, o));
    double m = 0;
    for (std::size_t e = 0; e < c.size(); ++e)
      if (std::fabs(exact[e]) >= 8) m = std::max(m, std::fabs(c[e] - exact[e]) / std::fabs(exact[e]));
    std::printf("K=4096 N(0,1)->e4m3fn, %s: max relative error %.3g\n", spec.c_str(), m);
    return m;
  };
  const double h100 = max_rel("nvidia-h100-fp8");
  const double promoted = max_rel("nvidia-h100-fp8,promote=128");
  const double fp32 = max_rel("fp32");
  CHECK(h100 > 1e-3);   // of the order of 1e-2, as DeepSeek-V3 reports for H800
  CHECK(h100 < 1e-1);
  CHECK(promoted < h100 / 4);  // the truncation inside each chunk of 128 remains
  CHECK(fp32 < 1e-5);
}

TEST_CASE("matrix-unit models: an unregistered model is rejected, not routed", "[gemm][unit]") {
  // Every value of the enum's type: the three models have names, every other value is
  // refused by each entry point that takes a model.
  int named = 0, refused = 0;
  const std::uint8_t ka[1] = {0x38}, kb[1] = {0x38};  // e4m3fn 1.0
  for (int v = 0; v < 256; ++v) {
    const UnitModel m = static_cast<UnitModel>(v);
    if (m == UnitModel::none) {
      CHECK(unit_model_name(m) == "none");
      continue;
    }
    bool known = true;
    try {
      (void)unit_model_name(m);
    } catch (const std::invalid_argument& e) {
      known = false;
      CHECK_THAT(e.what(), Catch::Contains("unknown matrix-unit model " + std::to_string(v)));
    }
    if (known) {
      ++named;
      continue;
    }
    CodeMatrix a, b;
    a.data = ka;
    b.data = kb;
    a.rows = a.cols = b.rows = b.cols = 1;
    GemmOptions o;
    o.accumulation = parse_accumulation("nvidia-h100-fp8");
    o.accumulation.unit.model = m;  // set directly, past the parser
    float c = 0.0f;
    CHECK_THROWS_WITH(check_gemm(a, b, &c, 1, o), Catch::Contains("unknown matrix-unit model"));
    CHECK_THROWS_AS(gemm(a, b, &c, 1, o), std::invalid_argument);
    CHECK_THROWS_AS(gemm_reference(a, b, &c, 1, o), std::invalid_argument);
    CHECK_THROWS_AS(gemm_path(a, b, o), std::invalid_argument);
    CHECK_THROWS_AS(accumulation_spec(o.accumulation), std::invalid_argument);
    CHECK(c == 0.0f);
    ++refused;
  }
  CHECK(named == 3);
  CHECK(refused == 255 - 3);
}

TEST_CASE("matrix-unit models: every preset round-trips through its spec", "[gemm][unit]") {
  const auto same = [](const Accumulation& x, const Accumulation& y) {
    return x.format == y.format && x.convert.rounding == y.convert.rounding &&
           x.convert.saturation == y.convert.saturation &&
           x.convert.stochastic_bits == y.convert.stochastic_bits && x.order == y.order &&
           x.chunk == y.chunk && x.kahan == y.kahan && x.promote_interval == y.promote_interval &&
           x.unit.model == y.unit.model && x.unit.block == y.unit.block &&
           x.unit.fraction_bits == y.unit.fraction_bits &&
           x.unit.term_rounding == y.unit.term_rounding &&
           x.unit.output_fraction_bits == y.unit.output_fraction_bits &&
           x.unit.output_rounding == y.unit.output_rounding && x.unit.input == y.unit.input;
  };
  int presets = 0, units = 0;
  std::vector<std::string_view> seen;
  for (std::string_view p : accumulation_presets()) {
    INFO(p);
    for (std::string_view q : seen) CHECK(q != p);  // each name once
    seen.push_back(p);
    const Accumulation a = parse_accumulation(p);
    const std::string spec = accumulation_spec(a);
    CHECK(same(parse_accumulation(spec), a));
    if (a.unit.model != UnitModel::none) {
      CHECK(spec == p);  // a model's preset is spelt by its name
      // With a parameter changed, the spec keeps the model (not its first preset's alone).
      Accumulation b = a;
      b.unit.block = a.unit.block + 1;
      const Accumulation back = parse_accumulation(accumulation_spec(b));
      CHECK(same(back, b));
      CHECK(unit_model_name(back.unit.model) == unit_model_name(a.unit.model));
      ++units;
    }
    ++presets;
  }
  CHECK(presets == int(accumulation_presets().size()));
  CHECK(presets == 11);
  CHECK(units == 8);
}
