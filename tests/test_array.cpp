// The array path (SIMD kernels, OpenMP chunks, scaled inputs, counter-based random bits)
// against the scalar reference of convert.hpp, bit for bit: every float32 input for
// e4m3fn and e5m2; every float16 / bfloat16 input and the structured float32 set for
// every format the SIMD path admits; scaled and random inputs, every code for
// dequantize, and thread / chunk / SIMD independence of the results. Each test asks
// array_path() which path it exercises and checks ArrayStats::simd_elements that it ran.
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include "fp8emu/array.hpp"
#include "rng.hpp"
#include "simd_targets.hpp"
#include "structured.hpp"
#include "sweep.hpp"

using namespace fp8emu;

namespace {

constexpr Rounding kStochastic[] = {Rounding::stochastic_a, Rounding::stochastic_b,
                                    Rounding::stochastic_c};

// The scalar reference for element `index` of an array call (array.hpp's definition).
template <class Fmt>
std::uint32_t reference(const Fmt& f, double x, bool input_subnormal, const ArrayOptions& o,
                        std::uint64_t index) {
  const std::uint32_t r = is_stochastic(o.convert.rounding)
                              ? random_bits(random_key(o.seed, o.stream), index)
                              : 0;
  return detail::encode_scaled_status(f, x, input_subnormal, o.scale, o.convert, r).code;
}

bool float_subnormal(float x) {
  const std::uint32_t b = std::bit_cast<std::uint32_t>(x);
  return (b & 0x7F800000u) == 0 && (b & 0x7FFFFFu) != 0;
}

std::string mode_name(const ArrayOptions& o) {
  std::string s = std::string(to_string(o.convert.rounding)) + "/" +
                  std::string(to_string(o.convert.saturation));
  if (is_stochastic(o.convert.rounding)) s += "/N=" + std::to_string(o.convert.stochastic_bits);
  if (o.convert.flush_inputs) s += "/daz";
  if (o.convert.flush_outputs) s += "/ftz";
  if (o.convert.nan == NanEncoding::nvidia) s += "/nvnan";
  if (o.scale != 1.0f) s += "/scale=" + shortest(o.scale);
  return s;
}

// True when a call of n elements ran the path `p` says: on the SIMD path the kernels
// produced every element but at most a partial batch (< 64) per chunk; otherwise none.
bool ran(ArrayPath p, const ArrayStats& st, std::size_t n, std::size_t chunk = Execution{}.chunk) {
  if (p == ArrayPath::reference) return st.simd_elements == 0;
  const std::size_t chunks = (n + chunk - 1) / chunk;
  return st.simd_elements <= n && st.simd_elements + 64 * chunks >= n &&
         (n < 64 || st.simd_elements > 0);
}

// Every option set of the 16-bit sweep: 6 deterministic roundings and 3 stochastic ones
// with N in {1, 5, 13, 31}, each with 3 overflow modes; DAZ, FTZ and NVIDIA NaN variants.
std::vector<ArrayOptions> sweep_modes() {
  std::vector<ArrayOptions> v;
  for (Saturation s : kSaturations) {
    for (Rounding r : kDeterministic) v.push_back({.convert = {.rounding = r, .saturation = s}});
    for (Rounding r : kStochastic)
      for (int n : {1, 5, 13, 31})
        v.push_back({.convert = {.rounding = r, .saturation = s, .stochastic_bits = n},
                     .seed = 42, .stream = std::uint64_t(n)});
  }
  for (Rounding r : {Rounding::nearest_even, Rounding::toward_zero, Rounding::stochastic_a}) {
    const int n = is_stochastic(r) ? 8 : 0;
    v.push_back({.convert = {.rounding = r, .flush_inputs = true, .stochastic_bits = n}});
    v.push_back({.convert = {.rounding = r, .flush_outputs = true, .stochastic_bits = n}});
    v.push_back({.convert = {.rounding = r,
                             .saturation = Saturation::none,
                             .nan = NanEncoding::nvidia,
                             .flush_inputs = true,
                             .flush_outputs = true,
                             .stochastic_bits = n}});
  }
  return v;
}

// The targets this CPU runs, best first.
std::vector<std::string_view> simd_targets_here() {
  std::vector<std::string_view> v;
  for (std::string_view t : simd_targets())
    if (simd_target_runs(t)) v.push_back(t);
  return v;
}

}  // namespace

TEST_CASE("simd: the targets, the automatic choice and the override", "[array][simd]") {
  const std::vector<std::string_view> all = simd_targets(), here = simd_targets_here();
#if defined(__x86_64__)
  // Every x86-64 build compiles the three targets, and every x86-64 CPU runs sse2.
  REQUIRE(all == std::vector<std::string_view>{"avx512bw", "avx2", "sse2"});
  CHECK(simd_target_runs("sse2"));
#endif
  CHECK(simd_target_runs("none"));
  if (!std::getenv("FP8EMU_SIMD_TARGET")) {
    std::string compiled;
    for (std::string_view t : all) compiled += (compiled.empty() ? "" : " ") + std::string(t);
    CHECK(simd_summary() == "simd: " + std::string(simd_target()) + " (compiled: " +
                                (compiled.empty() ? "none" : compiled) + ")");
  }
  CHECK_FALSE(simd_target_runs("avx9"));
  // The automatic choice is the best target this CPU runs (FP8EMU_SIMD_TARGET unset).
  if (!std::getenv("FP8EMU_SIMD_TARGET")) CHECK(simd_target() == (here.empty() ? "none" : here.front()));
  CHECK_THROWS_WITH(set_simd_target("avx9"),
                    Catch::Contains("SIMD target avx9: not a target of this build"));
  CHECK_THROWS_WITH(simd_calls("avx9"), Catch::Contains("not a target"));
  for (std::string_view t : all) {
    if (simd_target_runs(t)) continue;
    CHECK_THROWS_WITH(set_simd_target(t), Catch::Contains(
                                              "SIMD target " + std::string(t) + ": this CPU cannot run it"));
    WARN("SIMD target " << t << " is compiled in but skipped: this CPU cannot run it");
  }
  const std::string before(simd_target());
  CHECK_THROWS(set_simd_target("avx9"));
  CHECK(simd_target() == before);  // a refused target leaves the choice as it was
  // "none": every call takes the scalar reference, with the same results.
  const Format f = formats::e4m3fn{};
  std::vector<float> x(1000);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(i) * 0.37f - 150.0f;
  std::vector<std::uint8_t> y0(x.size()), y1(x.size());
  {
    test::UseSimdTarget use("none");
    CHECK(simd_target() == "none");
    CHECK(std::string_view(simd_arch_name()) == "none");
    CHECK(array_path(ArrayCall::quantize_float32, f, {}) == ArrayPath::reference);
    CHECK(array_path(ArrayCall::dequantize_float32, f, {}) == ArrayPath::reference);
    CHECK(quantize(f, x, y0).simd_elements == 0);
  }
  CHECK(simd_target() == before);
  // Each target runs its own kernels, with the same codes.
  const int ran = test::for_each_simd_target([&](std::string_view t) {
    CHECK(std::string_view(simd_arch_name()) == (t == "avx2" ? "fma3+avx2" : t));
    CHECK(quantize(f, x, y1).simd_elements > 0);
    CHECK(y1 == y0);
  });
  CHECK(ran == int(here.size()));
}

