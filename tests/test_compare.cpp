// compare.hpp: the ulp coordinate against each format's decoded codes, and every pair of
// codes of several 8-bit formats against an oracle that ranks the distinct values of the
// format by sorting them (no magnitude codes, no library classification).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "fp8emu/compare.hpp"
#include "fp8emu/convert.hpp"

using namespace fp8emu;

namespace {

// The oracle's view of one format: the sorted distinct finite values (+0 and -0 one
// value) and the smallest positive normal, from decoded codes alone.
struct Ranked {
  std::vector<double> values;
  double min_normal = 0;
  // Returns the rank of a finite value (its index among the distinct values).
  double rank(double x) const {
    if (x == 0) x = 0;  // -0 ranks with +0
    const auto it = std::lower_bound(values.begin(), values.end(), x);
    REQUIRE(it != values.end());
    REQUIRE(*it == x);
    return double(it - values.begin());
  }
};

Ranked ranked(const Format& f) {
  Ranked r;
  const std::uint32_t n = 1u << total_bits(f);
  for (std::uint32_t c = 0; c < n; ++c) {
    const double v = decode(f, c);
    if (std::isfinite(v)) r.values.push_back(v == 0 ? 0.0 : v);
  }
  std::sort(r.values.begin(), r.values.end());
  r.values.erase(std::unique(r.values.begin(), r.values.end()), r.values.end());
  // The smallest normal: 2^emin from the format's parameters (a definition, not a code).
  r.min_normal = std::ldexp(1.0, f.policy == Policy::e8m0 ? -f.bias : 1 - f.bias);
  return r;
}

// The oracle's kind of a mismatching pair of decoded values (compare.hpp's order).
Difference oracle_kind(double e, double a, const Ranked& r) {
  const bool en = std::isnan(e), an = std::isnan(a);
  if (en != an) return Difference::nan_vs_number;
  if (en) return Difference::nan_bits;
  if (std::isinf(e) != std::isinf(a)) return Difference::inf_vs_finite;
  if (std::signbit(e) != std::signbit(a)) return Difference::sign;
  auto tiny = [&](double x) { return x != 0 && std::fabs(x) < r.min_normal; };
  if ((e == 0 && tiny(a)) || (a == 0 && tiny(e))) return Difference::zero_vs_subnormal;
  if (e == 0 || a == 0) return Difference::zero_vs_normal;
  return Difference::magnitude;
}

}  // namespace

TEST_CASE("ulp_coordinate: the magnitude code of every finite code, halfway between neighbours",
          "[compare]") {
  std::uint64_t checked = 0, formats_run = 0;
  for (const CatalogEntry& entry : catalog()) {
    const Format f = entry.format;
    if (total_bits(f) > 16) continue;
    ++formats_run;
    const std::uint32_t n = 1u << total_bits(f);
    for (std::uint32_t c = 0; c < n; ++c) {
      const double v = decode(f, c);
      if (!std::isfinite(v)) continue;
      const double mag = double(c & magnitude_mask(f));
      const double want = (c & sign_mask(f)) ? -mag : mag;
      INFO(entry.name << " code " << c << " value " << v);
      REQUIRE(ulp_coordinate(f, v) == want);
      // Halfway (in value) between this code and the next larger magnitude: + 0.5.
      const std::uint32_t next = c + 1;
      if (!(c & sign_mask(f)) && next < n && next <= max_magnitude_code(f) && v >= 0) {
        const double w = decode(f, next);
        REQUIRE(ulp_coordinate(f, (v + w) / 2) == mag + 0.5);
      }
      ++checked;
    }
  }
  std::printf("sweep ulp_coordinate: %llu finite codes of %llu formats, 0 mismatches\n",
              (unsigned long long)checked, (unsigned long long)formats_run);
  CHECK(formats_run >= 14);
  CHECK(checked > 2 * 65536);  // float16 and bfloat16 alone have nearly 2 x 63488
  const Format f32 = formats::float32{};
  // float32: the coordinate of a positive float is its bit pattern.
  for (float x : {1.0f, 0x1p-149f, 0x1p-126f, 3.4e38f, 0.1f})
    CHECK(ulp_coordinate(f32, x) == double(std::bit_cast<std::uint32_t>(x)));
  CHECK(std::isnan(ulp_coordinate(f32, std::nan(""))));
  CHECK(ulp_coordinate(f32, -std::numeric_limits<double>::infinity()) < 0);
}

