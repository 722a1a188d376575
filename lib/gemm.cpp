// GEMM: argument checks, the accumulation spec parser, the scalar reference (the
// definition every fast path is tested against) and gemm, which picks the path. The
// matrix-unit models are in units/ (units.hpp); the fast kernels in gemm_fast.cpp.
// docs/gemm.md states each rule.
#include "fp8emu/gemm.hpp"

#include <omp.h>

#include <bit>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "fp8emu/arith.hpp"
#include "fp8emu/array.hpp"
#include "fp8emu/options.hpp"
#include "fp8emu/random.hpp"
#include "gemm_internal.hpp"
#include "units/units.hpp"

namespace fp8emu {

int code_bytes(const Format& f) {
  const int bits = total_bits(f);
  return bits <= 8 ? 1 : bits <= 16 ? 2 : 4;
}

// ---------------------------------------------------------------------------
// Presets and the spec parser.
// ---------------------------------------------------------------------------

namespace {

struct Preset {
  std::string_view name;
  Accumulation acc;
};

Accumulation float_acc(Format f) {
  Accumulation a;
  a.format = f;
  return a;
}

Accumulation unit_acc(UnitModel m, const detail::UnitPreset& p) {
  Accumulation a;
  a.unit.model = m;
  a.unit.block = p.block;
  a.unit.fraction_bits = p.fraction_bits;
  a.unit.output_fraction_bits = p.output_fraction_bits;
  a.unit.output_rounding = p.output_rounding;
  return a;
}

// docs/gemm.md, "Presets": the float accumulators, then each matrix-unit model's presets
// in the order of the table (units/units.hpp).
const std::vector<Preset>& presets() {
  static const std::vector<Preset> p = [] {
    std::vector<Preset> v = {
        {"fp32", float_acc(formats::float32{})},
        {"fp16", float_acc(formats::float16{})},
        {"bf16", float_acc(formats::bfloat16{})},
    };
    for (const detail::UnitModelInfo* m : detail::unit_models())
      for (const detail::UnitPreset& q : m->presets) v.push_back({q.name, unit_acc(m->model, q)});
    return v;
  }();
  return p;
}

[[noreturn]] void bad(const std::string& msg) { throw std::invalid_argument(msg); }

// A float accumulator sums products of either sign from +0: its format needs a sign and
// a zero (which rules out e8m0fnu and the unsigned P3109 formats).
void check_accumulator_format(const Format& f) {
  if (auto why = check(f)) bad("accumulation: invalid format: " + *why);
  if (!fits_float(f))
    bad("accumulation: the accumulator format " + format_name(f) + " does not fit in float");
  if (!f.is_signed)
    bad("accumulation: the accumulator format " + format_name(f) +
        " has no sign (a sum of products of either sign needs a signed format)");
  if (!has_zero(f))
    bad("accumulation: the accumulator format " + format_name(f) +
        " has no zero (the sum starts from +0)");
}

long parse_int(std::string_view key, std::string_view v, long lo, long hi) {
  long x = 0;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), x);
  if (r.ec != std::errc() || r.ptr != v.data() + v.size() || x < lo || x > hi)
    bad("accumulation: " + std::string(key) + "=" + std::string(v) + " must be an integer in " +
        std::to_string(lo) + ".." + std::to_string(hi));
  return x;
}

Rounding parse_mode(std::string_view key, std::string_view v) {
  auto r = try_parse<Rounding>(v);
  if (!r)
    bad("accumulation: unknown rounding '" + std::string(v) + "' for " + std::string(key) +
        " (one of " + option_names<Rounding>() + ")");
  return *r;
}

bool parse_bool(std::string_view key, std::string_view v) {
  if (v == "1" || v == "true" || v == "on") return true;
  if (v == "0" || v == "false" || v == "off") return false;
  bad("accumulation: " + std::string(key) + " must be 0 or 1, got '" + std::string(v) + "'");
}

}  // namespace

