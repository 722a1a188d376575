// The float accumulator fast paths (GemmPath::accumulator, ::accumulator_wide) against
// gemm_reference bit for bit, on every SIMD target: every rounding, saturation, DAZ and
// FTZ, every order, Kahan, promotion, block scales, alpha and beta, accumulator formats
// from 8 to 32 bits, shapes with edge tiles, odd K and K = 0, both layouts, 1 to 3
// threads; and the configurations that take the reference.
#include <algorithm>
#include <bit>
#include <cmath>
#include <string>
#include <vector>

#include "fp8emu/gemm.hpp"
#include "gemm_codes.hpp"
#include "rng.hpp"
#include "simd_targets.hpp"
#include "sweep.hpp"

using namespace fp8emu;

namespace {

using test::Codes;

// Random finite codes: every exponent of the format, zeros of both signs for about one
// element in six, and (with `nonfinite`) one NaN or infinity.
Codes random_codes(Format f, std::int64_t r, std::int64_t c, std::uint64_t seed, Layout l,
                   bool nonfinite = false) {
  Codes m(f, r, c, l);
  SplitMix64 rng(seed);
  const std::uint32_t mask = total_bits(f) >= 32 ? ~0u : (1u << total_bits(f)) - 1;
  for (std::int64_t i = 0; i < r; ++i)
    for (std::int64_t j = 0; j < c; ++j) {
      std::uint32_t code;
      do {
        code = std::uint32_t(rng.next()) & mask;
        if (rng.next() % 6 == 0) code &= sign_mask(f);
      } while (classify(f, code) == ValueClass::nan || classify(f, code) == ValueClass::infinite);
      m.set(i, j, code);
    }
  if (nonfinite) {
    std::uint32_t code = 0;
    while (classify(f, code) != ValueClass::nan && classify(f, code) != ValueClass::infinite)
      ++code;
    m.set(r / 2, c / 2, code);
  }
  return m;
}

std::uint32_t bits(float x) { return std::bit_cast<std::uint32_t>(x); }

// One configuration: operand formats, the accumulation, scales, and the path it must take.
struct Config {
  std::string spec;
  Format fa, fb;
  GemmPath path;
  int scales = 0;  // 0: none; 1: float32 blocks along K; 2: e8m0; 3: e4m3 and tensor scales
  float alpha = 1.0f, beta = 0.0f;
};

struct Shape {
  std::int64_t M, N, K;
};

constexpr Shape kShapes[] = {{1, 1, 1}, {13, 33, 1}, {25, 47, 300}, {7, 100, 65}, {50, 17, 513},
                             {9, 8, 64}, {3, 5, 0}};

std::vector<Config> configs() {
  const Format e4 = formats::e4m3fn{}, e5 = formats::e5m2{}, h = formats::float16{},
               bf = formats::bfloat16{}, f32 = formats::float32{}, fp4 = formats::e2m1fn{};
  const GemmPath acc = GemmPath::accumulator, wide = GemmPath::accumulator_wide;
  std::vector<Config> v;
  // float16: every rounding, saturation, DAZ, FTZ, order; products of e5m2 x e5m2 (and
  // float16 or bfloat16) on float32 lanes, smaller ones with exact sums on float64 lanes
  // (sums that overflow float16 included).
  for (std::string r : {"rne", "rna", "rz", "ru", "rd", "ro"}) {
    v.push_back({"fp16,rounding=" + r, e4, e5, acc});
    v.push_back({"fp16,rounding=" + r + ",saturation=finite", e5, e5, acc});
    v.push_back({"fp16,rounding=" + r + ",saturation=propagate,daz=1,ftz=1", e4, e4, acc});
    v.push_back({"fp16,rounding=" + r + ",daz=1", fp4, fp4, acc});
    v.push_back({"fp16,rounding=" + r + ",daz=1,ftz=1", e5, e5, acc});
  }
  for (std::string r : {"sr-a", "sr-b", "sr-c"}) {
    v.push_back({"fp16,rounding=" + r + ",sr-bits=1,seed=3", e4, e5, acc});
    v.push_back({"fp16,rounding=" + r + ",sr-bits=11,seed=4,ftz=1", e4, e4, acc});
    v.push_back({"fp16,rounding=" + r + ",sr-bits=8,seed=7,order=blocked,chunk=32", e4, e5, acc});
    v.push_back({"fp16,rounding=" + r + ",sr-bits=12,seed=5", e4, e5, wide});
    v.push_back({"fp16,rounding=" + r + ",sr-bits=32,seed=6,stream=2,saturation=finite", e5, e5, wide});
    v.push_back({"fp16,rounding=" + r + ",sr-bits=7,order=pairwise", fp4, e4, acc});
    v.push_back({"fp16,rounding=" + r + ",sr-bits=20,kahan=1,daz=1", e4, e4, wide});
    v.push_back({"bf16,rounding=" + r + ",sr-bits=32,order=blocked,chunk=5", e4, e5, wide});
  }
  v.push_back({"fp16,order=pairwise", e4, e5, acc});
  v.push_back({"fp16,order=pairwise,rounding=rd", fp4, fp4, acc});
  v.push_back({"fp16,order=blocked,chunk=7", e4, e5, wide});
  v.push_back({"fp16,order=blocked,chunk=1,rounding=rz,daz=1", e4, e4, wide});
  v.push_back({"fp16,kahan=1", e4, e5, wide});
  v.push_back({"fp16,kahan=1,rounding=rd,ftz=1", fp4, e4, wide});
  v.push_back({"fp16,kahan=1,rounding=ro,saturation=finite", e5, e5, acc});
  v.push_back({"fp16,promote=16", e4, e5, acc, 0, 1.5f, 0.5f});
  v.push_back({"fp16,promote=32,rounding=ru", e4, e4, acc, 1});
  v.push_back({"fp16,order=pairwise,promote=48", e4, e5, acc, 2, 1.0f, -2.0f});
  v.push_back({"fp16,kahan=1,promote=7", e4, e5, wide, 3});
  // Exact sums (e4m3fn x e4m3fn and e4m3fn x e5m2 products): blocked and Kahan on float64
  // lanes, sequential and pairwise on float32 lanes (float64 lanes where those do not serve).
  for (std::string r : {"rne", "rz", "ru", "rd"}) {
    v.push_back({"fp16,rounding=" + r + ",order=pairwise", e4, e4, acc, 0, 1.0f, 0.5f});
    v.push_back({"fp16,rounding=" + r + ",order=blocked,chunk=32", e4, e5, wide});
    v.push_back({"fp16,rounding=" + r + ",kahan=1", e5, e4, wide, 0, 0.5f, -1.0f});
    v.push_back({"fp16,rounding=" + r + ",order=blocked,chunk=16,promote=64", e4, e4, wide, 2});
  }
  v.push_back({"fp16,rounding=sr-a,sr-bits=12,order=pairwise", e4, e4, wide, 0, 1.0f, 0.5f});
  v.push_back({"fp16,rounding=sr-b,sr-bits=13,promote=40", e5, e4, wide, 1});
  // Just outside the bound of exact sums (e5m2 x e5m2): float32 lanes.
  v.push_back({"fp16,order=pairwise", e5, e5, acc});
  v.push_back({"fp16,order=blocked,chunk=32,rounding=rd", e5, e5, acc});
  v.push_back({"fp16,kahan=1,rounding=rz", e5, e5, acc, 0, 1.0f, 1.0f});
  v.push_back({"fp16", h, h, acc, 1, 0.25f, 1.0f});
  // bfloat16 with fp8 and fp4 operands: its partial sums stay far below 2^104 here.
  v.push_back({"bf16", e4, e5, acc});
  v.push_back({"bf16,kahan=1,rounding=ru", e5, e5, acc});
  v.push_back({"bf16,rounding=rz,order=pairwise,daz=1,ftz=1", e4, e4, acc, 2});
  v.push_back({"bf16,rounding=sr-c,sr-bits=14,order=blocked,chunk=9", fp4, e5, acc});
  v.push_back({"bf16,rounding=sr-a,sr-bits=15", e4, e5, wide});
  // bfloat16 and other products outside the float32 lanes: float64 lanes.
  v.push_back({"bf16,rounding=rz,daz=1,ftz=1", bf, bf, wide});
  v.push_back({"bf16,rounding=rd,order=pairwise", bf, e4, wide, 2});
  v.push_back({"bf16,kahan=1,saturation=finite", bf, bf, wide, 0, 2.0f, 0.5f});
  v.push_back({"fp16,rounding=ru", bf, bf, wide});
  v.push_back({"fp16,rounding=rna,order=blocked,chunk=64", f32, h, wide, 3});
  // Other accumulator formats: 8 bits (with and without infinities, negative zero), 19.
  v.push_back({"fp32,format=e5m2", e4, e4, acc});
  v.push_back({"fp32,format=e5m2,rounding=ru", e5, e5, acc});
  v.push_back({"fp32,format=e4m3fn,rounding=rz,daz=1", e4, e4, acc});
  v.push_back({"fp32,format=e4m3fnuz,rounding=rd,order=pairwise", e4, e5, acc});
  v.push_back({"fp32,format=binary8p3se,rounding=sr-c,sr-bits=8,saturation=propagate", e4, e4, acc});
  v.push_back({"fp32,format=binary8p4sf,kahan=1", fp4, e4, wide});
  v.push_back({"fp32,format=e3m2fn,rounding=ro", fp4, fp4, acc});
  v.push_back({"fp32,format=tf32,rounding=rz", e4, e5, acc});
  v.push_back({"fp32,format=tf32,rounding=rz", bf, bf, wide});
  // float32 accumulators other than nearest-even sequential: float64 lanes.
  v.push_back({"fp32,rounding=rz", e4, e5, wide});
  v.push_back({"fp32,saturation=finite", e5, e5, wide, 1});
  v.push_back({"fp32,rounding=rd,order=pairwise,daz=1,ftz=1", bf, bf, wide});
  v.push_back({"fp32,kahan=1,rounding=ru", f32, f32, wide});
  v.push_back({"fp32,order=blocked,chunk=16,promote=32", e4, e5, wide, 2});
  v.push_back({"fp32,rounding=sr-a,sr-bits=27", e4, e5, wide});
  v.push_back({"fp32,rounding=sr-c,sr-bits=27,daz=1", bf, bf, wide});
  return v;
}

void set_scales(GemmOptions& o, const Config& c, std::int64_t M, std::int64_t N, std::int64_t K,
                std::vector<float>& fs, std::vector<std::uint8_t>& codes) {
  if (c.scales == 0) return;
  const std::int64_t kb = 32, kblocks = std::max<std::int64_t>((K + kb - 1) / kb, 1);
  if (c.scales == 1) {
    // A: 1 x 32 float32 blocks (they split K when K > 32); B: per column.
    fs.resize(std::size_t(M * kblocks + N));
    for (std::size_t i = 0; i < fs.size(); ++i) fs[i] = std::ldexp(1.0f, int(i % 7) - 3) * 1.25f;
    o.a_scales = {fs.data(), ScaleEncoding::float32, 1, kb, 1.0f};
    o.b_scales = {fs.data() + M * kblocks, ScaleEncoding::float32, 0, 1, 1.0f};
  } else {
    // A and B: 32 x 1 / 1 x 32 blocks of e8m0 or e4m3 codes along K.
    codes.resize(std::size_t(M * kblocks + kblocks * N));
    for (std::size_t i = 0; i < codes.size(); ++i)
      codes[i] = c.scales == 2 ? std::uint8_t(124 + i % 7) : std::uint8_t(0x30 + i % 13);
    const ScaleEncoding e = c.scales == 2 ? ScaleEncoding::e8m0 : ScaleEncoding::e4m3;
    const float tensor = c.scales == 2 ? 1.0f : 0.75f;
    o.a_scales = {codes.data(), e, 1, kb, tensor};
    o.b_scales = {codes.data() + M * kblocks, e, kb, 1, 1.0f};
  }
}

struct Case {
  std::size_t config, shape;
  std::vector<float> c0, want;
};

}  // namespace

