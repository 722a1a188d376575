// The public API: edge cases stated by the specifications and by NVIDIA's headers
// (docs/references.md), derived properties, the parser, errors, explain.
#include <cmath>
#include <limits>

#include "fp8emu/convert.hpp"
#include "sweep.hpp"

using namespace fp8emu;

namespace {
std::uint32_t enc(const char* fmt, double x, ConvertOptions o = {}) { return encode(parse_format(fmt), x, o); }
const ConvertOptions kNone{.saturation = Saturation::none};
const ConvertOptions kRz{.rounding = Rounding::toward_zero};
const ConvertOptions kRu{.rounding = Rounding::toward_positive};
}  // namespace

TEST_CASE("edge cases stated by OCP and NVIDIA", "[api]") {
  // OCP OFP8: overflow is judged after rounding; 464 ties to 448 (the even code).
  CHECK(enc("e4m3fn", 464) == 0x7E);
  CHECK(enc("e4m3fn", 464.0001, kNone) == 0x7F);
  CHECK(enc("e4m3fn", -500, kNone) == 0xFF);
  CHECK(enc("e4m3fn", 1e9) == 0x7E);
  CHECK(enc("e4m3fn", -INFINITY) == 0xFE);
  CHECK(enc("e5m2", 61440, kNone) == 0x7C);
  CHECK(enc("e5m2", 61439.99, kNone) == 0x7B);
  CHECK(enc("e5m2", INFINITY, ConvertOptions{.saturation = Saturation::propagate}) == 0x7C);
  CHECK(enc("e5m2", 1e6, ConvertOptions{.saturation = Saturation::propagate}) == 0x7B);
  // NVIDIA examples.
  CHECK(enc("e4m3fn", std::ldexp(1.0, -10)) == 0x00);
  CHECK(enc("e4m3fn", std::ldexp(1.0 + std::ldexp(1.0, -23), -10)) == 0x01);
  CHECK(enc("e4m3fn", 1.0625) == 0x38);
  CHECK(enc("e5m2", 1.0625) == 0x3C);
  CHECK(enc("e4m3fn", 1.1875) == 0x3A);
  CHECK(enc("e5m2", 1.1875) == 0x3D);
  CHECK(enc("e2m1fn", 5) == 0x6);
  CHECK(enc("e2m1fn", 7) == 0x7);
  CHECK(enc("e2m3fn", 0.0625) == 0x00);
  CHECK(enc("e3m2fn", 0.0625) == 0x01);
  CHECK(enc("e8m0fnu", 1.5, kRz) == 0x7F);
  CHECK(enc("e8m0fnu", 1.5, kRu) == 0x80);
  CHECK(enc("e8m0fnu", -6, kRz) == 0x81);
  CHECK(enc("e8m0fnu", -6, kRu) == 0x82);
  CHECK(enc("e8m0fnu", 0) == 0x00);
  CHECK(enc("e8m0fnu", NAN) == 0xFF);
  // NaN: canonical keeps the sign where NaNs are signed; NVIDIA's option drops it.
  CHECK(enc("e4m3fn", -NAN) == 0xFF);
  CHECK(enc("e4m3fn", -NAN, ConvertOptions{.nan = NanEncoding::nvidia}) == 0x7F);
  CHECK(enc("e5m2", NAN) == 0x7E);
  CHECK(enc("e5m2", -NAN, ConvertOptions{.nan = NanEncoding::nvidia}) == 0x7F);
  CHECK(enc("e4m3fnuz", -NAN) == 0x80);
  CHECK(enc("e2m1fn", NAN) == 0x7);  // no NaN: +max, as NVIDIA
  // fnuz and P3109 have one zero; P3109 unsigned formats give NaN for negatives.
  CHECK(enc("e4m3fnuz", -0.0) == 0x00);
  CHECK(enc("e4m3fnuz", -1e-30) == 0x00);
  CHECK(enc("binary8p3ue", -1) == 0xFF);
  CHECK(enc("binary8p3ue", -0.0) == 0x00);
  CHECK(enc("binary8p4se", INFINITY, kNone) == 0x7F);
  CHECK(enc("binary8p4se", -INFINITY, kNone) == 0xFF);
  CHECK(enc("binary8p4sf", -INFINITY, kNone) == 0x80);
  // Saturation none: toward-zero directions stop at max (IEEE 754 7.4).
  CHECK(enc("e5m2", 1e6, ConvertOptions{.rounding = Rounding::toward_zero, .saturation = Saturation::none}) == 0x7B);
  CHECK(enc("e5m2", -1e6, ConvertOptions{.rounding = Rounding::toward_positive, .saturation = Saturation::none}) == 0xFB);
  CHECK(enc("e5m2", -1e6, ConvertOptions{.rounding = Rounding::toward_negative, .saturation = Saturation::none}) == 0xFC);
  // DAZ judges the input type: a float subnormal is flushed, the same value as a double is not
  // (it is a normal double), and FTZ flushes subnormal results.
  const ConvertOptions daz{.flush_inputs = true}, ftz{.flush_outputs = true};
  CHECK(encode(formats::float32{}, 1e-40f, daz) == 0);
  CHECK(encode(formats::float32{}, double(1e-40f), daz) != 0);
  CHECK(enc("e4m3fn", 0.00390625) == 0x02);
  CHECK(enc("e4m3fn", 0.00390625, ftz) == 0x00);
  CHECK(enc("e4m3fn", -0.00390625, ftz) == 0x80);
}