TEST_CASE("compare_codes: every pair of codes against the ranked-values oracle", "[compare]") {
  const Format fs[] = {formats::e4m3fn{}, formats::e5m2{}, formats::e4m3fnuz{}, formats::e2m1fn{},
                       formats::e8m0fnu{}, parse_format("binary8p3se")};
  std::uint64_t pairs = 0;
  for (const Format& f : fs) {
    const Ranked r = ranked(f);
    const std::uint32_t n = 1u << total_bits(f);
    std::vector<std::uint8_t> e, a;
    for (std::uint32_t x = 0; x < n; ++x)
      for (std::uint32_t y = 0; y < n; ++y) e.push_back(std::uint8_t(x)), a.push_back(std::uint8_t(y));
    CompareOptions o;
    o.keep = e.size();
    o.tolerance_ulps = 2;
    const CompareReport rep = compare_codes(f, e, a, o);
    INFO(format_name(f));
    REQUIRE(rep.total == std::uint64_t(n) * n);
    CHECK(rep.exact == n);
    CHECK(rep.exact + rep.tolerated + rep.failed == rep.total);
    REQUIRE(rep.first.size() == rep.total - n);
    std::uint64_t tolerated = 0;
    std::array<std::uint64_t, kDifferenceCount> kinds{};
    double max_ulps = 0;
    for (const MismatchRecord& m : rep.first) {
      const double ev = decode(f, std::uint32_t(m.expected_bits)), av = decode(f, std::uint32_t(m.actual_bits));
      INFO("expected code " << m.expected_bits << " (" << ev << "), actual " << m.actual_bits << " (" << av << ")");
      REQUIRE(m.expected_bits == e[m.index]);
      REQUIRE(m.actual_bits == a[m.index]);
      // Distance: the difference of ranks for numbers; 0 for NaN vs NaN and equal
      // infinities; no finite distance otherwise.
      double want;
      if (std::isnan(ev) && std::isnan(av)) want = 0;
      else if (std::isnan(ev) || std::isnan(av)) want = INFINITY;
      else if (std::isinf(ev) || std::isinf(av)) want = ev == av ? 0 : INFINITY;
      else want = std::fabs(r.rank(av) - r.rank(ev));
      REQUIRE(m.ulps == want);
      REQUIRE(m.kind == oracle_kind(ev, av, r));
      REQUIRE(m.tolerated == (want <= 2));
      tolerated += m.tolerated;
      kinds[std::size_t(m.kind)] += 1;
      if (std::isfinite(want)) max_ulps = std::max(max_ulps, want);
      ++pairs;
    }
    CHECK(rep.tolerated == tolerated);
    CHECK(rep.by_kind == kinds);
    CHECK(rep.max_ulps == max_ulps);
    std::uint64_t hist = 0;
    for (auto h : rep.histogram) hist += h;
    CHECK(hist == rep.total - rep.exact);
  }
  std::printf("sweep compare_codes: %llu mismatching code pairs of 6 formats against ranked values, 0 mismatches\n",
              (unsigned long long)pairs);
  CHECK(pairs == 5 * (65536 - 256) + (16 * 16 - 16));
}