TEST_CASE("gemm accumulator fast paths equal the reference bit for bit", "[gemm][gemm-accum]") {
  if (!test::simd_compiled_in()) return;
  const std::vector<Config> cfgs = configs();
  std::vector<Case> cases;
  std::uint64_t per_target = 0;
  // The reference once per configuration and shape (its layouts and seeds fixed by both).
  const auto operands = [&](std::size_t ci, std::size_t si) {
    const Shape s = kShapes[si];
    const Layout la = (ci + si) % 2 ? Layout::col_major : Layout::row_major;
    const Layout lb = (ci + si) % 3 ? Layout::row_major : Layout::col_major;
    return std::pair{random_codes(cfgs[ci].fa, s.M, s.K, 10 * ci + si, la),
                     random_codes(cfgs[ci].fb, s.K, s.N, 1000 + 10 * ci + si, lb)};
  };
  const auto options = [&](std::size_t ci, std::size_t si, std::vector<float>& fs,
                           std::vector<std::uint8_t>& sc) {
    const Shape s = kShapes[si];
    GemmOptions o;
    o.accumulation = parse_accumulation(cfgs[ci].spec);
    o.alpha = cfgs[ci].alpha;
    o.beta = cfgs[ci].beta;
    set_scales(o, cfgs[ci], s.M, s.N, s.K, fs, sc);
    return o;
  };
  for (std::size_t ci = 0; ci < cfgs.size(); ++ci)
    for (std::size_t si = 0; si < std::size(kShapes); ++si) {
      const Shape s = kShapes[si];
      const auto [a, b] = operands(ci, si);
      std::vector<float> fs;
      std::vector<std::uint8_t> sc;
      const GemmOptions o = options(ci, si, fs, sc);
      Case k{ci, si, std::vector<float>(std::size_t(s.M * s.N)), {}};
      SplitMix64 rng(77 + ci);
      for (float& x : k.c0) x = float(std::int64_t(rng.next() % 2001) - 1000) / 64.0f;
      k.want = k.c0;
      gemm_reference(a.view(), b.view(), k.want.data(), s.N, o);
      per_target += 3 * k.want.size();  // threads 1, 2, 3
      cases.push_back(std::move(k));
    }
  Sweep sweep("gemm accumulator fast paths");
  const int ran = test::for_each_simd_target([&](std::string_view t) {
    for (const Case& k : cases) {
      const Config& cfg = cfgs[k.config];
      const Shape s = kShapes[k.shape];
      const auto [a, b] = operands(k.config, k.shape);
      std::vector<float> fs;
      std::vector<std::uint8_t> sc;
      GemmOptions o = options(k.config, k.shape, fs, sc);
      INFO(cfg.spec << " " << s.M << "x" << s.N << "x" << s.K);
      REQUIRE(gemm_path(a.view(), b.view(), o) == cfg.path);
      for (int threads : {1, 2, 3}) {
        o.exec.threads = threads;
        std::vector<float> got = k.c0;
        gemm(a.view(), b.view(), got.data(), s.N, o);
        std::uint64_t bad = 0;
        std::vector<std::string> msgs;
        for (std::size_t e = 0; e < got.size(); ++e)
          if (bits(got[e]) != bits(k.want[e]) && ++bad <= 2)
            msgs.push_back(test::simd_label(t) + cfg.spec + " " + std::to_string(s.M) + "x" +
                           std::to_string(s.N) + "x" + std::to_string(s.K) + " threads " +
                           std::to_string(threads) + " element " + std::to_string(e) +
                           ": reference " + std::to_string(k.want[e]) + ", fast " +
                           std::to_string(got[e]));
        sweep.add(got.size(), bad, msgs);
      }
    }
  });
  sweep.finish(std::uint64_t(ran) * per_target);
}

