// Exhaustive checks of the scalar reference against the independent oracle:
//  - every code of every catalog format decodes to the oracle's value and re-encodes
//    to itself in every deterministic rounding mode;
//  - every float16 and every bfloat16 input, converted to every catalog format of 16
//    bits or fewer, in every deterministic rounding mode and every overflow mode (and
//    with DAZ / FTZ, and NVIDIA's NaN option), gives the oracle's code.
#include <bit>
#include <cmath>

#include "oracle/oracle.hpp"
#include "sweep.hpp"

using namespace fp8emu;

namespace {


bool same_value(const oracle::Val& o, double d) {
  if (o.cls == oracle::Val::nan) return std::isnan(d);
  if (o.cls == oracle::Val::inf) return std::isinf(d) && (d < 0) == o.neg;
  return std::isfinite(d) && oracle::Real(d) == o.v && std::signbit(d) == o.neg;
}

}  // namespace

TEST_CASE("catalog agrees with the specifications", "[formats]") {
  std::uint64_t n = 0;
  for (const auto& s : oracle::specs()) {
    INFO(s.name);
    const Format f = parse_format(s.name);
    CHECK(total_bits(f) == s.k);
    CHECK(f.is_signed == s.is_signed);
    CHECK(max_finite(f) == s.stated_max);
    const oracle::Table t = oracle::make_table(s);
    CHECK(max_magnitude_code(f) == t.max_mag);
    CHECK(oracle::Real(max_finite(f)) == t.value(t.max_mag));
    ++n;
  }
  CHECK(n == catalog().size());
}

TEST_CASE("every code decodes exactly and re-encodes to itself", "[exhaustive][decode]") {
  Sweep sweep("decode+reencode all codes (catalog formats up to 19 bits)");
  std::uint64_t expected = 0;
  for (const auto& s : oracle::specs()) {
    if (s.k > 19) continue;
    const Format f = parse_format(s.name);
    const std::uint32_t n = 1u << s.k;
    expected += std::uint64_t(n) * 7;
    std::uint64_t bad = 0;
    std::vector<std::string> msgs;
    for (std::uint32_t c = 0; c < n; ++c) {
      const oracle::Val o = oracle::decode(s, c);
      const double d = decode(f, c);
      if (!same_value(o, d)) {
        ++bad;
        msgs.push_back(s.name + " code " + hex_code(c, s.k) + " decodes to " + shortest(d));
      }
      for (Rounding r : kDeterministic) {
        ConvertOptions opt;
        opt.rounding = r;
        opt.saturation = Saturation::none;  // infinities must survive the round trip
        const std::uint32_t back = encode(f, d, opt);
        const bool ok = o.cls == oracle::Val::nan ? classify(f, back) == ValueClass::nan : back == c;
        if (!ok) {
          ++bad;
          msgs.push_back(mismatch(s.name, r, opt.saturation, "code " + hex_code(c, s.k), c, back, s.k));
        }
      }
    }
    sweep.add(std::uint64_t(n) * 7, bad, msgs);
  }
  sweep.finish(expected);
}

TEST_CASE("every float32 code decodes exactly and re-encodes to itself", "[exhaustive][decode][slow]") {
  Sweep sweep("float32 decode+reencode all 2^32 codes vs hardware float");
  const formats::float32 f;
  std::uint64_t bad = 0;
#pragma omp parallel for reduction(+ : bad) schedule(static)
  for (std::int64_t hi = 0; hi < 65536; ++hi) {
    for (std::uint32_t lo = 0; lo < 65536; ++lo) {
      const std::uint32_t c = std::uint32_t(hi << 16) | lo;
      const float hw = std::bit_cast<float>(c);
      const double d = decode(f, c);
      if (std::isnan(hw)) {
        bad += !std::isnan(d) || std::signbit(d) != std::signbit(hw) ||
               classify(f, encode(f, d, {})) != ValueClass::nan;
      } else {
        bad += d != double(hw) || std::signbit(d) != std::signbit(hw) ||
               encode(f, d, ConvertOptions{.saturation = Saturation::none}) != c;
      }
    }
  }
  sweep.add(std::uint64_t{1} << 32, bad);
  sweep.finish(std::uint64_t{1} << 32);
}