TEST_CASE("compare: tolerance, extremes, first records, merge and errors", "[compare]") {
  const Format f = formats::e4m3fn{};
  // 1.0 = 0x38; 0x39 = 1.125 (1 ulp); 0x3C = 1.5 (4 ulps); 0xB8 = -1.0; 0x7F NaN.
  const std::vector<std::uint8_t> e = {0x38, 0x38, 0x38, 0x00, 0x38, 0x7F, 0x80, 0x01};
  const std::vector<std::uint8_t> a = {0x38, 0x39, 0x3C, 0x80, 0x7F, 0xFF, 0x01, 0x08};
  SECTION("tolerance 0: only bit-identical elements pass") {
    const CompareReport r = compare_codes(f, e, a);
    CHECK(r.exact == 1);
    CHECK(r.failed == 7);
    CHECK_FALSE(r.passed());
    CHECK(r.by_kind[std::size_t(Difference::sign)] == 2);  // +0 vs -0, -0 vs +min
    CHECK(r.by_kind[std::size_t(Difference::nan_bits)] == 1);
    CHECK(r.by_kind[std::size_t(Difference::nan_vs_number)] == 1);
    CHECK(r.by_kind[std::size_t(Difference::magnitude)] == 3);  // 1 ulp, 4 ulps, sub vs normal
    CHECK(r.histogram[0] == 2);                                 // +0/-0 and NaN/NaN
    CHECK(r.histogram[1] == 2);                                 // 1.125, -0 vs 2^-9
    CHECK(r.histogram[3] == 1);                                 // 1.5: 3-4 ulps
    CHECK(r.histogram[4] == 1);                                 // 0x01 vs 0x08: 7 ulps
    CHECK(r.histogram[kUlpBuckets - 1] == 1);                   // NaN vs number
    CHECK(r.max_ulps == 7);
    CHECK(r.max_ulps_index == 7);
    CHECK(r.max_abs_error == 0.5);
    CHECK(r.max_abs_index == 2);
    CHECK(r.max_rel_error == 7);  // 2^-9 -> 2^-6: (8 - 1) / 1
    CHECK(r.max_rel_index == 7);
    CHECK(r.first.size() == 7);
  }
  SECTION("tolerance 4: distances up to 4 pass, NaN vs number never does") {
    CompareOptions o;
    o.tolerance_ulps = 4;
    const CompareReport r = compare_codes(f, e, a, o);
    CHECK(r.tolerated == 5);
    CHECK(r.failed == 2);  // NaN vs 1.0 and 7 ulps
  }
  SECTION("comparing in parts and merging equals one comparison") {
    CompareOptions o;
    o.keep = 3;
    const CompareReport whole = compare_codes(f, e, a, o);
    CompareReport merged;
    for (std::size_t start = 0; start < e.size(); start += 3) {
      const std::size_t len = std::min<std::size_t>(3, e.size() - start);
      CompareOptions p = o;
      p.first_index = start;
      merged.merge(compare_codes(f, std::span(e).subspan(start, len), std::span(a).subspan(start, len), p), o.keep);
    }
    CHECK(merged.total == whole.total);
    CHECK(merged.exact == whole.exact);
    CHECK(merged.failed == whole.failed);
    CHECK(merged.by_kind == whole.by_kind);
    CHECK(merged.histogram == whole.histogram);
    CHECK(merged.max_abs_index == whole.max_abs_index);
    CHECK(merged.max_rel_index == whole.max_rel_index);
    REQUIRE(merged.first.size() == 3);
    for (std::size_t k = 0; k < 3; ++k) CHECK(merged.first[k].index == whole.first[k].index);
  }
  SECTION("bad input throws with the index") {
    const std::vector<std::uint16_t> wide = {0x38, 0x138};
    const std::vector<std::uint16_t> ok = {0x38, 0x38};
    CHECK_THROWS_WITH(compare_codes(f, ok, wide), Catch::Contains("element 1") && Catch::Contains("does not fit"));
    CHECK_THROWS_WITH(compare_codes(f, std::span(e).first(2), std::span(a).first(3)),
                      Catch::Contains("2 expected and 3 actual"));
  }
}