TEST_CASE("derived properties agree with classify over every code", "[api][formats]") {
  std::uint64_t formats_checked = 0;
  for (const auto& e : catalog()) {
    const Format& f = e.format;
    if (total_bits(f) > 19) continue;
    INFO(e.name);
    std::uint64_t finite = 0;
    double smallest = INFINITY, smallest_normal = INFINITY, largest = 0;
    std::uint32_t nan_seen = 0, inf_seen = 0;
    for (std::uint32_t c = 0; c < (1u << total_bits(f)); ++c) {
      const ValueClass k = classify(f, c);
      const double v = decode(f, c);
      if (k == ValueClass::nan) ++nan_seen;
      if (k == ValueClass::infinite) ++inf_seen;
      if (k == ValueClass::nan || k == ValueClass::infinite) continue;
      ++finite;
      if (v > 0) smallest = std::min(smallest, v), largest = std::max(largest, v);
      if (k == ValueClass::normal && v > 0) smallest_normal = std::min(smallest_normal, v);
      CHECK((k == ValueClass::subnormal) == (v != 0 && std::fabs(v) < min_normal(f)));
    }
    CHECK(finite == finite_code_count(f));
    CHECK(largest == max_finite(f));
    CHECK(smallest == min_positive(f));
    CHECK(smallest_normal == min_normal(f));
    CHECK((nan_seen > 0) == has_nan(f));
    CHECK((inf_seen > 0) == has_inf(f));
    if (auto n = nan_code(f)) CHECK(classify(f, *n) == ValueClass::nan);
    if (auto i = positive_inf_code(f)) CHECK(decode(f, *i) == INFINITY);
    if (auto i = negative_inf_code(f)) CHECK(decode(f, *i) == -INFINITY);
    // Epsilon: the gap between 1 and the next value, where 1 is representable.
    const std::uint32_t one = encode(f, 1.0, kNone);
    if (decode(f, one) == 1.0 && one < max_magnitude_code(f))
      CHECK(decode(f, one + 1) - 1.0 == epsilon(f));
    ++formats_checked;
  }
  CHECK(formats_checked == catalog().size() - 1);  // all but float32
}

