// fp8emu: array conversions (quantize, dequantize, fake-quantize), SIMD and threaded.
//
// Every function here gives, element for element, the bits of the scalar reference in
// convert.hpp: element i of quantize is
//   encode_scaled(f, x[i], scale, opts.convert, random_bits(key, first_index + i))
// with key = random_key(seed, stream) (random.hpp). DAZ judges x[i] in its own type
// (float16 subnormals are not float32 subnormals). The fast paths (xsimd kernels,
// OpenMP chunks) are tested against that definition bit for bit; configurations the
// kernels do not cover run the reference loop itself, still in parallel.
// docs/arrays.md describes each option at its edges.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fp8emu/convert.hpp"
#include "fp8emu/format.hpp"
#include "fp8emu/random.hpp"

namespace fp8emu {

/// Says how an array call runs; nothing here changes its result.
struct Execution {
  int threads = 0;                            ///< OpenMP threads; 0 means omp_get_max_threads().
  std::size_t parallel_threshold = 1u << 16;  ///< Fewer elements than this run on one thread.
  std::size_t chunk = 1u << 14;               ///< Elements per unit of parallel work (>= 1).
  bool simd = true;                           ///< false runs the scalar reference loop.
  /// Float outputs of at least this many bytes (dequantize, fake_quantize) go out with
  /// non-temporal stores: larger than common last-level caches, they would only evict
  /// other data on their way to memory, and such stores skip reading each line first.
  std::size_t stream_bytes = std::size_t{32} << 20;
};

/// Describes an array conversion: the scalar options plus scale and random stream.
struct ArrayOptions {
  ConvertOptions convert{};       ///< Rounding, overflow, NaN, DAZ / FTZ, stochastic bits.
  float scale = 1.0f;             ///< Quantize rounds x * scale; dequantize returns value / scale.
  std::uint64_t seed = 0;         ///< Stochastic rounding: the random bits of element i are
  std::uint64_t stream = 0;       ///<   random_bits(random_key(seed, stream), first_index + i).
  std::uint64_t first_index = 0;  ///< The index of element 0 (for arrays processed in parts).
  Execution exec{};
};

/// Reports what one pass over the input found.
struct ArrayStats {
  double amax = 0;  ///< max |x| of the input before scaling; NaN if any input is NaN.
  std::uint64_t simd_elements = 0;  ///< Elements the SIMD kernels produced (the scalar
                                    ///< reference produced the others).
};

/// Names the ways an array call can compute its elements.
enum class ArrayPath : std::uint8_t {
  reference,  ///< The scalar reference of convert.hpp, element by element (threaded).
  simd,       ///< The SIMD kernels; the scalar reference finishes each chunk's last
              ///< partial batch.
};

/// Names the array functions, by input and output type, for array_path().
enum class ArrayCall : std::uint8_t {
  quantize_float32,    ///< quantize of float32 values.
  quantize_float16,    ///< quantize_float16_bits.
  quantize_bfloat16,   ///< quantize_bfloat16_bits.
  quantize_float64,    ///< quantize of float64 values.
  quantize_blocks,     ///< quantize_blocks.
  fake_quantize,       ///< fake_quantize.
  dequantize_float32,  ///< dequantize to float32.
  dequantize_float64,  ///< dequantize to float64.
};

/// Returns the path `call` takes for format `f` under `o`: the array functions decide
/// with this function, so what it returns is what runs.
ArrayPath array_path(ArrayCall call, const Format& f, const ArrayOptions& o);

/// Returns the name of `p` ("reference", "simd").
std::string_view array_path_name(ArrayPath p);

/// Quantizes float32 values to codes of `f` (uint8 for formats of at most 8 bits, uint16
/// up to 16, uint32 up to 32). Throws std::invalid_argument for sizes that differ, a code
/// type too narrow for `f`, a scale that is not finite and > 0, or bad stochastic bits.
ArrayStats quantize(const Format& f, std::span<const float> in, std::span<std::uint8_t> out,
                    const ArrayOptions& o = {});
ArrayStats quantize(const Format& f, std::span<const float> in, std::span<std::uint16_t> out,
                    const ArrayOptions& o = {});
ArrayStats quantize(const Format& f, std::span<const float> in, std::span<std::uint32_t> out,
                    const ArrayOptions& o = {});
/// A row-major rows x cols matrix split into blocks of block_rows x block_cols (0: the
/// whole dimension; edge blocks may be smaller), with one scale per block, row-major over
/// the grid of blocks (as OCP MX and DeepSeek-V3's 1x128 / 128x128 scaling).
struct BlockScales {
  std::int64_t rows = 0, cols = 0;
  std::int64_t block_rows = 1, block_cols = 0;
  std::span<const float> scales;
};

/// Quantizes a row-major float32 matrix with one scale per block: element (r, c) gets
/// exactly the code quantize gives it when called on its block alone with that scale
/// (o.scale is ignored) and first_index + r cols + c as its index. Throws as quantize,
/// and std::invalid_argument for sizes that do not match or a scale not finite and > 0.
ArrayStats quantize_blocks(const Format& f, std::span<const float> in, const BlockScales& b,
                           std::span<std::uint8_t> out, const ArrayOptions& o = {});
ArrayStats quantize_blocks(const Format& f, std::span<const float> in, const BlockScales& b,
                           std::span<std::uint16_t> out, const ArrayOptions& o = {});
ArrayStats quantize_blocks(const Format& f, std::span<const float> in, const BlockScales& b,
                           std::span<std::uint32_t> out, const ArrayOptions& o = {});
/// Quantizes float64 values to codes of `f` (the exact reference loop, threaded).
ArrayStats quantize(const Format& f, std::span<const double> in, std::span<std::uint8_t> out,
                    const ArrayOptions& o = {});
ArrayStats quantize(const Format& f, std::span<const double> in, std::span<std::uint16_t> out,
                    const ArrayOptions& o = {});
ArrayStats quantize(const Format& f, std::span<const double> in, std::span<std::uint32_t> out,
                    const ArrayOptions& o = {});
/// Quantizes float16 values, given as their bits, to codes of `f`.
ArrayStats quantize_float16_bits(const Format& f, std::span<const std::uint16_t> in,
                                 std::span<std::uint8_t> out, const ArrayOptions& o = {});
ArrayStats quantize_float16_bits(const Format& f, std::span<const std::uint16_t> in,
                                 std::span<std::uint16_t> out, const ArrayOptions& o = {});
ArrayStats quantize_float16_bits(const Format& f, std::span<const std::uint16_t> in,
                                 std::span<std::uint32_t> out, const ArrayOptions& o = {});
/// Quantizes bfloat16 values, given as their bits, to codes of `f`.
ArrayStats quantize_bfloat16_bits(const Format& f, std::span<const std::uint16_t> in,
                                  std::span<std::uint8_t> out, const ArrayOptions& o = {});
ArrayStats quantize_bfloat16_bits(const Format& f, std::span<const std::uint16_t> in,
                                  std::span<std::uint16_t> out, const ArrayOptions& o = {});
ArrayStats quantize_bfloat16_bits(const Format& f, std::span<const std::uint16_t> in,
                                  std::span<std::uint32_t> out, const ArrayOptions& o = {});

/// Decodes codes of `f` to value / scale, rounded once to the output type; the stats
/// count the elements the SIMD kernels produced (amax is 0). Throws std::out_of_range for
/// a code wider than `f` (the output is then unspecified) and std::domain_error for float
/// output when the values of `f` do not fit in float.
ArrayStats dequantize(const Format& f, std::span<const std::uint8_t> codes, std::span<float> out,
                      const ArrayOptions& o = {});
ArrayStats dequantize(const Format& f, std::span<const std::uint16_t> codes, std::span<float> out,
                      const ArrayOptions& o = {});
ArrayStats dequantize(const Format& f, std::span<const std::uint32_t> codes, std::span<float> out,
                      const ArrayOptions& o = {});
ArrayStats dequantize(const Format& f, std::span<const std::uint8_t> codes, std::span<double> out,
                      const ArrayOptions& o = {});
ArrayStats dequantize(const Format& f, std::span<const std::uint16_t> codes, std::span<double> out,
                      const ArrayOptions& o = {});
ArrayStats dequantize(const Format& f, std::span<const std::uint32_t> codes, std::span<double> out,
                      const ArrayOptions& o = {});

/// Rounds float32 values to `f` and back: out[i] = decode(quantize(x[i])) / scale, the
/// division rounded once to float. `in` and `out` may be the same array. Throws as
/// quantize, and std::domain_error when the values of `f` do not fit in float.
ArrayStats fake_quantize(const Format& f, std::span<const float> in, std::span<float> out,
                         const ArrayOptions& o = {});

/// Names the ways the SIMD kernels of dequantize and fake_quantize turn codes into floats.
enum class Decoder : std::uint8_t {
  arithmetic,  ///< Integer steps and one exact multiply; a few special codes by compares.
  table,       ///< A lookup of every code in the value table (a gather).
};

/// Returns the decoder the SIMD kernels use for codes of `f` (at most 16 bits) wherever
/// array_path() sends dequantize or fake_quantize to them: arithmetic when its steps give
/// the bits of value_table(f) for every code (checked once per format), else the table.
/// Throws std::invalid_argument for a wider format.
Decoder simd_decoder(const Format& f);

/// Returns the name of `d` ("arithmetic", "table").
std::string_view decoder_name(Decoder d);

/// Returns the value of every code of `f` (at most 16 bits) rounded to float (exact when
/// fits_float(f)), indexed by code; built once per format and kept for the process.
/// Throws std::invalid_argument for a wider format.
const std::vector<float>& value_table(const Format& f);

/// Returns the SIMD targets compiled into this build, best first ("avx512bw", "avx2",
/// "sse2" on x86; empty on other processors, where every call takes the scalar reference).
std::vector<std::string_view> simd_targets();

/// Returns true when this CPU can run target `name` ("none", the scalar reference, always).
bool simd_target_runs(std::string_view name);

/// Returns the target whose kernels the array and GEMM fast paths use: the best target of
/// simd_targets() this CPU runs, chosen once on first use, unless the environment variable
/// FP8EMU_SIMD_TARGET or set_simd_target names another; "none" when no target is compiled
/// in or runs here. Throws std::invalid_argument when FP8EMU_SIMD_TARGET names a target
/// that is not compiled in or that this CPU cannot run.
std::string_view simd_target();

/// Makes later array and GEMM calls use target `name` ("none": no SIMD kernels; "": the
/// automatic choice again). Throws std::invalid_argument for a target that is not
/// compiled in or that this CPU cannot run. Not to be called while other threads run
/// array or GEMM calls.
void set_simd_target(std::string_view name);

/// Returns how many array and GEMM calls ran kernels of target `name` in this process.
/// Throws std::invalid_argument for a target that is not compiled in.
std::uint64_t simd_calls(std::string_view name);

/// Returns the line the programs print for --version: "simd: avx2 (compiled: avx512bw
/// avx2 sse2)", the target in use and those compiled in. Throws as simd_target().
std::string simd_summary();

/// Returns xsimd's name of the architecture of simd_target() ("avx512bw", "fma3+avx2",
/// "sse2"; "none").
const char* simd_arch_name();

}  // namespace fp8emu
