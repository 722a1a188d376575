// Tests of the teaching facts of explain.hpp that the browser explorer and `fp8emu explain`
// show: stochastic rounding's odds (against counting every random value, and against the
// fraction of an ulp for mode A), the binades (against counting every code), the JSON of an
// explanation, a code and a format (against the structs and functions they restate), and the
// value parser.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "fp8emu/convert.hpp"
#include "fp8emu/explain.hpp"
#include "fp8emu/format.hpp"

using namespace fp8emu;

namespace {

// The positive finite values of f, by enumerating every code (f has at most 16 bits).
std::vector<double> positive_values(const Format& f) {
  std::vector<double> v;
  for (std::uint32_t c = 0; c < (1u << total_bits(f)); ++c) {
    const double x = decode(f, c);
    if (std::isfinite(x) && x > 0 && (v.empty() || x != v.back())) v.push_back(x);
  }
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// The string member `key` of a JSON dump, as the writer spells it ("key": "text").
bool has_member(const std::string& dump, const std::string& key, const std::string& text) {
  return dump.find("\"" + key + "\": " + json::quote(text)) != std::string::npos;
}

}  // namespace

TEST_CASE("explain: stochastic odds count every random value that rounds away", "[explain][stochastic]") {
  std::uint64_t cases = 0;
  for (const char* name : {"e4m3fn", "e5m2", "e2m1fn", "e3m2fn", "binary8p3se"}) {
    const Format f = parse_format(name);
    const std::vector<double> v = positive_values(f);
    for (std::size_t i = 0; i + 1 < v.size(); ++i) {
      // Points at k/8 of the gap, and the doubles next to its ends: every fraction of an ulp
      // that N <= 6 bits can tell apart, and the edges.
      std::vector<double> xs;
      for (int k = 0; k <= 8; ++k) xs.push_back(v[i] + (v[i + 1] - v[i]) * k / 8);
      xs.push_back(std::nextafter(v[i], INFINITY));
      xs.push_back(std::nextafter(v[i + 1], 0.0));
      for (double x : xs)
        for (double s : {1.0, -1.0})
          for (Rounding r : {Rounding::stochastic_a, Rounding::stochastic_b, Rounding::stochastic_c})
            for (int n = 1; n <= 6; ++n) {
              const ConvertOptions o{r, Saturation::finite, NanEncoding::canonical, false, false, n};
              ConvertOptions rz = o;
              rz.rounding = Rounding::toward_zero;
              rz.stochastic_bits = 0;
              const std::uint32_t down = encode(f, s * x, rz);
              std::uint64_t up = 0;
              for (std::uint32_t rr = 0; rr < (1u << n); ++rr) up += encode(f, s * x, o, rr) != down;
              const Explanation e = explain(f, s * x, o, 0);
              if (x == v[i] || x == v[i + 1]) {
                CHECK(!e.odds);  // exact: no rounding, no odds
                CHECK(up == 0);
              } else {
                REQUIRE(e.odds);
                CHECK(e.odds->bits == n);
                CHECK(e.odds->up == up);
                if (r == Rounding::stochastic_a)  // floor(v 2^N) of the 2^N values, v the fraction
                  CHECK(e.odds->up == std::uint64_t(std::floor((x - v[i]) / (v[i + 1] - v[i]) * (1 << n))));
              }
              ++cases;
            }
    }
  }
  // Gaps between positive values: e4m3fn 125 (126 values, 0x01..0x7E), e5m2 122 (0x01..0x7B),
  // e2m1fn 6, e3m2fn 30, binary8p3se 125 (0x01..0x7E; 0x7F is +inf); 11 points, 2 signs,
  // 3 modes and 6 widths each.
  CHECK(cases == (125 + 122 + 6 + 30 + 125) * 11 * 2 * 3 * 6);
}

TEST_CASE("explain: stochastic odds with 32 bits are the fraction of an ulp (mode A)", "[explain][stochastic]") {
  const Format f = formats::e4m3fn{};
  int cases = 0;
  for (double x : {1.0 + 1.0 / 3, 3.3, 0.01, 100.5, 447.9}) {
    const ConvertOptions o{Rounding::stochastic_a, Saturation::finite, NanEncoding::canonical,
                           false, false, 32};
    const Explanation e = explain(f, x, o, 0);
    REQUIRE(e.odds);
    const double lo = e.below->value, hi = e.above->value;
    // floor(v 2^32) with v = (x - lo) / (hi - lo): exact here, x - lo and the scaling by 2^32
    // lose nothing, and the division's rounding cannot cross an integer for these x.
    CHECK(e.odds->up == std::uint64_t(std::floor(std::ldexp((x - lo) / (hi - lo), 32))));
    ++cases;
  }
  CHECK(cases == 5);
  const ConvertOptions rne{};
  CHECK(!explain(f, 3.3, rne).odds);                       // not stochastic
  const ConvertOptions sr{Rounding::stochastic_a, Saturation::finite, NanEncoding::canonical, false, false, 8};
  CHECK(!explain(f, INFINITY, sr).odds);                   // not finite
  CHECK(explain(f, 1e6, sr).odds->up == 0);                // saturated either way
  CHECK(to_text(explain(f, 1.0625, sr, 7)).find("random      R = 7 (N = 8 bits)") != std::string::npos);
  CHECK(to_text(explain(f, 1.0625, sr, 7)).find("for 128 of the 256 values of R: probability 0.5") != std::string::npos);
}

TEST_CASE("explain: binades count the positive values of every format", "[explain]") {
  int formats_checked = 0;
  for (const auto& entry : catalog()) {
    const Format& f = entry.format;
    if (total_bits(f) > 16) continue;
    std::map<int, std::uint64_t> count;
    std::map<int, double> first, second;
    for (double x : positive_values(f)) {
      int e = 0;
      std::frexp(x, &e);  // x in [2^(e-1), 2^e)
      if (count[e - 1]++ == 0) first[e - 1] = x;
      else if (count[e - 1] == 2) second[e - 1] = x;
    }
    const std::vector<Binade> b = binades(f);
    REQUIRE(b.size() == count.size());
    std::size_t i = 0;
    for (const auto& [k, n] : count) {
      INFO(entry.name << " binade " << k);
      CHECK(b[i].exponent == k);
      CHECK(b[i].count == n);
      if (n >= 2) CHECK(b[i].spacing == second[k] - first[k]);
      CHECK(b[i].subnormal == (first[k] < min_normal(f)));
      ++i;
    }
    ++formats_checked;
  }
  CHECK(formats_checked >= 30);
  // float32 has 2^23 values in each normal binade and 254 of them.
  const std::vector<Binade> b = binades(formats::float32{});
  CHECK(b.size() == 23 + 254);
  CHECK(b.back().count == (1u << 23));
  CHECK(b.front().count == 1);
  CHECK(b.front().exponent == -149);
}

TEST_CASE("explain: the JSON restates the explanation", "[explain][json]") {
  const Format f = formats::e4m3fn{};
  const ConvertOptions o{Rounding::toward_zero, Saturation::none, NanEncoding::canonical, false, false, 0};
  int cases = 0;
  for (double x : {3.3, -0.1, 1e6, 1e-9, 0.0, -0.0, 448.0, 480.0, double(INFINITY), double(NAN)}) {
    const Explanation e = explain(f, x, o);
    const std::string d = to_json(e).dump();
    INFO(d);
    CHECK(has_member(d, "input", shortest(x)));
    CHECK(has_member(d, "hex", hex_code(e.result.code, 8)));
    CHECK(has_member(d, "bits", field_bits(f, e.result.code)));
    CHECK(has_member(d, "value", shortest(e.result.value)));
    CHECK(has_member(d, "status", status_text(e)));
    CHECK(has_member(d, "text", to_text(e)));
    CHECK(has_member(d, "rounding", "rz"));
    CHECK((d.find("\"below\": null") != std::string::npos) == !(e.below && std::isfinite(x)));
    ++cases;
  }
  CHECK(cases == 10);
  const std::string c = code_json(f, 0x7E).dump();
  CHECK(has_member(c, "value", "448"));
  CHECK(has_member(c, "text", code_text(f, 0x7E)));
  CHECK(code_text(f, 0x7E) == "format      e4m3fn\ncode        0x7E = 0 1111 110  (normal)\nvalue       448\n");
  for (const auto& entry : catalog()) {
    const std::string d = format_json(entry.format).dump();
    INFO(d);
    CHECK(has_member(d, "name", std::string(entry.name)));
    CHECK(has_member(d, "max_finite", shortest(max_finite(entry.format))));
    CHECK(has_member(d, "source", std::string(entry.source)));
  }
}

TEST_CASE("explain: values are read as the tool reads them; the IEEE-like variants are named", "[explain]") {
  CHECK(parse_value("0x1.8p-7") == 0x1.8p-7);
  CHECK(std::isinf(parse_value("-inf")));
  CHECK(std::isnan(parse_value("nan")));
  CHECK(!std::signbit(parse_value("nan")));
  CHECK(std::signbit(parse_value("-nan")));
  CHECK(std::signbit(parse_value("-NAN")));
  CHECK(parse_value("1e999") == INFINITY);
  for (const char* bad : {"", "abc", "1.5x", "1 "})
    CHECK_THROWS_WITH(parse_value(bad), Catch::StartsWith("invalid value '"));
  CHECK(variant_note(parse_format("e4m3")).find("the OCP format is e4m3fn (max 448)") != std::string::npos);
  CHECK(variant_note(parse_format("e4m3fn")).empty());
}