TEST_CASE("all float16 and bfloat16 inputs match the oracle", "[exhaustive][convert]") {
  Sweep sweep("float16+bfloat16 inputs x catalog formats <=16 bits x 6 roundings x 3 saturations, + nvidia NaN");
  Sweep flush("float16+bfloat16 inputs x catalog formats <=16 bits x {rne,rz} x {daz,ftz,daz+ftz}");
  std::vector<oracle::Spec> targets;
  for (const auto& s : oracle::specs())
    if (s.k <= 16) targets.push_back(s);
  const std::uint64_t per_input = 6 * 3 + 1;
#pragma omp parallel for schedule(dynamic)
  for (std::int64_t ti = 0; ti < std::int64_t(targets.size()) * 2; ++ti) {
    const oracle::Spec& s = targets[ti / 2];
    const bool bf16 = ti % 2;
    const Format f = parse_format(s.name);
    const oracle::Table t = oracle::make_table(s);
    std::uint64_t bad = 0, bad_flush = 0;
    std::vector<std::string> msgs, msgs_flush;
    for (std::uint32_t h = 0; h < 65536; ++h) {
      const double x = oracle::half_value(std::uint16_t(h), bf16);
      const oracle::Prepared p = oracle::prepare(t, x);
      auto lib = [&](const ConvertOptions& o) {
        return bf16 ? encode_bfloat16_bits(f, std::uint16_t(h), o) : encode_float16_bits(f, std::uint16_t(h), o);
      };
      const std::string in = std::string(bf16 ? "bf16 " : "f16 ") + hex_code(h, 16);
      for (Rounding r : kDeterministic)
        for (Saturation sat : kSaturations) {
          const std::uint32_t want = oracle::expected(t, p, {r, sat});
          const std::uint32_t got = lib({.rounding = r, .saturation = sat});
          if (want != got) ++bad, msgs.push_back(mismatch(s.name, r, sat, in, want, got, s.k));
        }
      {
        const std::uint32_t want = oracle::expected(t, p, {.nvidia_nan = true});
        const std::uint32_t got = lib({.nan = NanEncoding::nvidia});
        if (want != got) ++bad, msgs.push_back(mismatch(s.name + " nvidia-nan", Rounding::nearest_even, Saturation::finite, in, want, got, s.k));
      }
      // DAZ: a subnormal input of the input type counts as a zero of its sign.
      const bool sub_in = std::isfinite(x) && x != 0 && std::fabs(x) < (bf16 ? 0x1p-126 : 0x1p-14);
      const oracle::Prepared pz = sub_in ? oracle::prepare(t, std::signbit(x) ? -0.0 : 0.0) : p;
      for (Rounding r : {Rounding::nearest_even, Rounding::toward_zero})
        for (int mode = 1; mode <= 3; ++mode) {
          const bool daz = mode & 1, ftz = mode & 2;
          oracle::Mode om{r};
          om.ftz = ftz;
          const std::uint32_t want = oracle::expected(t, daz ? pz : p, om);
          const std::uint32_t got = lib({.rounding = r, .flush_inputs = daz, .flush_outputs = ftz});
          if (want != got)
            ++bad_flush, msgs_flush.push_back(mismatch(s.name + (daz ? " daz" : "") + (ftz ? " ftz" : ""), r, Saturation::finite, in, want, got, s.k));
        }
    }
    sweep.add(65536 * per_input, bad, msgs);
    flush.add(65536 * 6, bad_flush, msgs_flush);
  }
  sweep.finish(targets.size() * 2 * 65536 * per_input);
  flush.finish(targets.size() * 2 * 65536 * 6);
}
