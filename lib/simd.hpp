// fp8emu: run-time instruction-set dispatch. The kernels (kernels.hpp, gemm_kernels.hpp)
// are templates on an xsimd architecture tag; each SIMD target instantiates them in its
// own translation unit (simd_<target>.cpp, compiled with that target's -m flags) into
// one KernelTable. simd.cpp picks the best table the CPU can run, once, and the array
// and GEMM drivers call through it. Code compiled for a target is reached only through
// its table, and every function in it is a template on the target's tag, so no copy
// compiled with one target's instructions can stand in for another's (the
// simd_symbols test checks the object files for it).
#pragma once

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
  float* P;            // partial sums of the current segment, M x N
  float* T;            // totals, M x N
  float* col;          // N column factors of the segment
  const float* b_out;  // epilogue column factors
  float* bpack;        // KC x (NC rounded up to nr), aligned to 64 bytes
  float* apack;        // threads x KC x MC, aligned to 64 bytes
};

/// What the NVIDIA matrix-unit kernel reads and writes; gemm_fast.cpp fills it.
struct UnitWork {
  const float *av, *ax;  // A's values and 2^e, row-major (mpad x K)
  const float *bv, *bx;  // B's, row-major (K x npad), aligned to 64 bytes
  std::int64_t npad, mpad;
  float* T;  // mpad x npad totals
  const float* b_out;
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
inline constexpr int kUnitRows = 12;  // rows per register block of the unit kernel
inline constexpr int kAccumRows = 4;  // rows per register block of the accumulator kernels

inline constexpr std::size_t kRoundingCount = option_table<Rounding>::entries.size();

template <class T>
using EncodeFn = std::size_t (*)(const std::uint32_t* in, T* out, std::size_t n,
                                 const EncodePlan& p, std::uint64_t first_index,
                                 std::uint32_t* amax);
using FakeQuantizeFn = std::size_t (*)(const std::uint32_t* in, float* out, std::size_t n,
                                       const EncodePlan& p, const float* table, float scale,
                                       std::uint64_t first_index, std::uint32_t* amax);
template <class T>
using DecodeFn = std::size_t (*)(const T* codes, float* out, std::size_t n, const float* table,
                                 float scale, std::uint32_t* seen);
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
  int unit_cols;         ///< Columns per register block of the unit kernel.
  void (*gemm_float32)(const GemmPlan& pl, const GemmOptions& o, const Float32Work& w,
                       int a_bytes, int b_bytes, float* c, std::int64_t ldc);
  void (*gemm_unit)(const GemmPlan& pl, const GemmOptions& o, const UnitWork& w, float* c,
                    std::int64_t ldc);
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
