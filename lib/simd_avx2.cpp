// fp8emu: the kernels compiled for AVX2 and FMA (-mavx2 -mfma: lib/CMakeLists.txt).
#include "simd_kernels.hpp"

namespace fp8emu::detail {

const KernelTable& kernels_avx2() {
  static const KernelTable table = make_kernel_table<xsimd::fma3<xsimd::avx2>>();
  return table;
}

}  // namespace fp8emu::detail
