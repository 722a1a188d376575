// Scalar arithmetic against the independent oracle (oracle/arith_oracle.hpp):
//  - every operand pair of e4m3fn, e5m2, e4m3fnuz (2^16 pairs), e2m3fn, e3m2fn (2^12) and
//    e2m1fn (2^8) through add, sub, mul, div, and every code through sqrt, in every
//    deterministic rounding mode x every overflow mode;
//  - the same pairs with DAZ / FTZ, and in the three stochastic modes with random R;
//  - fma: every triple of e2m1fn and e2m3fn; structured and >= 10^6 random triples of
//    float16 and bfloat16; float16 / bfloat16 add, sub, mul, div, sqrt on structured and
//    random operands;
//  - the value type Float<>: numeric_limits, and Float<float32> against the CPU's float.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "fp8emu/arith.hpp"
#include "fp8emu/value.hpp"
#include "oracle/arith_oracle.hpp"
#include "rng.hpp"
#include "sweep.hpp"

using namespace fp8emu;

namespace {

enum class Op { add, sub, mul, div, sqrt };
const char* op_name(Op op) {
  switch (op) {
    case Op::add: return "add";
    case Op::sub: return "sub";
    case Op::mul: return "mul";
    case Op::div: return "div";
    case Op::sqrt: return "sqrt";
  }
  return "?";
}

std::uint32_t library(Op op, const Format& f, std::uint32_t a, std::uint32_t b,
                      const ConvertOptions& o, std::uint32_t r) {
  switch (op) {
    case Op::add: return add(f, a, b, o, r);
    case Op::sub: return sub(f, a, b, o, r);
    case Op::mul: return mul(f, a, b, o, r);
    case Op::div: return div(f, a, b, o, r);
    case Op::sqrt: return sqrt(f, a, o, r);
  }
  return 0;
}

oracle::Target reference(Op op, const oracle::Operand& a, const oracle::Operand& b, Rounding r) {
  switch (op) {
    case Op::add: return oracle::add(a, b, r);
    case Op::sub: return oracle::add(a, oracle::negate(b), r);
    case Op::mul: return oracle::mul(a, b);
    case Op::div: return oracle::div(a, b);
    case Op::sqrt: return oracle::sqrt(a);
  }
  return {};
}

ConvertOptions options_of(const oracle::Mode& m, bool daz) {
  ConvertOptions o;
  o.rounding = m.r;
  o.saturation = m.s;
  o.flush_outputs = m.ftz;
  o.flush_inputs = daz;
  o.stochastic_bits = m.n;
  return o;
}

std::string describe(const std::string& fmt, const char* op, const oracle::Mode& m, bool daz,
                     std::uint32_t a, std::uint32_t b, std::uint32_t c, int bits,
                     std::uint32_t want, std::uint32_t got) {
  std::string s = "format " + fmt + " " + op + " " + std::string(to_string(m.r)) + "/" +
                  std::string(to_string(m.s)) + (m.ftz ? "/ftz" : "") +
                  (daz ? "/daz" : "") + " operands " + hex_code(a, bits) + " " +
                  hex_code(b, bits);
  if (c != ~0u) s += " " + hex_code(c, bits);
  if (m.n) s += " N=" + std::to_string(m.n) + " R=" + std::to_string(m.R);
  return s + ": expected " + hex_code(want, bits) + ", got " + hex_code(got, bits);
}

// Every deterministic rounding mode x every overflow mode.
std::vector<oracle::Mode> deterministic_modes() {
  std::vector<oracle::Mode> v;
  for (Rounding r : kDeterministic)
    for (Saturation s : kSaturations) v.push_back({r, s});
  return v;
}

struct PairSweepSpec {
  std::vector<std::string> formats;
  std::vector<Op> ops;
  std::vector<oracle::Mode> modes;
  bool daz = false;
  bool stochastic = false;  // modes hold sr modes; R drawn per case
};

// Checks ops over every operand pair (sqrt: every operand) of each format; returns cases.
std::uint64_t run_pairs(Sweep& sweep, const PairSweepSpec& spec) {
  std::uint64_t expected = 0;
  for (const auto& name : spec.formats) {
    const oracle::Spec& s = oracle::spec(name);
    const oracle::Table t = oracle::make_table(s);
    const Format f = parse_format(name);
    const std::uint32_t n = 1u << s.k;
    for (Op op : spec.ops) {
      const std::uint32_t nb = op == Op::sqrt ? 1 : n;
      expected += std::uint64_t(n) * nb * spec.modes.size();
#pragma omp parallel for schedule(dynamic)
      for (std::uint32_t a = 0; a < n; ++a) {
        std::uint64_t cases = 0, bad = 0;
        std::vector<std::string> msgs;
        SplitMix64 rng(0xA11CE + a * 977 + std::uint32_t(op) * 131);
        const oracle::Operand oa = oracle::operand(s, a, spec.daz);
        for (std::uint32_t b = 0; b < nb; ++b) {
          const oracle::Operand ob = oracle::operand(s, b, spec.daz);
          // The exact result depends on the mode only through the sign of an exact zero.
          oracle::Target x[2] = {reference(op, oa, ob, Rounding::nearest_even),
                                 reference(op, oa, ob, Rounding::toward_negative)};
          const oracle::Located loc = oracle::locate(t, x[0]);
          for (oracle::Mode m : spec.modes) {
            if (spec.stochastic) {
              m.n = 1 + int(rng.next() % 12);
              m.R = rng.next() & ((std::uint64_t{1} << m.n) - 1);
            }
            const oracle::Target& xt = x[m.r == Rounding::toward_negative ? 1 : 0];
            const std::uint32_t want = oracle::expected(t, xt, loc, m);
            const std::uint32_t got =
                library(op, f, a, b, options_of(m, spec.daz), std::uint32_t(m.R));
            ++cases;
            if (got != want) {
              ++bad;
              if (msgs.size() < 4)
                msgs.push_back(describe(name, op_name(op), m, spec.daz, a, b, ~0u, s.k, want, got));
            }
          }
        }
        sweep.add(cases, bad, msgs);
      }
    }
  }
  return expected;
}

const std::vector<std::string> kPairFormats = {"e4m3fn", "e5m2",   "e4m3fnuz",
                                               "e2m3fn", "e3m2fn", "e2m1fn"};

}  // namespace

