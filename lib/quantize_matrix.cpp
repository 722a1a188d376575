// One quantize-matrix step (see include/fp8emu/quantize_matrix.hpp and docs/arrays.md).
#include "fp8emu/quantize_matrix.hpp"

#include <omp.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "fp8emu/convert.hpp"
#include "fp8emu/explain.hpp"

namespace fp8emu {
namespace {

// max over the bits of |x|: an integer max, which vectorizes; a NaN's bits exceed every
// other value's, so NaN wins. (The bits are below 2^31: a signed max orders them alike.)
std::uint32_t abs_bits_max(const float* x, std::int64_t n) {
  std::int32_t m = 0;
  for (std::int64_t i = 0; i < n; ++i)
    m = std::max(m, std::int32_t(std::bit_cast<std::uint32_t>(x[i]) & 0x7FFFFFFFu));
  return std::uint32_t(m);
}

// 2^k for k in -149 .. 127, from its bits.
float pow2f(int k) {
  return std::bit_cast<float>(k >= -126 ? std::uint32_t(k + 127) << 23
                                        : std::uint32_t(1) << (k + 149));
}

float bits_to_amax(std::uint32_t m) {
  return m > 0x7F800000u ? std::numeric_limits<float>::quiet_NaN() : std::bit_cast<float>(m);
}

// m = max(m, a) where a NaN wins and stays.
void merge_amax(double& m, double a) {
  if (!std::isnan(m) && (std::isnan(a) || a > m)) m = a;
}

[[noreturn]] void bad(const std::string& what) {
  throw std::invalid_argument("quantize_matrix: " + what);
}

// NVFP4's tensor encode scale for a tensor of largest magnitude amax (finite): 448 fmax /
// amax in float32 (448 = e4m3fn's largest value), at most the largest float; 1 for amax 0.
// Its float32 reciprocal is the tensor scale gemm multiplies by.
float nvfp4_encode_scale(double amax, const Format& f) {
  if (!(amax > 0)) return 1.0f;
  const float e = float(max_finite(formats::e4m3fn{}) * max_finite(f)) / float(amax);
  return std::min(e, std::numeric_limits<float>::max());
}

// NVFP4's scales of one block of largest magnitude amax (finite), in float32 as Transformer
// Engine's reference quantizer: the block scale is the e4m3fn code nearest
// amax (encode / fmax), saturating at 448; the elements are quantized times
// 1 / (decoded scale * tensor), tensor = 1 / encode. A block whose scale decodes to 0 is
// quantized with scale 1: gemm multiplies its codes by 0.
struct Nvfp4Block {
  float quant;
  std::uint8_t code;
};

Nvfp4Block nvfp4_block(double amax, double fmax, float enc) {
  constexpr float big = std::numeric_limits<float>::max();
  const float tensor = 1.0f / enc;
  const float v = std::min(float(amax) * (enc * (1.0f / float(fmax))), big);
  const auto c = std::uint8_t(encode(formats::e4m3fn{}, v));
  const float d = float(decode(formats::e4m3fn{}, c));
  if (d == 0) return {1.0f, c};
  return {std::min(1.0f / (d * tensor), big), c};
}

template <class Code>
std::span<Code> code_span(std::vector<std::uint32_t>& buf, std::int64_t n) {
  buf.resize(std::size_t(n * std::int64_t(sizeof(Code)) + 3) / 4 + 1);
  return {reinterpret_cast<Code*>(buf.data()), std::size_t(n)};
}

template <class Code>
ArrayStats run_quantize(const Format& f, std::span<const float> x, const BlockScales* b,
                        std::vector<std::uint32_t>& storage, const ArrayOptions& ao) {
  const std::span<Code> codes = code_span<Code>(storage, std::int64_t(x.size()));
  return b ? quantize_blocks(f, x, *b, codes, ao) : quantize(f, x, codes, ao);
}

ArrayStats run_quantize(const Format& f, std::span<const float> x, const BlockScales* b,
                        std::vector<std::uint32_t>& storage, const ArrayOptions& ao) {
  switch (code_bytes(f)) {
    case 1:
      return run_quantize<std::uint8_t>(f, x, b, storage, ao);
    case 2:
      return run_quantize<std::uint16_t>(f, x, b, storage, ao);
    default:
      return run_quantize<std::uint32_t>(f, x, b, storage, ao);
  }
}

}  // namespace

float amax(std::span<const float> x, const Execution& exec) {
  const std::int64_t n = std::int64_t(x.size());
  const float* p = x.data();
  if (x.size() < exec.parallel_threshold || exec.threads == 1)
    return bits_to_amax(abs_bits_max(p, n));
  const std::int64_t chunk = std::int64_t(std::max<std::size_t>(exec.chunk, 1));
  const std::int64_t parts = (n + chunk - 1) / chunk;
  std::uint32_t m = 0;
  const int threads = exec.threads > 0 ? exec.threads : omp_get_max_threads();
#pragma omp parallel for num_threads(threads) schedule(static) reduction(max : m)
  for (std::int64_t c = 0; c < parts; ++c)
    m = std::max(m, abs_bits_max(p + c * chunk, std::min(chunk, n - c * chunk)));
  return bits_to_amax(m);
}

float auto_scale(double fmax, double amax, int margin, bool pow2) {
  if (!(amax > 0) || !std::isfinite(amax)) return 1.0f;
  // 1. The quotient in double, then scaled by 2^-margin (exact), then rounded once to float32.
  //    For float operands this is the float32 quotient Transformer Engine computes: double
  //    rounding of a quotient is innocuous when the wider format has at least 2p + 2 bits.
  const float s = float(fmax / amax / std::ldexp(1.0, margin));
  // 2. A scale that overflows or underflows float leaves the tensor unscaled.
  if (!std::isfinite(s) || s <= 0) return 1.0f;
  // 3. pow2: the power of two at or below s.
  return pow2 ? std::ldexp(1.0f, std::ilogb(s)) : s;
}

std::string_view mx_rule_name(MxRule r) { return r == MxRule::floor ? "floor" : "ceil"; }

namespace {

// mx_exponent for the element format's largest finite value fmax.
int mx_exponent_of(double fmax, double amax, MxRule r) {
  if (!(amax > 0)) return -127;
  if (!std::isfinite(amax)) return 127;
  const std::uint64_t ab = std::bit_cast<std::uint64_t>(amax);
  const std::uint64_t fb = std::bit_cast<std::uint64_t>(fmax);
  constexpr std::uint64_t kFraction = (std::uint64_t(1) << 52) - 1;
  if (ab >> 52 != 0) {
    // A normal amax = ma 2^ea, fmax = mf 2^ef (significands in [1, 2)): floor gives
    // ea - ef; for ceil, the least e with fmax 2^e >= amax is ea - ef, plus 1 where mf < ma.
    int e = int(ab >> 52) - int(fb >> 52);
    if (r == MxRule::ceil && (fb & kFraction) < (ab & kFraction)) ++e;
    return std::clamp(e, -127, 127);
  }
  int e;
  if (r == MxRule::floor) {
    e = std::ilogb(amax) - std::ilogb(fmax);
  } else {
    e = std::ilogb(amax) - std::ilogb(fmax) -
        1;  // fmax 2^e < amax here; the loop ends in <= 3 steps
    while (std::ldexp(fmax, e) < amax) ++e;
  }
  return std::clamp(e, -127, 127);
}

}  // namespace

int mx_exponent(const Format& elem, double amax, MxRule r) {
  return mx_exponent_of(max_finite(elem), amax, r);
}

std::string_view matrix_scaling_name(MatrixScaling s) {
  switch (s) {
    case MatrixScaling::none:
      return "none";
    case MatrixScaling::tensor:
      return "tensor";
    case MatrixScaling::row:
      return "row";
    case MatrixScaling::column:
      return "column";
    case MatrixScaling::block:
      return "block";
    case MatrixScaling::mx:
      return "mx";
    case MatrixScaling::nvfp4:
      return "nvfp4";
  }
  return "?";
}

double quantize_matrix(const FloatMatrix& x, const Format& f, const MatrixQuantizeOptions& o,
                       QuantizedMatrix& out) {
  if (total_bits(f) > 32) bad("codes of at most 32 bits");
  if (x.rows < 0 || x.cols < 0) bad("negative size");
  const std::int64_t n = x.rows * x.cols;
  if (n > 0 && !x.data) bad("null data");
  const bool row_major_in = x.layout == Layout::row_major;
  const std::int64_t inner = row_major_in ? x.cols : x.rows;
  const std::int64_t ld = x.ld ? x.ld : inner;
  if (ld < inner)
    bad("leading dimension " + std::to_string(ld) + " below " + std::to_string(inner));
  const double fmax = max_finite(f);

  // 1. The floats, packed in out_layout order (no copy when the view already is).
  //    The packed array is pr x pc row-major: rows x cols, or cols x rows for column-major.
  const bool out_rm = o.out_layout == Layout::row_major;
  const std::int64_t pr = out_rm ? x.rows : x.cols, pc = out_rm ? x.cols : x.rows;
  const float* p = x.data;
  if (x.layout != o.out_layout || ld != inner) {
    out.packed.resize(std::size_t(n));
    // Element (i, j) of the packed array is x.data[i * si + j * sj]; a transpose goes
    // tile by tile.
    const bool same = x.layout == o.out_layout;
    const std::int64_t si = same ? ld : 1, sj = same ? 1 : ld, tile = same ? pc : 16;
    float* q = out.packed.data();
    for (std::int64_t i0 = 0; i0 < pr; i0 += 16)
      for (std::int64_t j0 = 0; j0 < pc; j0 += tile)
        for (std::int64_t i = i0; i < std::min(pr, i0 + 16); ++i)
          for (std::int64_t j = j0; j < std::min(pc, j0 + tile); ++j)
            q[i * pc + j] = x.data[i * si + j * sj];
    p = out.packed.data();
  }
  const std::span<const float> px(p, std::size_t(n));

  out.format = f;
  out.rows = x.rows;
  out.cols = x.cols;
  out.layout = o.out_layout;
  out.encoding = ScaleEncoding::float32;
  out.scale_block_rows = out.scale_block_cols = 0;
  out.tensor = 1.0f;
  out.float_scales.clear();
  out.code_scales.clear();
  ArrayOptions ao = o.array;

  // 2. Per tensor (or none): one scale, given or from the tensor's amax.
  const MatrixScaling kind = o.scaling;
  if (kind == MatrixScaling::none || kind == MatrixScaling::tensor) {
    float s = 1.0f;
    if (kind == MatrixScaling::tensor) {
      if (o.scale != 0.0f) {
        if (!(o.scale > 0.0f && std::isfinite(o.scale))) bad("the scale must be finite and > 0");
        s = o.scale;
      } else {
        s = auto_scale(fmax, amax(px, ao.exec), o.margin, o.pow2);
      }
    }
    ao.scale = s;
    const ArrayStats st = run_quantize(f, px, nullptr, out.storage, ao);
    out.quant_scales.assign(1, s);
    out.block_rows = out.block_cols = 0;
    if (kind == MatrixScaling::tensor) {
      const float inv = o.inverse != 0.0f ? o.inverse : 1.0f / s;
      if (!(inv > 0.0f && std::isfinite(inv)))
        bad("the dequantization scale must be finite and > 0");
      if (s != 1.0f || o.inverse != 0.0f) out.tensor = inv;
    }
    out.amax = st.amax;
    return out.amax;
  }

  // 3. The block shape of the logical matrix (0: the whole dimension).
  std::int64_t br = o.block_rows, bc = o.block_cols;
  const bool k_cols = o.operand == Operand::a;  // K runs along the columns of A
  switch (kind) {
    case MatrixScaling::row:
      br = 1, bc = 0;
      break;
    case MatrixScaling::column:
      br = 0, bc = 1;
      break;
    case MatrixScaling::mx:
    case MatrixScaling::nvfp4:
      if (br == 0 && bc == 0) {
        const std::int64_t k = kind == MatrixScaling::mx ? 32 : 16;
        br = k_cols ? 1 : k;
        bc = k_cols ? k : 1;
      }
      break;
    default:
      break;
  }
  if (br < 0 || bc < 0) bad("negative block shape");
  const std::int64_t ebr = br ? br : std::max<std::int64_t>(x.rows, 1);
  const std::int64_t ebc = bc ? bc : std::max<std::int64_t>(x.cols, 1);
  const std::int64_t gr = (x.rows + ebr - 1) / ebr, gc = (x.cols + ebc - 1) / ebc;
  // The grid as stored: pgr x pgc blocks of pbr x pbc over the packed array.
  const std::int64_t pbr = out_rm ? ebr : ebc, pbc = out_rm ? ebc : ebr;
  const std::int64_t pgr = out_rm ? gr : gc, pgc = out_rm ? gc : gr;

  // 4. The amax of every block (NaN wins), in the packed grid's order.
  //    (As float bits, whose max is the amax with NaN winning.)
  std::vector<std::uint32_t> bmax(std::size_t(pgr * pgc), 0);
  for (std::int64_t i = 0; i < pr; ++i) {
    std::uint32_t* m = bmax.data() + i / pbr * pgc;
    for (std::int64_t bj = 0; bj < pgc; ++bj) {
      const std::int64_t j0 = bj * pbc, j1 = std::min(pc, j0 + pbc);
      m[bj] = std::max(m[bj], abs_bits_max(p + i * pc + j0, j1 - j0));
    }
  }
  std::vector<double>& bamax = out.block_amax;
  bamax.resize(bmax.size());
  double tensor_amax = 0;
  for (std::size_t b = 0; b < bmax.size(); ++b) {
    bamax[b] = bits_to_amax(bmax[b]);
    merge_amax(tensor_amax, bamax[b]);
  }
  float encode = 1.0f;
  if (kind == MatrixScaling::nvfp4) {
    if (!std::isfinite(tensor_amax)) bad("nvfp4 scales need an input without NaN or infinity");
    encode = nvfp4_encode_scale(tensor_amax, f);
    out.tensor = 1.0f / encode;
  }

  // 5. The scales of every block: quantization scales in the packed grid's order, the
  //    scales gemm takes in the logical grid's order (row-major over gr x gc).
  out.quant_scales.resize(bamax.size());
  if (kind == MatrixScaling::mx || kind == MatrixScaling::nvfp4)
    out.code_scales.resize(bamax.size());
  else
    out.float_scales.resize(bamax.size());
  for (std::int64_t bi = 0; bi < pgr; ++bi)
    for (std::int64_t bj = 0; bj < pgc; ++bj) {
      const std::size_t pi = std::size_t(bi * pgc + bj);
      const std::size_t li = std::size_t(out_rm ? bi * gc + bj : bj * gc + bi);
      const double a = bamax[pi];
      float& s = out.quant_scales[pi];
      if (kind == MatrixScaling::mx) {
        const int e = mx_exponent_of(fmax, a, o.mx_rule);
        s = pow2f(-e);
        out.code_scales[li] = std::uint8_t(e + 127);
      } else if (kind == MatrixScaling::nvfp4) {
        const Nvfp4Block b = nvfp4_block(a, fmax, encode);
        s = b.quant;
        out.code_scales[li] = b.code;
      } else {
        s = auto_scale(fmax, a, o.margin, o.pow2);
        out.float_scales[li] = 1.0f / s;
      }
    }
  out.encoding = kind == MatrixScaling::mx      ? ScaleEncoding::e8m0
                 : kind == MatrixScaling::nvfp4 ? ScaleEncoding::e4m3
                                                : ScaleEncoding::float32;
  out.scale_block_rows = br;
  out.scale_block_cols = bc;
  out.block_rows = pbr;
  out.block_cols = pbc;

  // 6. The codes, each block times its scale.
  if (n > 0) {
    const BlockScales b{pr, pc, pbr, pbc, out.quant_scales};
    run_quantize(f, px, &b, out.storage, ao);
  } else {
    out.storage.assign(1, 0);
  }
  out.amax = tensor_amax;
  return out.amax;
}

QuantizedMatrix quantize_matrix(const FloatMatrix& x, const Format& f,
                                const MatrixQuantizeOptions& o) {
  QuantizedMatrix q;
  quantize_matrix(x, f, o, q);
  return q;
}

Scales QuantizedMatrix::scales() const {
  Scales s;
  s.encoding = encoding;
  s.block_rows = scale_block_rows;
  s.block_cols = scale_block_cols;
  s.tensor = tensor;
  if (!float_scales.empty()) s.data = float_scales.data();
  if (!code_scales.empty()) s.data = code_scales.data();
  return s;
}

namespace {

// The integer `s` of `what` in 1..2^30 (decimal, hex or octal, as strtoull reads it).
std::int64_t block_extent(const std::string& s, const std::string& what) {
  constexpr unsigned long long kMax = 1ull << 30;
  const std::string range = " (expected 1.." + std::to_string(kMax) + ")";
  if (s.empty() || s[0] == '-' || s[0] == '+')
    throw std::invalid_argument("invalid " + what + " '" + s + "'" + range);
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 0);
  if (end != s.c_str() + s.size() || errno == ERANGE || v > kMax || v < 1)
    throw std::invalid_argument("invalid " + what + " '" + s + "'" + range);
  return std::int64_t(v);
}

// Quantizes n values of T (float16 bits as std::uint16_t) into `storage` with `o`.
template <class T>
ArrayStats quantize_values(const Format& f, const T* x, std::int64_t n,
                           std::vector<std::uint32_t>& storage, const ArrayOptions& o) {
  const std::span<const T> in(x, std::size_t(n));
  const auto run = [&](auto codes) {
    if constexpr (std::is_same_v<T, std::uint16_t>) {
      return quantize_float16_bits(f, in, codes, o);
    } else {
      return quantize(f, in, codes, o);
    }
  };
  switch (code_bytes(f)) {
    case 1: return run(code_span<std::uint8_t>(storage, n));
    case 2: return run(code_span<std::uint16_t>(storage, n));
    default: return run(code_span<std::uint32_t>(storage, n));
  }
}

}  // namespace

