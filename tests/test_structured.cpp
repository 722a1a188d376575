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
#include "structured.hpp"
#include "sweep.hpp"

using namespace fp8emu;

namespace {

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
    inputs[i] = structured::structured_inputs(specs[i / 2], i % 2 ? structured::kDouble : structured::kFloat);
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
