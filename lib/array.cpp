// fp8emu: the array drivers: argument checks, per-call plans, OpenMP chunks, and the
// split of every chunk into SIMD batches (kernels.hpp) and a scalar tail (convert.hpp).
//
// Scaled inputs: x * scale is computed exactly in double (a float or float16 significand
// times a float one has at most 48 bits), then rounded to odd at float precision
// (Boldo and Melquiond, "Emulation of FMA and correctly rounded sums: proved algorithms
// using rounding to odd", IEEE TC 2008). Rounding that float once more to a format with
// at least k fewer bits, where k = 2 for the deterministic modes and N + 2 for N-bit
// stochastic rounding, gives the same result as rounding the exact product once;
// simd_covers() admits a scaled call only when k such bits exist at every magnitude.
//
// array_path() is the one place that decides which path a call takes; every function
// below asks it, and counts the elements its SIMD kernels produce (ArrayStats). The
// kernels are those of the SIMD target in use (simd.hpp), fetched once per call.
#include "fp8emu/array.hpp"

#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "simd.hpp"

namespace fp8emu {
namespace {

using detail::EncodePlan;
using detail::KernelTable;

// ---------------------------------------------------------------------------------------
// Checks and plans.

// The checks every array call shares: the format, equal sizes, the scale, the chunk.
void check_common(const Format& f, std::size_t n_in, std::size_t n_out, const ArrayOptions& o) {
  if (auto err = check(f)) throw std::invalid_argument("invalid format: " + *err);
  if (n_in != n_out)
    throw std::invalid_argument("the input has " + std::to_string(n_in) +
                                " elements but the output has " + std::to_string(n_out));
  if (!(o.scale > 0.0f && o.scale <= std::numeric_limits<float>::max()))
    throw std::invalid_argument("the scale must be finite and greater than zero");
  if (o.exec.chunk == 0) throw std::invalid_argument("the chunk size must be at least 1");
}

void check_call(const Format& f, std::size_t n_in, std::size_t n_out, int code_bits,
                const ArrayOptions& o) {
  check_common(f, n_in, n_out, o);
  if (total_bits(f) > code_bits)
    throw std::invalid_argument("codes of " + format_name(f) + " need " +
                                std::to_string(total_bits(f)) + " bits; the code array has " +
                                std::to_string(code_bits));
  if (is_stochastic(o.convert.rounding)) validate(o.convert);
}

EncodePlan make_plan(const Format& f, const ArrayOptions& o, bool daz_in_kernel) {
  const ConvertOptions& c = o.convert;
  EncodePlan p;
  p.M = std::uint32_t(f.mantissa_bits);
  p.ebase = std::uint32_t(127 + emin(f));
  p.dconst = 23 - p.M;
  p.maxmag = max_magnitude_code(f);
  p.sign_mask = f.is_signed ? sign_mask(f) : 0;
  p.zero_pos = detail::zero_code(f, false);
  p.zero_neg = detail::zero_code(f, true);
  p.nan_pos = detail::nan_input_code(f, false, c.nan);
  p.nan_neg = detail::nan_input_code(f, true, c.nan);
  p.inf_pos = detail::overflow_code(f, false, true, c);
  p.inf_neg = detail::overflow_code(f, true, true, c);
  p.ovf_pos = detail::overflow_code(f, false, false, c);
  p.ovf_neg = detail::overflow_code(f, true, false, c);
  p.unsigned_neg = detail::signed_nan_code(f, false);
  p.is_signed = f.is_signed;
  p.daz = c.flush_inputs && daz_in_kernel;
  p.ftz = c.flush_outputs && has_subnormals(f);
  p.n = is_stochastic(c.rounding) ? std::uint32_t(c.stochastic_bits) : 0;
  p.key = random_key(o.seed, o.stream);
  return p;
}

// The kernels a call on `path` runs (null for the reference), counted as used.
const KernelTable* simd_kernels(ArrayPath path) {
  if (path != ArrayPath::simd) return nullptr;
  const KernelTable* t = detail::active_kernels();
  if (t) detail::note_kernels_used(*t);
  return t;
}

// What one chunk (or a whole call) found: the largest bit pattern seen (amax bits, or
// the OR of the codes) and how many elements the SIMD kernels produced.
struct Pass {
  std::uint64_t max = 0;
  std::uint64_t simd = 0;
};

// Runs body(begin, end) over chunks of `ex.chunk` elements, on several threads when the
// array is large enough; returns the largest `max` and the sum of `simd` of the bodies.
template <class Body>
Pass for_chunks(std::size_t n, const Execution& ex, Body&& body) {
  const std::size_t chunk = ex.chunk;
  const std::size_t count = n / chunk + (n % chunk != 0);
  int threads = ex.threads > 0 ? ex.threads : omp_get_max_threads();
  if (n < ex.parallel_threshold) threads = 1;
  std::uint64_t m = 0, v = 0;
  if (threads <= 1 || count <= 1) {
    for (std::size_t c = 0; c < count; ++c) {
      const Pass p = body(c * chunk, std::min(n, (c + 1) * chunk));
      m = std::max(m, p.max);
      v += p.simd;
    }
    return {m, v};
  }
#pragma omp parallel for num_threads(threads) schedule(static) reduction(max : m) reduction(+ : v)
  for (std::ptrdiff_t c = 0; c < std::ptrdiff_t(count); ++c) {
    const std::size_t b = std::size_t(c) * chunk;
    const Pass p = body(b, std::min(n, b + chunk));
    m = std::max(m, p.max);
    v += p.simd;
  }
  return {m, v};
}

// The ArrayStats of a pass whose `max` holds float32 amax bits.
ArrayStats float_stats(const Pass& p) {
  return {double(std::bit_cast<float>(std::uint32_t(p.max))), p.simd};
}

// ---------------------------------------------------------------------------------------
// Input types: how each widens exactly to float32 bits, and its scalar reference.

bool float_subnormal(std::uint32_t b) { return (b & 0x7F800000u) == 0 && (b & 0x7FFFFFu) != 0; }

std::uint32_t float16_to_float_bits(std::uint16_t h) {
  const std::uint32_t s = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
  if (e == 0x1F) return s | 0x7F800000u | (m << 13);
  if (e != 0) return s | ((e + 112) << 23) | (m << 13);
  return s | std::bit_cast<std::uint32_t>(float(m) * 0x1p-24f);  // exact: m < 2^10
}

struct FloatSource {
  using T = float;
  static constexpr ArrayCall call = ArrayCall::quantize_float32;
  static std::uint32_t bits(float x) { return std::bit_cast<std::uint32_t>(x); }
  static bool subnormal(float x) { return float_subnormal(bits(x)); }
};
struct Float16Source {
  using T = std::uint16_t;
  static constexpr ArrayCall call = ArrayCall::quantize_float16;
  static std::uint32_t bits(std::uint16_t h) { return float16_to_float_bits(h); }
  static bool subnormal(std::uint16_t h) { return (h & 0x7C00u) == 0 && (h & 0x3FFu) != 0; }
};
struct BFloat16Source {
  using T = std::uint16_t;
  static constexpr ArrayCall call = ArrayCall::quantize_bfloat16;
  static std::uint32_t bits(std::uint16_t b) { return std::uint32_t(b) << 16; }
  static bool subnormal(std::uint16_t b) { return (b & 0x7F80u) == 0 && (b & 0x7Fu) != 0; }
};

// The reference for one element: convert.hpp's encode of x * scale, rounded once.
template <class Src>
std::uint32_t reference(const Format& f, typename Src::T x, const ArrayOptions& o,
                        const RandomKey& key, std::uint64_t index) {
  const std::uint32_t r = is_stochastic(o.convert.rounding) ? random_bits(key, index) : 0;
  const double v = double(std::bit_cast<float>(Src::bits(x)));
  return detail::encode_scaled_status(f, v, Src::subnormal(x), o.scale, o.convert, r).code;
}

// Rounds the exact product p (finite) to float with round-to-odd, keeping the sign.
std::uint32_t round_to_odd_float(double p) {
  const float rn = float(p);
  std::uint32_t b = std::bit_cast<std::uint32_t>(rn);
  const double back = double(rn);
  if (back != p) {
    if (std::fabs(back) > std::fabs(p)) b -= 1;  // one step toward zero: the truncation
    b |= 1;                                       // the odd neighbour
  }
  return b;
}

// Widens n inputs to the float32 bits the kernel reads: DAZ applied in the input's own
// type where `flush`, then x * scale rounded to odd where `scaled`. Returns max |x| bits.
// The kernels of `kernels`, where given, widen what they can.
template <class Src>
std::uint32_t prepare(const KernelTable* kernels, const typename Src::T* in, std::size_t n,
                      std::uint32_t* out, bool flush, bool scaled, float scale) {
  std::uint32_t m = 0;
  std::size_t j = 0;
  bool kernel = false;
  if constexpr (std::is_same_v<Src, FloatSource>) kernel = kernels && scaled && !flush;
  while (true) {
    // The kernel where it applies, one batch by the scalar loop where it stops.
    if constexpr (std::is_same_v<Src, FloatSource>)
      if (kernel) j += kernels->scale_to_odd(in + j, n - j, out + j, scale, &m);
    for (const std::size_t stop = kernel ? std::min(n, j + kernels->lanes) : n; j < stop; ++j) {
      std::uint32_t b = Src::bits(in[j]);
      m = std::max(m, b & 0x7FFFFFFFu);
      if (flush && Src::subnormal(in[j])) b &= 0x80000000u;
      if (scaled && (b & 0x7FFFFFFFu) <= 0x7F800000u)
        b = round_to_odd_float(double(std::bit_cast<float>(b)) * double(scale));
      out[j] = b;
    }
    if (j == n) return m;
  }
}

// ---------------------------------------------------------------------------------------
// Quantize.

// Encodes x[b, e) to y[b, e) with the scale o.scale applied (scaled) or not: the SIMD
// kernels of `kernels` where given, the scalar reference for what they leave. Returns
// max |x| bits and the number of elements the kernels encoded.
template <class Src, class Out>
Pass encode_range(const Format& f, const typename Src::T* x, Out* y, std::size_t b, std::size_t e,
                  const EncodePlan& plan, const ArrayOptions& o, const KernelTable* kernels,
                  bool scaled, bool flush_in_prepass) {
  constexpr bool is_float = std::is_same_v<Src, FloatSource>;
  std::uint32_t amax = 0;
  std::size_t i = b;
  if (kernels) {
    const detail::EncodeFn<Out> kernel = detail::encode_fn<Out>(*kernels, o.convert.rounding);
    bool whole = false;
    if constexpr (is_float) {
      if (!scaled) {
        i += kernel(reinterpret_cast<const std::uint32_t*>(x + b), y + b, e - b, plan,
                    o.first_index + b, &amax);
        whole = true;
      }
    }
    constexpr std::size_t kBlock = 1024;
    alignas(64) std::uint32_t tmp[kBlock];
    while (!whole && e - i >= kernels->lanes) {
      const std::size_t len = std::min(kBlock, e - i);
      amax = std::max(amax,
                      prepare<Src>(kernels, x + i, len, tmp, flush_in_prepass, scaled, o.scale));
      const std::size_t done = kernel(tmp, y + i, len, plan, o.first_index + i, nullptr);
      i += done;
      if (done < len) break;
    }
  }
  const std::uint64_t simd_done = i - b;
  for (; i < e; ++i) {
    amax = std::max(amax, Src::bits(x[i]) & 0x7FFFFFFFu);
    y[i] = Out(reference<Src>(f, x[i], o, plan.key, o.first_index + i));
  }
  return {amax, simd_done};
}

// Encodes the row x[b, e) of blocks of bc elements, block k times scales[k]: the inputs
// of as many blocks as fit in kBlock are scaled (prepare, each with its block's scale)
// and encoded by one kernel call; the scalar reference does what the kernel leaves. The
// same codes as encode_range block by block (each element depends only on its input,
// scale and index).
template <class Out>
Pass encode_row_blocks(const Format& f, const float* x, Out* y, std::size_t b, std::size_t e,
                       std::size_t bc, const float* scales, const EncodePlan& plan,
                       const ArrayOptions& o, const KernelTable* kernels, bool flush_in_prepass) {
  std::uint32_t amax = 0;
  std::size_t i = b;
  if (kernels) {
    const detail::EncodeFn<Out> kernel = detail::encode_fn<Out>(*kernels, o.convert.rounding);
    constexpr std::size_t kBlock = 1024;
    alignas(64) std::uint32_t tmp[kBlock];
    while (e - i >= kernels->lanes) {
      const std::size_t len = std::min(kBlock, e - i);
      for (std::size_t q = i; q < i + len;) {
        const std::size_t k = (q - b) / bc, q1 = std::min(i + len, b + (k + 1) * bc);
        amax = std::max(amax, prepare<FloatSource>(kernels, x + q, q1 - q, tmp + (q - i),
                                                   flush_in_prepass, true, scales[k]));
        q = q1;
      }
      const std::size_t done = kernel(tmp, y + i, len, plan, o.first_index + i, nullptr);
      i += done;
      if (done < len) break;
    }
  }
  const std::uint64_t simd_done = i - b;
  ArrayOptions ob = o;
  for (; i < e; ++i) {
    amax = std::max(amax, FloatSource::bits(x[i]) & 0x7FFFFFFFu);
    ob.scale = scales[(i - b) / bc];
    y[i] = Out(reference<FloatSource>(f, x[i], ob, plan.key, o.first_index + i));
  }
  return {amax, simd_done};
}

template <class Src, class Out>
ArrayStats quantize_impl(const Format& f, std::span<const typename Src::T> in,
                         std::span<Out> out, const ArrayOptions& o) {
  check_call(f, in.size(), out.size(), int(8 * sizeof(Out)), o);
  const KernelTable* kernels = simd_kernels(array_path(Src::call, f, o));
  const bool scaled = o.scale != 1.0f;
  constexpr bool is_float = std::is_same_v<Src, FloatSource>;
  // Float16 and scaled inputs flush in the prepass; float32 / bfloat16 in the kernel.
  const bool flush_in_prepass = o.convert.flush_inputs && (scaled || !is_float);
  const EncodePlan plan = make_plan(f, o, !scaled);
  return float_stats(for_chunks(in.size(), o.exec, [&](std::size_t b, std::size_t e) {
    return encode_range<Src>(f, in.data(), out.data(), b, e, plan, o, kernels, scaled,
                             flush_in_prepass);
  }));
}

// Every block through the scaled path (its scale may be 1): the reference is one function
// of the scale, so this equals quantize called block by block.
template <class Out>
ArrayStats quantize_blocks_impl(const Format& f, std::span<const float> in, const BlockScales& g,
                                std::span<Out> out, const ArrayOptions& o) {
  check_call(f, in.size(), out.size(), int(8 * sizeof(Out)), o);
  if (g.rows < 0 || g.cols < 0 || g.block_rows < 0 || g.block_cols < 0)
    throw std::invalid_argument("quantize_blocks: negative size");
  if (std::uint64_t(g.rows) * std::uint64_t(g.cols) != in.size())
    throw std::invalid_argument("quantize_blocks: " + std::to_string(g.rows) + " x " + std::to_string(g.cols) +
                                " does not match the " + std::to_string(in.size()) + " inputs");
  const std::int64_t br = g.block_rows ? g.block_rows : std::max<std::int64_t>(g.rows, 1);
  const std::int64_t bc = g.block_cols ? g.block_cols : std::max<std::int64_t>(g.cols, 1);
  const std::int64_t gc = (g.cols + bc - 1) / bc, grid = (g.rows + br - 1) / br * gc;
  if (g.scales.size() != std::size_t(grid))
    throw std::invalid_argument("quantize_blocks: " + std::to_string(grid) + " blocks need as many scales, got " +
                                std::to_string(g.scales.size()));
  for (float s : g.scales)
    if (!(std::isfinite(s) && s > 0.0f))
      throw std::invalid_argument("quantize_blocks: every scale must be finite and > 0");
  const KernelTable* kernels = simd_kernels(array_path(ArrayCall::quantize_blocks, f, o));
  const bool flush_in_prepass = o.convert.flush_inputs;
  const EncodePlan plan = make_plan(f, o, false);
  Execution rows_exec = o.exec;
  const std::size_t cols = std::size_t(std::max<std::int64_t>(g.cols, 1));
  rows_exec.chunk = std::max<std::size_t>(1, o.exec.chunk / cols);
  rows_exec.parallel_threshold = o.exec.parallel_threshold / cols;
  return float_stats(
      for_chunks(std::size_t(g.rows), rows_exec, [&](std::size_t r0, std::size_t r1) {
        Pass p;
        for (std::size_t r = r0; r < r1; ++r) {
          const float* scales = &g.scales[std::size_t(std::int64_t(r) / br * gc)];
          const Pass q = encode_row_blocks(f, in.data(), out.data(), r * cols,
                                           r * cols + std::size_t(g.cols), std::size_t(bc),
                                           scales, plan, o, kernels, flush_in_prepass);
          p.max = std::max(p.max, q.max);
          p.simd += q.simd;
        }
        return p;
      }));
}

template <class Out>
ArrayStats quantize_double(const Format& f, std::span<const double> in, std::span<Out> out,
                           const ArrayOptions& o) {
  check_call(f, in.size(), out.size(), int(8 * sizeof(Out)), o);
  const RandomKey key = random_key(o.seed, o.stream);
  const bool sr = is_stochastic(o.convert.rounding);
  const Pass m = for_chunks(in.size(), o.exec, [&](std::size_t b, std::size_t e) {
    std::uint64_t amax = 0;
    for (std::size_t i = b; i < e; ++i) {
      const std::uint64_t bits = std::bit_cast<std::uint64_t>(in[i]);
      amax = std::max<std::uint64_t>(amax, bits & 0x7FFFFFFFFFFFFFFFull);
      const bool sub = ((bits >> 52) & 0x7FF) == 0 && (bits << 12) != 0;
      const std::uint32_t r = sr ? random_bits(key, o.first_index + i) : 0;
      out[i] = Out(detail::encode_scaled_status(f, in[i], sub, o.scale, o.convert, r).code);
    }
    return Pass{amax, 0};
  });
  return {std::bit_cast<double>(m.max), 0};
}

// ---------------------------------------------------------------------------------------
// Decode tables: one entry per 16-bit code (codes beyond the format decode to NaN and are
// rejected by the width check), built once per format and kept for the process.

template <class V>
const V* decode_table(const Format& f) {
  static std::mutex mu;
  static std::vector<std::pair<Format, std::unique_ptr<std::vector<V>>>> cache;
  std::lock_guard<std::mutex> lock(mu);
  for (const auto& [g, t] : cache)
    if (g == f) return t->data();
  auto t = std::make_unique<std::vector<V>>(std::size_t{1} << 16,
                                            std::numeric_limits<V>::quiet_NaN());
  const std::uint32_t count = std::uint32_t{1} << total_bits(f);
  for (std::uint32_t c = 0; c < count; ++c) (*t)[c] = V(decode(f, c));
  cache.emplace_back(f, std::move(t));
  return cache.back().second->data();
}

// Returns the float32 bits DecodePlan `d` gives code `c` (without a table), step for
// step as decode_batch (kernels.hpp) computes them.
std::uint32_t plan_bits(const detail::DecodePlan& d, std::uint32_t c) {
  const std::uint32_t mag = c & d.mag_mask;
  std::uint32_t r = (mag << d.shift) + d.offset;
  if (mag < d.sub_limit) r = std::bit_cast<std::uint32_t>(float(std::int32_t(mag)) * d.sub_scale);
  if (mag > d.nan_above) r = 0x7FC00000u;
  r |= (c & d.sign_mask) << d.sign_shift;
  for (std::uint32_t k = 0; k < d.specials; ++k)
    if (c == d.special_code[k]) r = d.special_bits[k];
  return r;
}

// The decode plan of `f` (at most 16 bits) over its value table `table`: arithmetic when
// plan_bits gives the table's bits for every code with at most kMaxSpecials codes
// fixed by compares, else the table. The values must fit float and the exponent field
// float32's (8 bits) for the arithmetic to apply.
detail::DecodePlan make_decode_plan(const Format& f, const float* table) {
  detail::DecodePlan d;
  d.table = table;
  if (!fits_float(f) || f.exponent_bits > 8) return d;
  const int M = f.mantissa_bits;
  const auto bits = [&](std::uint32_t c) { return std::bit_cast<std::uint32_t>(table[c]); };
  d.mag_mask = magnitude_mask(f);
  d.sign_mask = sign_mask(f);
  d.sign_shift = f.is_signed ? std::uint32_t(31 - f.exponent_bits - M) : 0;
  d.shift = std::uint32_t(23 - M);
  d.offset = std::uint32_t(127 - f.bias) << 23;
  // Exponent field 0 holds the zero and the subnormals: float32 bits as they are when
  // the bias is float32's, else the integer m times the quantum of that binade.
  if (has_zero(f) && d.offset != 0) {
    d.sub_limit = std::uint32_t{1} << M;
    d.sub_scale = std::ldexp(1.0f, quantum_min(f));
  }
  // The default NaN for the run of largest magnitudes whose codes of both signs decode to
  // it with the code's sign (IEEE formats: above the infinity; OCP fn: the last one).
  d.nan_above = d.mag_mask;
  for (std::uint32_t m = d.mag_mask; m > 0; --m) {
    const bool nan =
        bits(m) == 0x7FC00000u && (!f.is_signed || bits(m | d.sign_mask) == 0xFFC00000u);
    if (!nan) break;
    d.nan_above = m - 1;
  }
  const std::uint32_t count = std::uint32_t{1} << total_bits(f);
  for (std::uint32_t c = 0; c < count; ++c) {
    if (plan_bits(d, c) == bits(c)) continue;
    if (d.specials == detail::DecodePlan::kMaxSpecials) return detail::DecodePlan{.table = table};
    d.special_code[d.specials] = c;
    d.special_bits[d.specials] = bits(c);
    ++d.specials;
  }
  for (std::uint32_t c = 0; c < count; ++c)
    if (plan_bits(d, c) != bits(c)) return detail::DecodePlan{.table = table};
  d.arithmetic = true;
  return d;
}

// The decode plan of `f` (at most 16 bits), built once per format and kept for the process.
const detail::DecodePlan& decode_plan(const Format& f) {
  const float* table = decode_table<float>(f);
  static std::mutex mu;
  static std::vector<std::pair<Format, std::unique_ptr<const detail::DecodePlan>>> cache;
  std::lock_guard<std::mutex> lock(mu);
  for (const auto& [g, d] : cache)
    if (g == f) return *d;
  cache.emplace_back(f, std::make_unique<const detail::DecodePlan>(make_decode_plan(f, table)));
  return *cache.back().second;
}

void check_dequantize(const Format& f, std::size_t n_in, std::size_t n_out, bool float_out,
                      const ArrayOptions& o) {
  check_common(f, n_in, n_out, o);
  if (float_out && !fits_float(f))
    throw std::domain_error("the values of " + format_name(f) +
                            " do not fit in float; dequantize to double");
}

std::string hex_digits(std::uint32_t c) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%X", c);
  return buf;
}

// Throws for the first code wider than the format.
template <class C>
void check_codes(const Format& f, const C* codes, std::size_t n) {
  if (total_bits(f) >= int(8 * sizeof(C))) return;
  const std::uint32_t limit = std::uint32_t{1} << total_bits(f);
  for (std::size_t i = 0; i < n; ++i)
    if (codes[i] >= limit)
      throw std::out_of_range("code 0x" + hex_digits(codes[i]) + " at index " +
                              std::to_string(i) + " does not fit in the " +
                              std::to_string(total_bits(f)) + " bits of " + format_name(f));
}

template <class C, class V>
ArrayStats dequantize_impl(const Format& f, std::span<const C> codes, std::span<V> out,
                           const ArrayOptions& o) {
  constexpr bool float_out = std::is_same_v<V, float>;
  check_dequantize(f, codes.size(), out.size(), float_out, o);
  const std::size_t n = codes.size();
  if (total_bits(f) > 16) {
    check_codes(f, codes.data(), n);
    for_chunks(n, o.exec, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) {
        if constexpr (float_out)
          out[i] = decode_float(f, codes[i]) / o.scale;
        else
          out[i] = decode(f, codes[i]) / double(o.scale);
      }
      return Pass{};
    });
    return {};
  }
  const V* table = decode_table<V>(f);
  const std::uint32_t mask = std::uint32_t{0xFFFF};
  const KernelTable* kernels = simd_kernels(
      array_path(float_out ? ArrayCall::dequantize_float32 : ArrayCall::dequantize_float64, f, o));
  const detail::DecodePlan* plan = nullptr;
  if constexpr (float_out) plan = kernels ? &decode_plan(f) : nullptr;
  const bool stream = n * sizeof(V) >= o.exec.stream_bytes;
  const Pass p = for_chunks(n, o.exec, [&](std::size_t b, std::size_t e) {
    std::uint32_t all = 0;
    std::size_t i = b;
    if constexpr (float_out) {
      if (kernels)
        i += detail::decode_fn<C>(*kernels)(codes.data() + b, out.data() + b, e - b, *plan, o.scale,
                                            stream, &all);
    }
    const std::uint64_t simd_done = i - b;
    for (; i < e; ++i) {
      const std::uint32_t c = std::uint32_t(codes[i]);
      all |= c;
      out[i] = o.scale == 1.0f ? table[c & mask] : V(table[c & mask] / V(o.scale));
    }
    return Pass{all, simd_done};
  });
  if (total_bits(f) < int(8 * sizeof(C)) && (p.max >> total_bits(f)) != 0)
    check_codes(f, codes.data(), n);  // names the first bad code
  return {0.0, p.simd};
}

