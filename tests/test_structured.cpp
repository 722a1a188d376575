// float32 and float64 inputs against the oracle: a structured set that contains every
// case that decides rounding, plus random values.
//
// Structured set, for each target format and input type: every input exponent from
// below the target's smallest quantum to above its largest value (input subnormals
// included), times every pattern of the kept mantissa bits (all of them up to 7 bits;
// 16 chosen patterns beyond), times the tails that decide rounding, in units of the
// target's quantum: 0, one input ulp, half - ulp, half, half + ulp, 1 - ulp; both signs;
// plus zeros, infinities, NaN and the input type's extremes. Each value is checked in
// 6 rounding modes x 3 overflow modes.
#include <bit>
#include <cmath>
#include <limits>
#include <set>

#include "oracle/oracle.hpp"
#include "rng.hpp"
#include "sweep.hpp"

using namespace fp8emu;

namespace {


// Input types: precision p, smallest normal exponent, largest exponent.
struct InType {
  bool is_float;
  int p, emin, emax;
};
constexpr InType kFloat{true, 24, -126, 127};
constexpr InType kDouble{false, 53, -1022, 1023};

template <class T>
bool representable(double v) {
  return double(T(v)) == v;
}

std::vector<double> structured_inputs(const oracle::Spec& s, const InType& in) {
  std::set<double> out;
  const int m = s.m;
  const int emin_t = s.kind == oracle::Kind::e8m0 ? -s.bias : 1 - s.bias;
  const int qmin = emin_t - m;
  const int emax_t = std::ilogb(s.stated_max);
  SplitMix64 rng(0x5EED0000 + s.k * 131 + m);
  const int e_lo = std::max(in.emin - in.p + 1, qmin - 3);
  const int e_hi = std::min(in.emax, emax_t + 3);
  for (int e = e_lo; e <= e_hi; ++e) {
    const int q = std::max(e, emin_t) - m;     // target quantum exponent
    const int ulp_e = std::max(e, in.emin) - in.p + 1;  // input ulp exponent
    const int kb = std::max(e - q, 0);          // kept bits below the leading one
    std::vector<std::uint64_t> patterns;
    if (kb <= 7) {
      for (std::uint64_t i = 0; i < (std::uint64_t{1} << kb); ++i) patterns.push_back(i);
    } else {
      const std::uint64_t ones = (std::uint64_t{1} << kb) - 1;
      patterns = {0, 1, 2, ones / 2, ones - 1, ones, ones / 3, 2 * (ones / 3)};
      for (int i = 0; i < 8; ++i) patterns.push_back(rng.next() & ones);
    }
    for (std::uint64_t pat : patterns) {
      const int L = q - ulp_e;  // input bits below the quantum
      std::vector<std::uint64_t> tails = {0};
      if (L >= 1 && L <= 62) {
        const std::uint64_t h = std::uint64_t{1} << (L - 1);
        tails = {0, 1, h - 1, h, h + 1, 2 * h - 1};
      }
      for (std::uint64_t tail : tails) {
        double v;
        if (e >= q) {
          const std::uint64_t K = (std::uint64_t{1} << kb) | pat;
          if (L >= 1 && L <= 62 && kb + 1 + L <= 63)
            v = std::ldexp(double((K << L) | tail), ulp_e);
          else
            v = std::ldexp(double(K), q);
        } else {  // below the quantum: only the leading bit and tails
          v = std::ldexp(1.0, e) + (tail ? std::ldexp(double(tail), ulp_e) : 0.0);
        }
        const bool ok = in.is_float ? representable<float>(v) : representable<double>(v);
        if (ok && v != 0) out.insert(v);
      }
    }
  }
  const double extremes[] = {in.is_float ? double(std::numeric_limits<float>::denorm_min()) : std::numeric_limits<double>::denorm_min(),
                             in.is_float ? double(std::numeric_limits<float>::min()) : std::numeric_limits<double>::min(),
                             in.is_float ? double(std::numeric_limits<float>::max()) : std::numeric_limits<double>::max(),
                             0.0, std::numeric_limits<double>::infinity()};
  for (double v : extremes) out.insert(v);
  std::vector<double> all;
  for (double v : out) {
    all.push_back(v);
    all.push_back(-v);
  }
  all.push_back(std::numeric_limits<double>::quiet_NaN());
  all.push_back(-std::numeric_limits<double>::quiet_NaN());
  return all;
}

// Checks one input in every mode; returns mismatches.
std::uint64_t check_all_modes(const Format& f, const oracle::Table& t, double x, bool as_float,
                              std::vector<std::string>& msgs) {
  const oracle::Prepared p = oracle::prepare(t, x);
  std::uint64_t bad = 0;
  for (Rounding r : kDeterministic)
    for (Saturation sat : kSaturations) {
      const ConvertOptions o{.rounding = r, .saturation = sat};
      const std::uint32_t want = oracle::expected(t, p, {r, sat});
      const std::uint32_t got = as_float ? encode(f, float(x), o) : encode(f, x, o);
      if (want != got) {
        ++bad;
        msgs.push_back(mismatch(t.s.name, r, sat, std::string(as_float ? "float " : "double ") + shortest(x), want, got, t.s.k));
      }
    }
  return bad;
}

}  // namespace