std::string_view unit_model_name(UnitModel m) {
  return m == UnitModel::none ? "none" : detail::unit_model_info(m).name;
}

std::span<const std::string_view> accumulation_presets() {
  static const auto names = [] {
    std::vector<std::string_view> n;
    for (const Preset& p : presets()) n.push_back(p.name);
    return n;
  }();
  return names;
}

Accumulation parse_accumulation(std::string_view spec) {
  std::size_t pos = spec.find(',');
  const std::string_view head = spec.substr(0, pos);
  Accumulation a;
  bool found = false;
  for (const auto& p : presets())
    if (p.name == head) {
      a = p.acc;
      found = true;
    }
  if (!found) {
    std::string names;
    for (const auto& p : presets()) names += (names.empty() ? "" : ", ") + std::string(p.name);
    bad("accumulation: unknown preset '" + std::string(head) + "' (presets: " + names + ")");
  }
  std::vector<std::string_view> keys;  // each key once: a second one is an error, not an override
  while (pos != std::string_view::npos) {
    const std::size_t next = spec.find(',', pos + 1);
    const std::string_view item = spec.substr(pos + 1, next == spec.npos ? spec.npos : next - pos - 1);
    pos = next;
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0)
      bad("accumulation: expected key=value, got '" + std::string(item) + "'");
    const std::string_view k = item.substr(0, eq), v = item.substr(eq + 1);
    for (std::string_view seen : keys)
      if (seen == k) bad("accumulation: key '" + std::string(k) + "' given twice");
    keys.push_back(k);
    if (k == "format") {
      a.format = parse_format(v);
      check_accumulator_format(a.format);
      a.unit.model = UnitModel::none;
    } else if (k == "rounding") {
      a.convert.rounding = parse_mode(k, v);
    } else if (k == "saturation") {
      auto s = try_parse<Saturation>(v);
      if (!s)
        bad("accumulation: unknown saturation '" + std::string(v) + "' (one of " +
            option_names<Saturation>() + ")");
      a.convert.saturation = *s;
    } else if (k == "sr-bits") {
      a.convert.stochastic_bits = int(parse_int(k, v, 1, 32));
    } else if (k == "daz") {
      a.convert.flush_inputs = parse_bool(k, v);
    } else if (k == "ftz") {
      a.convert.flush_outputs = parse_bool(k, v);
    } else if (k == "order") {
      auto o = try_parse<SumOrder>(v);
      if (!o)
        bad("accumulation: order must be one of " + option_names<SumOrder>() + ", got '" +
            std::string(v) + "'");
      a.order = *o;
    } else if (k == "chunk") {
      a.chunk = int(parse_int(k, v, 1, INT_MAX));
    } else if (k == "kahan") {
      a.kahan = parse_bool(k, v);
    } else if (k == "promote") {
      a.promote_interval = int(parse_int(k, v, 0, INT_MAX));
    } else if (k == "block") {
      a.unit.block = int(parse_int(k, v, 1, 4096));
    } else if (k == "fbits") {
      a.unit.fraction_bits = int(parse_int(k, v, 1, 48));
    } else if (k == "out-bits") {
      a.unit.output_fraction_bits = int(parse_int(k, v, 1, 23));
    } else if (k == "term-rounding") {
      a.unit.term_rounding = parse_mode(k, v);
    } else if (k == "out-rounding") {
      a.unit.output_rounding = parse_mode(k, v);
    } else if (k == "input") {
      if (v == "term") a.unit.input = UnitInput::term;
      else if (v == "separate") a.unit.input = UnitInput::separate;
      else bad("accumulation: input must be term or separate, got '" + std::string(v) + "'");
    } else if (k == "seed") {
      a.seed = std::uint64_t(parse_int(k, v, 0, LONG_MAX));
    } else if (k == "stream") {
      a.stream = std::uint64_t(parse_int(k, v, 0, LONG_MAX));
    } else {
      bad("accumulation: unknown key '" + std::string(k) +
          "' (keys: format, rounding, saturation, sr-bits, daz, ftz, order, chunk, kahan, "
          "promote, block, fbits, out-bits, term-rounding, out-rounding, input, seed, stream)");
    }
  }
  if (a.convert.stochastic_bits == 0)
    a.convert.stochastic_bits = default_stochastic_bits_for(a.convert.rounding);
  return a;
}