TEST_CASE("compile-time and run-time formats give the same codes", "[api]") {
  std::uint64_t n = 0, bad = 0;
  auto run = [&](auto sf, const char* name) {
    const Format rf = parse_format(name);
    CHECK(Format(sf) == rf);
    for (std::uint32_t h = 0; h < 65536; ++h)
      for (Rounding r : {Rounding::nearest_even, Rounding::toward_zero, Rounding::stochastic_a}) {
        const ConvertOptions o{.rounding = r, .stochastic_bits = 5};
        bad += encode_float16_bits(sf, std::uint16_t(h), o, h * 7) != encode_float16_bits(rf, std::uint16_t(h), o, h * 7);
        ++n;
      }
  };
  run(formats::e4m3fn{}, "e4m3fn");
  run(formats::e5m2{}, "e5m2");
  run(formats::e4m3fnuz{}, "e4m3fnuz");
  run(formats::e2m1fn{}, "e2m1fn");
  run(formats::e8m0fnu{}, "e8m0fnu");
  run(formats::bfloat16{}, "bfloat16");
  CHECK(bad == 0);
  CHECK(n == 6 * 65536 * 3);
}

TEST_CASE("format names parse and round-trip", "[api][parse]") {
  for (const auto& e : catalog()) {
    CHECK(parse_format(e.name) == e.format);
    CHECK(format_name(e.format) == e.name);
  }
  CHECK(parse_format("e4m3:policy=fn") == Format(formats::e4m3fn{}));
  CHECK(parse_format("e4m3:policy=fnuz") == Format(formats::e4m3fnuz{}));
  CHECK(parse_format("e4m3:bias=11:policy=fnuz") == Format(formats::e4m3b11fnuz{}));
  CHECK(parse_format("e2m1:bias=1:policy=finite") == Format(formats::e2m1fn{}));
  CHECK(parse_format("binary8p4sf") == parse_format("e4m3:bias=8:policy=p3109-finite"));
  for (const char* custom : {"binary6p3se", "binary16p11sf", "e5m4:bias=9:policy=fn", "e3m3:unsigned:policy=p3109-finite",
                             "e6m0:policy=e8m0:bias=40"}) {
    INFO(custom);
    const Format f = parse_format(custom);
    CHECK(parse_format(format_name(f)) == f);
  }
  for (const char* bad : {"", "float64", "e9m2", "e4m24", "e1m0", "e4m3:unsigned", "binary8p8se", "binary8p0se",
                          "binary8p3xe", "e4m3:bias=x", "e4m3:policy=bogus", "e5m2:bias=2000", "e4m3:colour=red",
                          "binaryXp3se", "e1m0:policy=fn"}) {
    INFO("'" << bad << "'");
    CHECK_THROWS_AS(parse_format(bad), std::invalid_argument);
  }
  CHECK_THROWS_WITH(parse_format("e9m2"), Catch::Contains("exponent bits must be 1..8"));
  // Each option of a format spelling once: a second one is an error, not an override.
  CHECK_THROWS_WITH(parse_format("e5m2:bias=15:bias=16"),
                    Catch::Contains("option 'bias' given twice"));
  CHECK_THROWS_WITH(parse_format("e4m3:policy=fn:policy=fnuz"),
                    Catch::Contains("option 'policy' given twice"));
  CHECK_THROWS_WITH(parse_format("e4m3:unsigned:policy=fn:unsigned"),
                    Catch::Contains("option 'unsigned' given twice"));
}

TEST_CASE("bad arguments throw clear errors", "[api]") {
  const formats::e4m3fn f;
  CHECK_THROWS_AS(decode(f, 0x100), std::out_of_range);
  CHECK_THROWS_AS(classify(f, 0xFFFFFFFF), std::out_of_range);
  for (int n : {0, -1, 33})
    CHECK_THROWS_AS(encode(f, 1.01, ConvertOptions{.rounding = Rounding::stochastic_a, .stochastic_bits = n}),
                    std::invalid_argument);
  CHECK_NOTHROW(encode(f, 1.01, ConvertOptions{.rounding = Rounding::stochastic_c, .stochastic_bits = 32}, 0xFFFFFFFF));
  CHECK_THROWS_AS(decode_float(parse_format("e5m2:bias=-200"), 1), std::domain_error);
  CHECK(decode_float(f, 0x7E) == 448.0f);
}