// Run by ctest with FP8EMU_SIMD_TARGET set (tests/CMakeLists.txt).
TEST_CASE("simd: FP8EMU_SIMD_TARGET selects or is refused", "[.][simd-env]") {
  const char* env = std::getenv("FP8EMU_SIMD_TARGET");
  REQUIRE(env);
  const std::string_view want(env);
  const std::vector<std::string_view> all = simd_targets();
  const bool compiled = want == "none" || std::find(all.begin(), all.end(), want) != all.end();
  if (compiled && simd_target_runs(want)) {
    CHECK(simd_target() == want);
  } else {
    CHECK_THROWS_WITH(simd_target(), Catch::Contains(
                                         "FP8EMU_SIMD_TARGET=" + std::string(want) + ": "));
    const std::vector<float> x(64, 1.0f);
    std::vector<std::uint8_t> y(64);
    CHECK_THROWS_WITH(quantize(formats::e4m3fn{}, x, y), Catch::Contains("FP8EMU_SIMD_TARGET="));
  }
}

// One sweep: quantize all 2^32 float32 bit patterns through the array path (the random
// index of each input is its bit pattern) and compare with convert.hpp's encode.
template <class Fmt>
void sweep_all_float32(const char* name, Fmt f, const ArrayOptions& o) {
  Sweep sweep(std::string("array float32 all 2^32 ") + name + " " + mode_name(o));
  const std::uint64_t chunk = std::uint64_t{1} << 20;
  const std::uint64_t n = adjusted((std::uint64_t{1} << 32) / chunk);
  const RandomKey key = random_key(o.seed, o.stream);
  const bool sr = is_stochastic(o.convert.rounding);
  // These sweeps run on the automatic choice, the best target this CPU runs; the
  // structured sweep below runs on every target.
  REQUIRE(simd_target() != "none");
  REQUIRE(simd_target() == simd_targets_here().front());
  REQUIRE(array_path(ArrayCall::quantize_float32, f, o) == ArrayPath::simd);
  std::uint64_t short_runs = 0;
#pragma omp parallel reduction(+ : short_runs)
  {
    std::vector<float> x(chunk);
    std::vector<std::uint8_t> y(chunk);
#pragma omp for schedule(dynamic)
    for (std::int64_t c = 0; c < std::int64_t(n); ++c) {
      const std::uint64_t base = std::uint64_t(c) * chunk;
      for (std::uint64_t i = 0; i < chunk; ++i) x[i] = std::bit_cast<float>(std::uint32_t(base + i));
      ArrayOptions oc = o;
      oc.first_index = base;
      short_runs += quantize(Format(f), x, y, oc).simd_elements != chunk;
      std::uint64_t bad = 0;
      std::vector<std::string> msgs;
      for (std::uint64_t i = 0; i < chunk; ++i) {
        const std::uint32_t r = sr ? random_bits(key, base + i) : 0;
        const std::uint32_t want = encode(f, x[i], o.convert, r);
        if (want != y[i] && ++bad <= 3)
          msgs.push_back(mismatch(name, o.convert.rounding, o.convert.saturation,
                                  hex_code(std::uint32_t(base + i), 32), want, y[i], 8));
      }
      sweep.add(chunk, bad, msgs);
    }
  }
  sweep.finish(n * chunk);
  CHECK(short_runs == 0);  // the kernels produced every element
}

TEST_CASE("array: every float32 input for e4m3fn and e5m2 against the scalar reference",
          "[array][exhaustive][best-target]") {
  if (!test::simd_compiled_in()) return;
  for (Rounding r : {Rounding::nearest_even, Rounding::toward_zero, Rounding::stochastic_a}) {
    for (Saturation s : kSaturations) {
      const ArrayOptions o{
          .convert = {.rounding = r, .saturation = s, .stochastic_bits = is_stochastic(r) ? 8 : 0},
          .seed = 2026,
          .stream = 7,
          .exec = {.threads = 1}};
      sweep_all_float32("e4m3fn", formats::e4m3fn{}, o);
      sweep_all_float32("e5m2", formats::e5m2{}, o);
    }
  }
}

// One format and option set of the sweep below: every float16 and every bfloat16 input
// and the structured float32 set `x` through quantize, and `x` through fake_quantize
// where that takes the SIMD path, against the scalar reference. Returns the mismatches;
// adds to `short_runs` every call in which the kernels did not produce every element.
template <class C>
std::uint64_t sweep_one(const Format& f, const ArrayOptions& o, const std::vector<std::uint16_t>& h,
                        const std::vector<float>& x, std::vector<std::string>& msgs,
                        std::uint64_t& short_runs) {
  const int bits = total_bits(f);
  std::uint64_t bad = 0;
  auto note = [&](const char* in, std::uint32_t input, int in_bits, std::uint32_t want,
                  std::uint32_t got, int out_bits) {
    if (++bad <= 3)
      msgs.push_back(format_name(f) + " " + mode_name(o) + " " + in + " " +
                     hex_code(input, in_bits) + ": expected " + hex_code(want, out_bits) +
                     ", got " + hex_code(got, out_bits));
  };
  std::vector<C> y16(h.size()), yb(h.size()), y32(x.size());
  short_runs += quantize_float16_bits(f, h, y16, o).simd_elements != h.size();
  short_runs += quantize_bfloat16_bits(f, h, yb, o).simd_elements != h.size();
  short_runs += quantize(f, x, y32, o).simd_elements != x.size();
  for (std::uint32_t i = 0; i < h.size(); ++i) {
    const bool sub16 = (i & 0x7C00) == 0 && (i & 0x3FF) != 0;
    const bool subb = (i & 0x7F80) == 0 && (i & 0x7F) != 0;
    const std::uint32_t r16 = reference(f, decode(formats::float16{}, i), sub16, o, i);
    const std::uint32_t rb = reference(f, double(std::bit_cast<float>(i << 16)), subb, o, i);
    if (r16 != y16[i]) note("float16", i, 16, r16, y16[i], bits);
    if (rb != yb[i]) note("bfloat16", i, 16, rb, yb[i], bits);
  }
  const bool fake = array_path(ArrayCall::fake_quantize, f, o) == ArrayPath::simd;
  std::vector<float> yf(fake ? x.size() : 0);
  if (fake) short_runs += fake_quantize(f, x, yf, o).simd_elements != x.size();
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::uint32_t xb = std::bit_cast<std::uint32_t>(x[i]);
    const std::uint32_t want = reference(f, double(x[i]), float_subnormal(x[i]), o, i);
    if (want != y32[i]) note("float32", xb, 32, want, y32[i], bits);
    if (!fake) continue;
    const float v = decode_float(f, want) / o.scale;
    if (std::bit_cast<std::uint32_t>(v) != std::bit_cast<std::uint32_t>(yf[i]) &&
        !(std::isnan(v) && std::isnan(yf[i])))
      note("fake_quantize float32", xb, 32, std::bit_cast<std::uint32_t>(v),
           std::bit_cast<std::uint32_t>(yf[i]), 32);
  }
  return bad;
}