std::string accumulation_spec(const Accumulation& a) {
  std::string s;
  const auto mode = [](Rounding r) { return std::string(to_string(r)); };
  const auto same_unit = [](const MatrixUnit& x, const MatrixUnit& y) {
    return x.model == y.model && x.block == y.block && x.fraction_bits == y.fraction_bits &&
           x.term_rounding == y.term_rounding && x.output_fraction_bits == y.output_fraction_bits &&
           x.output_rounding == y.output_rounding && x.input == y.input;
  };
  if (a.unit.model != UnitModel::none) {
    for (const auto& p : presets())
      if (p.acc.unit.model != UnitModel::none && same_unit(p.acc.unit, a.unit)) {
        s = std::string(p.name);
        if (a.promote_interval) s += ",promote=" + std::to_string(a.promote_interval);
        return s;
      }
    s = std::string(detail::unit_model_info(a.unit.model).presets.front().name);
    s += ",block=" + std::to_string(a.unit.block) + ",fbits=" + std::to_string(a.unit.fraction_bits) +
         ",out-bits=" + std::to_string(a.unit.output_fraction_bits) +
         ",term-rounding=" + mode(a.unit.term_rounding) +
         ",out-rounding=" + mode(a.unit.output_rounding) +
         ",input=" + (a.unit.input == UnitInput::term ? "term" : "separate");
  } else {
    s = "fp32,format=" + format_name(a.format) + ",rounding=" + mode(a.convert.rounding) +
        ",saturation=" + std::string(to_string(a.convert.saturation));
    if (is_stochastic(a.convert.rounding))
      s += ",sr-bits=" + std::to_string(a.convert.stochastic_bits) + ",seed=" +
           std::to_string(a.seed) + ",stream=" + std::to_string(a.stream);
    if (a.convert.flush_inputs) s += ",daz=1";
    if (a.convert.flush_outputs) s += ",ftz=1";
    s += ",order=" + std::string(to_string(a.order));
    if (a.order == SumOrder::blocked) s += ",chunk=" + std::to_string(a.chunk);
    if (a.kahan) s += ",kahan=1";
  }
  if (a.promote_interval) s += ",promote=" + std::to_string(a.promote_interval);
  return s;
}

// ---------------------------------------------------------------------------
// Checks.
// ---------------------------------------------------------------------------

