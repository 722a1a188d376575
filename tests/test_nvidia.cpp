// NVIDIA's own software model of its conversions (the host code of the CUDA 13 headers
// cuda_fp8.hpp, cuda_fp6.hpp, cuda_fp4.hpp, compiled here with g++) against fp8emu,
// over every float32 input. Built only when /usr/local/cuda/include/cuda_fp8.h exists.
#include <cuda_fp4.h>
#include <cuda_fp6.h>
#include <cuda_fp8.h>

#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fp8emu/explain.hpp"

using namespace fp8emu;

namespace {

struct Config {
  const char* name;
  Format format;
  ConvertOptions options;
  std::uint8_t (*nvidia)(float);
};

std::uint8_t e4m3_sat(float x) { return __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3); }
std::uint8_t e4m3_nosat(float x) { return __nv_cvt_float_to_fp8(x, __NV_NOSAT, __NV_E4M3); }
std::uint8_t e5m2_sat(float x) { return __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E5M2); }
std::uint8_t e5m2_nosat(float x) { return __nv_cvt_float_to_fp8(x, __NV_NOSAT, __NV_E5M2); }
std::uint8_t e2m3_rn(float x) { return __nv_cvt_float_to_fp6(x, __NV_E2M3, cudaRoundNearest); }
std::uint8_t e2m3_rz(float x) { return __nv_cvt_float_to_fp6(x, __NV_E2M3, cudaRoundZero); }
std::uint8_t e3m2_rn(float x) { return __nv_cvt_float_to_fp6(x, __NV_E3M2, cudaRoundNearest); }
std::uint8_t e3m2_rz(float x) { return __nv_cvt_float_to_fp6(x, __NV_E3M2, cudaRoundZero); }
std::uint8_t e2m1_rn(float x) { return __nv_cvt_float_to_fp4(x, __NV_E2M1, cudaRoundNearest); }
std::uint8_t e2m1_rz(float x) { return __nv_cvt_float_to_fp4(x, __NV_E2M1, cudaRoundZero); }
std::uint8_t e8m0_rz_sat(float x) { return __nv_cvt_float_to_e8m0(x, __NV_SATFINITE, cudaRoundZero); }
std::uint8_t e8m0_ru_sat(float x) { return __nv_cvt_float_to_e8m0(x, __NV_SATFINITE, cudaRoundPosInf); }
std::uint8_t e8m0_rz_nosat(float x) { return __nv_cvt_float_to_e8m0(x, __NV_NOSAT, cudaRoundZero); }
std::uint8_t e8m0_ru_nosat(float x) { return __nv_cvt_float_to_e8m0(x, __NV_NOSAT, cudaRoundPosInf); }

ConvertOptions opts(Rounding r, Saturation s) {
  return ConvertOptions{.rounding = r, .saturation = s, .nan = NanEncoding::nvidia};
}

}  // namespace

int main() {
  const Format e4m3 = parse_format("e4m3fn"), e5m2 = parse_format("e5m2"), e2m3 = parse_format("e2m3fn"),
               e3m2 = parse_format("e3m2fn"), e2m1 = parse_format("e2m1fn"), e8m0 = parse_format("e8m0fnu");
  const auto rne = Rounding::nearest_even, rz = Rounding::toward_zero, ru = Rounding::toward_positive;
  const auto fin = Saturation::finite, none = Saturation::none;
  const std::vector<Config> configs = {
      {"e4m3fn satfinite", e4m3, opts(rne, fin), e4m3_sat},
      {"e4m3fn nosat", e4m3, opts(rne, none), e4m3_nosat},
      {"e5m2 satfinite", e5m2, opts(rne, fin), e5m2_sat},
      {"e5m2 nosat", e5m2, opts(rne, none), e5m2_nosat},
      {"e2m3fn rn", e2m3, opts(rne, fin), e2m3_rn},
      {"e2m3fn rz", e2m3, opts(rz, fin), e2m3_rz},
      {"e3m2fn rn", e3m2, opts(rne, fin), e3m2_rn},
      {"e3m2fn rz", e3m2, opts(rz, fin), e3m2_rz},
      {"e2m1fn rn", e2m1, opts(rne, fin), e2m1_rn},
      {"e2m1fn rz", e2m1, opts(rz, fin), e2m1_rz},
      {"e8m0fnu rz satfinite", e8m0, opts(rz, fin), e8m0_rz_sat},
      {"e8m0fnu ru satfinite", e8m0, opts(ru, fin), e8m0_ru_sat},
      {"e8m0fnu rz nosat", e8m0, opts(rz, none), e8m0_rz_nosat},
      {"e8m0fnu ru nosat", e8m0, opts(ru, none), e8m0_ru_nosat},
  };
  // FP8EMU_NVIDIA_STRIDE > 1 samples every k-th input (for quick local runs); CI uses 1.
  const char* env = std::getenv("FP8EMU_NVIDIA_STRIDE");
  const std::uint64_t stride = env ? std::strtoull(env, nullptr, 10) : 1;
  int failed = 0;
  for (const Config& c : configs) {
    std::uint64_t cases = 0, bad = 0;
    std::uint32_t first_bad = 0;
#pragma omp parallel for reduction(+ : cases, bad) schedule(static)
    for (std::int64_t hi = 0; hi < 65536; ++hi) {
      for (std::uint64_t lo = 0; lo < 65536; lo += stride) {
        const std::uint32_t bits = std::uint32_t(hi << 16 | lo);
        const float x = std::bit_cast<float>(bits);
        const std::uint32_t want = c.nvidia(x);
        const std::uint32_t got = encode(c.format, x, c.options);
        ++cases;
        if (want != got) {
          if (bad++ == 0) {
#pragma omp critical
            first_bad = bits;
          }
        }
      }
    }
    std::printf("sweep NVIDIA %s: %llu float32 inputs, %llu mismatches\n", c.name, (unsigned long long)cases,
                (unsigned long long)bad);
    if (bad) {
      const float x = std::bit_cast<float>(first_bad);
      std::printf("  first: input 0x%08X (%s): nvidia 0x%02X, fp8emu 0x%02X\n", first_bad, shortest(x).c_str(),
                  unsigned(c.nvidia(x)), unsigned(encode(c.format, x, c.options)));
    }
    const std::uint64_t expect = 65536 * ((65536 + stride - 1) / stride);
    if (bad || cases != expect) ++failed;
  }
  std::printf("%d passed, %d failed\n", int(configs.size()) - failed, failed);
  return failed ? 1 : 0;
}