TEST_CASE("array: every format the SIMD path admits, in every mode, against the scalar reference",
          "[array][exhaustive]") {
  test::for_each_simd_target([&](std::string_view simd) {
    // The formats: every catalog format whose float32 quantize takes the SIMD path. Every
    // one of them must take it for every unscaled option set; scaled option sets run where
    // the kernels admit them, which every format of at most 8 bits must.
    std::vector<Format> fmts;
    for (const CatalogEntry& e : catalog())
      if (array_path(ArrayCall::quantize_float32, e.format, {}) == ArrayPath::simd)
        fmts.push_back(e.format);
    // 10 named 8-bit formats (all but e8m0fnu) + 26 binary8p{1..7}{s,u}{e,f} (all but
    // binary8p1ue and binary8p1uf, whose emin -127 is below float32's) + float16,
    // bfloat16, tf32, float32.
    REQUIRE(fmts.size() == 40);
    std::vector<ArrayOptions> modes = sweep_modes();
    const std::size_t unscaled = modes.size();
    // Scaled calls: a power of two, and scales whose products need the exact path.
    for (float scale : {0.125f, 3.0f, 0.1f, 1e-30f})
      for (Rounding r : {Rounding::nearest_even, Rounding::toward_negative, Rounding::stochastic_b})
        modes.push_back({.convert = {.rounding = r,
                                     .saturation = Saturation::propagate,
                                     .flush_inputs = scale == 3.0f,
                                     .stochastic_bits = is_stochastic(r) ? 6 : 0},
                         .scale = scale,
                         .seed = 5});
    std::vector<std::uint16_t> h(65536);
    for (std::uint32_t i = 0; i < 65536; ++i) h[i] = std::uint16_t(i);
    // The structured float32 set of each format (test_structured.cpp), padded with zeros to
    // a multiple of 64 elements so that no chunk leaves a partial SIMD batch.
    std::vector<std::vector<float>> xs;
    std::uint64_t structured_total = 0;
    for (const Format& f : fmts) {
      std::vector<float> x;
      for (double v : structured::structured_inputs(oracle::spec(format_name(f)), structured::kFloat))
        x.push_back(float(v));
      x.resize((x.size() + 63) / 64 * 64, 0.0f);
      structured_total += x.size();
      xs.push_back(std::move(x));
    }
    std::vector<std::pair<std::size_t, std::size_t>> jobs;  // (format, mode) on the SIMD path
    std::uint64_t unscaled_reference = 0, narrow_scaled_reference = 0, expected = 0;
    for (std::size_t fi = 0; fi < fmts.size(); ++fi)
      for (std::size_t mi = 0; mi < modes.size(); ++mi) {
        const bool simd =
            array_path(ArrayCall::quantize_float32, fmts[fi], modes[mi]) == ArrayPath::simd;
        if (!simd) {
          unscaled_reference += mi < unscaled;
          narrow_scaled_reference += total_bits(fmts[fi]) <= 8;
          continue;
        }
        jobs.emplace_back(fi, mi);
        const bool fake =
            array_path(ArrayCall::fake_quantize, fmts[fi], modes[mi]) == ArrayPath::simd;
        expected += 2 * 65536 + xs[fi].size() * (fake ? 2 : 1);
      }
    CHECK(unscaled_reference == 0);
    CHECK(narrow_scaled_reference == 0);
    Sweep sweep(test::simd_label(simd) + "array SIMD path: all float16+bfloat16 inputs and the structured float32 set (" +
                std::to_string(structured_total) + " values) x " + std::to_string(fmts.size()) +
                " formats x " + std::to_string(modes.size()) + " option sets (" +
                std::to_string(jobs.size()) + " pairs on the SIMD path), quantize + fake_quantize");
    std::uint64_t short_runs = 0;
  #pragma omp parallel for schedule(dynamic) reduction(+ : short_runs)
    for (std::int64_t job = 0; job < std::int64_t(jobs.size()); ++job) {
      const auto [fi, mi] = jobs[std::size_t(job)];
      const Format& f = fmts[fi];
      ArrayOptions o = modes[mi];
      o.exec.threads = 1;
      std::vector<std::string> msgs;
      std::uint64_t runs = 0, bad;
      if (total_bits(f) <= 8)
        bad = sweep_one<std::uint8_t>(f, o, h, xs[fi], msgs, runs);
      else if (total_bits(f) <= 16)
        bad = sweep_one<std::uint16_t>(f, o, h, xs[fi], msgs, runs);
      else
        bad = sweep_one<std::uint32_t>(f, o, h, xs[fi], msgs, runs);
      short_runs += runs;
      const bool fake = array_path(ArrayCall::fake_quantize, f, o) == ArrayPath::simd;
      sweep.add(2 * 65536 + xs[fi].size() * (fake ? 2 : 1), bad, msgs);
    }
    sweep.finish(expected);
    CHECK(short_runs == 0);  // the kernels produced every element of every call
  });
}

TEST_CASE("array: float32 and tf32 targets keep the values they can hold", "[array]") {
  test::for_each_simd_target([&](std::string_view) {
    // A float32 target discards no bits of a float32 input: nearest-even must add no bias.
    std::vector<float> x(64);
    for (std::size_t i = 0; i < x.size(); ++i)
      x[i] = i % 4 == 0 ? 1.0f : i % 4 == 1 ? 0.0f : i % 4 == 2 ? -0x1.fffffep127f : 0x1p-149f;
    for (Rounding r : kDeterministic) {
      const ArrayOptions o{.convert = {.rounding = r, .saturation = Saturation::none}};
      std::vector<std::uint32_t> y(x.size());
      REQUIRE(quantize(formats::float32{}, x, y, o).simd_elements == x.size());
      for (std::size_t i = 0; i < x.size(); ++i) {
        INFO(to_string(r) << " element " << i);
        CHECK(y[i] == std::bit_cast<std::uint32_t>(x[i]));
      }
      // tf32 holds 1, 0 and its own largest value; float32's smallest subnormal is below it.
      const std::vector<float> t = {1.0f, 0.0f, -0x1.ffcp127f, 0x1p-136f};
      std::vector<float> xt(64);
      for (std::size_t i = 0; i < xt.size(); ++i) xt[i] = t[i % 4];
      std::vector<std::uint32_t> yt(xt.size());
      REQUIRE(quantize(formats::tf32{}, xt, yt, o).simd_elements == xt.size());
      for (std::size_t i = 0; i < xt.size(); ++i)
        CHECK(decode(formats::tf32{}, yt[i]) == double(xt[i]));
    }
  });
}