namespace {

void check_matrix(const char* name, const CodeMatrix& m) {
  if (auto why = check(m.format)) bad(std::string(name) + ": invalid format: " + *why);
  if (!fits_float(m.format))
    bad(std::string(name) + ": the values of format " + format_name(m.format) +
        " do not all fit in float");
  if (m.rows < 0 || m.cols < 0) bad(std::string(name) + ": negative dimension");
  const std::int64_t inner = m.layout == Layout::row_major ? m.cols : m.rows;
  if (m.ld != 0 && m.ld < inner)
    bad(std::string(name) + ": leading dimension " + std::to_string(m.ld) + " < " +
        std::to_string(inner));
  if (m.data == nullptr && m.rows * m.cols > 0) bad(std::string(name) + ": no data");
  // Codes of a format narrower than their storage: every code must fit its bits (the
  // kernels index value tables with them).
  const int bits = total_bits(m.format);
  if (bits >= 8 * code_bytes(m.format)) return;
  // First the OR of every line's codes (a line: the contiguous dimension), a loop that
  // vectorizes; only a matrix with a wide code is searched for the first one.
  const std::int64_t lines = m.layout == Layout::row_major ? m.rows : m.cols, ld = m.ld ? m.ld : inner;
  const auto any_wide = [&](const auto* p) {
    std::remove_cvref_t<decltype(*p)> all = 0;
    for (std::int64_t l = 0; l < lines; ++l)
      for (std::int64_t i = 0; i < inner; ++i) all |= p[l * ld + i];
    return (std::uint32_t(all) >> bits) != 0;
  };
  const int bytes = code_bytes(m.format);
  if (!(bytes == 1   ? any_wide(static_cast<const std::uint8_t*>(m.data))
        : bytes == 2 ? any_wide(static_cast<const std::uint16_t*>(m.data))
                     : any_wide(static_cast<const std::uint32_t*>(m.data))))
    return;
  const detail::Strided st = detail::strided(m);
  for (std::int64_t r = 0; r < m.rows; ++r)
    for (std::int64_t c = 0; c < m.cols; ++c)
      if (st.at(r, c) >> bits) {
        char hex[16];
        std::snprintf(hex, sizeof hex, "0x%X", unsigned(st.at(r, c)));
        bad(std::string(name) + ": code " + hex + " at (" +
            std::to_string(r) + ", " + std::to_string(c) + ") does not fit in the " +
            std::to_string(bits) + " bits of " + format_name(m.format));
      }
}

void check_scales(const char* name, const Scales& s) {
  if (s.block_rows < 0 || s.block_cols < 0) bad(std::string(name) + ": negative block size");
  if (!(std::isfinite(s.tensor)))
    bad(std::string(name) + ": the tensor scale must be finite");
}

}  // namespace

void check_gemm(const CodeMatrix& a, const CodeMatrix& b, const float* c, std::int64_t ldc,
                const GemmOptions& o) {
  check_matrix("A", a);
  check_matrix("B", b);
  if (a.cols != b.rows)
    bad("shape mismatch: A is " + std::to_string(a.rows) + "x" + std::to_string(a.cols) +
        " and B is " + std::to_string(b.rows) + "x" + std::to_string(b.cols) +
        " (A's columns must equal B's rows)");
  if (ldc < b.cols) bad("C: leading dimension " + std::to_string(ldc) + " < N = " + std::to_string(b.cols));
  if (c == nullptr && a.rows * b.cols > 0) bad("C: no data");
  check_scales("A scales", o.a_scales);
  check_scales("B scales", o.b_scales);
  const detail::ScalePlan sp = detail::scale_plan(a, b, o);
  if (sp.sa.k_block && sp.sb.k_block && sp.sa.k_block != sp.sb.k_block)
    bad("scales: A's blocks along K (" + std::to_string(sp.sa.k_block) + ") differ from B's (" +
        std::to_string(sp.sb.k_block) + ")");
  const Accumulation& acc = o.accumulation;
  if (acc.promote_interval < 0) bad("accumulation: promote must be >= 0");
  if (acc.unit.model == UnitModel::none) {
    check_accumulator_format(acc.format);
    validate(acc.convert);
    if (acc.order == SumOrder::blocked && acc.chunk < 1)
      bad("accumulation: order=blocked needs chunk >= 1");
    if (acc.kahan && acc.order != SumOrder::sequential)
      bad("accumulation: kahan=1 needs order=sequential");
  } else {
    detail::check_unit(acc.unit);  // a known model, its ranges
  }
}