// ---------------------------------------------------------------------------------------
// Fake quantize.

ArrayStats fake_quantize_impl(const Format& f, std::span<const float> in, std::span<float> out,
                              const ArrayOptions& o) {
  check_call(f, in.size(), out.size(), 32, o);
  if (!fits_float(f))
    throw std::domain_error("the values of " + format_name(f) + " do not fit in float");
  const KernelTable* kernels = simd_kernels(array_path(ArrayCall::fake_quantize, f, o));
  const bool scaled = o.scale != 1.0f;
  const bool flush_in_prepass = o.convert.flush_inputs && scaled;
  const EncodePlan plan = make_plan(f, o, !scaled);
  const float* table = total_bits(f) <= 16 ? decode_table<float>(f) : nullptr;
  const detail::DecodePlan* dplan = kernels ? &decode_plan(f) : nullptr;
  const bool stream = in.size() * sizeof(float) >= o.exec.stream_bytes;
  const float* x = in.data();
  float* y = out.data();
  return float_stats(for_chunks(in.size(), o.exec, [&](std::size_t b, std::size_t e) {
    std::uint32_t amax = 0;
    std::size_t i = b;
    if (kernels) {
      const detail::FakeQuantizeFn kernel =
          kernels->fake_quantize[std::size_t(o.convert.rounding)];
      if (!scaled) {
        i += kernel(reinterpret_cast<const std::uint32_t*>(x + b), y + b, e - b, plan, *dplan, 1.0f,
                    stream, o.first_index + b, &amax);
      } else {
        constexpr std::size_t kBlock = 1024;
        alignas(64) std::uint32_t tmp[kBlock];
        while (e - i >= kernels->lanes) {
          const std::size_t len = std::min(kBlock, e - i);
          amax = std::max(amax, prepare<FloatSource>(kernels, x + i, len, tmp, flush_in_prepass,
                                                     true, o.scale));
          // With `stream`, the first call may stop at an aligned output short of `len`.
          const std::size_t done =
              kernel(tmp, y + i, len, plan, *dplan, o.scale, stream, o.first_index + i, nullptr);
          i += done;
          if (done == 0) break;
        }
      }
    }
    const std::uint64_t simd_done = i - b;
    for (; i < e; ++i) {
      const float xi = x[i];
      amax = std::max(amax, std::bit_cast<std::uint32_t>(xi) & 0x7FFFFFFFu);
      const std::uint32_t c = reference<FloatSource>(f, xi, o, plan.key, o.first_index + i);
      y[i] = (table ? table[c] : decode_float(f, c)) / o.scale;
    }
    return Pass{amax, simd_done};
  }));
}

}  // namespace