TEST_CASE("explain reports fields, neighbours and error", "[api][explain]") {
  const Format f = parse_format("e4m3fn");
  const Explanation e = explain(f, 3.3, {});
  CHECK(e.result.code == 0x45);
  CHECK(e.result.exponent_field == 8);
  CHECK(e.result.mantissa_field == 5);
  REQUIRE(e.below);
  REQUIRE(e.above);
  CHECK(e.below->value == 3.25);
  CHECK(e.above->value == 3.5);
  CHECK(e.ulp == 0.25);
  CHECK(field_bits(f, 0x45) == "0 1000 101");
  const Explanation o = explain(f, 470, kNone);
  CHECK(o.status.overflow);
  CHECK(o.result.value_class == ValueClass::nan);
  const Explanation u = explain(parse_format("e5m2"), -1e-7, {});
  CHECK(u.status.underflow);
  CHECK(u.result.code == 0x80);
  CHECK(to_text(e).find("neighbours  3.25 (0x45) <= x <= 3.5 (0x46)") != std::string::npos);
}

TEST_CASE("explain's status says what became of the input", "[api][explain]") {
  auto status = [](const char* f, double x, ConvertOptions o = {}) {
    return status_text(explain(parse_format(f), x, o));
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // Inputs without a counterpart in the format: never "exact".
  CHECK(status("e2m1fn", nan) == "not representable: e2m1fn has no NaN; NaN input -> 6 (0x7)");
  CHECK(status("e8m0fnu", -4.0) == "sign dropped (e8m0fnu encodes |x|); |x| exact");
  CHECK(status("e8m0fnu", -3.0) == "sign dropped (e8m0fnu encodes |x|); |x| inexact");
  CHECK(status("binary8p3ue", -1.0) ==
        "not representable: negative input to an unsigned format -> NaN");
  CHECK(status("binary8p3ue", -INFINITY) ==
        "not representable: negative input to an unsigned format -> NaN");
  CHECK(status("e4m3fn", nan) == "NaN input -> NaN");
  // Ordinary results.
  CHECK(status("e4m3fn", 1.0) == "exact");
  CHECK(status("binary8p3ue", -0.0) == "exact");
  CHECK(status("e4m3fn", 3.3) == "inexact");
  CHECK(status("e5m2", -1e-7) == "inexact, underflow to zero");
  CHECK(status("e4m3fn", 1e6) ==
        "overflow: rounded magnitude exceeds max 448 -> normal (saturated)");
  const std::string text = to_text(explain(parse_format("e2m1fn"), nan, {}));
  CHECK(text.find("status      not representable: e2m1fn has no NaN") != std::string::npos);
}

TEST_CASE("precision-1 ties go to the even code, round-to-odd to the odd code (P3109)", "[api]") {
  // With no trailing significand the code of 2^e is e + bias: "even" is the exponent
  // field's last bit. binary8p1se and binary8p1uf: bias 64 and 128 (even), so 1 has an
  // even code; e8m0fnu: bias 127, so 2 has.
  const ConvertOptions kRo{.rounding = Rounding::to_odd};
  for (const char* f : {"binary8p1se", "binary8p1sf", "binary8p1ue", "binary8p1uf"}) {
    INFO(f);
    const Format p1 = parse_format(f);
    CHECK(decode(p1, enc(f, 1.5)) == 1.0);     // 1 (even) or 2 (odd)
    CHECK(decode(p1, enc(f, 3.0)) == 4.0);     // 2 (odd) or 4 (even)
    CHECK(decode(p1, enc(f, 0.375)) == 0.25);  // 0.25 (even) or 0.5 (odd)
    CHECK(decode(p1, enc(f, 1.5, kRo)) == 2.0);
    CHECK(decode(p1, enc(f, 3.0, kRo)) == 2.0);
    CHECK(decode(p1, enc(f, 1.0, kRo)) == 1.0);  // exact stays
    // A tie between 0 (code 0, even) and the smallest value goes to 0; to odd, up.
    CHECK(enc(f, min_positive(p1) / 2) == 0x00);
    CHECK(enc(f, min_positive(p1) / 2, kRo) == 0x01);
  }
  const Format e8 = parse_format("e8m0fnu");
  CHECK(decode(e8, enc("e8m0fnu", 1.5)) == 2.0);
  CHECK(decode(e8, enc("e8m0fnu", 3.0)) == 2.0);
  CHECK(decode(e8, enc("e8m0fnu", 6.0)) == 8.0);
  CHECK(decode(e8, enc("e8m0fnu", 1.5, kRo)) == 1.0);
  CHECK(decode(e8, enc("e8m0fnu", 3.0, kRo)) == 4.0);
  // 1.5 x max is a tie between max and the next power of two: it stays at max where the
  // largest finite code is even and overflows where it is odd (saturation none).
  CHECK(enc("binary8p1se", 1.5 * max_finite(parse_format("binary8p1se")), kNone) == 0x7E);
  CHECK(enc("binary8p1sf", 1.5 * max_finite(parse_format("binary8p1sf")), kNone) == 0x80);  // NaN
  CHECK(enc("binary8p1ue", 1.5 * max_finite(parse_format("binary8p1ue")), kNone) == 0xFE);  // +inf
  CHECK(enc("binary8p1uf", 1.5 * max_finite(parse_format("binary8p1uf")), kNone) == 0xFE);
  CHECK(enc("e8m0fnu", 1.5 * max_finite(e8), kNone) == 0xFE);
}

// The derived traits of a format, for the compile-time descriptors and against what the
// codes of every catalog format of at most 16 bits actually hold.
static_assert(!has_zero(formats::e8m0fnu{}) && drops_sign(formats::e8m0fnu{}) &&
              !has_subnormals(formats::e8m0fnu{}) && !has_trailing_significand(formats::e8m0fnu{}) &&
              emin(formats::e8m0fnu{}) == -127);
static_assert(has_zero(formats::e4m3fn{}) && !drops_sign(formats::e4m3fn{}) &&
              has_subnormals(formats::e4m3fn{}) && has_trailing_significand(formats::e4m3fn{}) &&
              emin(formats::e4m3fn{}) == -6);

TEST_CASE("format traits agree with the codes", "[api][formats]") {
  int checked = 0;
  for (const auto& e : catalog()) {
    const Format f = e.format;
    if (total_bits(f) > 16) continue;
    INFO(e.name);
    bool zero = false, subnormal = false;
    double smallest = INFINITY;
    for (std::uint32_t c = 0; c < (std::uint32_t{1} << total_bits(f)); ++c) {
      const ValueClass v = classify(f, c);
      zero = zero || v == ValueClass::zero;
      subnormal = subnormal || v == ValueClass::subnormal;
      if (v == ValueClass::normal || v == ValueClass::subnormal)
        smallest = std::min(smallest, std::fabs(decode(f, c)));
    }
    CHECK(has_zero(f) == zero);
    CHECK(has_subnormals(f) == subnormal);
    CHECK(smallest == (subnormal ? std::ldexp(1.0, quantum_min(f)) : std::ldexp(1.0, emin(f))));
    // A negative input: its magnitude's code where the sign is dropped, NaN (or the
    // signed code) otherwise.
    const ConvertOptions o{.saturation = Saturation::finite};
    const std::uint32_t neg = encode(f, -2.0, o), pos = encode(f, 2.0, o);
    CHECK(drops_sign(f) == (!f.is_signed && neg == pos));
    if (!f.is_signed && !drops_sign(f)) CHECK(classify(f, neg) == ValueClass::nan);
    ++checked;
  }
  CHECK(checked == 11 + 28 + 2);  // the OCP and LLVM formats, P3109 8-bit, float16, bfloat16
}