namespace detail {

ScaleGrid scale_grid(const Scales& s, std::int64_t rows, std::int64_t cols, bool is_a) {
  ScaleGrid g;
  g.s = &s;
  g.br = s.block_rows > 0 ? s.block_rows : std::max<std::int64_t>(rows, 1);
  g.bc = s.block_cols > 0 ? s.block_cols : std::max<std::int64_t>(cols, 1);
  g.grid_cols = (std::max<std::int64_t>(cols, 1) + g.bc - 1) / g.bc;
  // The K dimension is A's columns and B's rows; a block shorter than K splits it.
  const std::int64_t kb = is_a ? g.bc : g.br, K = is_a ? cols : rows;
  g.k_block = s.data != nullptr && kb < K ? kb : 0;
  return g;
}

float ScaleGrid::at(std::int64_t r, std::int64_t c) const {
  if (s->data == nullptr) return 1.0f;
  return block_value((r / br) * grid_cols + c / bc);
}

float ScaleGrid::block_value(std::int64_t idx) const {
  switch (s->encoding) {
    case ScaleEncoding::float32:
      return static_cast<const float*>(s->data)[idx];
    case ScaleEncoding::e8m0: {
      // 2^(code - 127): the float exponent field itself; 2^-127 (a subnormal) for code 0,
      // NaN for 0xFF (OCP MX v1.0, E8M0).
      const std::uint32_t e = static_cast<const std::uint8_t*>(s->data)[idx];
      return std::bit_cast<float>(e == 0 ? 0x00400000u : e == 0xFF ? 0x7FC00000u : e << 23);
    }
    case ScaleEncoding::e4m3: {
      // The value of the e4m3fn code without its sign bit, from the table of decoded values.
      static const std::vector<float>& table = value_table(formats::e4m3fn{});
      return table[static_cast<const std::uint8_t*>(s->data)[idx] & 0x7F];
    }
  }
  return 1.0f;
}

void ScaleGrid::run(std::int64_t r, std::int64_t c, std::int64_t dr, std::int64_t dc,
                    std::int64_t n, float* out) const {
  if (s->data == nullptr) {
    for (std::int64_t t = 0; t < n; ++t) out[t] = 1.0f;
    return;
  }
  // The block index moves on by `step` every `len` elements, the first time after `left`.
  const std::int64_t len = dr ? br : dc ? bc : n + 1, step = dr ? grid_cols : 1;
  std::int64_t idx = (r / br) * grid_cols + c / bc;
  std::int64_t left = dr ? br - r % br : dc ? bc - c % bc : n + 1;
  float v = block_value(idx);
  for (std::int64_t t = 0; t < n; ++t) {
    out[t] = v;
    if (--left == 0) {
      idx += step;
      left = len;
      if (t + 1 < n) v = block_value(idx);
    }
  }
}

ScalePlan scale_plan(const CodeMatrix& a, const CodeMatrix& b, const GemmOptions& o) {
  ScalePlan p;
  p.sa = scale_grid(o.a_scales, a.rows, a.cols, true);
  p.sb = scale_grid(o.b_scales, b.rows, b.cols, false);
  p.kb = p.sa.k_block ? p.sa.k_block : p.sb.k_block;
  return p;
}

Strided strided(const CodeMatrix& m) {
  const std::int64_t ld = m.ld ? m.ld : (m.layout == Layout::row_major ? m.cols : m.rows);
  return m.layout == Layout::row_major ? Strided{m.data, code_bytes(m.format), ld, 1}
                                       : Strided{m.data, code_bytes(m.format), 1, ld};
}

std::int64_t float_significand(float c) {
  const std::uint32_t cb = std::bit_cast<std::uint32_t>(c);
  const std::int64_t m = (cb & 0x7FFFFF) | (((cb >> 23) & 0xFF) ? 0x800000 : 0);
  return cb >> 31 ? -m : m;
}

std::int64_t round_shift(std::int64_t x, int sh, Rounding r) {
  if (x == 0) return 0;
  const bool neg = x < 0;
  const std::uint64_t mag = neg ? 0 - std::uint64_t(x) : std::uint64_t(x);
  if (sh >= 0) return x * (std::int64_t{1} << sh);  // callers keep the result below 2^62
  const int n = -sh;
  std::uint64_t kept, frac;
  bool sticky = false;
  if (n < 64) {
    kept = mag >> n;
    frac = mag << (64 - n);
  } else if (n < 128) {
    kept = 0;
    frac = mag >> (n - 64);
    sticky = n > 64 && (mag & ((std::uint64_t{1} << (n - 64)) - 1)) != 0;
  } else {
    kept = 0;
    frac = 0;
    sticky = true;
  }
  if (frac != 0 || sticky) kept += round_up(r, neg, (kept & 1) != 0, frac, sticky, 0, 0);
  return neg ? -std::int64_t(kept) : std::int64_t(kept);
}

float unit_output(std::int64_t s, int exp, int out_bits, Rounding r) {
  if (s == 0) return 0.0f;  // the models return +0 for a zero sum
  const std::uint64_t mag = s < 0 ? 0 - std::uint64_t(s) : std::uint64_t(s);
  const int ev = 63 - std::countl_zero(mag) + exp;  // floor(log2 |v|)
  const int q = std::max(ev, -126) - out_bits;        // the output quantum
  const std::int64_t kept = round_shift(s, exp - q, r);
  const double v = std::ldexp(double(kept), q);
  if (std::fabs(v) >= 0x1p128) return v < 0 ? -INFINITY : INFINITY;
  return float(v);
}

int float_exponent(float c) {
  const std::uint32_t b = std::bit_cast<std::uint32_t>(c);
  const int biased = int((b >> 23) & 0xFF);
  return biased == 0 ? -126 : biased - 127;
}

}  // namespace detail

