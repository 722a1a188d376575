// fp8emu: the kernels compiled for SSE2, which every x86-64 processor has (-msse2:
// lib/CMakeLists.txt).
#include "simd_kernels.hpp"

namespace fp8emu::detail {

const KernelTable& kernels_sse2() {
  static const KernelTable table = make_kernel_table<xsimd::sse2>();
  return table;
}

}  // namespace fp8emu::detail