TEST_CASE("add, sub, mul, div, sqrt: all operand pairs, deterministic modes", "[arith][exhaustive]") {
  Sweep sweep(
      "arith add/sub/mul/div all pairs + sqrt all codes x 7 formats x 6 roundings x 3 saturations");
  // binary8p1se: precision-1 ties go to the even code, round-to-odd to the odd code.
  std::vector<std::string> fmts = kPairFormats;
  fmts.push_back("binary8p1se");
  PairSweepSpec spec{fmts, {Op::add, Op::sub, Op::mul, Op::div, Op::sqrt}, deterministic_modes()};
  const std::uint64_t n = run_pairs(sweep, spec);
  // 4 x 2^16 + 2 x 2^12 + 2^8 pairs for 4 ops, and 4 x 2^8 + 2 x 2^6 + 2^4 sqrt operands.
  CHECK(n == ((4ull << 16) + (2ull << 12) + 256) * 4 * 18 + (4 * 256 + 2 * 64 + 16) * 18);
  sweep.finish(n);
}

TEST_CASE("add, sub, mul, div, sqrt: all pairs with DAZ and FTZ", "[arith][exhaustive]") {
  Sweep sweep("arith all pairs with DAZ, FTZ x 6 formats x rne/rz/ru");
  std::vector<oracle::Mode> modes;
  for (Rounding r : {Rounding::nearest_even, Rounding::toward_zero, Rounding::toward_positive})
    for (bool ftz : {false, true}) {
      oracle::Mode m{r};
      m.ftz = ftz;
      modes.push_back(m);
    }
  std::uint64_t n = 0;
  for (bool daz : {false, true}) {
    PairSweepSpec spec{kPairFormats, {Op::add, Op::sub, Op::mul, Op::div, Op::sqrt}, modes, daz};
    n += run_pairs(sweep, spec);
  }
  CHECK(n == 2 * (((3ull << 16) + (2ull << 12) + 256) * 4 + (3 * 256 + 2 * 64 + 16)) * 6);
  sweep.finish(n);
}