TEST_CASE("array: random and structured float32 inputs, scaled, wide formats", "[array]") {
  test::for_each_simd_target([&](std::string_view simd) {
    // Random bit patterns plus values near every power of two, under scales that take the
    // SIMD path and scales that do not, for narrow and 16-bit formats.
    SplitMix64 rng(11);
    std::vector<float> x;
    for (int i = 0; i < 200000; ++i) x.push_back(std::bit_cast<float>(std::uint32_t(rng.next())));
    for (int e = -149; e <= 127; ++e)
      for (float t : {1.0f, 1.5f, 1.0625f, 1.99999988f, 1.00000012f})
        for (float s : {1.0f, -1.0f}) x.push_back(s * std::ldexp(t, e));
    const char* names[] = {"e4m3fn", "e5m2", "e2m1fn", "e3m2fn", "e4m3fnuz", "binary8p3ue",
                           "float16", "bfloat16"};
    const float scales[] = {1.0f, 0x1p-7f, 0x1p20f, 3.0f, 0.1f, 1e30f, 1e-30f, 448.0f / 3.1f};
    const ArrayOptions modes[] = {
        {.convert = {.rounding = Rounding::nearest_even}},
        {.convert = {.rounding = Rounding::toward_zero, .saturation = Saturation::none}},
        {.convert = {.rounding = Rounding::toward_positive, .flush_inputs = true}},
        {.convert = {.rounding = Rounding::nearest_away, .flush_outputs = true}},
        {.convert = {.rounding = Rounding::stochastic_a,
                     .saturation = Saturation::propagate,
                     .stochastic_bits = 8},
         .seed = 3},
        {.convert = {.rounding = Rounding::stochastic_c, .stochastic_bits = 4}, .seed = 4},
        {.convert = {.rounding = Rounding::stochastic_b, .stochastic_bits = 32}, .seed = 4},
    };
    Sweep sweep(test::simd_label(simd) + "array float32 random+structured x 8 formats x 8 scales x 7 option sets");
    std::uint64_t expected = 0, simd_calls = 0, wrong_path = 0;
    for (const char* name : names) {
      const Format f = parse_format(name);
      for (float scale : scales) {
        for (ArrayOptions o : modes) {
          o.scale = scale;
          std::vector<std::uint16_t> y(x.size());
          const ArrayPath path = array_path(ArrayCall::quantize_float32, f, o);
          simd_calls += path == ArrayPath::simd;
          wrong_path += !ran(path, quantize(f, x, y, o), x.size());
          std::uint64_t bad = 0;
          std::vector<std::string> msgs;
          for (std::size_t i = 0; i < x.size(); ++i) {
            const std::uint32_t want = reference(f, double(x[i]), float_subnormal(x[i]), o, i);
            if (want != y[i] && ++bad <= 3)
              msgs.push_back(std::string(name) + " " + mode_name(o) + " input " +
                             hex_code(std::bit_cast<std::uint32_t>(x[i]), 32) + ": expected " +
                             hex_code(want, 16) + ", got " + hex_code(y[i], 16));
          }
          sweep.add(x.size(), bad, msgs);
          expected += x.size();
        }
      }
    }
    sweep.finish(expected);
    CHECK(wrong_path == 0);
    // Of the 448 calls the kernels cover all but the 64 with N = 32 stochastic bits and the
    // 42 scaled calls of bfloat16 (its emax 127 leaves no room for the rounded product).
    CHECK(simd_calls == 448 - 64 - 42);
  });
}

TEST_CASE("array: quantize_blocks gives each block the codes of its own scale", "[array]") {
  test::for_each_simd_target([&](std::string_view simd) {
    // A 37 x 70 matrix of random bit patterns and structured values; block shapes that
    // divide it and that leave edge blocks; scales from the list below (1 among them) per
    // block; every element against the scalar reference with its block's scale and index.
    SplitMix64 rng(21);
    const std::int64_t R = 37, C = 70;
    std::vector<float> x(std::size_t(R * C));
    for (std::size_t i = 0; i < x.size(); ++i)
      x[i] = i % 3 ? std::bit_cast<float>(std::uint32_t(rng.next()))
                   : std::ldexp(1.0f + float(rng.next() % 256) / 256.0f, int(rng.next() % 60) - 30);
    const float scales[] = {1.0f, 0x1p-7f, 0x1p20f, 3.0f, 0.1f, 448.0f / 3.1f, 1e-30f};
    const std::pair<std::int64_t, std::int64_t> shapes[] = {{1, 32}, {3, 7}, {0, 16}, {5, 0}, {1, 70}, {37, 70}};
    const ArrayOptions modes[] = {
        {.convert = {.rounding = Rounding::nearest_even}},
        {.convert = {.rounding = Rounding::toward_zero, .saturation = Saturation::none, .flush_inputs = true}},
        {.convert = {.rounding = Rounding::stochastic_a, .stochastic_bits = 8}, .seed = 3, .first_index = 1000},
    };
    Sweep sweep(test::simd_label(simd) + "array quantize_blocks 37x70 x 4 formats x 6 block shapes x 3 option sets");
    std::uint64_t expected = 0, simd_runs = 0, wrong_path = 0;
    for (const char* name : {"e4m3fn", "e5m2", "e2m1fn", "bfloat16"}) {
      const Format f = parse_format(name);
      for (const auto& [br, bc] : shapes)
        for (ArrayOptions o : modes) {
          const std::int64_t gbr = br ? br : R, gbc = bc ? bc : C, gc = (C + gbc - 1) / gbc;
          std::vector<float> sc(std::size_t((R + gbr - 1) / gbr * gc));
          for (std::size_t i = 0; i < sc.size(); ++i) sc[i] = scales[(i * 5 + 1) % std::size(scales)];
          std::vector<std::uint16_t> y(x.size());
          o.exec.threads = 2;
          o.exec.parallel_threshold = 1;
          o.exec.chunk = 300;
          const ArrayStats st = quantize_blocks(f, x, BlockScales{R, C, br, bc, sc}, y, o);
          // The kernels produce all of each block's row but a partial batch (< 64 elements).
          std::uint64_t least = 0;
          for (std::int64_t c0 = 0; c0 < C; c0 += gbc)
            least += std::uint64_t(R) *
                     std::uint64_t(std::max<std::int64_t>(0, std::min(C - c0, gbc) - 63));
          if (array_path(ArrayCall::quantize_blocks, f, o) == ArrayPath::simd) {
            ++simd_runs;
            wrong_path += st.simd_elements < least || st.simd_elements > x.size();
          } else {
            wrong_path += st.simd_elements != 0;
          }
          std::uint64_t bad = 0;
          std::vector<std::string> msgs;
          for (std::int64_t r = 0; r < R; ++r)
            for (std::int64_t c = 0; c < C; ++c) {
              const std::size_t i = std::size_t(r * C + c);
              ArrayOptions ob = o;
              ob.scale = sc[std::size_t(r / gbr * gc + c / gbc)];
              const std::uint32_t want = reference(f, double(x[i]), float_subnormal(x[i]), ob, o.first_index + i);
              if (want != y[i] && ++bad <= 3)
                msgs.push_back(std::string(name) + " " + mode_name(o) + " block " + std::to_string(br) + "x" +
                               std::to_string(bc) + " element " + std::to_string(i) + ": expected " +
                               hex_code(want, 16) + ", got " + hex_code(y[i], 16));
            }
          sweep.add(x.size(), bad, msgs);
          expected += x.size();
        }
    }
    sweep.finish(expected);
    CHECK(wrong_path == 0);
    CHECK(simd_runs == 3 * 6 * 3);  // all but bfloat16, whose emax 127 rules out scaled kernels
    std::vector<std::uint8_t> y8(x.size());
    const std::vector<float> one(1, 1.0f), zero(1, 0.0f);
    CHECK_THROWS_WITH(quantize_blocks(parse_format("e4m3fn"), x, BlockScales{R, C, 0, 0, {}}, y8),
                      Catch::Contains("1 blocks need as many scales, got 0"));
    CHECK_THROWS_WITH(quantize_blocks(parse_format("e4m3fn"), x, BlockScales{R, C + 1, 0, 0, one}, y8),
                      Catch::Contains("does not match"));
    CHECK_THROWS_WITH(quantize_blocks(parse_format("e4m3fn"), x, BlockScales{R, C, 0, 0, zero}, y8),
                      Catch::Contains("finite and > 0"));
  });
}

