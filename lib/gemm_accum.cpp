// The fast paths of float accumulators other than float32 nearest-even sequential
// (GemmPath::accumulator on float32 lanes, ::accumulator_wide on float64 lanes), equal to
// gemm_reference bit for bit (tests/test_gemm_accum.cpp). The SIMD loops and the
// argument for their exactness are in gemm_accum_kernels.hpp; this file decides the path,
// derives the special values from the scalar reference, packs the operands and calls the
// kernels through the KernelTable of the target in use (simd.hpp).
//
// What takes the reference instead: operands with a NaN or an infinite value (the
// reference's rules for them are not repeated here) or a code wider than the format, operand formats wider than 16 bits
// other than float32, accumulator formats without a trailing significand (precision 1,
// whose "even" is the exponent's last bit), and stochastic rounding with more random bits
// than the float64 lanes keep (p + N + 2 > 53: float32 accumulators with N > 27).
#include <omp.h>

#include <bit>
#include <algorithm>
#include <cmath>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "fp8emu/arith.hpp"
#include "fp8emu/array.hpp"
#include "gemm_internal.hpp"
#include "simd.hpp"

namespace fp8emu::detail {
namespace {

bool is_float32(const Format& f) { return f == Format(formats::float32{}); }

// The lane values of an operand: its codes' values, subnormals flushed to zeros of their
// sign under DAZ (the reference unpacks operands with flush_inputs).
struct OperandValues {
  Strided s;
  bool f32, daz;
  std::vector<float> table;