const std::vector<float>& value_table(const Format& f) {
  if (total_bits(f) > 16)
    throw std::invalid_argument("value_table: " + format_name(f) + " has more than 16 bits");
  static std::mutex mu;
  static std::vector<std::pair<Format, std::unique_ptr<const std::vector<float>>>> cache;
  std::lock_guard<std::mutex> lock(mu);
  for (const auto& [g, t] : cache)
    if (g == f) return *t;
  auto t = std::make_unique<std::vector<float>>(std::size_t{1} << total_bits(f));
  for (std::size_t c = 0; c < t->size(); ++c) (*t)[c] = float(decode(f, std::uint32_t(c)));
  cache.emplace_back(f, std::move(t));
  return *cache.back().second;
}

namespace {

// True when the encode kernels cover `f` under `o` (float32, float16 and bfloat16 inputs).
bool simd_covers(const Format& f, const ArrayOptions& o) {
  if (!o.exec.simd || check(f) || !detail::active_kernels()) return false;
  const int M = f.mantissa_bits;
  if (!has_zero(f) || M > 23 || emin(f) < -126) return false;
  const bool sr = is_stochastic(o.convert.rounding);
  if (sr && o.convert.stochastic_bits > 31) return false;
  if (o.scale != 1.0f) {
    // Round-to-odd through float needs k spare bits at every magnitude (see the top).
    const int k = sr ? o.convert.stochastic_bits + 2 : 2;
    if (M + k > 23 || quantum_min(f) - k < -149 || emax(f) > 126) return false;
  }
  return true;
}

}  // namespace