TEST_CASE("array: float64 inputs and the exact scaled product", "[array]") {
  SplitMix64 rng(12);
  std::vector<double> x;
  for (int i = 0; i < 100000; ++i) x.push_back(std::bit_cast<double>(rng.next()) );
  for (int i = 0; i < 100000; ++i) x.push_back(std::ldexp(double(rng.next() >> 11), -60 - int(rng.next() % 20)));
  Sweep sweep("array float64 random x 4 formats x 4 scales x 3 option sets");
  std::uint64_t expected = 0;
  for (const char* name : {"e4m3fn", "e5m2", "bfloat16", "e8m0fnu"}) {
    const Format f = parse_format(name);
    for (float scale : {1.0f, 0.25f, 3.0f, 0.1f}) {
      for (Rounding r : {Rounding::nearest_even, Rounding::toward_negative, Rounding::stochastic_c}) {
        const ArrayOptions o{.convert = {.rounding = r, .stochastic_bits = 20}, .scale = scale, .seed = 9};
        std::vector<std::uint16_t> y(x.size());
        // float64 inputs always take the exact reference loop.
        CHECK(array_path(ArrayCall::quantize_float64, f, o) == ArrayPath::reference);
        CHECK(quantize(f, x, y, o).simd_elements == 0);
        std::uint64_t bad = 0;
        std::vector<std::string> msgs;
        for (std::size_t i = 0; i < x.size(); ++i) {
          const std::uint64_t b = std::bit_cast<std::uint64_t>(x[i]);
          const bool sub = ((b >> 52) & 0x7FF) == 0 && (b << 12) != 0;
          const std::uint32_t want = reference(f, x[i], sub, o, i);
          if (want != y[i] && ++bad <= 3)
            msgs.push_back(std::string(name) + " " + mode_name(o) + " input " + shortest(x[i]) +
                           ": expected " + hex_code(want, 16) + ", got " + hex_code(y[i], 16));
        }
        sweep.add(x.size(), bad, msgs);
        expected += x.size();
      }
    }
  }
  sweep.finish(expected);
  // The exact product against a long-hand check: x * scale in 128-bit integers is what
  // encode_scaled rounds; 0x1.000001p0 * 0x1.fffffep0 is not a float, nor a double tie.
  const double a = 0x1.0000000000001p0;
  const float s = 0x1.800002p0f;
  // a * s = 1.5 + tiny: nearest-even to e4m3fn is 1.5, toward-positive is 1.625.
  CHECK(encode_scaled(formats::e4m3fn{}, a, s) == 0x3C);
  CHECK(encode_scaled(formats::e4m3fn{}, a, s, {.rounding = Rounding::toward_positive}) == 0x3D);
}

TEST_CASE("array: results do not depend on threads, chunks, SIMD or splitting", "[array]") {
  test::for_each_simd_target([&](std::string_view) {
    SplitMix64 rng(13);
    const std::size_t n = 300007;
    std::vector<float> x(n);
    for (auto& v : x) v = float(std::ldexp(double(rng.next() >> 11) - 0x1p52, -48));
    for (Rounding r : {Rounding::stochastic_a, Rounding::stochastic_b, Rounding::stochastic_c,
                       Rounding::nearest_even}) {
      for (float scale : {1.0f, 3.0f}) {
        ArrayOptions o{.convert = {.rounding = r, .stochastic_bits = 11}, .scale = scale,
                       .seed = 77, .stream = 3};
        o.exec = {.threads = 1, .simd = false};
        std::vector<std::uint8_t> ref(n);
        const ArrayStats st_ref = quantize(formats::e4m3fn{}, x, ref, o);
        const double amax_ref = st_ref.amax;
        CHECK(st_ref.simd_elements == 0);
        int runs = 0;
        for (int threads : {1, 2, 3, 8}) {
          for (std::size_t chunk : {std::size_t{1} << 14, std::size_t{777}, std::size_t{4096}, n}) {
            for (bool simd : {true, false}) {
              o.exec = {.threads = threads, .parallel_threshold = 1, .chunk = chunk, .simd = simd};
              std::vector<std::uint8_t> y(n);
              const ArrayStats st = quantize(formats::e4m3fn{}, x, y, o);
              CHECK(y == ref);
              CHECK(st.amax == amax_ref);
              CHECK(ran(simd ? ArrayPath::simd : ArrayPath::reference, st, n, chunk));
              ++runs;
            }
          }
        }
        CHECK(runs == 32);
        // Two calls over the halves, with first_index, equal one call over the whole.
        o.exec = {};
        std::vector<std::uint8_t> y(n);
        const std::size_t half = 123457;
        quantize(formats::e4m3fn{}, std::span(x).first(half), std::span(y).first(half), o);
        o.first_index = half;
        quantize(formats::e4m3fn{}, std::span(x).subspan(half), std::span(y).subspan(half), o);
        CHECK(y == ref);
      }
    }
  });
}

TEST_CASE("array: random bits across a 2^32 index boundary", "[array][random]") {
  test::for_each_simd_target([&](std::string_view) {
    // A batch whose lanes straddle index 2^32: the SIMD lanes and the scalar function agree.
    std::vector<float> x(256, 1.0625f);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = 1.0f + float(i) * 0x1p-12f;
    for (std::uint64_t first : {(std::uint64_t{1} << 32) - 37, (std::uint64_t{5} << 32) - 1}) {
      ArrayOptions o{.convert = {.rounding = Rounding::stochastic_a, .stochastic_bits = 16},
                     .seed = 1, .first_index = first};
      std::vector<std::uint8_t> y(x.size()), ref(x.size());
      REQUIRE(quantize(formats::e4m3fn{}, x, y, o).simd_elements == x.size());
      o.exec.simd = false;
      quantize(formats::e4m3fn{}, x, ref, o);
      CHECK(y == ref);
      for (std::size_t i = 0; i < x.size(); ++i)
        CHECK(y[i] == reference(formats::e4m3fn{}, double(x[i]), false, o, first + i));
    }
  });
}