TEST_CASE("gemm accumulator: what the fast paths do not cover takes the reference",
          "[gemm][gemm-accum]") {
  if (!test::simd_compiled_in()) return;
  struct Uncovered {
    std::string spec;
    Format fa, fb;
    bool nonfinite;
  };
  const Uncovered u[] = {
      // 24 + 28 + 2 > 53: the float64 lanes cannot keep the bits sr reads.
      {"fp32,rounding=sr-a,sr-bits=28", formats::e4m3fn{}, formats::e5m2{}, false},
      {"fp32,rounding=sr-b", formats::e4m3fn{}, formats::e5m2{}, false},
      // Precision 1: "even" is the exponent's last bit.
      {"fp32,format=binary8p1se", formats::e4m3fn{}, formats::e4m3fn{}, false},
      // An operand format wider than 16 bits other than float32.
      {"fp16", formats::tf32{}, formats::e4m3fn{}, false},
      // A NaN or infinite operand.
      {"fp16", formats::e4m3fn{}, formats::e5m2{}, true},
      {"bf16,order=pairwise", formats::e5m2{}, formats::e5m2{}, true},
  };
  std::uint64_t n = 0;
  const int ran = test::for_each_simd_target([&](std::string_view) {
    for (const Uncovered& x : u) {
      INFO(x.spec);
      const Codes a = random_codes(x.fa, 6, 40, 5, Layout::row_major, x.nonfinite);
      const Codes b = random_codes(x.fb, 40, 11, 6, Layout::col_major, x.nonfinite);
      GemmOptions o;
      o.accumulation = parse_accumulation(x.spec);
      CHECK(gemm_path(a.view(), b.view(), o) == GemmPath::reference);
      std::vector<float> want(66), got(66);
      gemm_reference(a.view(), b.view(), want.data(), 11, o);
      gemm(a.view(), b.view(), got.data(), 11, o);
      for (std::size_t e = 0; e < got.size(); ++e) CHECK(bits(got[e]) == bits(want[e]));
      ++n;
    }
    // Something must take a fast path for the target check of for_each_simd_target.
    const Codes a = random_codes(formats::e4m3fn{}, 2, 3, 7, Layout::row_major);
    const Codes b = random_codes(formats::e4m3fn{}, 3, 2, 8, Layout::row_major);
    GemmOptions o;
    o.accumulation = parse_accumulation("fp16");
    std::vector<float> c(4);
    gemm(a.view(), b.view(), c.data(), 2, o);
  });
  CHECK(n == std::uint64_t(ran) * std::size(u));
  // A code wider than its format is refused by gemm and gemm_reference alike, on every
  // path (no read past a value table), naming the operand and the element.
  Codes a = random_codes(formats::e2m1fn{}, 2, 3, 9, Layout::row_major);
  Codes b = random_codes(formats::e2m1fn{}, 3, 2, 10, Layout::col_major);
  a.set(1, 2, 0xF3);
  std::vector<float> c(4);
  for (const char* spec : {"fp32", "fp16", "fp16,rounding=sr-a", "nvidia-h100-fp8", "nvidia-b200-fp8",
                           "amd-mi300-fp8"}) {
    GemmOptions o;
    o.accumulation = parse_accumulation(spec);
    CHECK_THROWS_WITH(gemm(a.view(), b.view(), c.data(), 2, o),
                      "A: code 0xF3 at (1, 2) does not fit in the 4 bits of e2m1fn");
    CHECK_THROWS_AS(gemm_reference(a.view(), b.view(), c.data(), 2, o), std::invalid_argument);
  }
  a.set(1, 2, 0x3);
  b.set(2, 1, 0x10);
  GemmOptions o;
  CHECK_THROWS_WITH(gemm(a.view(), b.view(), c.data(), 2, o),
                    "B: code 0x10 at (2, 1) does not fit in the 4 bits of e2m1fn");
}