ArrayPath array_path(ArrayCall call, const Format& f, const ArrayOptions& o) {
  bool simd = false;
  switch (call) {
    case ArrayCall::quantize_float32:
    case ArrayCall::quantize_float16:
    case ArrayCall::quantize_bfloat16:
      simd = simd_covers(f, o);
      break;
    case ArrayCall::quantize_float64:    // The exact reference loop only.
    case ArrayCall::dequantize_float64:  // A table lookup per element, no kernel.
      break;
    case ArrayCall::quantize_blocks: {  // Every block through the scaled kernels.
      ArrayOptions scaled = o;
      scaled.scale = 2.0f;  // any scale != 1: the conditions of the scaled kernels
      simd = simd_covers(f, scaled);
      break;
    }
    case ArrayCall::fake_quantize:  // The kernel looks the codes up in a 2^16 table.
      simd = simd_covers(f, o) && total_bits(f) <= 16;
      break;
    case ArrayCall::dequantize_float32:
      simd = o.exec.simd && !check(f) && total_bits(f) <= 16 && detail::active_kernels();
      break;
  }
  return simd ? ArrayPath::simd : ArrayPath::reference;
}

std::string_view array_path_name(ArrayPath p) {
  return p == ArrayPath::simd ? "simd" : "reference";
}