// ---------------------------------------------------------------------------
// The reference.
// ---------------------------------------------------------------------------

namespace {

using detail::Unpacked;

struct Ref {
  const CodeMatrix& A;
  const CodeMatrix& B;
  const GemmOptions& o;
  const Accumulation& acc;
  std::int64_t M, N, K;
  RandomKey key;

  Unpacked ua(std::int64_t i, std::int64_t k) const {
    return detail::unpack(A.format, detail::code_at(A, i, k), acc.convert.flush_inputs);
  }
  Unpacked ub(std::int64_t k, std::int64_t j) const {
    return detail::unpack(B.format, detail::code_at(B, k, j), acc.convert.flush_inputs);
  }
  std::uint32_t rbits(std::int64_t i, std::int64_t j, std::int64_t k, int step) const {
    if (!is_stochastic(acc.convert.rounding)) return 0;
    return random_bits(key, ((std::uint64_t(i) * N + j) * std::uint64_t(K) + k) * 4 + step);
  }
  Unpacked unpack_acc(std::uint32_t code) const {
    return detail::unpack(acc.format, code, acc.convert.flush_inputs);
  }
  std::uint32_t round(const detail::Exact& e, std::uint32_t random) const {
    return detail::round_exact(acc.format, e, acc.convert, random).code;
  }
  static Unpacked neg(Unpacked u) {
    u.neg = !u.neg;
    return u;
  }

  // s = round(s + p_k), k = k0 .. k1 - 1, from s = +0 (a code of the accumulator format).
  std::uint32_t sequential(std::int64_t i, std::int64_t j, std::int64_t k0, std::int64_t k1) const {
    std::uint32_t s = 0;
    const Rounding r = acc.convert.rounding;
    for (std::int64_t k = k0; k < k1; ++k)
      s = round(detail::fma_exact(ua(i, k), ub(k, j), unpack_acc(s), r), rbits(i, j, k, 0));
    return s;
  }

  // Kahan (1965): y = p - c; t = s + y; c = (t - s) - y; s = t; each step rounded.
  std::uint32_t kahan(std::int64_t i, std::int64_t j, std::int64_t k0, std::int64_t k1) const {
    std::uint32_t s = 0, c = 0;
    const Rounding r = acc.convert.rounding;
    for (std::int64_t k = k0; k < k1; ++k) {
      const std::uint32_t y =
          round(detail::fma_exact(ua(i, k), ub(k, j), neg(unpack_acc(c)), r), rbits(i, j, k, 0));
      const std::uint32_t t =
          round(detail::add_exact(unpack_acc(s), unpack_acc(y), r), rbits(i, j, k, 1));
      const std::uint32_t d =
          round(detail::add_exact(unpack_acc(t), neg(unpack_acc(s)), r), rbits(i, j, k, 2));
      c = round(detail::add_exact(unpack_acc(d), neg(unpack_acc(y)), r), rbits(i, j, k, 3));
      s = t;
    }
    return s;
  }

