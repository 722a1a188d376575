// fp8emu: the kernels compiled for AVX-512 F, CD, BW, DQ and VL (lib/CMakeLists.txt).
#include "simd_kernels.hpp"

namespace fp8emu::detail {

const KernelTable& kernels_avx512bw() {
  static const KernelTable table = make_kernel_table<xsimd::avx512bw>();
  return table;
}

}  // namespace fp8emu::detail