TEST_CASE("compare_values: float32 distances are bit-pattern distances, off-grid values are fractional",
          "[compare]") {
  const Format f32 = formats::float32{}, e4 = formats::e4m3fn{};
  std::vector<float> e, a;
  std::uint64_t cases = 0;
  for (std::uint32_t b = 0x00000001; b < 0x7F000000; b += 0x00F0F0F1) {
    const float x = std::bit_cast<float>(b);
    for (std::uint32_t d : {1u, 2u, 3u, 100u, 65536u}) {
      e.push_back(x);
      a.push_back(std::bit_cast<float>(b + d));
      e.push_back(-x);
      a.push_back(-std::bit_cast<float>(b + d));
      cases += 2;
    }
  }
  CompareOptions o;
  o.keep = e.size();
  const CompareReport r = compare_values(f32, e, a, o);
  REQUIRE(r.first.size() == cases);
  for (const MismatchRecord& m : r.first) {
    const auto be = std::bit_cast<std::uint32_t>(float(m.expected)) & 0x7FFFFFFF;
    const auto ba = std::bit_cast<std::uint32_t>(float(m.actual)) & 0x7FFFFFFF;
    REQUIRE(m.ulps == double(ba - be));
    REQUIRE(m.kind == Difference::magnitude);
  }
  CHECK(r.off_grid_expected == 0);
  // e4m3fn: 1.0625 lies halfway between 1 (0x38) and 1.125: 0.5 ulp from each.
  const std::vector<double> ev = {1.0, 1.0, -0.0, 0.0, std::nan("1")};
  const std::vector<double> av = {1.0625, 1.125, 0.0, std::ldexp(1.0, -9), -std::nan("2")};
  const CompareReport s = compare_values(e4, ev, av, {});
  CHECK(s.exact == 1);  // NaN vs NaN, any payload
  REQUIRE(s.first.size() == 4);
  CHECK(s.first[0].ulps == 0.5);
  CHECK(s.first[1].ulps == 1);
  CHECK(s.first[2].kind == Difference::sign);
  CHECK(s.first[2].ulps == 0);
  CHECK(s.first[3].kind == Difference::zero_vs_subnormal);
  CHECK(s.off_grid_actual == 1);
  std::printf("compare_values: %llu float32 pairs, 0 mismatches\n", (unsigned long long)cases);
}

TEST_CASE("ulp histogram: each bucket's label states the distances it holds", "[compare]") {
  // Labels are "0", "(lo, hi]" and "> 2^30"; lo and hi are decimal or 2^k. A distance d
  // belongs to bucket "(lo, hi]" exactly when lo < d <= hi, fractional distances (values
  // off the format's grid) included.
  const auto number = [](const std::string& t) {
    return t.rfind("2^", 0) == 0 ? std::ldexp(1.0, std::stoi(t.substr(2))) : std::stod(t);
  };
  const double inf = std::numeric_limits<double>::infinity();
  REQUIRE(ulp_bucket_label(0) == "0");
  CHECK(ulp_bucket(0) == 0);
  std::size_t intervals = 0;
  double previous_hi = 0;
  for (std::size_t b = 1; b + 2 < kUlpBuckets; ++b) {
    const std::string label = ulp_bucket_label(b);
    INFO("bucket " << b << " label '" << label << "'");
    REQUIRE(label.size() > 4);
    REQUIRE(label.front() == '(');
    REQUIRE(label.back() == ']');
    const std::size_t comma = label.find(", ");
    REQUIRE(comma != std::string::npos);
    const double lo = number(label.substr(1, comma - 1));
    const double hi = number(label.substr(comma + 2, label.size() - comma - 3));
    CHECK(lo == previous_hi);  // the buckets tile (0, 2^30] without gaps
    CHECK(ulp_bucket(std::nextafter(lo, inf)) == b);
    CHECK(ulp_bucket((lo + hi) / 2) == b);
    CHECK(ulp_bucket(hi) == b);
    CHECK(ulp_bucket(std::nextafter(hi, inf)) == b + 1);
    previous_hi = hi;
    ++intervals;
  }
  CHECK(intervals == kUlpBuckets - 3);
  CHECK(previous_hi == std::ldexp(1.0, 30));
  CHECK(ulp_bucket_label(kUlpBuckets - 2) == "> 2^30");
  CHECK(ulp_bucket(1e300) == kUlpBuckets - 2);
  CHECK(ulp_bucket_label(kUlpBuckets - 1) == "not comparable");
  CHECK(ulp_bucket(inf) == kUlpBuckets - 1);
  // 1.47 bfloat16 ulps (a float32 value off the grid) counts under "(1, 2]", not "2".
  const float e = 1.0f, a = 1.0f + 1.47f * 0x1p-7f;
  const CompareReport r = compare_values(formats::bfloat16{}, std::span(&e, 1), std::span(&a, 1), {});
  REQUIRE(r.first.size() == 1);
  CHECK(r.first[0].ulps == Approx(1.47).epsilon(1e-6));
  CHECK(r.histogram[ulp_bucket(r.first[0].ulps)] == 1);
  CHECK(ulp_bucket_label(ulp_bucket(r.first[0].ulps)) == "(1, 2]");
}