  std::uint32_t pairwise(std::int64_t i, std::int64_t j, std::int64_t lo, std::int64_t n) const {
    const Rounding r = acc.convert.rounding;
    if (n == 1)
      return round(detail::fma_exact(ua(i, lo), ub(lo, j), Unpacked{}, r), rbits(i, j, lo, 0));
    const std::int64_t m = n / 2;
    const std::uint32_t left = pairwise(i, j, lo, m), right = pairwise(i, j, lo + m, n - m);
    return round(detail::add_exact(unpack_acc(left), unpack_acc(right), r), rbits(i, j, lo + m, 1));
  }

  std::uint32_t blocked(std::int64_t i, std::int64_t j, std::int64_t k0, std::int64_t k1) const {
    std::uint32_t s = 0;
    for (std::int64_t c0 = k0; c0 < k1; c0 += acc.chunk) {
      const std::uint32_t part = sequential(i, j, c0, std::min<std::int64_t>(c0 + acc.chunk, k1));
      s = round(detail::add_exact(unpack_acc(s), unpack_acc(part), acc.convert.rounding),
                rbits(i, j, c0, 1));
    }
    return s;
  }

  float float_segment(std::int64_t i, std::int64_t j, std::int64_t k0, std::int64_t k1) const {
    std::uint32_t s;
    if (acc.kahan) s = kahan(i, j, k0, k1);
    else if (acc.order == SumOrder::pairwise) s = pairwise(i, j, k0, k1 - k0);
    else if (acc.order == SumOrder::blocked) s = blocked(i, j, k0, k1);
    else s = sequential(i, j, k0, k1);
    return float(decode(acc.format, s));
  }

  // The blocks of one segment, each by the model's rule (units/), C chained through them.
  float unit_segment(const detail::UnitModelInfo& m, std::int64_t i, std::int64_t j,
                     std::int64_t k0, std::int64_t k1) const {
    const MatrixUnit& u = acc.unit;
    float c = 0.0f;
    for (std::int64_t b0 = k0; b0 < k1; b0 += u.block) {
      const std::int64_t b1 = std::min<std::int64_t>(b0 + u.block, k1);
      const float in = u.input == UnitInput::term ? c : 0.0f;
      const float r = m.block_rule(detail::UnitBlock{A, B, u, i, j, b0, b1}, in);
      c = u.input == UnitInput::term ? r : c + r;
    }
    return c;
  }
};

}  // namespace

namespace detail {

std::int64_t next_boundary(std::int64_t k0, std::int64_t K, std::int64_t kb, std::int64_t nc) {
  std::int64_t k1 = K;
  if (kb > 0) k1 = std::min(k1, (k0 / kb + 1) * kb);
  if (nc > 0) k1 = std::min(k1, (k0 / nc + 1) * nc);
  return k1;
}

std::vector<float> epilogue_columns(const GemmOptions& o, const ScalePlan& sp, std::int64_t N) {
  std::vector<float> b_out(std::size_t(std::max<std::int64_t>(N, 0)));
  for (std::int64_t j = 0; j < N; ++j)
    b_out[std::size_t(j)] = sp.sb.k_block ? o.b_scales.tensor : o.b_scales.tensor * sp.sb.at(0, j);
  return b_out;
}

float epilogue_row_factor(const GemmOptions& o, const ScalePlan& sp, std::int64_t i) {
  const float a_out = sp.sa.k_block ? o.a_scales.tensor : o.a_scales.tensor * sp.sa.at(i, 0);
  return o.alpha * a_out;
}

void epilogue_row(const GemmOptions& o, const ScalePlan& sp, std::int64_t i, std::int64_t N,
                  const float* b_out, const float* total, float* out) {
  const float ga = epilogue_row_factor(o, sp, i);
  const std::uint32_t nan = o.accumulation.unit.model == UnitModel::none ? 0x7FC00000u : 0x7FFFFFFFu;
  for (std::int64_t j = 0; j < N; ++j) {
    const float g = ga * b_out[j];
    const float r = o.beta == 0.0f ? g * total[j] : std::fma(g, total[j], o.beta * out[j]);
    out[j] = std::isnan(r) ? std::bit_cast<float>(nan) : r;
  }
}

}  // namespace detail