OperandScale parse_operand_scale(std::string_view spec, Operand op, std::string_view what,
                                 std::string_view more) {
  OperandScale s;
  s.spelling = spec;
  const std::string w(what);
  const bool k_cols = op == Operand::a;
  if (spec.empty()) return s;
  if (spec == "auto") {
    s.scaling = MatrixScaling::tensor;
    return s;
  }
  if (spec == "mx" || spec == "nvfp4") {
    s.scaling = spec == "mx" ? MatrixScaling::mx : MatrixScaling::nvfp4;
    const std::int64_t k = spec == "mx" ? 32 : 16;
    s.block_rows = k_cols ? 1 : k;
    s.block_cols = k_cols ? k : 1;
    return s;
  }
  if (spec.starts_with("block:")) {
    const std::string rc(spec.substr(6));
    const auto x = rc.find('x');
    if (x == std::string::npos)
      throw std::invalid_argument("invalid " + w + " block: '" + rc + "' (expected RxC, e.g. 1x128)");
    s.scaling = MatrixScaling::block;
    s.block_rows = block_extent(rc.substr(0, x), w + " block:");
    s.block_cols = block_extent(rc.substr(x + 1), w + " block:");
    return s;
  }
  const std::string text(spec);
  const std::string rule = "a number > 0 that is finite as a float32, such as 2, 0.125 or 0x1p-7, or auto" +
                           std::string(more) + ", block:RxC, mx, nvfp4";
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  const float x = float(v);
  if (end != text.c_str() + text.size() || !std::isfinite(v) || !(x > 0.0f && std::isfinite(x)))
    throw std::invalid_argument("invalid " + w + " '" + text + "': expected " + rule);
  s.scaling = MatrixScaling::tensor;
  s.scale = x;
  return s;
}