TEST_CASE("random bits: uniform low bits, distinct streams", "[random]") {
  // Chi-square of the low 8 bits over 2^20 consecutive indices, 255 degrees of freedom:
  // P(chi2 > 350) ~ 1e-4 for a uniform source (fixed seeds, so the test is deterministic).
  for (std::uint64_t seed : {0ull, 1ull, 0xDEADBEEFull}) {
    for (std::uint64_t stream : {0ull, 1ull, 2ull}) {
      const RandomKey k = random_key(seed, stream);
      std::vector<double> count(256, 0.0);
      const int n = 1 << 20;
      for (int i = 0; i < n; ++i) count[random_bits(k, std::uint64_t(i)) & 0xFF] += 1;
      double chi2 = 0;
      for (double c : count) chi2 += (c - n / 256.0) * (c - n / 256.0) / (n / 256.0);
      CHECK(chi2 < 350);
      // Each of the 32 bits is set in about half the cases (|z| < 5).
      for (int bit = 0; bit < 32; bit += 7) {
        int ones = 0;
        for (int i = 0; i < 1 << 16; ++i) ones += (random_bits(k, std::uint64_t(i)) >> bit) & 1;
        CHECK(std::abs(ones - 32768) < 5 * 128);
      }
    }
  }
  // Different streams and seeds give different sequences.
  CHECK(random_bits(random_key(1, 0), 5) != random_bits(random_key(1, 1), 5));
  CHECK(random_bits(random_key(1, 0), 5) != random_bits(random_key(2, 0), 5));
}

TEST_CASE("random normals: moments, range and the two draws they use", "[random]") {
  // 2^20 samples of one stream: mean, variance and the fourth moment of N(0, 1) within about
  // 5 standard errors (fixed seeds, so the test is deterministic), and |z| below the bound
  // sqrt(-2 ln 2^-33) that the smallest u1 gives.
  for (std::uint64_t seed : {1ull, 7ull}) {
    const RandomKey k = random_key(seed, 3);
    const int n = 1 << 20;
    double s1 = 0, s2 = 0, s4 = 0, largest = 0;
    for (int i = 0; i < n; ++i) {
      const double z = random_normal(k, std::uint64_t(i));
      s1 += z, s2 += z * z, s4 += z * z * z * z;
      largest = std::max(largest, std::fabs(z));
    }
    CHECK(std::fabs(s1 / n) < 5 / std::sqrt(double(n)));
    CHECK(std::fabs(s2 / n - 1) < 5 * std::sqrt(2.0 / n));
    CHECK(std::fabs(s4 / n - 3) < 5 * std::sqrt(96.0 / n));
    CHECK(largest < std::sqrt(-2 * std::log(0x1p-33)));
    CHECK(largest > 4);  // 2^20 samples reach past 4 sigma (expected about 66 of them)
  }
  // Element i uses the draws 2i and 2i + 1, as documented: restated from the definition.
  const RandomKey k = random_key(5, 9);
  for (std::uint64_t i : {0ull, 1ull, 12345ull, (1ull << 32) + 3}) {
    const double u1 = (double(random_bits(k, 2 * i)) + 0.5) / 4294967296.0;
    const double u2 = double(random_bits(k, 2 * i + 1)) / 4294967296.0;
    CHECK(random_normal(k, i) == std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2));
  }
}

TEST_CASE("array: stochastic rounding is unbiased", "[array][random]") {
  // 2^20 copies of x = 1 + 5/32 rounded to e4m3fn (neighbours 1.125, 1.25) with 8-bit
  // SR-A: P(up) = 0.25, so the mean is 1.15625 exactly in expectation; the standard error
  // is 0.125 * sqrt(0.25 * 0.75 / 2^20) = 5.3e-5; the bound 5e-4 is 9 standard errors.
  const std::size_t n = 1 << 20;
  std::vector<float> x(n, 1.15625f), y(n);
  ArrayOptions o{.convert = {.rounding = Rounding::stochastic_a, .stochastic_bits = 8}, .seed = 8};
  REQUIRE(fake_quantize(formats::e4m3fn{}, x, y, o).simd_elements == n);
  double sum = 0;
  for (float v : y) {
    REQUIRE((v == 1.125f || v == 1.25f));
    sum += v;
  }
  CHECK(std::abs(sum / double(n) - 1.15625) < 5e-4);
}

TEST_CASE("array: dequantize every code against decode", "[array][exhaustive]") {
  test::for_each_simd_target([&](std::string_view simd) {
    Sweep sweep(test::simd_label(simd) + "array dequantize every code x catalog formats <= 16 bits x 3 scales x float/double");
    std::uint64_t expected = 0;
    for (const CatalogEntry& e : catalog()) {
      const Format& f = e.format;
      if (total_bits(f) > 16) continue;
      const std::uint32_t count = std::uint32_t{1} << total_bits(f);
      std::vector<std::uint16_t> c16(count);
      std::vector<std::uint32_t> c32(count);
      for (std::uint32_t c = 0; c < count; ++c) c16[c] = std::uint16_t(c), c32[c] = c;
      for (float scale : {1.0f, 3.0f, 0x1p-5f}) {
        const ArrayOptions o{.scale = scale};
        CHECK(array_path(ArrayCall::dequantize_float32, f, o) == ArrayPath::simd);
        std::vector<float> yf(count), yf32(count);
        std::vector<double> yd(count);
        dequantize(f, c16, yf, o);
        dequantize(f, c32, yf32, o);
        dequantize(f, c16, yd, o);
        std::uint64_t bad = 0;
        std::vector<std::string> msgs;
        for (std::uint32_t c = 0; c < count; ++c) {
          const float wf = decode_float(f, c) / scale;
          const double wd = decode(f, c) / double(scale);
          const auto same = [](auto a, auto b) {
            return std::isnan(a) ? bool(std::isnan(b)) : std::bit_cast<decltype(b)>(a) == b;
          };
          if ((!same(wf, yf[c]) || !same(wf, yf32[c]) || !same(wd, yd[c])) && ++bad <= 3)
            msgs.push_back(std::string(e.name) + " code " + hex_code(c, total_bits(f)) +
                           " scale " + shortest(scale) + ": expected " + shortest(wd) + ", got " +
                           shortest(yd[c]) + " / " + shortest(yf[c]));
        }
        if (total_bits(f) <= 8) {
          std::vector<std::uint8_t> c8(count);
          for (std::uint32_t c = 0; c < count; ++c) c8[c] = std::uint8_t(c);
          std::vector<float> y8(count);
          dequantize(f, c8, y8, o);
          for (std::uint32_t c = 0; c < count; ++c)
            if (!(std::isnan(y8[c]) ? std::isnan(yf[c]) : y8[c] == yf[c]) && ++bad <= 3)
              msgs.push_back(std::string(e.name) + " uint8 code " + hex_code(c, 8));
        }
        sweep.add(count, bad, msgs);
        expected += count;
      }
    }
    sweep.finish(expected);
  });
}

// The formats of the decoder tests: every catalog format of at most 16 bits, and others
// (unsigned, 16 bits, other biases and policies, no subnormals, no zero), with the decoder
// each takes. Three have normal binades of 2^7 or more codes below float32's normal range
// (8 exponent bits with bias 128 or 140), where moving the fields into float32 position
// does not give the value: they take the table.
struct DecoderCase {
  std::string name;
  Format f;
  Decoder decoder;
};

