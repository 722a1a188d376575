// Quantized GEMM under a recipe (see include/fp8sim/qgemm.hpp).
#include "fp8sim/qgemm.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <span>
#include <stdexcept>

namespace fp8sim {
namespace {

using fp8emu::Format;

bool is_float32(const Format& f) { return f == Format(fp8emu::formats::float32{}); }

// m = max(m, a) where a NaN wins and stays.
void merge_amax(double& m, double a) {
  if (!std::isnan(m) && (std::isnan(a) || a > m)) m = a;
}


// One quantized operand: R rows of K, stored K-contiguous (`k_major`) or as given.
struct Quantized {
  fp8emu::CodeMatrix m;
  fp8emu::Scales scales;
};

// The scales of an R x K operand: one per block of br x bk, row-major over the grid.
struct Grid {
  std::int64_t R, K, br, bk, gk;
  const std::vector<float>* scale;  // quantization scales s (value * s is rounded)
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
  // The sums: eight partial sums per quantity (a fixed order, whatever the threads), so
  // that the loop vectorizes. The counts are exact, in any order: per block in 32-bit
  // lanes on the floats.
  constexpr int L = 8;
  constexpr std::int64_t kChunk = std::int64_t(1) << 30;  // 32-bit counts never overflow
  std::int64_t nonzero = 0, flushed = 0, saturated = 0;
  double signal[L] = {}, noise[L] = {};
  // The values of codes of at most 16 bits, all at once by fp8emu::dequantize (its SIMD
  // kernels give each code's value-table entry); wider codes are decoded block by block.
  thread_local std::vector<float> decoded;
  std::vector<float> vals;
  if (table) {
    const std::size_t n = std::size_t(g.R * g.K);
    decoded.resize(n);
    fp8emu::ArrayOptions ao;
    ao.exec.threads = 1;
    fp8emu::dequantize(f, std::span<const Code>(codes, n), std::span<float>(decoded.data(), n), ao);
  }
  for (std::int64_t r = 0; r < g.R; ++r)
    for (std::int64_t k0 = 0; k0 < g.K; k0 += g.bk) {
      const std::int64_t k1 = std::min(g.K, k0 + g.bk), len = k1 - k0;
      const float s = (*g.scale)[std::size_t(r / g.br * g.gk + k0 / g.bk)];
      const double limit = clip / double(s);
      // |x| > limit for a float |x| is |x| > the largest float at or below limit.
      float flimit = float(limit);
      if (double(flimit) > limit) flimit = std::nextafter(flimit, -INFINITY);
      const float* __restrict xs = x + r * g.K + k0;
      const Code* __restrict cs = codes + r * g.K + k0;
      if (!table) {
        vals.resize(std::size_t(len));
        for (std::int64_t k = 0; k < len; ++k) vals[std::size_t(k)] = float(fp8emu::decode(f, cs[k]));
      }
      const float* __restrict v = table ? decoded.data() + r * g.K + k0 : vals.data();
      for (std::int64_t c0 = 0; c0 < len; c0 += kChunk) {
        std::int32_t nz = 0, fl = 0, sat = 0;
        for (std::int64_t k = c0, c1 = std::min(len, c0 + kChunk); k < c1; ++k) {
          nz += xs[k] != 0;
          fl += (xs[k] != 0) & (v[k] == 0);
          sat += std::fabs(xs[k]) > flimit;
        }
        nonzero += nz;
        flushed += fl;
        saturated += sat;
      }
      std::int64_t k = 0;
      for (; k + L <= len; k += L)
        for (int l = 0; l < L; ++l) {
          const double xi = xs[k + l], e = xi - double(v[k + l] / s);
          signal[l] += xi * xi;
          noise[l] += e * e;
        }
      for (; k < len; ++k) {
        const double xi = xs[k], e = xi - double(v[k] / s);
        signal[0] += xi * xi;
        noise[0] += e * e;
      }
    }
  st.nonzero += nonzero;
  st.flushed += flushed;
  st.saturated += saturated;
  for (int l = 0; l < L; ++l) {
    st.signal += signal[l];
    st.noise += noise[l];
  }
  st.count += g.R * g.K;
}

// Quantizes the logical operand `v` (A: M x K, B: K x N) into codes of spec.format, with
// its scales, per the spec's scaling, by fp8emu::quantize_matrix. Block scalings store
// the codes K-contiguous (A row-major, B column-major), as does an operand that is not
// packed; per-tensor scaling keeps a packed operand's layout. The element index of
// stochastic rounding is the index in the codes' order.
template <class Code>
Quantized quantize_operand(const OperandSpec& spec, const MatView& v, bool is_a, OperandState& st,
                           const GemmContext& ctx, GemmWorkspace& ws) {
  const int slot = is_a ? 0 : 1;
  const Format& f = spec.format;
  const double fmax = fp8emu::max_finite(f);
  const Scaling& sc = spec.scaling;
  const fp8emu::Layout k_major = is_a ? fp8emu::Layout::row_major : fp8emu::Layout::col_major;
  const bool blocked = sc.kind == ScalingKind::mx || sc.kind == ScalingKind::nvfp4 ||
                       (sc.kind == ScalingKind::current && (sc.block_rows != 0 || sc.block_k != 0));
  const std::int64_t inner = v.layout == fp8emu::Layout::row_major ? v.cols : v.rows;
  const bool packed = (v.ld ? v.ld : inner) == inner;

  // 1. The library's options: the scaling, on the logical operand (blocks of the recipe
  //    are R x K, R = M for A and N for B).
  fp8emu::MatrixQuantizeOptions o;
  o.operand = is_a ? fp8emu::Operand::a : fp8emu::Operand::b;
  o.out_layout = (blocked || !packed) ? k_major : v.layout;
  o.margin = sc.margin;
  o.pow2 = sc.pow2;
  o.mx_rule = sc.mx_floor ? fp8emu::MxRule::floor : fp8emu::MxRule::ceil;
  o.array.convert = spec.convert;
  o.array.seed = ctx.seed;
  o.array.stream = 2 * ctx.stream + std::uint64_t(slot);
  o.array.exec = ctx.exec;
  if (blocked) {
    o.scaling = sc.kind == ScalingKind::mx      ? fp8emu::MatrixScaling::mx
                : sc.kind == ScalingKind::nvfp4 ? fp8emu::MatrixScaling::nvfp4
                                                : fp8emu::MatrixScaling::block;
    o.block_rows = is_a ? sc.block_rows : sc.block_k;
    o.block_cols = is_a ? sc.block_k : sc.block_rows;
  } else if (sc.kind == ScalingKind::current) {
    o.scaling = fp8emu::MatrixScaling::tensor;  // auto
  } else if (sc.kind == ScalingKind::delayed) {
    o.scaling = fp8emu::MatrixScaling::tensor;
    o.scale = st.scale;
  }

  // 2. Codes and scales.
  fp8emu::QuantizedMatrix& qm = ws.quantized[slot];
  const double amax = fp8emu::quantize_matrix({v.data, v.rows, v.cols, v.layout, v.ld}, f, o, qm);
  if (ctx.stats) merge_amax(st.stats.amax, amax);
  if (sc.kind == ScalingKind::delayed && ctx.update) record_amax(sc, fmax, st, amax, ctx.defer_amax);
  Quantized q;
  q.m = qm.matrix();
  q.scales = qm.scales();
  if (ctx.stats) {
    // The floats in the codes' order, R x K with K contiguous for block scalings.
    const std::int64_t n = v.rows * v.cols;
    const bool copied = v.layout != o.out_layout || !packed;
    const float* x = copied ? qm.packed.data() : v.data;
    const bool rm = o.out_layout == fp8emu::Layout::row_major;
    const std::int64_t pr = rm ? v.rows : v.cols, pc = rm ? v.cols : v.rows;
    Grid g{1, n, 1, std::max<std::int64_t>(n, 1), 1, &qm.quant_scales};
    if (qm.block_rows != 0) g = Grid{pr, pc, qm.block_rows, qm.block_cols, (pc + qm.block_cols - 1) / qm.block_cols,
                                     &qm.quant_scales};
    gather_stats(st.stats, f, x, reinterpret_cast<const Code*>(qm.storage.data()), g);
    ++st.stats.uses;
  }
  return q;
}

// Copies the logical operand `v` (A: M x K, B: K x N) into `out` as R x K rows with K
// contiguous (A row-major, B column-major) and applies hadamard_transform to the rows.
// Returns the view of the copy.
MatView rotate_operand(const MatView& v, bool is_a, std::vector<float>& out) {
  const std::int64_t R = is_a ? v.rows : v.cols, K = is_a ? v.cols : v.rows;
  out.resize(std::size_t(R * K));
  const bool rm = v.layout == fp8emu::Layout::row_major;
  const std::int64_t ld = v.ld ? v.ld : (rm ? v.cols : v.rows);
  // Element (r, k) of the R x K rows: A(r, k) or B(k, r).
  const bool k_contiguous = is_a == rm;  // K runs along the stored rows
  for (std::int64_t r = 0; r < R; ++r) {
    float* dst = out.data() + r * K;
    if (k_contiguous) {
      std::memcpy(dst, v.data + r * ld, std::size_t(K) * sizeof(float));
    } else {
      for (std::int64_t k = 0; k < K; ++k) dst[k] = v.data[k * ld + r];
    }
  }
  hadamard_transform(out.data(), R, K);
  return {out.data(), v.rows, v.cols, is_a ? fp8emu::Layout::row_major : fp8emu::Layout::col_major, 0};
}

Quantized quantize_any(const OperandSpec& spec, const MatView& given, bool is_a, OperandState& st,
                       const GemmContext& ctx, GemmWorkspace& ws) {
  const MatView v = spec.hadamard ? rotate_operand(given, is_a, ws.rotated[is_a ? 0 : 1]) : given;
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

// True when the logical matrix has a NaN or an infinity.
bool has_nonfinite(const MatView& v) {
  const bool rm = v.layout == fp8emu::Layout::row_major;
  const std::int64_t outer = rm ? v.rows : v.cols, inner = rm ? v.cols : v.rows;
  const std::int64_t ld = v.ld ? v.ld : inner;
  for (std::int64_t i = 0; i < outer; ++i)
    for (std::int64_t j = 0; j < inner; ++j)
      if (!std::isfinite(v.data[i * ld + j])) return true;
  return false;
}

}  // namespace

void hadamard_transform(float* x, std::int64_t rows, std::int64_t k) {
  constexpr int n = kHadamardSize;
  const std::int64_t runs = k / n;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t b = 0; b < runs; ++b) {
      float* v = x + r * k + b * n;
      for (int i = 0; i < n; ++i) v[i] = v[i] * (kHadamardSigns[std::size_t(i)] * 0.25f);
      // Sylvester order: stage h pairs i and i + h for the i with bit h clear.
      for (int h = 1; h < n; h *= 2)
        for (int i = 0; i < n; i += 2 * h)
          for (int j = i; j < i + h; ++j) {
            const float a = v[j], c = v[j + h];
            v[j] = a + c;
            v[j + h] = a - c;
          }
    }
}

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
  return fp8emu::auto_scale(fmax, amax, s.margin, s.pow2);
}