Format default_operand_format(const OperandScale& s) {
  return s.scaling == MatrixScaling::nvfp4 ? Format(formats::e2m1fn{}) : Format(formats::e4m3fn{});
}

void quantize_operand(const FloatOperand& x, const Format& f, const OperandScale& s,
                      std::string_view what, QuantizedMatrix& out, const Execution& exec) {
  using Type = FloatOperand::Type;
  const std::int64_t rows = x.rows, cols = x.cols, n = rows * cols;
  if (rows < 0 || cols < 0) bad("negative size");
  if (n > 0 && !x.data) bad("null data");
  const std::string spec = std::string(what) + " " + s.spelling;
  const bool blocked = s.scaling == MatrixScaling::block || s.scaling == MatrixScaling::mx ||
                       s.scaling == MatrixScaling::nvfp4;
  MatrixQuantizeOptions o;
  o.array.exec = exec;
  if (blocked) {
    // 1. Block scales: float32 values (float16 widened, exactly), all finite.
    if (x.type == Type::float64)
      throw std::invalid_argument(spec + " quantizes float32 or float16 values; the input holds float64");
    const float* p = static_cast<const float*>(x.data);
    std::vector<float> widened;
    if (x.type == Type::float16) {
      widened.resize(std::size_t(n));
      dequantize(formats::float16{}, std::span<const std::uint16_t>(static_cast<const std::uint16_t*>(x.data), std::size_t(n)),
                 std::span<float>(widened));
      p = widened.data();
    }
    for (std::int64_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i]))
        throw std::invalid_argument(spec + ": element (" + std::to_string(i / cols) + ", " +
                                    std::to_string(i % cols) + ") is " + shortest(p[i]) +
                                    "; block scales need finite inputs");
    o.scaling = s.scaling;
    o.block_rows = s.block_rows;
    o.block_cols = s.block_cols;
    try {
      quantize_matrix(FloatMatrix{p, rows, cols}, f, o, out);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(spec + ": " + e.what());
    }
    return;
  }
  // 2. None, a tensor scale X (x / X is quantized), or auto.
  const bool given = s.scaling == MatrixScaling::tensor && s.scale != 0.0f;
  float q = 1.0f;
  if (given) {
    q = 1.0f / s.scale;
    if (!(q > 0.0f && std::isfinite(q)))
      throw std::invalid_argument(std::string(what) + ": 1/scale is not a finite float");
  }
  if (x.type == Type::float32) {
    o.scaling = s.scaling;
    o.scale = given ? q : 0.0f;
    o.inverse = given ? s.scale : 0.0f;
    quantize_matrix(FloatMatrix{static_cast<const float*>(x.data), rows, cols}, f, o, out);
    return;
  }
  // float64 and float16 values, each quantized from its own type.
  ArrayOptions ao;
  ao.exec = exec;
  const auto run = [&](const ArrayOptions& a) {
    return x.type == Type::float64
               ? quantize_values(f, static_cast<const double*>(x.data), n, out.storage, a)
               : quantize_values(f, static_cast<const std::uint16_t*>(x.data), n, out.storage, a);
  };
  if (s.scaling == MatrixScaling::tensor && !given) q = auto_scale(max_finite(f), run(ao).amax);
  ao.scale = q;
  const ArrayStats st = run(ao);
  if (n == 0) out.storage.assign(1, 0);
  out.format = f;
  out.rows = rows;
  out.cols = cols;
  out.layout = Layout::row_major;
  out.encoding = ScaleEncoding::float32;
  out.scale_block_rows = out.scale_block_cols = 0;
  out.tensor = given ? s.scale : 1.0f / q;
  out.float_scales.clear();
  out.code_scales.clear();
  out.quant_scales.assign(1, q);
  out.block_rows = out.block_cols = 0;
  out.amax = st.amax;
  out.block_amax.clear();
}

}  // namespace fp8emu
