// fp8hw conversions: every float32 pattern through cvt.rn.satfinite.{e4m3x2,e5m2x2}.f32,
// every float16 pattern through the .f16x2 forms, and every e4m3 / e5m2 code back to
// float16, each against fp8emu with the options that describe NVIDIA's conversion:
// round to nearest even, saturate to the largest finite value (infinities too), every
// NaN to 0x7F (docs/references.md, "NVIDIA conversions"; tests/test_nvidia.cpp checks the
// same options against the CUDA headers' host code).
#include <cstring>
#include <numeric>

#include "fp8emu/array.hpp"
#include "fp8emu/convert.hpp"
#include "harness.hpp"
#include "kernels.hpp"

namespace fp8hw {

namespace {

using namespace fp8emu;

ArrayOptions nvidia_options() {
  ArrayOptions a;
  a.convert = ConvertOptions{.rounding = Rounding::nearest_even, .saturation = Saturation::finite,
                             .nan = NanEncoding::nvidia};
  return a;
}

const char* fp8_name(Fp8 f) { return f == Fp8::e4m3 ? "e4m3fn" : "e5m2"; }

// Every float32 pattern (or, quick, every 64th chunk of them) in chunks of 2^24.
CheckResult float32_sweep(Fp8 f8, bool quick) {
  const Format f = parse_format(fp8_name(f8));
  CheckResult c = new_check("conversions", std::string("cvt.rn.satfinite.") + (f8 == Fp8::e4m3 ? "e4m3x2" : "e5m2x2") + ".f32",
                            std::string("quantize ") + fp8_name(f8) + " rne, saturation finite, nan nvidia", fp8_name(f8));
  const std::uint32_t chunk = 1u << 24;
  std::vector<float> in(chunk);
  std::vector<std::uint8_t> want(chunk), got(chunk);
  DeviceBuffer<std::uint8_t> dev(chunk);
  CompareOptions co;
  co.keep = 20;
  for (std::uint64_t base = 0; base < (std::uint64_t{1} << 32); base += chunk) {
    if (quick && (base / chunk) % 64 != 0) continue;
    for (std::uint32_t i = 0; i < chunk; ++i) {
      const std::uint32_t bits = std::uint32_t(base) + i;
      std::memcpy(&in[i], &bits, 4);
    }
    quantize(f, std::span<const float>(in), std::span<std::uint8_t>(want), nvidia_options());
    CUDA_CHECK(launch_cvt_f32(f8, std::uint32_t(base), chunk / 2, dev.get()));
    sync_checked("cvt f32");
    dev.download(got);
    co.first_index = base;
    c.report.merge(compare_codes(f, want, got, co), co.keep);
  }
  if (quick) c.note = "quick: every 64th chunk of 2^24 patterns";
  return c;
}

CheckResult float16_sweep(Fp8 f8) {
  const Format f = parse_format(fp8_name(f8));
  CheckResult c = new_check("conversions", std::string("cvt.rn.satfinite.") + (f8 == Fp8::e4m3 ? "e4m3x2" : "e5m2x2") + ".f16x2",
                            std::string("quantize_float16_bits ") + fp8_name(f8) + " rne, saturation finite, nan nvidia",
                            fp8_name(f8));
  std::vector<std::uint16_t> in(65536);
  std::iota(in.begin(), in.end(), std::uint16_t{0});
  std::vector<std::uint8_t> want(65536), got;
  quantize_float16_bits(f, in, std::span<std::uint8_t>(want), nvidia_options());
  DeviceBuffer<std::uint8_t> dev(65536);
  CUDA_CHECK(launch_cvt_f16(f8, dev.get()));
  sync_checked("cvt f16x2");
  dev.download(got);
  CompareOptions co;
  co.keep = 20;
  c.report = compare_codes(f, want, got, co);
  return c;
}

CheckResult to_float16(Fp8 f8) {
  CheckResult c = new_check("conversions", std::string("cvt.rn.f16x2.") + (f8 == Fp8::e4m3 ? "e4m3x2" : "e5m2x2"),
                            std::string("decode ") + fp8_name(f8) + ", encode float16 (nan nvidia: 0x7FFF)", "float16");
  std::vector<std::uint16_t> want(256), got;
  for (std::uint32_t code = 0; code < 256; ++code) want[code] = expected_f16_of_code(f8 == Fp8::e5m2, code);
  DeviceBuffer<std::uint16_t> dev(256);
  CUDA_CHECK(launch_cvt_to_f16(f8, dev.get()));
  sync_checked("cvt to f16x2");
  dev.download(got);
  CompareOptions co;
  co.keep = 20;
  c.report = compare_codes(formats::float16{}, want, got, co);
  return c;
}

}  // namespace

std::uint16_t expected_f16_of_code(bool e5m2, std::uint32_t code) {
  const Format f = e5m2 ? Format(formats::e5m2{}) : Format(formats::e4m3fn{});
  const ConvertOptions o{.rounding = Rounding::nearest_even, .saturation = Saturation::none,
                         .nan = NanEncoding::nvidia};
  return std::uint16_t(encode(formats::float16{}, decode(f, code), o));
}

void run_conversions(const Options& o, std::vector<CheckResult>& out) {
  for (Fp8 f : {Fp8::e4m3, Fp8::e5m2}) {
    out.push_back(float32_sweep(f, o.quick));
    print_check(out.back());
    out.push_back(float16_sweep(f));
    print_check(out.back());
    out.push_back(to_float16(f));
    print_check(out.back());
  }
}

}  // namespace fp8hw