std::vector<DecoderCase> decoder_cases() {
  std::vector<DecoderCase> v;
  for (const CatalogEntry& e : catalog())
    if (total_bits(e.format) <= 16)
      v.push_back({std::string(e.name), e.format, Decoder::arithmetic});
  for (const char* s : {"e3m4:policy=fn", "e5m2:bias=11", "e6m9", "e5m10:policy=fnuz",
                        "e2m5:policy=finite", "e7m0:policy=fn", "e4m0:policy=e8m0:unsigned",
                        "binary16p11se", "binary12p5se", "binary8p3ue"})
    v.push_back({s, parse_format(s), Decoder::arithmetic});
  for (const char* s : {"e8m2:bias=140", "e8m7:policy=fnuz", "binary16p9uf"})
    v.push_back({s, parse_format(s), Decoder::table});
  return v;
}

// Returns the bits of value_table(f)[c] / scale (no division where scale is 1), the
// result the array path defines for dequantize to float.
std::uint32_t table_bits(const std::vector<float>& table, std::uint32_t c, float scale) {
  return std::bit_cast<std::uint32_t>(scale == 1.0f ? table[c] : table[c] / scale);
}

TEST_CASE("array: the SIMD decoder gives the value table's bits for every code",
          "[array][exhaustive][decoder]") {
  const std::vector<DecoderCase> cases = decoder_cases();
  for (const DecoderCase& c : cases) {
    INFO(c.name);
    CHECK(simd_decoder(c.f) == c.decoder);
  }
  CHECK_THROWS_AS(simd_decoder(formats::tf32{}), std::invalid_argument);
  test::for_each_simd_target([&](std::string_view simd) {
    Sweep sweep(test::simd_label(simd) + "array SIMD decoder every code x " +
                std::to_string(cases.size()) +
                " formats x 4 scales x uint8/16/32 codes x plain/streamed stores");
    std::uint64_t expected = 0;
    for (const DecoderCase& dc : cases) {
      const Format& f = dc.f;
      const std::vector<float>& table = value_table(f);
      const std::uint32_t count = std::uint32_t{1} << total_bits(f);
      std::vector<std::uint8_t> c8(total_bits(f) <= 8 ? count : 0);
      std::vector<std::uint16_t> c16(count);
      std::vector<std::uint32_t> c32(count);
      for (std::uint32_t c = 0; c < count; ++c) {
        if (!c8.empty()) c8[c] = std::uint8_t(c);
        c16[c] = std::uint16_t(c), c32[c] = c;
      }
      for (float scale : {1.0f, 3.0f, 0.1f, 0x1p-7f}) {
        for (bool stream : {false, true}) {
          ArrayOptions o{.scale = scale};
          o.exec.stream_bytes = stream ? 0 : std::numeric_limits<std::size_t>::max();
          INFO(dc.name << " scale " << scale << (stream ? " streamed" : ""));
          REQUIRE(array_path(ArrayCall::dequantize_float32, f, o) == ArrayPath::simd);
          // One float past an aligned start, so that streamed stores begin unaligned.
          std::vector<float> buf(count + 1);
          const std::span<float> out(buf.data() + 1, count);
          auto run = [&](auto codes, const char* type) {
            std::fill(buf.begin(), buf.end(), std::bit_cast<float>(0x7FBADBADu));
            const ArrayStats st = dequantize(f, codes, out, o);
            // Every element but a partial batch per chunk from the SIMD decoder, and every
            // one where the stores need no alignment.
            CHECK(ran(ArrayPath::simd, st, count));
            if (!stream) CHECK(st.simd_elements == count);
            std::uint64_t bad = 0;
            std::vector<std::string> msgs;
            for (std::uint32_t c = 0; c < count; ++c) {
              const std::uint32_t want = table_bits(table, c, scale);
              const std::uint32_t got = std::bit_cast<std::uint32_t>(out[c]);
              if (got != want && ++bad <= 3)
                msgs.push_back(dc.name + " " + type + " code " + hex_code(c, total_bits(f)) +
                               " scale " + shortest(scale) + ": expected " + hex_code(want, 32) +
                               ", got " + hex_code(got, 32));
            }
            sweep.add(count, bad, msgs);
            expected += count;
          };
          if (!c8.empty()) run(std::span<const std::uint8_t>(c8), "uint8");
          run(std::span<const std::uint16_t>(c16), "uint16");
          run(std::span<const std::uint32_t>(c32), "uint32");
        }
      }
    }
    sweep.finish(expected);
  });
}

// fake_quantize decodes its codes with the same decoder: every value of each format the
// SIMD fake_quantize admits, and a point between neighbours, against the reference path.
TEST_CASE("array: fake_quantize through the SIMD decoder", "[array][decoder]") {
  const std::vector<DecoderCase> cases = decoder_cases();
  test::for_each_simd_target([&](std::string_view simd) {
    Sweep sweep(test::simd_label(simd) +
                "array fake_quantize SIMD decoder every value and midpoint x formats the SIMD "
                "path admits x 2 scales x plain/streamed stores");
    std::uint64_t expected = 0;
    std::vector<std::string> left;
    for (const DecoderCase& dc : cases) {
      const Format& f = dc.f;
      const std::vector<float>& table = value_table(f);
      std::vector<float> x;
      for (float v : table) {
        x.push_back(v);
        x.push_back(v * 1.03125f);
      }
      bool any = false;
      for (float scale : {1.0f, 3.0f}) {
        for (bool stream : {false, true}) {
          ArrayOptions o{.scale = scale};
          o.exec.stream_bytes = stream ? 0 : std::numeric_limits<std::size_t>::max();
          if (array_path(ArrayCall::fake_quantize, f, o) != ArrayPath::simd) continue;
          any = true;
          INFO(dc.name << " scale " << scale << (stream ? " streamed" : ""));
          ArrayOptions ref = o;
          ref.exec.simd = false;
          std::vector<float> want(x.size()), buf(x.size() + 1);
          const std::span<float> got(buf.data() + 1, x.size());
          fake_quantize(f, x, want, ref);
          CHECK(ran(ArrayPath::simd, fake_quantize(f, x, got, o), x.size()));
          std::uint64_t bad = 0;
          std::vector<std::string> msgs;
          for (std::size_t i = 0; i < x.size(); ++i) {
            const std::uint32_t w = std::bit_cast<std::uint32_t>(want[i]);
            const std::uint32_t g = std::bit_cast<std::uint32_t>(got[i]);
            if (w != g && ++bad <= 3)
              msgs.push_back(dc.name + " input " + shortest(x[i]) + " scale " + shortest(scale) +
                             ": expected " + hex_code(w, 32) + ", got " + hex_code(g, 32));
          }
          sweep.add(x.size(), bad, msgs);
          expected += x.size();
        }
      }
      if (!any) left.push_back(dc.name);
    }
    // The formats the encoder does not cover: those without a zero and those whose emin is
    // below float32's -126 (8 exponent bits with bias 128 or more).
    CHECK(left == std::vector<std::string>{"e8m0fnu", "binary8p1ue", "binary8p1uf",
                                           "e4m0:policy=e8m0:unsigned", "e8m2:bias=140",
                                           "e8m7:policy=fnuz", "binary16p9uf"});
    sweep.finish(expected);
  });
}