TEST_CASE("compare_float16_bits: compare_values of the widened values, the records with float16 bits; "
          "the report's text and JSON",
          "[compare]") {
  // Every float16 code against its successor and its negation (NaN codes included).
  std::vector<std::uint16_t> e, a;
  for (std::uint32_t c = 0; c < 0x10000; c += 7) {
    e.push_back(std::uint16_t(c));
    a.push_back(std::uint16_t(c % 3 == 0 ? c + 1 : c % 3 == 1 ? c ^ 0x8000 : c));
  }
  std::vector<float> ew(e.size()), aw(a.size());
  for (std::size_t i = 0; i < e.size(); ++i) {
    ew[i] = float(decode(formats::float16{}, e[i]));
    aw[i] = float(decode(formats::float16{}, a[i]));
  }
  CompareOptions o;
  o.keep = 100000;
  o.first_index = 5;
  const CompareReport r = compare_float16_bits(formats::bfloat16{}, e, a, o);
  const CompareReport w = compare_values(formats::bfloat16{}, ew, aw, o);
  CHECK((r.total == e.size() && r.exact == w.exact && r.failed == w.failed && r.by_kind == w.by_kind &&
         r.histogram == w.histogram && r.off_grid_expected == w.off_grid_expected));
  REQUIRE(r.first.size() == w.first.size());
  REQUIRE(r.first.size() > 6000);
  std::size_t bad = 0;
  for (std::size_t k = 0; k < r.first.size(); ++k) {
    const MismatchRecord &m = r.first[k], &n = w.first[k];
    bad += m.index != n.index || m.ulps != n.ulps || m.kind != n.kind ||
           m.expected_bits != e[m.index - 5] || m.actual_bits != a[m.index - 5];
  }
  CHECK(bad == 0);
  CHECK_THROWS_AS(compare_float16_bits(formats::bfloat16{}, std::span(e).first(3), std::span(a).first(4)),
                  std::invalid_argument);

  // The text and the JSON name the subject; hex digits of the records' width.
  CompareSubject s;
  s.format = formats::bfloat16{};
  s.codes = false;
  s.dtype = "float16";
  s.value_bits = 16;
  s.shape = {e.size()};
  CompareOptions one;
  one.keep = 1;
  const CompareReport r1 = compare_float16_bits(formats::bfloat16{}, std::span(e).first(2), std::span(a).first(2), one);
  s.shape = {2};
  const std::string text = compare_text(s, r1), json = compare_json(s, r1);
  CHECK(text.starts_with("compare: 2 elements of bfloat16 values (float16, shape 2), tolerance 0 ulps\n"));
  CHECK(text.find(" (0x0000) ") != std::string::npos);
  CHECK(text.ends_with("FAIL: 2 elements differ by more than 0 ulps\n"));
  CHECK(json.find("\"expected\": null") != std::string::npos);
  CHECK(json.find("\"expected_hex\": \"0x0000\"") != std::string::npos);
  CHECK(json.find("\"actual_hex\": \"0x0001\"") != std::string::npos);
  CHECK(multi_index({2, 3, 4}, 23) == "[1, 2, 3]");
  CHECK((shape_text({2, 3, 4}) == "2x3x4" && shape_text({}) == "scalar"));
}
