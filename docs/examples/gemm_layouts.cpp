// Operands of different formats and layouts: A (2 x 3) e4m3fn row-major, B (3 x 2) e5m2
// column-major. Every product and sum here is exact, so C is the exact product:
// [1 2 3; 4 5 6] [1 0.5; 2 -1; 0.25 4] = [5.75 10.5; 15.5 21].
#include <fp8emu/convert.hpp>
#include <fp8emu/gemm.hpp>

#include <cstdint>
#include <cstdio>
#include <vector>

int main() {
  const std::int64_t M = 2, K = 3, N = 2;
  std::vector<std::uint8_t> a_codes, b_codes;
  for (double x : {1.0, 2.0, 3.0, 4.0, 5.0, 6.0})  // row by row
    a_codes.push_back(fp8emu::encode(fp8emu::formats::e4m3fn{}, x));
  for (double x : {1.0, 2.0, 0.25, 0.5, -1.0, 4.0})  // column by column
    b_codes.push_back(fp8emu::encode(fp8emu::formats::e5m2{}, x));
  std::vector<float> c(M * N);

  fp8emu::CodeMatrix a{fp8emu::formats::e4m3fn{}, a_codes.data(), M, K};
  fp8emu::CodeMatrix b{fp8emu::formats::e5m2{}, b_codes.data(), K, N, fp8emu::Layout::col_major};
  fp8emu::GemmOptions o;
  o.accumulation = fp8emu::parse_accumulation("nvidia-h100-fp8,promote=128");
  fp8emu::gemm(a, b, c.data(), N, o);
  std::printf("%g %g\n%g %g\n", c[0], c[1], c[2], c[3]);
}
