// fp8hw device kernels: PTX conversions and FP8 matrix instructions, one instruction
// form per kernel, with operands laid out as the PTX ISA specifies:
//  - cvt: PTX ISA 9.7.9.21 (cvt): "cvt.rn.satfinite.f8x2type.f32 d, a, b" puts the
//    conversion of a in the upper half of d and of b in the lower half; the f16x2 forms
//    convert each half to the byte of the same position;
//  - mma.sync m16n8k32 (.e4m3): PTX ISA 9.7.14.5, "Matrix Fragments for mma.m16n8k32";
//  - wgmma m64nNk32 (.e4m3): PTX ISA 9.7.15, shared-memory matrix descriptors and the
//    canonical K-major layout without swizzling (8 x 16-byte core matrices).
#include <cstdint>

#include <cuda_runtime.h>

#include "kernels.hpp"

namespace fp8hw {

namespace {

__global__ void cvt_f32_kernel(int fmt, std::uint32_t first, std::uint32_t pairs, std::uint16_t* out) {
  const std::uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= pairs) return;
  const float lo = __uint_as_float(first + 2 * i), hi = __uint_as_float(first + 2 * i + 1);
  std::uint16_t r;
  if (fmt == 0) asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(r) : "f"(hi), "f"(lo));
  else asm("cvt.rn.satfinite.e5m2x2.f32 %0, %1, %2;" : "=h"(r) : "f"(hi), "f"(lo));
  out[i] = r;  // little-endian: byte 2i is the code of pattern first + 2i
}

__global__ void cvt_f16_kernel(int fmt, std::uint16_t* out) {
  const std::uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= 32768) return;
  const std::uint32_t in = (2 * i) | ((2 * i + 1) << 16);  // pattern 2i in the lower half
  std::uint16_t r;
  if (fmt == 0) asm("cvt.rn.satfinite.e4m3x2.f16x2 %0, %1;" : "=h"(r) : "r"(in));
  else asm("cvt.rn.satfinite.e5m2x2.f16x2 %0, %1;" : "=h"(r) : "r"(in));
  out[i] = r;
}

__global__ void cvt_to_f16_kernel(int fmt, std::uint32_t* out) {
  const std::uint32_t i = threadIdx.x;
  if (i >= 128) return;
  const std::uint16_t in = std::uint16_t((2 * i) | ((2 * i + 1) << 8));  // code 2i in the lower byte
  std::uint32_t r;
  if (fmt == 0) asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(r) : "h"(in));
  else asm("cvt.rn.f16x2.e5m2x2 %0, %1;" : "=r"(r) : "h"(in));
  out[i] = r;
}

__device__ __forceinline__ std::uint32_t load4(const std::uint8_t* p) {
  return *reinterpret_cast<const std::uint32_t*>(p);
}

// One warp per 16 x 8 tile of D; the accumulator starts at +0 and is carried from one
// instruction to the next, as a GEMM kernel chains them.
__global__ void mma_gemm_kernel(const std::uint8_t* a, const std::uint8_t* bt, float* d, int m, int n, int k) {
  const int lane = threadIdx.x & 31;
  const int warp = int((blockIdx.x * blockDim.x + threadIdx.x) >> 5);
  const int tiles_n = n / 8;
  const int tm = warp / tiles_n, tn = warp % tiles_n;
  if (tm * 16 >= m) return;  // the whole warp
  const int g = lane >> 2, t = lane & 3;  // groupID, threadID_in_group
  float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int k0 = 0; k0 < k; k0 += 32) {
    // A: a0..a3 row g, k 4t..4t+3; a4..a7 row g+8; a8..a11 row g, k 16+4t..; a12..a15 row g+8.
    const std::uint8_t* r0 = a + std::size_t(tm * 16 + g) * k + k0;
    const std::uint8_t* r1 = r0 + std::size_t(8) * k;
    const std::uint32_t a0 = load4(r0 + 4 * t), a1 = load4(r1 + 4 * t);
    const std::uint32_t a2 = load4(r0 + 16 + 4 * t), a3 = load4(r1 + 16 + 4 * t);
    // B: b0..b3 k 4t..4t+3, b4..b7 k 16+4t.., column g.
    const std::uint8_t* col = bt + std::size_t(tn * 8 + g) * k + k0;
    const std::uint32_t b0 = load4(col + 4 * t), b1 = load4(col + 16 + 4 * t);
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  }
  // D: c0, c1 row g, columns 2t, 2t+1; c2, c3 row g+8.
  float* out = d + std::size_t(tm * 16 + g) * n + tn * 8 + 2 * t;
  out[0] = c[0], out[1] = c[1];
  out[std::size_t(8) * n] = c[2], out[std::size_t(8) * n + 1] = c[3];
}

