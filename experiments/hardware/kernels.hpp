// fp8hw: the device kernels of the hardware harness, behind plain C++ launchers (no CUDA
// types), so that the host code is ordinary C++20 compiled by g++ against fp8emu.
//
// Every launcher returns cudaGetLastError() after its launch as an int (cudaError_t);
// the caller checks it (cuda_check.hpp).
#pragma once

#include <cstdint>

namespace fp8hw {

/// FP8 formats of the PTX conversions and matrix instructions.
enum class Fp8 : int { e4m3 = 0, e5m2 = 1 };

/// Converts the float32 patterns first_bits + i, i < 2 * pairs, with
/// cvt.rn.satfinite.{e4m3x2,e5m2x2}.f32: out[i] is the code of pattern first_bits + i.
int launch_cvt_f32(Fp8 f, std::uint32_t first_bits, std::uint32_t pairs, std::uint8_t* out);

/// Converts every float16 pattern (65536) with cvt.rn.satfinite.{e4m3x2,e5m2x2}.f16x2:
/// out[i] is the code of float16 pattern i.
int launch_cvt_f16(Fp8 f, std::uint8_t* out);

/// Converts every code (256) to float16 with cvt.rn.f16x2.{e4m3x2,e5m2x2}: out[i] is the
/// float16 bits of code i.
int launch_cvt_to_f16(Fp8 f, std::uint16_t* out);

/// D (M x N, row-major float) = A (M x K, row-major e4m3 codes) times B (given as N x K
/// row-major, K contiguous: B^T), one warp per 16 x 8 tile, chaining K / 32 instructions
/// mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 from a zero accumulator.
/// M % 16 == 0, N % 8 == 0, K % 32 == 0.
int launch_mma_gemm(const std::uint8_t* a, const std::uint8_t* bt, float* d, int m, int n, int k);

/// The same product with one warpgroup per 64 x 8 tile, chaining K / 32 instructions
/// wgmma.mma_async.sync.aligned.m64n8k32.f32.e4m3.e4m3 (operands in shared memory).
/// M % 64 == 0, N % 8 == 0, K % 32 == 0. Needs sm_90a.
int launch_wgmma_gemm(const std::uint8_t* a, const std::uint8_t* bt, float* d, int m, int n, int k);

}  // namespace fp8hw