Decoder simd_decoder(const Format& f) {
  if (auto err = check(f)) throw std::invalid_argument("invalid format: " + *err);
  if (total_bits(f) > 16)
    throw std::invalid_argument("simd_decoder: " + format_name(f) + " has more than 16 bits");
  return decode_plan(f).arithmetic ? Decoder::arithmetic : Decoder::table;
}

std::string_view decoder_name(Decoder d) {
  return d == Decoder::arithmetic ? "arithmetic" : "table";
}

ArrayStats quantize(const Format& f, std::span<const float> in, std::span<std::uint8_t> out,
                    const ArrayOptions& o) {
  return quantize_impl<FloatSource>(f, in, out, o);
}
ArrayStats quantize_blocks(const Format& f, std::span<const float> in, const BlockScales& b,
                           std::span<std::uint8_t> out, const ArrayOptions& o) {
  return quantize_blocks_impl(f, in, b, out, o);
}
ArrayStats quantize_blocks(const Format& f, std::span<const float> in, const BlockScales& b,
                           std::span<std::uint16_t> out, const ArrayOptions& o) {
  return quantize_blocks_impl(f, in, b, out, o);
}
ArrayStats quantize_blocks(const Format& f, std::span<const float> in, const BlockScales& b,
                           std::span<std::uint32_t> out, const ArrayOptions& o) {
  return quantize_blocks_impl(f, in, b, out, o);
}
ArrayStats quantize(const Format& f, std::span<const double> in, std::span<std::uint8_t> out,
                    const ArrayOptions& o) {
  return quantize_double(f, in, out, o);
}
ArrayStats quantize_float16_bits(const Format& f, std::span<const std::uint16_t> in,
                                 std::span<std::uint8_t> out, const ArrayOptions& o) {
  return quantize_impl<Float16Source>(f, in, out, o);
}
ArrayStats quantize_bfloat16_bits(const Format& f, std::span<const std::uint16_t> in,
                                  std::span<std::uint8_t> out, const ArrayOptions& o) {
  return quantize_impl<BFloat16Source>(f, in, out, o);
}
ArrayStats dequantize(const Format& f, std::span<const std::uint8_t> codes, std::span<float> out,
                      const ArrayOptions& o) {
  return dequantize_impl(f, codes, out, o);
}
ArrayStats dequantize(const Format& f, std::span<const std::uint8_t> codes, std::span<double> out,
                      const ArrayOptions& o) {
  return dequantize_impl(f, codes, out, o);
}

