// A 1 x 32 by 32 x 1 product of e4m3fn codes: 1 * 1 plus 31 products 2^-7 * 2^-7 = 2^-14.
// In float32 the small products count; an H100 tensor core keeps 13 fraction bits below
// the largest term (1), truncating, so each 2^-14 is lost.
#include <fp8emu/convert.hpp>
#include <fp8emu/gemm.hpp>

#include <cstdint>
#include <cstdio>
#include <vector>

int main() {
  const std::int64_t M = 1, K = 32, N = 1;
  const fp8emu::Format e4m3fn = fp8emu::formats::e4m3fn{};
  std::vector<std::uint8_t> a(M * K, fp8emu::encode(e4m3fn, 0x1p-7));  // A: M x K, row-major
  std::vector<std::uint8_t> b(K * N, fp8emu::encode(e4m3fn, 0x1p-7));  // B: K x N, row-major
  a[0] = b[0] = fp8emu::encode(e4m3fn, 1.0);
  std::vector<float> c(M * N);  // C: M x N float32, row-major
  for (const char* spec : {"fp32", "nvidia-h100-fp8", "nvidia-h100-fp8,promote=128"}) {
    // promote=128: the tensor-core sum is added to a float32 total every 128 products
    // (DeepSeek-V3); with K = 32 there is one block, and the result is the same.
    fp8emu::GemmOptions go;
    go.accumulation = fp8emu::parse_accumulation(spec);
    fp8emu::gemm({e4m3fn, a.data(), M, K}, {e4m3fn, b.data(), K, N}, c.data(), N, go);
    std::printf("%-28s %.9g\n", spec, c[0]);  // fp32: 1 + 31 * 2^-14
  }
}