TEST_CASE("add, sub, mul, div, sqrt: all pairs, stochastic rounding", "[arith][exhaustive][stochastic]") {
  Sweep sweep("arith all pairs x 6 formats x sr-a/b/c (N 1..12, R random) x finite/none");
  std::vector<oracle::Mode> modes;
  for (Rounding r : {Rounding::stochastic_a, Rounding::stochastic_b, Rounding::stochastic_c})
    for (Saturation s : {Saturation::finite, Saturation::none}) modes.push_back({r, s});
  PairSweepSpec spec{kPairFormats, {Op::add, Op::sub, Op::mul, Op::div, Op::sqrt}, modes, false, true};
  const std::uint64_t n = run_pairs(sweep, spec);
  CHECK(n == (((3ull << 16) + (2ull << 12) + 256) * 4 + (3 * 256 + 2 * 64 + 16)) * 6);
  sweep.finish(n);
}

namespace {

// Checks fma on the given triples of format `name` in the given modes; returns cases.
template <class Triples>
std::uint64_t run_fma(Sweep& sweep, const std::string& name, std::uint64_t count,
                      const Triples& triple, const std::vector<oracle::Mode>& modes,
                      bool stochastic) {
  const oracle::Spec& s = oracle::spec(name);
  const oracle::Table t = oracle::make_table(s);
  const Format f = parse_format(name);
#pragma omp parallel for schedule(dynamic, 256)
  for (std::uint64_t i = 0; i < count; ++i) {
    std::uint32_t a, b, c;
    triple(i, a, b, c);
    SplitMix64 rng(0xF00D + i);
    std::uint64_t bad = 0;
    std::vector<std::string> msgs;
    const oracle::Operand oa = oracle::operand(s, a, false), ob = oracle::operand(s, b, false),
                          oc = oracle::operand(s, c, false);
    oracle::Target x[2] = {oracle::fma(oa, ob, oc, Rounding::nearest_even),
                           oracle::fma(oa, ob, oc, Rounding::toward_negative)};
    const oracle::Located loc = oracle::locate(t, x[0]);
    for (oracle::Mode m : modes) {
      if (stochastic) {
        m.n = 1 + int(rng.next() % 32);
        m.R = rng.next() & ((std::uint64_t{1} << m.n) - 1);
      }
      const std::uint32_t want =
          oracle::expected(t, x[m.r == Rounding::toward_negative ? 1 : 0], loc, m);
      const std::uint32_t got = fma(f, a, b, c, options_of(m, false), std::uint32_t(m.R));
      if (got != want) {
        ++bad;
        if (msgs.size() < 4) msgs.push_back(describe(name, "fma", m, false, a, b, c, s.k, want, got));
      }
    }
    sweep.add(modes.size(), bad, msgs);
  }
  return count * modes.size();
}

// Structured operands of a 16-bit IEEE format: for each chosen exponent field, the
// significands 1, 1 + ulp, 1.5, 2 - 2 ulp, 2 - ulp; the subnormals 1, 2, 3 and the
// largest one; both zeros, both infinities and NaN; both signs. `stride` 1 takes every
// exponent; a larger stride takes every stride-th one plus the 3 lowest, the 3 highest
// and the 5 around the bias (where products of the chosen values and sums meet).
std::vector<std::uint32_t> structured16(const oracle::Spec& s, std::uint32_t stride) {
  std::vector<std::uint32_t> v;
  const std::uint32_t mmax = (1u << s.m) - 1, top = (1u << s.e) - 2, bias = s.bias;
  for (std::uint32_t e = 1; e <= top; ++e) {
    const bool chosen = e % stride == 0 || e <= 3 || e + 2 >= top ||
                        (e + 2 >= bias && e <= bias + 2);
    if (!chosen) continue;
    for (std::uint32_t t : {0u, 1u, 1u << (s.m - 1), mmax - 1, mmax}) v.push_back(e << s.m | t);
  }
  for (std::uint32_t t : {0u, 1u, 2u, 3u, mmax}) v.push_back(t);
  v.push_back(((1u << s.e) - 1) << s.m);                     // inf
  v.push_back(((1u << s.e) - 1) << s.m | 1u << (s.m - 1));  // NaN
  const std::size_t half = v.size();
  for (std::size_t i = 0; i < half; ++i) v.push_back(v[i] | 1u << (s.k - 1));
  return v;
}

}  // namespace