  OperandValues(const CodeMatrix& m, bool flush)
      : s(strided(m)), f32(is_float32(m.format)), daz(flush) {
    if (f32) return;
    table = value_table(m.format);
    if (daz)
      for (std::size_t c = 0; c < table.size(); ++c)
        if (classify(m.format, std::uint32_t(c)) == ValueClass::subnormal) table[c] *= 0.0f;
  }
  float at(std::int64_t r, std::int64_t c) const {
    const std::uint32_t code = s.at(r, c);
    if (!f32) return table[code];
    const float v = std::bit_cast<float>(code);
    return daz && std::fabs(v) < 0x1p-126f ? v * 0.0f : v;
  }
};

bool operand_readable(const Format& f) { return total_bits(f) <= 16 || is_float32(f); }

// Whether every code fits the format and has a finite value (a code that does not fit
// takes the reference, which reports it).
bool all_finite(const CodeMatrix& m) {
  const OperandValues v(m, false);
  for (std::int64_t r = 0; r < m.rows; ++r)
    for (std::int64_t c = 0; c < m.cols; ++c)
      if ((!v.f32 && v.s.at(r, c) >= v.table.size()) || !std::isfinite(v.at(r, c))) return false;
  return true;
}

int emax(const Format& f) { return int(std::ilogb(max_finite(f))); }

// The precision the lanes must keep beyond the accumulator's p bits: 2 for round-to-odd
// then a deterministic rounding, N + 2 for stochastic rounding with N random bits.
int needed_precision(const Accumulation& acc) {
  const int p = acc.format.mantissa_bits + 1;
  return p + 2 + (is_stochastic(acc.convert.rounding) ? acc.convert.stochastic_bits : 0);
}

// float32 lanes (P = 24) where every step is exact or representable there: random indices
// below 2^32; exact products (at most 24 bits, multiples of 2^-149); the float grid, 2^-149
// at the bottom, fine enough below the accumulator's smallest quantum; and every exact sum
// |x + y| below a bound S for which the kernel's constants (1.5 2^23 q for nearest-even,
// |t| 2^M for the other modes) are finite floats. S is the smaller of the accumulator's
// range (beyond it a sum is an infinity or clamps) and the sum of the K largest products
// grown by every rounding (at most 2 per product, 4 with Kahan, each by a factor at most
// 1 + 2^(1-p), 1 + 2^-p for nearest), times 4 for the Kahan terms.
bool float_lanes(const CodeMatrix& a, const CodeMatrix& b, const Accumulation& acc) {
  const Format &fa = a.format, &fb = b.format, &f = acc.format;
  const Rounding r = acc.convert.rounding;
  if (is_stochastic(r) && 4.0 * double(a.rows) * double(b.cols) * double(a.cols) > 0x1p32)
    return false;
  if (total_bits(fa) > 16 || total_bits(fb) > 16 || fa.mantissa_bits + fb.mantissa_bits + 2 > 24 ||
      quantum_min(fa) + quantum_min(fb) < -149)
    return false;
  const int p = f.mantissa_bits + 1, extra = needed_precision(acc) - p;
  if (needed_precision(acc) > 24 || quantum_min(f) - extra < -149) return false;
  const double max_product = max_finite(fa) * max_finite(fb), acc_max = max_finite(f);
  const double range = acc_max + std::max(acc_max, max_product);
  const bool nearest = r == Rounding::nearest_even || r == Rounding::nearest_away;
  const double K = double(std::max<std::int64_t>(a.cols, 1));
  const double roundings = acc.kahan ? 4.0 : 2.0;  // per product, at most
  const double grown = std::log2(4.0 * K * (max_product + std::ldexp(1.0, quantum_min(f)))) +
                       roundings * K * std::log2(1.0 + std::ldexp(1.0, nearest ? -p : 1 - p));
  const double log2_s = std::min(std::log2(range), grown);
  const int M = f.mantissa_bits;
  return log2_s < std::min({126, 104 + M, 126 - M});
}

// float64 lanes: products of formats that fit float are exact doubles (at most 48 bits,
// exponents from -298 to 256), and so is every quantum.
bool wide_lanes(const Accumulation& acc) { return needed_precision(acc) <= 53; }

// Whether every sum x + y of a step is exact in float64 lanes, for x and y accumulator
// values (|x| <= the largest finite value, or not finite) or exact products: all are
// multiples of the smaller of the accumulator's and the products' smallest quantum, and
// |x + y| < 2 max(2^(emax + 1), the largest product) must then be below 2^53 quanta
// (float16 accumulators of e4m3fn x e4m3fn or e4m3fn x e5m2 products; not e5m2 x e5m2).
// An infinite or NaN x + y is the same value TwoSum gives, so it stays the reference's.
bool exact_sums(const Format& fa, const Format& fb, const Accumulation& acc) {
  const Format& f = acc.format;
  const int q = std::min(quantum_min(f), quantum_min(fa) + quantum_min(fb));
  const double bound = 2.0 * std::max(std::ldexp(1.0, emax(f) + 1), max_finite(fa) * max_finite(fb));
  return bound <= std::ldexp(1.0, 53 + q);
}

AccumPlan accum_plan(const GemmOptions& o) {
  const Accumulation& acc = o.accumulation;
  const Format& f = acc.format;
  const ConvertOptions& co = acc.convert;
  // The value of the accumulator code the reference gives for an exact result e.
  const auto value = [&](const Exact& e) { return decode(f, round_exact(f, e, co, 0).code); };
  AccumPlan p;
  p.M = f.mantissa_bits;
  p.n = is_stochastic(co.rounding) ? co.stochastic_bits : 1;
  p.emin_value = std::ldexp(1.0, emin(f));
  p.max_value = max_finite(f);
  // 2^(emax + 2): beyond every rounding of the largest finite value.
  p.ovf_pos = value(Exact{ValueClass::normal, false, 1, emax(f) + 2, false});
  p.ovf_neg = value(Exact{ValueClass::normal, true, 1, emax(f) + 2, false});
  p.inf_pos = value(exact_inf(false));
  p.inf_neg = value(exact_inf(true));
  p.nan_value = value(exact_nan());
  p.daz = co.flush_inputs;
  p.ftz = co.flush_outputs;
  p.order = acc.order;
  p.kahan = acc.kahan;
  p.chunk = acc.chunk;
  p.promote = acc.promote_interval;
  p.key = random_key(acc.seed, acc.stream);
  return p;
}

template <class T>
void run(const CodeMatrix& a, const CodeMatrix& b, float* c, std::int64_t ldc,
         const GemmOptions& o, const KernelTable& kt, int cols, AccumFn fn) {
  GemmPlan pl;
  pl.M = a.rows;
  pl.N = b.cols;
  pl.K = a.cols;
  pl.L = 0;
  pl.sp = scale_plan(a, b, o);
  pl.threads = o.exec.threads > 0 ? o.exec.threads : omp_get_max_threads();
  const std::int64_t M = pl.M, N = pl.N, K = pl.K;
  const std::int64_t rows = kAccumRows;
  const std::int64_t mpad = (M + rows - 1) / rows * rows, npad = (N + cols - 1) / cols * cols;
  const bool daz = o.accumulation.convert.flush_inputs;
  const OperandValues va(a, daz), vb(b, daz);
  // A row-major (mpad x K); B in panels of K x cols, each row of a panel one register
  // block's columns (padding rows and columns are zeros, computed and dropped).
  std::vector<T> av(std::size_t(mpad * K), T(0));
  std::vector<T, xsimd::aligned_allocator<T, 64>> bv(std::size_t(K * npad), T(0));
  std::vector<float> tot(std::size_t(mpad * npad));
  const std::vector<float> b_out = epilogue_columns(o, pl.sp, N);
#pragma omp parallel num_threads(pl.threads)
  {
#pragma omp for schedule(static)
    for (std::int64_t i = 0; i < M; ++i)
      for (std::int64_t k = 0; k < K; ++k) av[std::size_t(i * K + k)] = T(va.at(i, k));
#pragma omp for schedule(static)
    for (std::int64_t k = 0; k < K; ++k)
      for (std::int64_t j = 0; j < N; ++j)
        bv[std::size_t((j / cols) * K * cols + k * cols + j % cols)] = T(vb.at(k, j));
  }
  AccumWork w{av.data(), bv.data(), mpad, npad, tot.data(), b_out.data(), accum_plan(o)};
  w.p.exact = sizeof(T) == 8 && exact_sums(a.format, b.format, o.accumulation);
  note_kernels_used(kt);
  fn(pl, o, w, c, ldc);
}

}  // namespace

GemmPath accumulator_fast_path(const CodeMatrix& a, const CodeMatrix& b, const GemmOptions& o) {
  const Accumulation& acc = o.accumulation;
  if (!o.exec.simd || !active_kernels() || acc.unit.model != UnitModel::none) return GemmPath::reference;
  if (a.rows == 0 || b.cols == 0 || acc.format.mantissa_bits < 1) return GemmPath::reference;
  if (!operand_readable(a.format) || !operand_readable(b.format)) return GemmPath::reference;
  if (!float_lanes(a, b, acc) && !wide_lanes(acc)) return GemmPath::reference;
  if (!all_finite(a) || !all_finite(b)) return GemmPath::reference;
  // Blocked and Kahan steps with exact sums (no TwoSum, no round-to-odd) run faster on
  // float64 lanes than on float32 lanes with them; sequential and pairwise order and
  // stochastic rounding (whose random bits cost more on float64 lanes) do not, and keep
  // float32 lanes where those serve.
  const bool fl = float_lanes(a, b, acc);
  if (wide_lanes(acc) && exact_sums(a.format, b.format, acc) &&
      (acc.kahan || acc.order == SumOrder::blocked) && !is_stochastic(acc.convert.rounding))
    return GemmPath::accumulator_wide;
  return fl ? GemmPath::accumulator : GemmPath::accumulator_wide;
}

void accumulator_fast(const CodeMatrix& a, const CodeMatrix& b, float* c, std::int64_t ldc,
                      const GemmOptions& o, GemmPath path) {
  const KernelTable& kt = *active_kernels();
  const std::size_t r = std::size_t(o.accumulation.convert.rounding);
  if (path == GemmPath::accumulator)
    run<float>(a, b, c, ldc, o, kt, kt.accum_cols, kt.gemm_accum[r]);
  else
    run<double>(a, b, c, ldc, o, kt, kt.accum_cols_wide, kt.gemm_accum_wide[r]);
}

}  // namespace fp8emu::detail