ArrayStats quantize(const Format& f, std::span<const float> in, std::span<std::uint16_t> out,
                    const ArrayOptions& o) {
  return quantize_impl<FloatSource>(f, in, out, o);
}
ArrayStats quantize(const Format& f, std::span<const double> in, std::span<std::uint16_t> out,
                    const ArrayOptions& o) {
  return quantize_double(f, in, out, o);
}
ArrayStats quantize_float16_bits(const Format& f, std::span<const std::uint16_t> in,
                                 std::span<std::uint16_t> out, const ArrayOptions& o) {
  return quantize_impl<Float16Source>(f, in, out, o);
}
ArrayStats quantize_bfloat16_bits(const Format& f, std::span<const std::uint16_t> in,
                                  std::span<std::uint16_t> out, const ArrayOptions& o) {
  return quantize_impl<BFloat16Source>(f, in, out, o);
}
ArrayStats dequantize(const Format& f, std::span<const std::uint16_t> codes, std::span<float> out,
                      const ArrayOptions& o) {
  return dequantize_impl(f, codes, out, o);
}
ArrayStats dequantize(const Format& f, std::span<const std::uint16_t> codes, std::span<double> out,
                      const ArrayOptions& o) {
  return dequantize_impl(f, codes, out, o);
}

ArrayStats quantize(const Format& f, std::span<const float> in, std::span<std::uint32_t> out,
                    const ArrayOptions& o) {
  return quantize_impl<FloatSource>(f, in, out, o);
}
ArrayStats quantize(const Format& f, std::span<const double> in, std::span<std::uint32_t> out,
                    const ArrayOptions& o) {
  return quantize_double(f, in, out, o);
}
ArrayStats quantize_float16_bits(const Format& f, std::span<const std::uint16_t> in,
                                 std::span<std::uint32_t> out, const ArrayOptions& o) {
  return quantize_impl<Float16Source>(f, in, out, o);
}
ArrayStats quantize_bfloat16_bits(const Format& f, std::span<const std::uint16_t> in,
                                  std::span<std::uint32_t> out, const ArrayOptions& o) {
  return quantize_impl<BFloat16Source>(f, in, out, o);
}
ArrayStats dequantize(const Format& f, std::span<const std::uint32_t> codes, std::span<float> out,
                      const ArrayOptions& o) {
  return dequantize_impl(f, codes, out, o);
}
ArrayStats dequantize(const Format& f, std::span<const std::uint32_t> codes, std::span<double> out,
                      const ArrayOptions& o) {
  return dequantize_impl(f, codes, out, o);
}

ArrayStats fake_quantize(const Format& f, std::span<const float> in, std::span<float> out,
                         const ArrayOptions& o) {
  return fake_quantize_impl(f, in, out, o);
}

}  // namespace fp8emu