TEST_CASE("fma: every triple of e2m1fn and e2m3fn", "[arith][exhaustive][fma]") {
  Sweep sweep("fma all triples e2m1fn (2^12), e2m3fn (2^18) x 6 roundings x 3 saturations");
  std::uint64_t n = 0;
  const auto modes = deterministic_modes();
  for (const std::string name : {"e2m1fn", "e2m3fn"}) {
    const int k = oracle::spec(name).k;
    const std::uint32_t mask = (1u << k) - 1;
    n += run_fma(sweep, name, std::uint64_t{1} << (3 * k),
                 [&](std::uint64_t i, std::uint32_t& a, std::uint32_t& b, std::uint32_t& c) {
                   a = std::uint32_t(i) & mask;
                   b = std::uint32_t(i >> k) & mask;
                   c = std::uint32_t(i >> (2 * k)) & mask;
                 },
                 modes, false);
  }
  CHECK(n == ((1ull << 12) + (1ull << 18)) * 18);
  sweep.finish(n);
}

TEST_CASE("fma: float16 and bfloat16, structured and random triples", "[arith][fma]") {
  Sweep sweep("fma float16/bfloat16: structured triples + 10^6 random triples each, all modes");
  std::uint64_t n = 0;
  const auto det = deterministic_modes();
  std::vector<oracle::Mode> sr;
  for (Rounding r : {Rounding::stochastic_a, Rounding::stochastic_b, Rounding::stochastic_c})
    sr.push_back({r, Saturation::finite});
  for (const std::string name : {"float16", "bfloat16"}) {
    const std::vector<std::uint32_t> st = structured16(oracle::spec(name), 8);
    // Structured: a and b from the set, c from every 7th element of it.
    const std::uint64_t ns = st.size(), nc = (ns + 6) / 7;
    n += run_fma(sweep, name, ns * ns * nc,
                 [&](std::uint64_t i, std::uint32_t& a, std::uint32_t& b, std::uint32_t& c) {
                   a = st[i % ns];
                   b = st[(i / ns) % ns];
                   c = st[7 * (i / (ns * ns))];
                 },
                 std::vector<oracle::Mode>{{Rounding::nearest_even, Saturation::none},
                                           {Rounding::toward_zero, Saturation::finite},
                                           {Rounding::toward_negative, Saturation::none}},
                 false);
    // Random: codes uniform over all 2^16, a random deterministic mode list plus SR.
    const auto random_triple = [](std::uint64_t i, std::uint32_t& a, std::uint32_t& b,
                                  std::uint32_t& c) {
      SplitMix64 r(0xBEEF0000 + i);
      const std::uint64_t x = r.next();
      a = std::uint32_t(x) & 0xFFFF;
      b = std::uint32_t(x >> 16) & 0xFFFF;
      // Often near a*b in magnitude, so that cancellation and ties are exercised.
      c = (x >> 63) ? std::uint32_t(x >> 32) & 0xFFFF : (a ^ (std::uint32_t(x >> 48) & 0x80FF));
    };
    n += run_fma(sweep, name, adjusted(1000000), random_triple, det, false);
    n += run_fma(sweep, name, adjusted(200000), random_triple, sr, true);
  }
  sweep.finish(n);
  CHECK(n > 2 * adjusted(1000000) * 18);
}

