// fp8emu: run-time instruction-set dispatch. The kernels (kernels.hpp, gemm_kernels.hpp,
// unit_kernels.hpp) are templates on an xsimd architecture tag; each SIMD target
// instantiates them in its own translation unit (simd_<target>.cpp, compiled with that
// target's -m flags) into one KernelTable. simd.cpp picks the best table the CPU can run, once, and the array
// and GEMM drivers call through it. Code compiled for a target is reached only through
// its table, and every function in it is a template on the target's tag, so no copy
// compiled with one target's instructions can stand in for another's (the
// simd_symbols test checks the object files for it).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fp8emu/convert.hpp"
#include "fp8emu/gemm.hpp"
#include "fp8emu/random.hpp"
#include "gemm_internal.hpp"

namespace fp8emu::detail {

/// The per-call constants of the float32 encoder, all derived from the scalar reference.
struct EncodePlan {
  std::uint32_t M = 0;       // mantissa bits of the target
  std::uint32_t ebase = 0;   // 127 + emin: the float32 biased exponent of the target's emin
  std::uint32_t dconst = 0;  // 23 - M: discarded bits in the target's normal range
  std::uint32_t maxmag = 0, sign_mask = 0;
  std::uint32_t zero_pos = 0, zero_neg = 0, nan_pos = 0, nan_neg = 0;
  std::uint32_t inf_pos = 0, inf_neg = 0, ovf_pos = 0, ovf_neg = 0, unsigned_neg = 0;
  bool is_signed = true, daz = false, ftz = false;
  std::uint32_t n = 0;  // stochastic bits, 1..31
  RandomKey key{};
};

/// How the decode kernels turn a code into float32 bits, derived from the value table
/// and checked against it for every code (array.cpp). With `arithmetic`, a magnitude m
/// (code & mag_mask) of the normal range becomes (m << shift) + offset: its fields moved
/// into float32 position and the exponent rebiased, exact integer steps; m < sub_limit
/// (the zero and the subnormals) becomes float(m) * sub_scale, exact because the value
/// fits float. Magnitudes above nan_above give the default NaN; the sign bit is moved to
/// bit 31; then each of the `specials` codes (full code, sign included) gives its bits.
/// Without `arithmetic`, the kernels look every code up in `table`.
struct DecodePlan {
  static constexpr std::size_t kMaxSpecials = 4;
  const float* table = nullptr;  // 2^16 entries, one per code (NaN past the format)
  bool arithmetic = false;
  std::uint32_t mag_mask = 0, sign_mask = 0, sign_shift = 0;
  std::uint32_t shift = 0, offset = 0, sub_limit = 0;
  float sub_scale = 0;
  std::uint32_t nan_above = 0;
  std::uint32_t specials = 0;
  std::uint32_t special_code[kMaxSpecials] = {}, special_bits[kMaxSpecials] = {};
};

/// The sizes and plan of one GEMM call, shared by the drivers and the kernels.
struct GemmPlan {
  std::int64_t M, N, K, L;
  ScalePlan sp;
  int threads;
};

/// What the float32 GEMM kernel reads and writes; gemm_fast.cpp allocates it.
struct Float32Work {
  const float* ta;  // value tables of A and B (codes of at most 16 bits), else null
  const float* tb;
  Strided sa, sb;
  float* P;            // M x N partial sums of segments longer than a block, else null
  float* T;            // M x N totals between blocks, else null (K in one block or segment)
  const float* a_g;    // epilogue row factors alpha * a_out(i), padded to the register rows
  const float* b_out;  // epilogue column factors, padded to the register columns
  std::int64_t segments;  // the most segments in a block
  float* bpack;        // KC x (NC rounded up to nr), aligned to 64 bytes
  float* cpack;        // segments x (NC rounded up to nr) column factors, aligned to 64 bytes
  float* apack;        // threads x KC x MC, aligned to 64 bytes
  float* rpack;        // threads x segments x MC row factors
};

/// The per-call constants of the float accumulator kernels (gemm_accum_kernels.hpp),
/// every special value derived from the scalar reference (gemm_accum.cpp).
struct AccumPlan {
  int M = 0;                  // mantissa bits of the accumulator format
  int n = 0;                  // stochastic bits, 1..32
  double emin_value = 0;      // 2^emin: the smallest normal value (DAZ, FTZ, the quantum)
  double max_value = 0;       // the largest finite value
  double ovf_pos = 0, ovf_neg = 0;  // a finite result beyond max_value
  double inf_pos = 0, inf_neg = 0;  // an infinite exact result
  double nan_value = 0;             // a NaN exact result
  bool daz = false, ftz = false;
  SumOrder order = SumOrder::sequential;
  bool kahan = false;
  std::int64_t chunk = 0, promote = 0;
  RandomKey key{};
  bool exact = false;         // every sum x + y is exact in float64 lanes (gemm_accum.cpp)
};

/// What the float accumulator kernels read and write; gemm_accum.cpp fills it. Values are
/// of the lane type (float or double), operands flushed under DAZ.
struct AccumWork {
  const void* a;       // mpad x K, row-major
  const void* b;       // npad / cols panels of K x cols, aligned to 64 bytes
  std::int64_t mpad, npad;
  float* T;            // mpad x npad totals
  const float* b_out;  // epilogue column factors
  AccumPlan p;
};

using AccumFn = void (*)(const GemmPlan& pl, const GemmOptions& o, const AccumWork& w, float* c,
                         std::int64_t ldc);

/// The GEMM blocking, the same for every target but the width.
inline constexpr std::int64_t kGemmKC = 256, kGemmNC = 4096;

/// Returns the end of the float32 kernel's K block that starts at k0, for segments of L
/// steps: as many whole segments as fit in kGemmKC steps, or at most kGemmKC steps inside
/// one segment when L is longer.
inline std::int64_t float32_block_end(std::int64_t k0, std::int64_t K, std::int64_t L) {
  const std::int64_t end = L <= kGemmKC ? k0 + kGemmKC / L * L
                                        : std::min(k0 + kGemmKC, (k0 / L + 1) * L);
  return std::min(end, K);
}

// The matrix-unit kernels (unit_kernels.hpp; unit_fast.cpp fills their work).

/// Register block of the unit kernels (rows x vectors of columns); rows of A and columns
/// of B per cache block; products per chunk of K (a chunk is whole blocks).
inline constexpr int kUnitRows = 3, kUnitVectors = 2;
inline constexpr std::int64_t kUnitMC = 64, kUnitNC = 512, kUnitKC = 128;

/// One block of products [b0, b1) of the segment that starts at s0.
struct UnitSpan {
  std::int64_t b0, b1, s0;
  bool first, last;  ///< The segment's first / last block.
};

/// What a matrix-unit kernel reads and writes. Its lanes are float or double (the kernel
/// says which); av, ax, bv, bx and chain hold that type.
struct UnitWork {
  const void *av, *ax;  ///< A's values and 2^e, row-major (mpad x K).
  const void *bv, *bx;  ///< B's, in panels of the kernel's columns: [npad / cols][K][cols].
  std::int64_t npad, mpad;
  const UnitSpan* blocks;      ///< Every block, in k order.
  const std::int64_t* chunks;  ///< Chunk c is blocks [chunks[c], chunks[c + 1]).
  std::int64_t nchunks;
  void* chain;  ///< mpad x npad: each element's C between chunks.
  float* T;     ///< mpad x npad totals.
  const float* b_out;
  bool overflow;  ///< Products can reach 2^128 (the AMD rule for them applies).
};
using UnitFn = void (*)(const GemmPlan& pl, const GemmOptions& o, const UnitWork& w, float* c,
                        std::int64_t ldc);
inline constexpr int kAccumRows = 4;  // rows per register block of the accumulator kernels

inline constexpr std::size_t kRoundingCount = option_table<Rounding>::entries.size();

template <class T>
using EncodeFn = std::size_t (*)(const std::uint32_t* in, T* out, std::size_t n,
                                 const EncodePlan& p, std::uint64_t first_index,
                                 std::uint32_t* amax);
using FakeQuantizeFn = std::size_t (*)(const std::uint32_t* in, float* out, std::size_t n,
                                       const EncodePlan& p, const DecodePlan& d, float scale,
                                       bool stream, std::uint64_t first_index, std::uint32_t* amax);
template <class T>
using DecodeFn = std::size_t (*)(const T* codes, float* out, std::size_t n, const DecodePlan& d,
                                 float scale, bool stream, std::uint32_t* seen);
using ScaleToOddFn = std::size_t (*)(const float* in, std::size_t n, std::uint32_t* out,
                                     float scale, std::uint32_t* amax);

/// The kernels of one SIMD target. Every kernel does whole batches only and returns how
/// many elements it did; the callers finish with the scalar reference.
struct KernelTable {
  const char* arch_name;       ///< xsimd's name of the architecture ("fma3+avx2").
  std::size_t lanes;           ///< 32-bit lanes of a batch.
  EncodeFn<std::uint8_t> encode8[kRoundingCount];  ///< Indexed by Rounding.
  EncodeFn<std::uint16_t> encode16[kRoundingCount];
  EncodeFn<std::uint32_t> encode32[kRoundingCount];
  FakeQuantizeFn fake_quantize[kRoundingCount];
  DecodeFn<std::uint8_t> decode8;
  DecodeFn<std::uint16_t> decode16;
  DecodeFn<std::uint32_t> decode32;
  /// Float32 x scale rounded to odd at float precision (array.cpp's prepare), for the
  /// targets that have a kernel for it; returns 0 where the target has none.
  ScaleToOddFn scale_to_odd;
  int gemm_mr, gemm_nr;  ///< Register block of the float32 GEMM kernel.
  void (*gemm_float32)(const GemmPlan& pl, const GemmOptions& o, const Float32Work& w,
                       int a_bytes, int b_bytes, float* c, std::int64_t ldc);
  // The matrix-unit kernels (unit_kernels.hpp), buffers 64-byte aligned.
  int unit_cols_float, unit_cols_double;  ///< Columns per register block on float / double lanes.
  UnitFn unit_nvidia_float, unit_nvidia_double, unit_amd_fp8, unit_amd_fp16;
  // The float accumulator kernels (gemm_accum_kernels.hpp), indexed by Rounding: float32
  // lanes and float64 lanes, with the columns of their register blocks.
  int accum_cols, accum_cols_wide;
  AccumFn gemm_accum[kRoundingCount];
  AccumFn gemm_accum_wide[kRoundingCount];
};

/// Returns the encoder of `t` for rounding `r` and code type T.
template <class T>
EncodeFn<T> encode_fn(const KernelTable& t, Rounding r) {
  const std::size_t i = std::size_t(r);
  if constexpr (sizeof(T) == 1) return t.encode8[i];
  else if constexpr (sizeof(T) == 2) return t.encode16[i];
  else return t.encode32[i];
}

/// Returns the decoder of `t` for code type T.
template <class T>
DecodeFn<T> decode_fn(const KernelTable& t) {
  if constexpr (sizeof(T) == 1) return t.decode8;
  else if constexpr (sizeof(T) == 2) return t.decode16;
  else return t.decode32;
}

/// The tables of the targets (simd_<target>.cpp); each is defined only where its target
/// is compiled (FP8EMU_SIMD_<TARGET>, lib/CMakeLists.txt), and runs code of that target:
/// call it only once the CPU is known to have it (simd.cpp).
const KernelTable& kernels_avx512bw();
const KernelTable& kernels_avx2();
const KernelTable& kernels_sse2();

/// Returns the table of the target in use, or null where none is compiled or runs here
/// (then every call takes the scalar reference).
const KernelTable* active_kernels();

/// Counts one call that ran kernels of `t`, for simd_calls().
void note_kernels_used(const KernelTable& t);

/// Writes C from the totals T (leading dimension ldt), inside a parallel region
/// (gemm_fast.cpp, compiled for the baseline; the kernels call it).
void gemm_finish(const GemmPlan& pl, const GemmOptions& o, const float* T, std::int64_t ldt,
                 float* c, std::int64_t ldc, const float* b_out);

}  // namespace fp8emu::detail