void push_amax(const Scaling& s, double fmax, OperandState& st, double amax) {
  // Transformer Engine: push this step's amax, then the scale of the next step. A
  // non-finite amax is not recorded: the scale stays.
  if (!std::isfinite(amax)) return;
  if (st.history.size() != std::size_t(s.history)) st.history.assign(std::size_t(s.history), 0.0f);
  st.history[std::size_t(st.recorded % s.history)] = float(amax);
  ++st.recorded;
  float h = float(amax);
  if (s.algo == AmaxAlgo::max) h = *std::max_element(st.history.begin(), st.history.end());
  if (h > 0) st.scale = amax_scale(s, fmax, h);
}

void record_amax(const Scaling& s, double fmax, OperandState& st, double amax, bool defer) {
  if (defer)
    merge_amax(st.step_amax, amax);
  else
    push_amax(s, fmax, st, amax);
}

void push_step_amax(const Scaling& s, double fmax, OperandState& st) {
  if (st.step_amax == -1) return;
  push_amax(s, fmax, st, st.step_amax);
  st.step_amax = -1;
}

int mx_exponent(const Scaling& s, const fp8emu::Format& elem, double amax) {
  return fp8emu::mx_exponent(elem, amax, s.mx_floor ? fp8emu::MxRule::floor : fp8emu::MxRule::ceil);
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
  Quantized qa, qb;
  int started = 0;  // operands whose quantization began (and whose rotation was made)
  try {
    started = 1;
    qa = quantize_any(role.a, a, true, sa, g, ws);
    started = 2;
    qb = quantize_any(role.b, b, false, sb, g, ws);
  } catch (const std::invalid_argument&) {
    // NVFP4's tensor scale needs a finite amax, and quantize_matrix refuses an operand
    // without one. On the hardware the scale, and so every output, would be NaN.
    bool nonfinite = false;
    for (int slot = 0; slot < started; ++slot) {
      const OperandSpec& spec = slot ? role.b : role.a;
      const MatView& v = slot ? b : a;
      const std::vector<float>& rot = ws.rotated[slot];
      if (spec.scaling.kind != ScalingKind::nvfp4) continue;
      const bool bad = spec.hadamard ? std::any_of(rot.begin(), rot.end(), [](float x) { return !std::isfinite(x); })
                                     : has_nonfinite(v);
      if (bad && ctx.stats) (slot ? sb : sa).stats.amax = std::numeric_limits<double>::quiet_NaN();
      nonfinite |= bad;
    }
    if (!nonfinite) throw;
    for (std::int64_t i = 0; i < a.rows; ++i)
      std::fill(c + i * ldc, c + i * ldc + b.cols, std::numeric_limits<float>::quiet_NaN());
    return;
  }
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
  return fp8emu::gemm_has_fast_path(qa.m, qb.m, gemm_options(role, qa, qb, false, ctx));
}

}  // namespace fp8sim