TEST_CASE("float16 and bfloat16 add, sub, mul, div, sqrt: structured and random", "[arith]") {
  Sweep sweep("float16/bfloat16 add/sub/mul/div/sqrt: structured pairs + 2x10^5 random pairs, 18 modes");
  std::uint64_t expected = 0;
  const auto modes = deterministic_modes();
  for (const std::string name : {"float16", "bfloat16"}) {
    const oracle::Spec& s = oracle::spec(name);
    const oracle::Table t = oracle::make_table(s);
    const Format f = parse_format(name);
    const std::vector<std::uint32_t> st = structured16(s, name == "float16" ? 1 : 4);
    const std::uint64_t ns = st.size(), nr = adjusted(200000);
    for (Op op : {Op::add, Op::sub, Op::mul, Op::div, Op::sqrt}) {
      const std::uint64_t count = ns * ns + nr;
      expected += count * modes.size();
#pragma omp parallel for schedule(dynamic, 256)
      for (std::uint64_t i = 0; i < count; ++i) {
        std::uint32_t a, b;
        if (i < ns * ns) {
          a = st[i % ns];
          b = st[i / ns];
        } else {
          SplitMix64 r(0xCAFE0000 + i + std::uint64_t(op) * 7919);
          const std::uint64_t x = r.next();
          a = std::uint32_t(x) & 0xFFFF;
          b = std::uint32_t(x >> 16) & 0xFFFF;
        }
        const oracle::Operand oa = oracle::operand(s, a, false), ob = oracle::operand(s, b, false);
        oracle::Target x[2] = {reference(op, oa, ob, Rounding::nearest_even),
                               reference(op, oa, ob, Rounding::toward_negative)};
        const oracle::Located loc = oracle::locate(t, x[0]);
        std::uint64_t bad = 0;
        std::vector<std::string> msgs;
        for (const oracle::Mode& m : modes) {
          const std::uint32_t want =
              oracle::expected(t, x[m.r == Rounding::toward_negative ? 1 : 0], loc, m);
          const std::uint32_t got = library(op, f, a, b, options_of(m, false), 0);
          if (got != want) {
            ++bad;
            if (msgs.size() < 4)
              msgs.push_back(describe(name, op_name(op), m, false, a, b, ~0u, 16, want, got));
          }
        }
        sweep.add(modes.size(), bad, msgs);
      }
    }
  }
  sweep.finish(expected);
}

// ---------------------------------------------------------------------------
// The value type.
// ---------------------------------------------------------------------------

TEST_CASE("Float<float32> numeric_limits equal those of float", "[value]") {
  using F = Float<formats::float32>;
  using L = std::numeric_limits<F>;
  using FL = std::numeric_limits<float>;
  CHECK(L::is_specialized);
  CHECK(L::digits == FL::digits);
  CHECK(L::digits10 == FL::digits10);
  CHECK(L::max_digits10 == FL::max_digits10);
  CHECK(L::min_exponent == FL::min_exponent);
  CHECK(L::max_exponent == FL::max_exponent);
  CHECK(L::min_exponent10 == FL::min_exponent10);
  CHECK(L::max_exponent10 == FL::max_exponent10);
  CHECK(L::has_infinity == FL::has_infinity);
  CHECK(L::has_quiet_NaN == FL::has_quiet_NaN);
  CHECK(L::has_denorm == FL::has_denorm);
  CHECK(L::round_style == FL::round_style);
  CHECK(float(L::min()) == FL::min());
  CHECK(float(L::max()) == FL::max());
  CHECK(float(L::lowest()) == FL::lowest());
  CHECK(float(L::epsilon()) == FL::epsilon());
  CHECK(float(L::round_error()) == FL::round_error());
  CHECK(float(L::infinity()) == FL::infinity());
  CHECK(std::isnan(float(L::quiet_NaN())));
  CHECK(float(L::denorm_min()) == FL::denorm_min());
  // The same for double's digits formula, through a 53-bit check of the helpers.
  CHECK(detail::floor_log10_2(52) == std::numeric_limits<double>::digits10);
  CHECK(detail::floor_log10_2(53) + 2 == std::numeric_limits<double>::max_digits10);
}

