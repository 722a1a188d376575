#include <fp8emu/convert.hpp>
#include <cstdio>

int main() {
  const fp8emu::Format f = fp8emu::parse_format("e4m3fn");
  const std::uint32_t c = fp8emu::encode(f, 3.3);
  std::printf("e4m3fn(3.3) = 0x%02X = %g\n", c, fp8emu::decode(f, c));
  return c == 0x45 ? 0 : 1;
}