// A shared-memory matrix descriptor (PTX ISA, "Matrix Descriptor Format"): start address,
// leading-dimension byte offset (between core matrices adjacent along K) and stride
// byte offset (between core matrices adjacent along M or N), each in units of 16 bytes;
// base offset 0 and swizzle mode 0 (none).
__device__ __forceinline__ std::uint64_t smem_descriptor(const void* p, std::uint32_t lbo, std::uint32_t sbo) {
  const auto addr = std::uint32_t(__cvta_generic_to_shared(p));
  return std::uint64_t((addr & 0x3FFFF) >> 4) | (std::uint64_t(lbo >> 4) << 16) |
         (std::uint64_t(sbo >> 4) << 32);
}

// One warpgroup (128 threads) per 64 x 8 tile of D.
__global__ void wgmma_gemm_kernel(const std::uint8_t* a, const std::uint8_t* bt, float* d, int m, int n, int k) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  // Core matrix (row group i, k half j) of A at (2i + j) * 128 bytes, its row r at +16 r:
  // LBO (along K) = 128 bytes, SBO (along M) = 256 bytes. B (8 x 32): LBO 128.
  __shared__ alignas(128) std::uint8_t sa[64 * 32];
  __shared__ alignas(128) std::uint8_t sb[8 * 32];
  const int tid = threadIdx.x;
  const int m0 = blockIdx.y * 64, n0 = blockIdx.x * 8;
  float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int k0 = 0; k0 < k; k0 += 32) {
    // 1. Stage the tiles, 16 bytes per thread and step.
    {
      const int row = tid >> 1, half = tid & 1;  // 128 pieces of A
      const uint4 v = *reinterpret_cast<const uint4*>(a + std::size_t(m0 + row) * k + k0 + 16 * half);
      *reinterpret_cast<uint4*>(sa + ((row >> 3) * 2 + half) * 128 + (row & 7) * 16) = v;
      if (tid < 16) {
        const uint4 w = *reinterpret_cast<const uint4*>(bt + std::size_t(n0 + row) * k + k0 + 16 * half);
        *reinterpret_cast<uint4*>(sb + half * 128 + row * 16) = w;
      }
    }
    __syncthreads();
    // 2. Make the generic-proxy stores visible to the async proxy that wgmma reads with.
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    const std::uint64_t da = smem_descriptor(sa, 128, 256), db = smem_descriptor(sb, 128, 256);
    // 3. One instruction: D = A B + D (scale-d = 1 from a zero accumulator, as mma.sync).
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
    asm volatile(
        "{\n"
        ".reg .pred p;\n"
        "setp.ne.b32 p, %6, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n8k32.f32.e4m3.e4m3 {%0, %1, %2, %3}, %4, %5, p, 1, 1;\n"
        "}\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "l"(da), "l"(db), "r"(1));
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    __syncthreads();  // the tiles are read before the next step overwrites them
  }
  // 4. D: warp w holds rows 16w..16w+15 in the m16n8 accumulator layout.
  const int w = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  float* out = d + std::size_t(m0 + 16 * w + g) * n + n0 + 2 * t;
  out[0] = c[0], out[1] = c[1];
  out[std::size_t(8) * n] = c[2], out[std::size_t(8) * n + 1] = c[3];
#else
  // Built for a target without wgmma: report it instead of computing garbage.
  if (threadIdx.x == 0 && blockIdx.x == 0 && blockIdx.y == 0) __trap();
#endif
}

unsigned blocks_for(std::uint64_t threads, unsigned per_block) {
  return unsigned((threads + per_block - 1) / per_block);
}

}  // namespace

int launch_cvt_f32(Fp8 f, std::uint32_t first_bits, std::uint32_t pairs, std::uint8_t* out) {
  cvt_f32_kernel<<<blocks_for(pairs, 256), 256>>>(int(f), first_bits, pairs, reinterpret_cast<std::uint16_t*>(out));
  return int(cudaGetLastError());
}

int launch_cvt_f16(Fp8 f, std::uint8_t* out) {
  cvt_f16_kernel<<<128, 256>>>(int(f), reinterpret_cast<std::uint16_t*>(out));
  return int(cudaGetLastError());
}

int launch_cvt_to_f16(Fp8 f, std::uint16_t* out) {
  cvt_to_f16_kernel<<<1, 128>>>(int(f), reinterpret_cast<std::uint32_t*>(out));
  return int(cudaGetLastError());
}

int launch_mma_gemm(const std::uint8_t* a, const std::uint8_t* bt, float* d, int m, int n, int k) {
  const std::uint64_t warps = std::uint64_t(m / 16) * std::uint64_t(n / 8);
  mma_gemm_kernel<<<blocks_for(warps * 32, 128), 128>>>(a, bt, d, m, n, k);
  return int(cudaGetLastError());
}

int launch_wgmma_gemm(const std::uint8_t* a, const std::uint8_t* bt, float* d, int m, int n, int k) {
  wgmma_gemm_kernel<<<dim3(unsigned(n / 8), unsigned(m / 64)), 128>>>(a, bt, d, m, n, k);
  return int(cudaGetLastError());
}

}  // namespace fp8hw