TEST_CASE("array: fake_quantize is quantize then dequantize", "[array]") {
  test::for_each_simd_target([&](std::string_view) {
    SplitMix64 rng(14);
    std::vector<float> x(100003);
    for (auto& v : x) v = float(std::ldexp(double(rng.next() >> 11) - 0x1p52, -40 - int(rng.next() % 30)));
    x[5] = std::numeric_limits<float>::quiet_NaN();
    x[6] = -std::numeric_limits<float>::infinity();
    for (const char* name : {"e4m3fn", "e5m2", "e2m1fn", "float16", "bfloat16", "e8m0fnu", "tf32"}) {
      const Format f = parse_format(name);
      for (float scale : {1.0f, 5.0f}) {
        for (Rounding r : {Rounding::nearest_even, Rounding::stochastic_c}) {
          const ArrayOptions o{.convert = {.rounding = r, .stochastic_bits = 7}, .scale = scale, .seed = 2};
          std::vector<float> y(x.size());
          std::vector<std::uint32_t> c(x.size());
          std::vector<float> back(x.size());
          INFO(name << " scale " << scale << " " << to_string(r));
          const ArrayStats st1 = fake_quantize(f, x, y, o), st2 = quantize(f, x, c, o);
          const double a1 = st1.amax, a2 = st2.amax;
          // The kernels cover these formats but e8m0fnu, bfloat16 and tf32 with a scale (emax
          // 127), and tf32 in fake_quantize (which looks codes of at most 16 bits up in a table).
          const std::string fn = name;
          const bool narrow = fn != "e8m0fnu" && fn != "tf32";
          const bool quantize_simd =
              fn != "e8m0fnu" && !(scale != 1.0f && (fn == "bfloat16" || fn == "tf32"));
          const ArrayPath fake_path = array_path(ArrayCall::fake_quantize, f, o);
          const ArrayPath quantize_path = array_path(ArrayCall::quantize_float32, f, o);
          CHECK(fake_path == (narrow && quantize_simd ? ArrayPath::simd : ArrayPath::reference));
          CHECK(quantize_path == (quantize_simd ? ArrayPath::simd : ArrayPath::reference));
          CHECK(ran(fake_path, st1, x.size()));
          CHECK(ran(quantize_path, st2, x.size()));
          dequantize(f, c, back, o);
          CHECK(std::isnan(a1));
          CHECK(std::isnan(a2));
          std::size_t bad = 0;
          for (std::size_t i = 0; i < x.size(); ++i)
            bad += std::bit_cast<std::uint32_t>(y[i]) != std::bit_cast<std::uint32_t>(back[i]) &&
                   !(std::isnan(y[i]) && std::isnan(back[i]));
          CHECK(bad == 0);
        }
      }
    }
    // In place.
    std::vector<float> z = x;
    fake_quantize(formats::e4m3fn{}, z, z);
    std::vector<float> w(x.size());
    fake_quantize(formats::e4m3fn{}, x, w);
    CHECK(std::memcmp(z.data(), w.data(), z.size() * sizeof(float)) == 0);
  });
}

TEST_CASE("array: amax", "[array]") {
  test::for_each_simd_target([&](std::string_view) {
    std::vector<float> x = {1.0f, -7.5f, 3.0f, -0.0f};
    std::vector<std::uint8_t> y(x.size());
    CHECK(quantize(formats::e4m3fn{}, x, y).amax == 7.5);
    CHECK(quantize(formats::e4m3fn{}, x, y, {.scale = 4.0f}).amax == 7.5);  // before scaling
    x.push_back(-std::numeric_limits<float>::infinity());
    y.resize(x.size());
    CHECK(quantize(formats::e4m3fn{}, x, y).amax == std::numeric_limits<double>::infinity());
    x.push_back(std::numeric_limits<float>::quiet_NaN());
    y.resize(x.size());
    CHECK(std::isnan(quantize(formats::e4m3fn{}, x, y).amax));
    std::vector<float> big(100000, 0.5f);
    big[77777] = -1e30f;
    std::vector<std::uint8_t> yb(big.size());
    CHECK(quantize(formats::e5m2{}, big, yb).amax == double(1e30f));
    const std::vector<std::uint16_t> h = {0x3C00, 0xC500, 0x0001};  // 1, -5, 2^-24
    std::vector<std::uint8_t> yh(3);
    CHECK(quantize_float16_bits(formats::e4m3fn{}, h, yh).amax == 5.0);
    CHECK(quantize_bfloat16_bits(formats::e4m3fn{}, h, yh).amax == 2048.0);  // 0xC500 is -2048
    const std::vector<double> d = {1e300, -1e-300};
    std::vector<std::uint8_t> yd(2);
    CHECK(quantize(formats::e4m3fn{}, d, yd).amax == 1e300);
    std::vector<std::uint8_t> empty;
    CHECK(quantize(formats::e4m3fn{}, std::span<const float>(), empty).amax == 0.0);
  });
}

TEST_CASE("array: bad arguments throw with a message", "[array]") {
  std::vector<float> x(10, 1.0f);
  std::vector<std::uint8_t> y(10), short_y(9);
  std::vector<std::uint16_t> y16(10);
  CHECK_THROWS_WITH(quantize(formats::e4m3fn{}, x, short_y),
                    "the input has 10 elements but the output has 9");
  CHECK_THROWS_WITH(quantize(formats::float16{}, x, y),
                    "codes of float16 need 16 bits; the code array has 8");
  for (float s : {0.0f, -1.0f, std::numeric_limits<float>::infinity(),
                  std::numeric_limits<float>::quiet_NaN()})
    CHECK_THROWS_WITH(quantize(formats::e4m3fn{}, x, y, {.scale = s}),
                      "the scale must be finite and greater than zero");
  CHECK_THROWS_AS(quantize(formats::e4m3fn{}, x, y,
                           {.convert = {.rounding = Rounding::stochastic_a, .stochastic_bits = 0}}),
                  std::invalid_argument);
  CHECK_THROWS_AS(quantize(formats::e4m3fn{}, x, y, {.exec = {.chunk = 0}}), std::invalid_argument);
  // A code wider than the format: out_of_range naming the first one.
  std::vector<std::uint8_t> codes = {0x01, 0x3F, 0x40, 0x41};
  std::vector<float> out(4);
  CHECK_THROWS_WITH(dequantize(formats::e2m3fn{}, codes, out),
                    "code 0x40 at index 2 does not fit in the 6 bits of e2m3fn");
  std::vector<std::uint8_t> many(1000, 0x01);
  many[999] = 0x80;
  std::vector<float> out_many(1000);
  CHECK_THROWS_AS(dequantize(formats::e2m1fn{}, many, out_many), std::out_of_range);
  // Float output for a format whose values do not fit in float.
  const Format wide = parse_format("e8m3:bias=80");
  std::vector<std::uint16_t> wc = {1};
  std::vector<float> wf(1);
  std::vector<double> wd(1);
  CHECK_THROWS_AS(dequantize(wide, wc, wf), std::domain_error);
  dequantize(wide, wc, wd);
  CHECK(wd[0] == decode(wide, 1));
}