TEST_CASE("Float<> numeric_limits of 8-bit formats follow their specifications", "[value]") {
  using E4 = std::numeric_limits<Float<formats::e4m3fn>>;
  CHECK(double(E4::max()) == 448);
  CHECK(double(E4::lowest()) == -448);
  CHECK(double(E4::min()) == std::ldexp(1.0, -6));
  CHECK(double(E4::denorm_min()) == std::ldexp(1.0, -9));
  CHECK(double(E4::epsilon()) == 0.125);
  CHECK(!E4::has_infinity);
  CHECK(E4::has_quiet_NaN);
  CHECK(E4::digits == 4);
  CHECK(E4::max_exponent == 9);
  CHECK(E4::min_exponent == -5);
  using E5 = std::numeric_limits<Float<formats::e5m2>>;
  CHECK(double(E5::max()) == 57344);
  CHECK(std::isinf(double(E5::infinity())));
  CHECK(double(E5::denorm_min()) == std::ldexp(1.0, -16));
  using F16 = std::numeric_limits<Float<formats::float16>>;  // IEEE 754 binary16
  CHECK(double(F16::max()) == 65504);
  CHECK(double(F16::epsilon()) == std::ldexp(1.0, -10));
  CHECK(F16::digits10 == 3);
  CHECK(F16::max_digits10 == 5);
  CHECK(F16::min_exponent10 == -4);
  CHECK(F16::max_exponent10 == 4);
  using FN = std::numeric_limits<Float<formats::e4m3fnuz>>;
  CHECK(double(FN::max()) == 240);
  CHECK(double(FN::min()) == std::ldexp(1.0, -7));
  CHECK(std::isnan(double(FN::quiet_NaN())));
  using E2 = std::numeric_limits<Float<formats::e2m1fn>>;
  CHECK(double(E2::max()) == 6);
  CHECK(double(E2::epsilon()) == 0.5);
  CHECK(!E2::has_quiet_NaN);
}

TEST_CASE("Float<float32> arithmetic equals the CPU's float arithmetic", "[value]") {
  using F = Float<formats::float32>;
  SplitMix64 rng(7);
  std::uint64_t n = 0, bad = 0;
  for (int i = 0; i < 200000; ++i) {
    const std::uint64_t x = rng.next();
    const float a = std::bit_cast<float>(std::uint32_t(x)), b = std::bit_cast<float>(std::uint32_t(x >> 32));
    const float c = std::bit_cast<float>(std::uint32_t(rng.next()));
    const F fa(a), fb(b), fc(c);
    const float want[] = {a + b, a - b, a * b, a / b, std::sqrt(a), std::fma(a, b, c)};
    const F got[] = {fa + fb, fa - fb, fa * fb, fa / fb, sqrt(fa), fma(fa, fb, fc)};
    for (int k = 0; k < 6; ++k) {
      ++n;
      const float g = float(got[k]);
      const bool same = std::isnan(want[k]) ? std::isnan(g)
                                            : std::bit_cast<std::uint32_t>(g) ==
                                                  std::bit_cast<std::uint32_t>(want[k]);
      if (!same) {
        ++bad;
        if (bad < 5)
          UNSCOPED_INFO("op " << k << " a=" << a << " b=" << b << " c=" << c << " want " << want[k]
                              << " got " << g);
      }
    }
  }
  CHECK(n == 1200000);
  CHECK(bad == 0);
}

namespace {

// Generic code written for any floating-point type T.
template <class T>
T horner(const std::vector<T>& coeffs, T x) {
  T acc{};
  for (auto it = coeffs.rbegin(); it != coeffs.rend(); ++it) acc = fma(acc, x, *it);
  return acc;
}

}  // namespace

TEST_CASE("Float<> works in generic code", "[value]") {
  using E4 = Float<formats::e4m3fn>;
  std::vector<E4> v = {E4(3.0), E4(-1.5), E4(0.25), E4(448.0), E4(-0.0)};
  std::sort(v.begin(), v.end());
  CHECK(double(v.front()) == -1.5);
  CHECK(double(v.back()) == 448);
  // Accumulating in e4m3fn rounds at every step: 16 - 1.5 = 14.5 ties to 14 (even),
  // 14 - 0 = 14, 14 + 0.25 = 14.25 -> 14, 14 + 3 = 17 ties to 16 (even); 448 is skipped.
  E4 sum = std::accumulate(v.begin(), v.end(), E4(16.0),
                           [](E4 a, E4 b) { return b == E4(448.0) ? a : a + b; });
  CHECK(double(sum) == 16);
  // Horner with fma in e4m3fn against the same recurrence computed with the code API.
  const std::vector<E4> c = {E4(1.0), E4(0.5), E4(0.25)};
  const E4 h = horner(c, E4(2.0));  // 0.25 * 4 + 0.5 * 2 + 1 = 3
  CHECK(double(h) == 3);
  // IEEE comparisons: NaN unordered, +0 == -0, overflow to NaN (no infinity in e4m3fn).
  const E4 nan = std::numeric_limits<E4>::quiet_NaN();
  CHECK_FALSE(nan == nan);
  CHECK_FALSE(nan < E4(1.0));
  CHECK(E4(0.0) == E4(-0.0));
  CHECK(isnan(E4(448.0) * E4(2.0)));
  CHECK(double(Float<formats::e4m3fn, Rounding::nearest_even, Saturation::finite>(448.0) *
               Float<formats::e4m3fn, Rounding::nearest_even, Saturation::finite>(2.0)) == 448);
  CHECK(isinf(Float<formats::e5m2>(57344.0) + Float<formats::e5m2>(8192.0)));
  CHECK(signbit(-E4(1.0)));
  CHECK(double(abs(E4(-3.0))) == 3);
}

