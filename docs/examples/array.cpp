// Arrays: quantize float32 values with a scale, then dequantize them (SIMD and threads,
// the same bits as encode).
#include <fp8emu/array.hpp>

#include <cstdint>
#include <cstdio>
#include <span>
#include <vector>

int main() {
  std::vector<float> x = {0.01f, -0.5f, 3.3f, 7.0f};
  std::vector<std::uint8_t> codes(x.size());
  fp8emu::ArrayOptions ao{.scale = 64.0f};  // round x * 64 once: 0.64, -32, 211.2, 448
  double amax = fp8emu::quantize(fp8emu::formats::e4m3fn{}, x, codes, ao).amax;
  fp8emu::dequantize(fp8emu::formats::e4m3fn{}, codes, std::span<float>(x), ao);  // / 64
  std::printf("amax %g\n", amax);  // of the input, before scaling
  for (std::size_t i = 0; i < x.size(); ++i)
    std::printf("0x%02X %.9g\n", unsigned(codes[i]), x[i]);  // 0.625/64, -32/64, 208/64, 448/64
}
