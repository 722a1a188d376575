// The Float<> value type: each operation is rounded once to the format.
#include <fp8emu/value.hpp>

#include <cstdio>

int main() {
  using E4 = fp8emu::Float<fp8emu::formats::e4m3fn>;
  // 0.3 rounds to 0.3125; 3 * 0.3125 = 0.9375 is exact; 0.9375 + 1 = 1.9375 is a tie
  // between 1.875 and 2, and goes to the even code, 2.
  E4 x = E4(3.0) * E4(0.3) + E4(1.0);
  std::printf("%g (code 0x%02X); in double 3 * 0.3 + 1 = %g\n", double(x), unsigned(x.code()),
              3.0 * 0.3 + 1.0);
}