TEST_CASE("float32 and float16 sqrt and div: stochastic rounding with N up to 32", "[arith][stochastic]") {
  // The quotient and the root must carry 24 kept bits plus N <= 32 random bits plus a
  // sticky bit; subnormal operands (short significands) are the hard case.
  Sweep sweep("float32/float16 sqrt + div, sr-a/b/c, N 1..32, random R and R at the decision");
  std::uint64_t expected = 0;
  std::atomic<std::uint64_t> counted{0};
  for (const std::string name : {"float32", "float16"}) {
    const oracle::Spec& s = oracle::spec(name);
    const oracle::Table t = oracle::make_table(s);
    const Format f = parse_format(name);
    const std::uint64_t count = adjusted(20000);
    for (Op op : {Op::sqrt, Op::div}) {
      expected += count * 3;  // at least one R per mode; the decision pairs come on top
#pragma omp parallel for schedule(dynamic, 64)
      for (std::uint64_t i = 0; i < count; ++i) {
        SplitMix64 r(0x5EED0000 + i + 977 * std::uint64_t(op) + (name == "float32" ? 0 : 1u << 30));
        const std::uint64_t x = r.next();
        const std::uint32_t mask = s.k == 32 ? ~0u : (1u << s.k) - 1;
        std::uint32_t a = std::uint32_t(x) & mask, b = std::uint32_t(x >> 32) & mask;
        if (i % 4 == 0) a &= (1u << (r.next() % (s.m + 1))) - 1;  // subnormal, short significand
        if (op == Op::sqrt) a &= ~(1u << (s.k - 1));  // nonnegative
        const oracle::Operand oa = oracle::operand(s, a, false), ob = oracle::operand(s, b, false);
        const oracle::Target xt = reference(op, oa, ob, Rounding::nearest_even);
        const oracle::Located loc = oracle::locate(t, xt);
        std::uint64_t bad = 0;
        std::vector<std::string> msgs;
        std::uint64_t cases = 0;
        for (Rounding rm : {Rounding::stochastic_a, Rounding::stochastic_b, Rounding::stochastic_c}) {
          oracle::Mode m{rm, Saturation::finite};
          m.n = 1 + int(r.next() % 32);
          // A random R, and where the result lies between two values, the two R on either
          // side of the decision (R_min - 1 rounds down, R_min up).
          std::vector<std::uint64_t> rs = {r.next() & ((std::uint64_t{1} << m.n) - 1)};
          if (loc.kind == oracle::Located::between) {
            const std::uint64_t rmin = oracle::sr_min_up(xt, loc, rm, m.n);
            if (rmin > 0) rs.push_back(rmin - 1);
            if (rmin < (std::uint64_t{1} << m.n)) rs.push_back(rmin);
          }
          for (std::uint64_t R : rs) {
            m.R = R;
            ++cases;
            const std::uint32_t want = oracle::expected(t, xt, loc, m);
            const std::uint32_t got = library(op, f, a, b, options_of(m, false), std::uint32_t(m.R));
            if (got != want) {
              ++bad;
              if (msgs.size() < 4) msgs.push_back(describe(name, op_name(op), m, false, a, b, ~0u, s.k, want, got));
            }
          }
        }
        sweep.add(cases, bad, msgs);
        counted += cases;
      }
    }
  }
  CHECK(counted.load() >= expected);
  sweep.finish(counted.load());
}
