// Quantized GEMM under a recipe (see include/fp8sim/qgemm.hpp).
#include "fp8sim/qgemm.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <span>

namespace fp8sim {
namespace {

using fp8emu::Format;

bool is_float32(const Format& f) { return f == Format(fp8emu::formats::float32{}); }

// m = max(m, a) where a NaN wins and stays.
void merge_amax(double& m, double a) {
  if (!std::isnan(m) && (std::isnan(a) || a > m)) m = a;
}


template <class Code>
std::span<Code> code_span(std::vector<std::uint32_t>& buf, std::int64_t n) {
  buf.resize(std::size_t(n * std::int64_t(sizeof(Code)) + 3) / 4 + 1);
  return {reinterpret_cast<Code*>(buf.data()), std::size_t(n)};
}

// One quantized operand: R rows of K, stored K-contiguous (`k_major`) or as given.
struct Quantized {
  fp8emu::CodeMatrix m;
  fp8emu::Scales scales;
};

// The scales of an R x K operand: one per block of br x bk, row-major over the grid.
struct Grid {
  std::int64_t R, K, br, bk, gk;
  std::vector<float>* scale;  // quantization scales s (value * s is rounded)
};

// Adds the statistics of the quantized operand: x the input (R x K), codes its codes.
// The dequantized value is decode(code) / s rounded once, as fp8emu::dequantize gives it;
// a value is flushed when x != 0 and its code is a zero.
template <class Code>
void gather_stats(QuantStats& st, const Format& f, const float* x, const Code* codes, const Grid& g) {
  const double fmax = fp8emu::max_finite(f);
  // Saturated: |x s| past the midpoint between the max finite value and the next binade
  // step above it, where rounding to nearest would leave the finite range; the
  // saturating cast clipped such values.
  const double clip = fmax + std::ldexp(1.0, std::ilogb(fmax) - f.mantissa_bits - 1);
  const bool table = fp8emu::total_bits(f) <= 16;
  const std::vector<float>* t = table ? &fp8emu::value_table(f) : nullptr;
  // Eight partial sums per quantity (a fixed order, whatever the threads), so that the
  // loop vectorizes.
  constexpr int L = 8;
  std::int64_t nonzero[L] = {}, flushed[L] = {}, saturated[L] = {};
  double signal[L] = {}, noise[L] = {};
  std::vector<float> vals;
  for (std::int64_t r = 0; r < g.R; ++r)
    for (std::int64_t k0 = 0; k0 < g.K; k0 += g.bk) {
      const std::int64_t k1 = std::min(g.K, k0 + g.bk), len = k1 - k0;
      const float s = (*g.scale)[std::size_t(r / g.br * g.gk + k0 / g.bk)];
      const double limit = clip / double(s);
      const float* __restrict xs = x + r * g.K + k0;
      const Code* __restrict cs = codes + r * g.K + k0;
      vals.resize(std::size_t(len));
      float* __restrict v = vals.data();
      if (table)
        for (std::int64_t k = 0; k < len; ++k) v[k] = (*t)[cs[k]];
      else
        for (std::int64_t k = 0; k < len; ++k) v[k] = float(fp8emu::decode(f, cs[k]));
      std::int64_t k = 0;
      for (; k + L <= len; k += L)
        for (int l = 0; l < L; ++l) {
          const double xi = xs[k + l], e = xi - double(v[k + l] / s);
          nonzero[l] += xi != 0;
          flushed[l] += xi != 0 && v[k + l] == 0;
          saturated[l] += std::fabs(xi) > limit;
          signal[l] += xi * xi;
          noise[l] += e * e;
        }
      for (; k < len; ++k) {
        const double xi = xs[k], e = xi - double(v[k] / s);
        nonzero[0] += xi != 0;
        flushed[0] += xi != 0 && v[k] == 0;
        saturated[0] += std::fabs(xi) > limit;
        signal[0] += xi * xi;
        noise[0] += e * e;
      }
    }
  for (int l = 0; l < L; ++l) {
    st.nonzero += nonzero[l];
    st.flushed += flushed[l];
    st.saturated += saturated[l];
    st.signal += signal[l];
    st.noise += noise[l];
  }
  st.count += g.R * g.K;
}

// Quantizes the logical R x K operand `v` (for B: the transpose of the K x N view) into
// codes of spec.format, with its scales, per the spec's scaling. `is_a` orients the
// scales for fp8emu::gemm. The element index of stochastic rounding is r K + k in the
// K-contiguous order, or the storage index for per-tensor scaling.
template <class Code>
Quantized quantize_operand(const OperandSpec& spec, const MatView& v, bool is_a, OperandState& st,
                           const GemmContext& ctx, GemmWorkspace& ws) {
  const int slot = is_a ? 0 : 1;
  const Format& f = spec.format;
  const double fmax = fp8emu::max_finite(f);
  const Scaling& sc = spec.scaling;
  // R x K with K contiguous: A row-major, B (K x N) column-major.
  const std::int64_t R = is_a ? v.rows : v.cols, K = is_a ? v.cols : v.rows;
  const fp8emu::Layout k_major = is_a ? fp8emu::Layout::row_major : fp8emu::Layout::col_major;
  const bool blocked = sc.kind == ScalingKind::mx ||
                       (sc.kind == ScalingKind::current && (sc.block_rows != 0 || sc.block_k != 0));
  const std::int64_t n = R * K;

  // 1. The floats to quantize, packed: as stored when per tensor, else K-contiguous.
  const std::int64_t ld = v.ld ? v.ld : (v.layout == fp8emu::Layout::row_major ? v.cols : v.rows);
  const bool packed = ld == (v.layout == fp8emu::Layout::row_major ? v.cols : v.rows);
  fp8emu::Layout layout = v.layout;
  const float* x = v.data;
  if ((blocked && v.layout != k_major) || !packed) {
    layout = k_major;
    std::vector<float>& t = ws.transposed[slot];
    t.resize(std::size_t(n));
    for (std::int64_t r = 0; r < R; ++r)
      for (std::int64_t k = 0; k < K; ++k) {
        const std::int64_t row = is_a ? r : k, col = is_a ? k : r;
        t[std::size_t(r * K + k)] =
            v.layout == fp8emu::Layout::row_major ? v.data[row * ld + col] : v.data[col * ld + row];
      }
    x = t.data();
  }

  Quantized q;
  q.m = {f, nullptr, v.rows, v.cols, layout, 0};
  const std::span<Code> codes = code_span<Code>(ws.codes[slot], n);
  q.m.data = codes.data();
  fp8emu::ArrayOptions ao;
  ao.convert = spec.convert;
  ao.seed = ctx.seed;
  ao.stream = 2 * ctx.stream + std::uint64_t(slot);
  ao.exec = ctx.exec;
  std::vector<float>& qs = ws.scales[slot];  // quantization scales, R x K grid order

  // 2. Scales and codes.
  Grid g{1, n, 1, std::max<std::int64_t>(n, 1), 1, &qs};
  if (!blocked) {
    float s = 1.0f;
    if (sc.kind == ScalingKind::current) s = amax_scale(sc, fmax, abs_max(x, n));
    if (sc.kind == ScalingKind::delayed) s = st.scale;
    ao.scale = s;
    const fp8emu::ArrayStats as = fp8emu::quantize(f, std::span<const float>(x, std::size_t(n)), codes, ao);
    qs.assign(1, s);
    if (ctx.stats) merge_amax(st.stats.amax, as.amax);
    if (sc.kind == ScalingKind::delayed && ctx.update && std::isfinite(as.amax)) {
      // Transformer Engine: push this step's amax, then the scale of the next step. A
      // non-finite amax is not recorded: the scale stays.
      if (st.history.size() != std::size_t(sc.history)) st.history.assign(std::size_t(sc.history), 0.0f);
      st.history[std::size_t(st.recorded % sc.history)] = float(as.amax);
      ++st.recorded;
      float h = float(as.amax);
      if (sc.algo == AmaxAlgo::max) h = *std::max_element(st.history.begin(), st.history.end());
      if (h > 0) st.scale = amax_scale(sc, fmax, h);
    }
    if (s != 1.0f) q.scales.tensor = 1.0f / s;
  } else {
    const std::int64_t br = sc.block_rows > 0 ? sc.block_rows : std::max<std::int64_t>(R, 1);
    const std::int64_t bk = sc.block_k > 0 ? sc.block_k : std::max<std::int64_t>(K, 1);
    const std::int64_t gr = (R + br - 1) / br, gk = (K + bk - 1) / bk;
    g = Grid{R, K, br, bk, gk, &qs};
    std::vector<float>& inv = ws.inverse[slot];
    std::vector<std::uint8_t>& e8 = ws.e8m0[slot];
    qs.resize(std::size_t(gr * gk));
    inv.resize(std::size_t(gr * gk));
    e8.resize(std::size_t(gr * gk));
    for (std::int64_t bi = 0; bi < gr; ++bi)
      for (std::int64_t bj = 0; bj < gk; ++bj) {
        const std::int64_t r0 = bi * br, r1 = std::min(R, r0 + br), k0 = bj * bk, k1 = std::min(K, k0 + bk);
        double amax = 0;
        for (std::int64_t r = r0; r < r1; ++r) merge_amax(amax, abs_max(x + r * K + k0, k1 - k0));
        float& s = qs[std::size_t(bi * gk + bj)];
        // The grid is stored for fp8emu::gemm: A's as R x K blocks, B's transposed.
        const std::size_t gi = std::size_t(is_a ? bi * gk + bj : bj * gr + bi);
        if (sc.kind == ScalingKind::mx) {
          const int e = mx_exponent(sc, f, amax);
          s = std::ldexp(1.0f, -e);
          e8[gi] = std::uint8_t(e + 127);
        } else {
          s = amax_scale(sc, fmax, amax);
          inv[gi] = 1.0f / s;
        }
        if (ctx.stats) merge_amax(st.stats.amax, amax);
      }
    fp8emu::quantize_blocks(f, std::span<const float>(x, std::size_t(n)), fp8emu::BlockScales{R, K, br, bk, qs},
                            codes, ao);
    q.scales.data = sc.kind == ScalingKind::mx ? static_cast<const void*>(e8.data()) : inv.data();
    q.scales.encoding = sc.kind == ScalingKind::mx ? fp8emu::ScaleEncoding::e8m0 : fp8emu::ScaleEncoding::float32;
    q.scales.block_rows = is_a ? sc.block_rows : sc.block_k;
    q.scales.block_cols = is_a ? sc.block_k : sc.block_rows;
  }
  if (ctx.stats) {
    gather_stats(st.stats, f, x, codes.data(), g);
    ++st.stats.uses;
  }
  return q;
}

Quantized quantize_any(const OperandSpec& spec, const MatView& v, bool is_a, OperandState& st,
                       const GemmContext& ctx, GemmWorkspace& ws) {
  if (is_float32(spec.format) && spec.scaling.kind == ScalingKind::none) {
    // float32 without scaling: the floats are their own codes (no copy, no statistics).
    Quantized q;
    q.m = {spec.format, v.data, v.rows, v.cols, v.layout, v.ld};
    return q;
  }
  const int bytes = fp8emu::code_bytes(spec.format);
  if (bytes == 1) return quantize_operand<std::uint8_t>(spec, v, is_a, st, ctx, ws);
  if (bytes == 2) return quantize_operand<std::uint16_t>(spec, v, is_a, st, ctx, ws);
  return quantize_operand<std::uint32_t>(spec, v, is_a, st, ctx, ws);
}

}  // namespace

void QuantStats::merge(const QuantStats& o) {
  merge_amax(amax, o.amax);
  count += o.count;
  nonzero += o.nonzero;
  flushed += o.flushed;
  saturated += o.saturated;
  signal += o.signal;
  noise += o.noise;
  uses += o.uses;
}

double QuantStats::sqnr_db() const {
  if (!(signal > 0)) return std::numeric_limits<double>::quiet_NaN();
  if (noise == 0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(signal / noise);
}

float amax_scale(const Scaling& s, double fmax, double amax) {
  if (!(amax > 0) || !std::isfinite(amax)) return 1.0f;
  const double sc = fmax / amax / std::ldexp(1.0, s.margin);
  float f = float(sc);
  if (!std::isfinite(f) || f <= 0) return 1.0f;
  // The float scale may round up past fmax / amax; amax * f can then exceed fmax by half
  // an ulp, which the saturating cast absorbs (Transformer Engine computes it the same way).
  if (s.pow2) f = std::ldexp(1.0f, std::ilogb(f));
  return f;
}

float abs_max(const float* x, std::int64_t n) {
  // An integer max over the bits of |x|, which vectorizes; a NaN's bits exceed every other.
  std::uint32_t m = 0;
  for (std::int64_t i = 0; i < n; ++i) m = std::max(m, std::bit_cast<std::uint32_t>(x[i]) & 0x7FFFFFFFu);
  return m > 0x7F800000u ? std::numeric_limits<float>::quiet_NaN() : std::bit_cast<float>(m);
}

int mx_exponent(const Scaling& s, const fp8emu::Format& elem, double amax) {
  if (!(amax > 0)) return -127;
  if (!std::isfinite(amax)) return 127;
  const double fmax = fp8emu::max_finite(elem);
  int e;
  if (s.mx_floor) {
    e = std::ilogb(amax) - std::ilogb(fmax);
  } else {
    e = std::ilogb(amax) - std::ilogb(fmax) - 1;  // fmax 2^e < amax here; the loop ends in <= 3 steps
    while (std::ldexp(fmax, e) < amax) ++e;
  }
  return std::clamp(e, -127, 127);
}

namespace {

// GEMMs of fewer products run on one thread (the MLP's 256 -> 10 layer, ~0.3 M at batch
// 128; its 784 -> 256 layer has 26 M).
constexpr std::int64_t kSerialProducts = std::int64_t(1) << 22;

fp8emu::GemmOptions gemm_options(const RoleSpec& role, const Quantized& qa, const Quantized& qb, bool accumulate,
                                 const GemmContext& ctx) {
  fp8emu::GemmOptions o;
  o.beta = accumulate ? 1.0f : 0.0f;
  o.accumulation = role.accumulation;
  o.accumulation.seed = ctx.seed;
  o.accumulation.stream = ctx.stream;
  o.a_scales = qa.scales;
  o.b_scales = qb.scales;
  o.exec = ctx.exec;
  return o;
}

}  // namespace

void recipe_gemm(const RoleSpec& role, const MatView& a, const MatView& b, float* c, std::int64_t ldc,
                 bool accumulate, OperandState& sa, OperandState& sb, const GemmContext& ctx,
                 GemmWorkspace& ws) {
  // A small GEMM and its quantization run on one thread: starting a team costs more than
  // it saves, and far more on a busy machine. The numbers do not depend on it.
  GemmContext g = ctx;
  if (a.rows * a.cols * b.cols < kSerialProducts) g.exec.threads = 1;
  const Quantized qa = quantize_any(role.a, a, true, sa, g, ws);
  const Quantized qb = quantize_any(role.b, b, false, sb, g, ws);
  fp8emu::gemm(qa.m, qb.m, c, ldc, gemm_options(role, qa, qb, accumulate, g));
}

bool recipe_gemm_fast_path(const RoleSpec& role) {
  // K = 256 holds whole blocks of every usual block length (32, 128).
  constexpr std::int64_t M = 4, N = 4, K = 256;
  const std::vector<float> a(std::size_t(M * K), 1.0f), b(std::size_t(K * N), 1.0f);
  OperandState sa, sb;
  GemmWorkspace ws;
  GemmContext ctx;
  ctx.update = ctx.stats = false;
  ctx.exec.threads = 1;
  const Quantized qa = quantize_any(role.a, {a.data(), M, K}, true, sa, ctx, ws);
  const Quantized qb = quantize_any(role.b, {b.data(), K, N}, false, sb, ctx, ws);
  return fp8emu::gemm_fast_path(qa.m, qb.m, gemm_options(role, qa, qb, false, ctx));
}

}  // namespace fp8sim