void gemm_reference(const CodeMatrix& a, const CodeMatrix& b, float* c, std::int64_t ldc,
                    const GemmOptions& o) {
  check_gemm(a, b, c, ldc, o);
  const std::int64_t M = a.rows, N = b.cols, K = a.cols;
  const Accumulation& acc = o.accumulation;
  const Ref ref{a, b, o, acc, M, N, K, random_key(acc.seed, acc.stream)};
  const bool is_unit = acc.unit.model != UnitModel::none;
  const detail::UnitModelInfo* model = is_unit ? &detail::unit_model_info(acc.unit.model) : nullptr;
  const detail::ScalePlan sp = detail::scale_plan(a, b, o);
  const int threads = o.exec.threads > 0 ? o.exec.threads : omp_get_max_threads();
  const std::vector<float> b_out = detail::epilogue_columns(o, sp, N);
#pragma omp parallel for num_threads(threads) schedule(dynamic)
  for (std::int64_t i = 0; i < M; ++i) {
    std::vector<float> row(static_cast<std::size_t>(N));
    for (std::int64_t j = 0; j < N; ++j) {
      float total = 0.0f;
      for (std::int64_t k0 = 0; k0 < K;) {
        const std::int64_t k1 = detail::next_boundary(k0, K, sp.kb, acc.promote_interval);
        const float p = is_unit ? ref.unit_segment(*model, i, j, k0, k1)
                                : ref.float_segment(i, j, k0, k1);
        total = std::fma(p, sp.segment(i, k0, j), total);
        k0 = k1;
      }
      row[std::size_t(j)] = total;
    }
    detail::epilogue_row(o, sp, i, N, b_out.data(), row.data(), c + i * ldc);
  }
}

// ---------------------------------------------------------------------------
// The path choice.
// ---------------------------------------------------------------------------

std::string_view gemm_path_name(GemmPath p) { return to_string(p); }

// The one dispatch decision: gemm switches on it, gemm_path reports it. A float
// accumulator takes the float32 kernel or the accumulator kernels (gemm_accum.cpp); a
// matrix-unit model takes its own fast kernel (units/units.hpp) or the reference.
GemmPath gemm_path(const CodeMatrix& a, const CodeMatrix& b, const GemmOptions& o) {
  const UnitModel m = o.accumulation.unit.model;
  if (m == UnitModel::none)
    return detail::float32_fast_applies(a, b, o) ? GemmPath::float32
                                                 : detail::accumulator_fast_path(a, b, o);
  const detail::UnitFastKernel* fast = detail::unit_model_info(m).fast;
  return fast ? fast->path(a, b, o) : GemmPath::reference;
}

void gemm(const CodeMatrix& a, const CodeMatrix& b, float* c, std::int64_t ldc,
          const GemmOptions& o) {
  check_gemm(a, b, c, ldc, o);
  switch (const GemmPath p = gemm_path(a, b, o)) {
    case GemmPath::float32: return detail::float32_fast(a, b, c, ldc, o);
    case GemmPath::accumulator:
    case GemmPath::accumulator_wide: return detail::accumulator_fast(a, b, c, ldc, o, p);
    case GemmPath::unit:
    case GemmPath::unit_wide:
    case GemmPath::unit_amd:
      return detail::unit_model_info(o.accumulation.unit.model).fast->run(a, b, c, ldc, o, p);
    case GemmPath::reference: break;
  }
  gemm_reference(a, b, c, ldc, o);
}

}  // namespace fp8emu
