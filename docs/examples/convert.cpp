// One value to e4m3fn and back, with nearest-even and with stochastic rounding.
#include <fp8emu/convert.hpp>

#include <cstdint>
#include <cstdio>

int main() {
  fp8emu::Format f = fp8emu::parse_format("e4m3fn");  // or fp8emu::formats::e4m3fn{}
  std::uint32_t c = fp8emu::encode(f, 3.3);           // 0x45: 3.3 lies between 3.25 and 3.5
  double v = fp8emu::decode(f, c);                    // 3.25
  std::printf("e4m3fn(3.3) = 0x%02X = %g\n", unsigned(c), v);

  // StochasticA with 8 random bits R: 3.3 is 0.2 of the way from 3.25 to 3.5, so it rounds
  // up when floor(0.2 * 256) + R = 51 + R reaches 256, that is for R >= 205.
  fp8emu::ConvertOptions o{.rounding = fp8emu::Rounding::stochastic_a,
                           .saturation = fp8emu::Saturation::none,
                           .stochastic_bits = 8};
  for (std::uint32_t r : {0u, 204u, 205u, 255u})
    std::printf("R = %3u: 0x%02X\n", unsigned(r), unsigned(fp8emu::encode(f, 3.3, o, r)));
}
