// fp8emu: the KernelTable of one SIMD target. Included only by simd_<target>.cpp, each
// compiled with the target's -m flags (lib/CMakeLists.txt).
#pragma once

#include <utility>

#include "gemm_accum_kernels.hpp"
#include "gemm_kernels.hpp"
#include "unit_kernels.hpp"
#include "kernels.hpp"
#include "simd.hpp"

namespace fp8emu::detail {

/// Returns the kernels of architecture A.
template <class A>
KernelTable make_kernel_table() {
  static_assert(A::supported(), "compile this unit with the -m flags of its architecture");
  using K = ArrayKernels<A>;
  using G = GemmKernels<A>;
  KernelTable t{};
  t.arch_name = A::name();
  t.lanes = K::W;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((t.encode8[I] = &K::template encode<Rounding(I), std::uint8_t>), ...);
    ((t.encode16[I] = &K::template encode<Rounding(I), std::uint16_t>), ...);
    ((t.encode32[I] = &K::template encode<Rounding(I), std::uint32_t>), ...);
    ((t.fake_quantize[I] = &K::template fake_quantize<Rounding(I)>), ...);
    // The float accumulator kernels, float32 and float64 lanes.
    ((t.gemm_accum[I] = &AccumKernels<A, float>::template run<Rounding(I)>), ...);
    ((t.gemm_accum_wide[I] = &AccumKernels<A, double>::template run<Rounding(I)>), ...);
  }(std::make_index_sequence<kRoundingCount>{});
  t.decode8 = &K::template decode<std::uint8_t>;
  t.decode16 = &K::template decode<std::uint16_t>;
  t.decode32 = &K::template decode<std::uint32_t>;
  t.scale_to_odd = &K::scale_to_odd;
  t.gemm_mr = G::MR;
  t.gemm_nr = G::NR;
  t.gemm_float32 = &G::float32;
  // The matrix-unit kernels.
  using U = UnitKernels<A>;
  t.unit_cols_float = U::template kCols<float>;
  t.unit_cols_double = U::template kCols<double>;
  t.unit_nvidia_float = &U::nvidia_float;
  t.unit_nvidia_double = &U::nvidia_double;
  t.unit_amd_fp8 = &U::template amd<UnitRule::amd_fp8>;
  t.unit_amd_fp16 = &U::template amd<UnitRule::amd_fp16>;
  t.accum_cols = AccumKernels<A, float>::COLS;  // the float accumulator kernels
  t.accum_cols_wide = AccumKernels<A, double>::COLS;
  return t;
}

}  // namespace fp8emu::detail