TEST_CASE("structured float32 and float64 inputs match the oracle", "[structured][convert]") {
  Sweep sweep("structured float32+float64 inputs x all catalog formats x 6 roundings x 3 saturations");
  const auto& specs = oracle::specs();
  std::uint64_t expected = 0;
  std::vector<std::vector<double>> inputs(specs.size() * 2);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    inputs[i] = structured_inputs(specs[i / 2], i % 2 ? kDouble : kFloat);
    expected += inputs[i].size() * 18;
  }
#pragma omp parallel for schedule(dynamic)
  for (std::int64_t i = 0; i < std::int64_t(inputs.size()); ++i) {
    const oracle::Spec& s = specs[i / 2];
    const Format f = parse_format(s.name);
    const oracle::Table t = oracle::make_table(s);
    std::vector<std::string> msgs;
    std::uint64_t bad = 0;
    for (double x : inputs[i]) bad += check_all_modes(f, t, x, i % 2 == 0, msgs);
    sweep.add(inputs[i].size() * 18, bad, msgs);
  }
  sweep.finish(expected);
}

TEST_CASE("random float32 and float64 inputs match the oracle", "[random][convert]") {
  const std::uint64_t n = adjusted(1000000);
  Sweep sweep("random float32+float64 inputs (" + std::to_string(n) + " each) x rotating catalog format x 6 roundings x 3 saturations");
  const auto& specs = oracle::specs();
  std::vector<oracle::Table> tables;
  for (const auto& s : specs) tables.push_back(oracle::make_table(s));
  std::vector<Format> fmts;
  for (const auto& s : specs) fmts.push_back(parse_format(s.name));
#pragma omp parallel for schedule(dynamic, 4096)
  for (std::int64_t i = 0; i < std::int64_t(2 * n); ++i) {
    SplitMix64 rng(0xC0FFEE + std::uint64_t(i));
    const std::size_t fi = std::size_t(i / 2) % specs.size();
    const oracle::Spec& s = specs[fi];
    const std::uint64_t bits = rng.next();
    const bool as_float = i % 2 == 0;
    double x;
    // Half of the values are spread over the target's own range, half over the whole type.
    if (rng.next() & 1) {
      const int span = std::ilogb(s.stated_max) - (1 - s.bias - s.m) + 8;
      const int e = (1 - s.bias - s.m) - 4 + int(rng.next() % std::uint64_t(span));
      x = std::ldexp(1.0 + double(bits >> 11) * 0x1p-53, e) * ((bits & 1) ? -1 : 1);
      if (as_float) x = double(float(x));
    } else {
      x = as_float ? double(std::bit_cast<float>(std::uint32_t(bits))) : std::bit_cast<double>(bits);
    }
    std::vector<std::string> msgs;
    const std::uint64_t bad = check_all_modes(fmts[fi], tables[fi], x, as_float, msgs);
    sweep.add(18, bad, msgs);
  }
  sweep.finish(2 * n * 18);
}

TEST_CASE("double to float32 matches the hardware conversion", "[structured][convert]") {
  Sweep sweep("random doubles -> float32 (rne, saturation none) vs hardware cast");
  const std::uint64_t n = adjusted(4000000);
  std::uint64_t bad = 0;
  SplitMix64 rng(42);
  for (std::uint64_t i = 0; i < n; ++i) {
    double x = std::bit_cast<double>(rng.next());
    if (i % 2) x = std::ldexp(1.0 + double(rng.next() >> 11) * 0x1p-53, int(rng.next() % 300) - 160);
    const float hw = float(x);
    const std::uint32_t got = encode(formats::float32{}, x, ConvertOptions{.saturation = Saturation::none});
    const std::uint32_t want = std::bit_cast<std::uint32_t>(hw);
    bad += std::isnan(hw) ? !std::isnan(std::bit_cast<float>(got)) : got != want;
  }
  sweep.add(n, bad);
  sweep.finish(n);
}
