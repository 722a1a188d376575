// A (2 x 64) and B (64 x 2) quantized to e4m3fn with MX scales (blocks of 32 along K, e8m0)
// by quantize_matrix, then multiplied by gemm with the scales as they come. Every value
// here is a power of two, so the codes are exact and C is the exact product.
#include <fp8emu/gemm.hpp>
#include <fp8emu/quantize_matrix.hpp>

#include <cstdint>
#include <cstdio>
#include <vector>

int main() {
  const std::int64_t M = 2, K = 64, N = 2;
  std::vector<float> a(M * K), b(K * N);  // both row-major
  for (std::int64_t k = 0; k < K; ++k) {
    a[k] = 1024.0f;         // row 0: a block amax far above e4m3fn's 448
    a[K + k] = 0.0078125f;  // row 1: 2^-7
    b[k * N] = 1.0f;
    b[k * N + 1] = k < 32 ? 2.0f : 0.5f;
  }
  fp8emu::MatrixQuantizeOptions oa, ob;
  oa.scaling = ob.scaling = fp8emu::MatrixScaling::mx;
  ob.operand = fp8emu::Operand::b;  // K runs along B's rows
  const auto qa = fp8emu::quantize_matrix({a.data(), M, K}, fp8emu::formats::e4m3fn{}, oa);
  const auto qb = fp8emu::quantize_matrix({b.data(), K, N}, fp8emu::formats::e4m3fn{}, ob);
  std::printf("A: amax %g, e8m0 scale codes %u %u\n", qa.amax, unsigned(qa.code_scales[0]),
              unsigned(qa.code_scales[2]));

  fp8emu::GemmOptions o;
  o.a_scales = qa.scales();
  o.b_scales = qb.scales();
  std::vector<float> c(M * N);
  fp8emu::gemm(qa.matrix(), qb.matrix(), c.data(), N, o);
  std::printf("%g %g\n%g %g\n", c[0], c[1], c[2], c[3]);
}
