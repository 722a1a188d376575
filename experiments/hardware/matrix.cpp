// fp8hw matrix units: mma.sync m16n8k32 and wgmma m64n8k32 (e4m3 x e4m3 -> f32) against
// fp8emu's nvidia-h100-fp8 model (docs/gemm.md, from MMA-Sim's WGMMASim; docs/references.md).
//
// 1. Discriminating cases: dot products whose result tells the model's parameters apart
//    (term truncation, block length, C truncated at every instruction, 13 fraction bits,
//    the 13-bit output, truncation toward zero of negative terms). Each is put in row 0
//    of A and column 0 of B of one tile; the rest of the tile is zero. For each case the
//    report lists which emulator configurations give the hardware's bits.
// 2. Random GEMMs with K = 32 (one instruction per tile) in three distributions, and
//    with K = 512 (16 chained instructions), compared element by element.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "fp8emu/convert.hpp"
#include "fp8emu/gemm.hpp"
#include "fp8emu/random.hpp"
#include "harness.hpp"
#include "kernels.hpp"

namespace fp8hw {

namespace {

using namespace fp8emu;

const Format kE4m3 = formats::e4m3fn{};

// A GEMM problem: A (m x k, row-major codes) and B given as B^T (n x k, row-major).
struct Problem {
  int m = 0, n = 0, k = 0;
  std::vector<std::uint8_t> a, bt;
};

std::vector<float> emulate(const Problem& p, const std::string& spec) {
  return emulate_e4m3_gemm(p.m, p.n, p.k, p.a, p.bt, spec);
}

std::vector<float> on_device(const Problem& p, bool wgmma) {
  DeviceBuffer<std::uint8_t> a(p.a.size()), bt(p.bt.size());
  DeviceBuffer<float> d(std::size_t(p.m) * p.n);
  a.upload(p.a);
  bt.upload(p.bt);
  if (wgmma) CUDA_CHECK(launch_wgmma_gemm(a.get(), bt.get(), d.get(), p.m, p.n, p.k));
  else CUDA_CHECK(launch_mma_gemm(a.get(), bt.get(), d.get(), p.m, p.n, p.k));
  sync_checked(wgmma ? "wgmma gemm" : "mma gemm");
  std::vector<float> out;
  d.download(out);
  return out;
}

// The discriminating cases: (name, x, y) with x in row 0 of A and y in column 0 of B.
struct Case {
  const char* name;
  int k;
  std::vector<std::pair<int, double>> x, y;  // (k index, value); other entries zero
};

std::vector<Case> discriminating_cases() {
  const double p6 = std::ldexp(1.0, -6), p7 = std::ldexp(1.0, -7), p8 = std::ldexp(1.0, -8),
               p9 = std::ldexp(1.0, -9);
  return {
      // 1 + (3 x 2^-8)(2^-7): the small term is 0.75 units of 2^-13: truncated 1, rounded 1 + 2^-13.
      {"term truncation (not rounding) to 13 bits", 32, {{0, 1}, {1, 3 * p8}}, {{0, 1}, {1, p7}}},
      // +1 - 1 at k = 0, 1 and 2^-14 at k = 16: one block of 32 gives +0, two of 16 give 2^-14.
      {"block of 32 products (not 16)", 32, {{0, 1}, {1, -1}, {16, p7}}, {{0, 1}, {1, 1}, {16, p7}}},
      // Block 1: 1 + 2^-13; block 2 adds 4 with E = 2, truncating C's 2^-13: 5.
      {"C truncated at every instruction", 64, {{0, 1}, {1, p7}, {40, 2}}, {{0, 1}, {1, p6}, {40, 2}}},
      // 1 + 2^-18: F = 13 drops the small product, F = 25 keeps it.
      {"13 fraction bits (not 25)", 32, {{0, 1}, {1, p9}}, {{0, 1}, {1, p9}}},
      // 1.75 + 1.75 + 2^-13 = 3.5 + 2^-13: a 13-bit output truncates to 3.5.
      {"13-bit output, truncated", 32, {{0, 1.75}, {1, 1.75}, {2, p7}}, {{0, 1}, {1, 1}, {2, p6}}},
      // 1 - 2^-15: the negative term truncates toward zero (1.0), not down (1 - 2^-13).
      {"negative terms truncate toward zero", 32, {{0, 1}, {1, -p7}}, {{0, 1}, {1, p8}}},
  };
}

const char* const kAlternatives[] = {
    "nvidia-h100-fp8",
    "nvidia-h100-fp8,term-rounding=rne",
    "nvidia-h100-fp8,term-rounding=rd",
    "nvidia-ada-fp8",
    "nvidia-b200-fp8",
    "nvidia-h100-fp8,input=separate",
    "nvidia-h100-fp8,out-bits=23",
    "fp32",
};

Problem case_problem(const Case& c, int m, int n) {
  Problem p{m, n, c.k, std::vector<std::uint8_t>(std::size_t(m) * c.k, 0),
            std::vector<std::uint8_t>(std::size_t(n) * c.k, 0)};
  for (auto [k, v] : c.x) p.a[std::size_t(k)] = std::uint8_t(encode(kE4m3, v));
  for (auto [k, v] : c.y) p.bt[std::size_t(k)] = std::uint8_t(encode(kE4m3, v));
  return p;
}

// Random e4m3 codes of element `i` of stream `stream`: every finite code (uniform), a
// normal distribution times 8 rounded to e4m3, or values within 2^-2..2^2 of random sign.
std::uint8_t random_code(int dist, fp8emu::RandomKey key, std::uint64_t i) {
  const std::uint32_t r = random_bits(key, 2 * i), s = random_bits(key, 2 * i + 1);
  if (dist == 0) {
    const std::uint8_t c = std::uint8_t(r);
    return (c & 0x7F) == 0x7F ? std::uint8_t(c & 0x80) : c;  // NaN -> zero of its sign
  }
  if (dist == 1) {
    return std::uint8_t(encode(kE4m3, 8 * fp8emu::random_normal(key, i)));
  }
  const std::uint32_t e = 5 + (r % 5);  // biased exponent 5..9: 2^-2 .. 2^2
  return std::uint8_t(((s & 1) << 7) | (e << 3) | ((r >> 8) & 7));
}

const char* const kDistNames[] = {"uniform over finite codes", "N(0, 8^2) rounded", "|x| in [2^-2, 2^3), random signs"};

Problem random_problem(int m, int n, int k, int dist, std::uint64_t seed, std::uint64_t stream) {
  Problem p{m, n, k, std::vector<std::uint8_t>(std::size_t(m) * k), std::vector<std::uint8_t>(std::size_t(n) * k)};
  const RandomKey ka = random_key(seed, 2 * stream), kb = random_key(seed, 2 * stream + 1);
  for (std::size_t i = 0; i < p.a.size(); ++i) p.a[i] = random_code(dist, ka, i);
  for (std::size_t i = 0; i < p.bt.size(); ++i) p.bt[i] = random_code(dist, kb, i);
  return p;
}

std::string bits_text(float x) {
  char buf[48];
  std::uint32_t b;
  std::memcpy(&b, &x, 4);
  std::snprintf(buf, sizeof buf, "%.9g (0x%08X)", double(x), b);
  return buf;
}

void run_unit(const Options& o, bool wgmma, std::vector<CheckResult>& out) {
  const char* unit = wgmma ? "wgmma m64n8k32" : "mma.sync m16n8k32";
  const int tile_m = wgmma ? 64 : 16, tile_n = 8;
  // 1. Discriminating cases.
  const std::string group = wgmma ? "wgmma" : "mma.sync";
  CheckResult cases = new_check(group, std::string(unit) + ": discriminating cases", "nvidia-h100-fp8", "float32");
  for (const Case& c : discriminating_cases()) {
    const Problem p = case_problem(c, tile_m, tile_n);
    const std::vector<float> got = on_device(p, wgmma);
    const std::vector<float> want = emulate(p, "nvidia-h100-fp8");
    CompareOptions co;
    co.keep = 4;
    cases.report.merge(compare_values(Format(formats::float32{}), want, got, co), 20);
    std::string matches;
    for (const char* alt : kAlternatives) {
      const float v = emulate(p, alt)[0];
      if (std::memcmp(&v, &got[0], 4) == 0) matches += std::string(matches.empty() ? "" : ", ") + alt;
    }
    std::printf("  %-46s hardware %-28s matches: %s\n", c.name, bits_text(got[0]).c_str(),
                matches.empty() ? "(none of the listed models)" : matches.c_str());
    cases.note += std::string("- ") + c.name + ": hardware " + bits_text(got[0]) + "; matches " +
                  (matches.empty() ? "none of the listed models" : matches) + "\n";
  }
  out.push_back(cases);
  print_check(out.back());
  // 2. Random GEMMs: K = 32 (one instruction per tile), three distributions in turn.
  const int m = 2048, n = 1024;
  const std::uint64_t per_gemm = std::uint64_t(m / tile_m) * (n / tile_n);
  std::uint64_t gemms = (o.instructions + std::uint64_t(m / 16) * (n / 8) - 1) / (std::uint64_t(m / 16) * (n / 8));
  if (o.quick) gemms = 3;
  for (int dist = 0; dist < 3; ++dist) {
    CheckResult r = new_check(group, std::string(unit) + ", K = 32, " + kDistNames[dist], "nvidia-h100-fp8", "float32");
    std::uint64_t instructions = 0;
    for (std::uint64_t g = std::uint64_t(dist); g < gemms; g += 3) {
      const Problem p = random_problem(m, n, 32, dist, o.seed, g);
      const std::vector<float> got = on_device(p, wgmma);
      CompareOptions co;
      co.keep = 10;
      co.first_index = r.report.total;
      r.report.merge(compare_values(Format(formats::float32{}), emulate(p, "nvidia-h100-fp8"), got, co), 10);
      instructions += per_gemm;
      if (g < 3) {  // the alternatives on the first GEMM of each distribution
        for (const char* alt : kAlternatives) {
          if (std::string(alt) == "nvidia-h100-fp8") continue;
          const CompareReport a = compare_values(Format(formats::float32{}), emulate(p, alt), got, {});
          char buf[160];
          std::snprintf(buf, sizeof buf, "%s%s %.4f%%", r.note.empty() ? "bit-exact rate of the alternatives (first GEMM): " : ", ",
                        alt, 100.0 * double(a.exact) / double(a.total));
          r.note += buf;
        }
      }
    }
    r.note = std::to_string(instructions) + " instructions. " + r.note;
    out.push_back(r);
    print_check(out.back());
  }
  // 3. Chained instructions: K = 512 (16 per tile), the normal distribution.
  CheckResult ch = new_check(group, std::string(unit) + ", K = 512 (16 chained), " + kDistNames[1], "nvidia-h100-fp8",
                             "float32");
  for (std::uint64_t g = 0; g < (o.quick ? 1u : 4u); ++g) {
    const Problem p = random_problem(512, 256, 512, 1, o.seed, 1000 + g);
    CompareOptions co;
    co.keep = 10;
    co.first_index = ch.report.total;
    ch.report.merge(compare_values(Format(formats::float32{}), emulate(p, "nvidia-h100-fp8"), on_device(p, wgmma), co), 10);
  }
  out.push_back(ch);
  print_check(out.back());
}

}  // namespace

int print_case_table() {
  // Each case on a 16 x 8 tile, as mma.sync would take it; the emulator alone.
  int undiscriminating = 0;
  for (const Case& c : discriminating_cases()) {
    const Problem p = case_problem(c, 16, 8);
    const float h100 = emulate(p, "nvidia-h100-fp8")[0];
    std::printf("%s (K = %d):\n", c.name, c.k);
    int differ = 0;
    for (const char* alt : kAlternatives) {
      const float v = emulate(p, alt)[0];
      differ += std::memcmp(&v, &h100, 4) != 0;
      std::printf("  %-36s %s\n", alt, bits_text(v).c_str());
    }
    if (differ == 0) ++undiscriminating;
  }
  std::printf("%d of %zu cases give every listed model the same bits\n", undiscriminating,
              discriminating_cases().size());
  return undiscriminating == 0 ? 0 : 1;
}

void run_matrix_units(const Options& o, bool wgmma_too, std::vector<CheckResult>& out) {
  if (o.wants("mma")) run_unit(o, false, out);
  if (wgmma_too && o.wants("wgmma")) run_unit(o, true, out);
}

}  // namespace fp8hw
