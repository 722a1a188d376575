// fp8emu CLI: the operands of fp8emu gemm (see gemm_operand.hpp).
#include "gemm_operand.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <span>
#include <string_view>
#include <tuple>

#include "fp8emu/array.hpp"
#include "fp8emu/explain.hpp"
#include "fp8emu/quantize_matrix.hpp"

namespace fp8emu::cli {
namespace {

// The block scalings of float operands (--a-scale / --b-scale): one scale per block of the
// operand, computed from the block's largest magnitude by quantize_matrix (docs/gemm.md,
// "Command line").
struct BlockRule {
  MatrixScaling scaling;
  std::string_view name;    ///< Its --X-scale spelling.
  std::int64_t k_block;     ///< Elements per block along K; 0: given as block:RxC.
  std::string_view format;  ///< The operand's default format.
};

constexpr BlockRule kBlockRules[] = {
    {MatrixScaling::block, "block:RxC", 0, "e4m3fn"},
    {MatrixScaling::mx, "mx", 32, "e4m3fn"},
    {MatrixScaling::nvfp4, "nvfp4", 16, "e2m1fn"},
};

// Returns the rule of a --X-scale spelling, or nullptr when it names no block scaling.
const BlockRule* block_rule(const std::string& s) {
  for (const BlockRule& r : kBlockRules) {
    if (r.k_block ? s == r.name : s.starts_with(r.name.substr(0, r.name.find(':') + 1))) return &r;
  }
  return nullptr;
}

// Returns "N blocks, min X, max Y" over the scale values of the non-empty grid.
std::string scale_range(const std::vector<float>& values) {
  if (values.empty()) return "0 blocks";
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  return std::to_string(values.size()) + " blocks, min " + shortest(*lo) + ", max " + shortest(*hi);
}

std::pair<std::int64_t, std::int64_t> block_arg(const std::string& s, const std::string& opt) {
  const auto x = s.find('x');
  if (x == std::string::npos) throw UsageError("invalid " + opt + " '" + s + "' (expected RxC, e.g. 1x128)");
  const auto r = parse_unsigned(s.substr(0, x), opt, 1u << 30, 1);
  const auto c = parse_unsigned(s.substr(x + 1), opt, 1u << 30, 1);
  return {std::int64_t(r), std::int64_t(c)};
}

// Quantizes a float operand with one scale per block of br x bc by the rule `r`
// (quantize_matrix), and sets op's codes, scales and summary.
void quantize_blocked(GemmOperand& op, const npy::Array& in, const Format& f, const BlockRule& r,
                      std::int64_t br, std::int64_t bc, const std::string& what) {
  const std::int64_t rows = std::int64_t(in.shape[0]), cols = std::int64_t(in.shape[1]);
  std::vector<float> x(in.size());
  if (in.dtype == npy::DType::float32) {
    if (!x.empty()) std::memcpy(x.data(), in.data.data(), 4 * x.size());
  } else if (in.dtype == npy::DType::float16) {
    dequantize(formats::float16{}, view<std::uint16_t>(in), std::span<float>(x));  // exact
  } else {
    throw UsageError(what + " quantizes float32 or float16 values; the input holds " +
                     npy::dtype_name(in.dtype));
  }
  for (std::size_t i = 0; i < x.size(); ++i)
    if (!std::isfinite(x[i]))
      throw UsageError(what + ": element (" + std::to_string(std::int64_t(i) / cols) + ", " +
                       std::to_string(std::int64_t(i) % cols) + ") is " + shortest(x[i]) +
                       "; block scales need finite inputs");
  MatrixQuantizeOptions o;
  o.scaling = r.scaling;
  o.block_rows = br;
  o.block_cols = bc;
  QuantizedMatrix q;
  try {
    quantize_matrix(FloatMatrix{x.data(), rows, cols}, f, o, q);
  } catch (const std::invalid_argument& e) {
    throw UsageError(what + ": " + e.what());
  }
  // The codes as stored: code_bytes(f) bytes each (at most 16 bits here), row-major.
  op.codes.shape = in.shape;
  op.codes.dtype = total_bits(f) <= 8 ? npy::DType::uint8 : npy::DType::uint16;
  op.codes.data.resize(x.size() * npy::item_size(op.codes.dtype));
  if (!x.empty()) std::memcpy(op.codes.data.data(), q.storage.data(), op.codes.data.size());
  op.fscales = std::move(q.float_scales);
  op.cscales = std::move(q.code_scales);
  op.scales.data = q.encoding == ScaleEncoding::float32 ? static_cast<const void*>(op.fscales.data())
                                                        : static_cast<const void*>(op.cscales.data());
  op.scales.encoding = q.encoding;
  op.scales.block_rows = br;
  op.scales.block_cols = bc;
  op.scales.tensor = q.tensor;
  // The dequantization scale of every block, and how many blocks are all zeros.
  std::vector<float> values(op.fscales);
  for (const std::uint8_t c : op.cscales)
    values.push_back(q.encoding == ScaleEncoding::e8m0 ? float(decode(formats::e8m0fnu{}, c))
                                                       : float(decode(formats::e4m3fn{}, c)));
  const auto zero = std::count(q.block_amax.begin(), q.block_amax.end(), 0.0);
  op.summary = std::string(r.scaling == MatrixScaling::block ? "block" : r.name) + " scales of " +
               std::to_string(br) + "x" + std::to_string(bc) + " blocks (" +
               (q.encoding == ScaleEncoding::e4m3 ? std::string("e4m3fn") : std::string(to_string(q.encoding))) + "): " + scale_range(values) + "; " +
               std::to_string(zero) + " with amax 0" +
               (r.scaling == MatrixScaling::nvfp4
                    ? "; tensor scale " + shortest(q.tensor) + " (amax " + shortest(q.amax) + ")"
                    : "");
}

}  // namespace

GemmOperand gemm_operand(Args& a, const std::string& name) {
  const std::string path = a.opt["--" + name];
  const std::string sopt = "--" + name + "-scale";
  const std::string sarg = a.opt.count(sopt) ? a.opt[sopt] : "";
  const BlockRule* rule = block_rule(sarg);
  const std::string fopt = "--" + name + "-format";
  const Format f =
      format_arg(a.opt.count(fopt) ? a.opt[fopt] : std::string(rule ? rule->format : "e4m3fn"));
  if (total_bits(f) > 16) throw UsageError("--" + name + "-format: codes of at most 16 bits");
  if (!fits_float(f)) throw UsageError("--" + name + "-format: the values must fit in float32");
  GemmOperand op;
  npy::Array in = npy::read(path);
  if (in.shape.size() != 2)
    throw UsageError(path + ": expected a 2-D array, got " + std::to_string(in.shape.size()) + " dimensions");
  const std::int64_t rows = std::int64_t(in.shape[0]), cols = std::int64_t(in.shape[1]);
  const bool is_float = in.dtype == npy::DType::float16 || in.dtype == npy::DType::float32 ||
                        in.dtype == npy::DType::float64;
  const npy::DType code_type = total_bits(f) <= 8 ? npy::DType::uint8 : npy::DType::uint16;
  const std::size_t n = in.size();
  op.scales.tensor = 1.0f;
  float quant_scale = 1.0f;  // x * quant_scale is quantized; 1 / quant_scale dequantizes
  op.summary = is_float ? format_name(f) + " from " + npy::dtype_name(in.dtype) + ", no scale"
                        : format_name(f) + " codes, no scale";
  const bool file = sarg.size() > 4 && sarg.ends_with(".npy");
  for (const std::string o : {"-block", "-scale-codes"})
    if (!file && a.opt.count("--" + name + o))
      throw UsageError("--" + name + o + " applies to " + sopt +
                       " FILE.npy (block scales of code inputs)");
  if (rule) {
    if (!is_float)
      throw UsageError(sopt + " " + sarg + " needs float input (" + path + " holds codes)");
    std::int64_t br = 1, bc = 1;
    if (rule->k_block)
      (name == "a" ? bc : br) = rule->k_block;
    else
      std::tie(br, bc) = block_arg(sarg.substr(sarg.find(':') + 1), sopt + " block:");
    quantize_blocked(op, in, f, *rule, br, bc, sopt + " " + sarg);
    op.summary = format_name(f) + " from " + npy::dtype_name(in.dtype) + ", " + op.summary;
    op.m = CodeMatrix{f, op.codes.data.data(), rows, cols, Layout::row_major, 0};
    return op;
  }
  if (sarg == "auto") {
    if (!is_float) throw UsageError(sopt + " auto needs float input (" + path + " holds codes)");
  } else if (file) {
    // Block scales from a file.
    const std::string bopt = "--" + name + "-block";
    if (!a.opt.count(bopt)) throw UsageError(sopt + " FILE.npy needs " + bopt + " RxC");
    const auto [br, bc] = block_arg(a.opt[bopt], bopt);
    const npy::Array sc = npy::read(sarg);
    const std::size_t want = std::size_t((rows + br - 1) / br * ((cols + bc - 1) / bc));
    if (sc.size() != want)
      throw UsageError(sarg + ": " + std::to_string(sc.size()) + " scales for " + std::to_string(want) +
                       " blocks of " + std::to_string(br) + "x" + std::to_string(bc));
    op.scales.block_rows = br;
    op.scales.block_cols = bc;
    if (sc.dtype == npy::DType::uint8) {
      const std::string copt = "--" + name + "-scale-codes";
      const std::string enc = a.opt.count(copt) ? a.opt[copt] : "e8m0";
      const auto encoding = try_parse<ScaleEncoding>(enc);
      if (!encoding || *encoding == ScaleEncoding::float32)
        throw UsageError(copt + " must be e8m0 or e4m3");
      op.cscales.assign(sc.data.begin(), sc.data.end());
      op.scales.data = op.cscales.data();
      op.scales.encoding = *encoding;
    } else if (sc.dtype == npy::DType::float32 || sc.dtype == npy::DType::float64) {
      op.fscales.resize(sc.size());
      for (std::size_t i = 0; i < sc.size(); ++i)
        op.fscales[i] = sc.dtype == npy::DType::float32 ? view<float>(sc)[i] : float(view<double>(sc)[i]);
      op.scales.data = op.fscales.data();
    } else {
      throw UsageError(sarg + ": scales must be float32, float64 or uint8 codes");
    }
    if (is_float) throw UsageError(sopt + " FILE.npy applies to code inputs; quantize float inputs first");
    op.summary = format_name(f) + " codes, " + std::to_string(sc.size()) + " scales of " +
                 std::to_string(br) + "x" + std::to_string(bc) + " blocks from " + sarg;
  } else if (!sarg.empty()) {
    op.scales.tensor = scale_arg(sarg, sopt, ", or auto, FILE.npy, block:RxC, mx, nvfp4");
    op.summary = (is_float ? format_name(f) + " from " + npy::dtype_name(in.dtype)
                           : format_name(f) + " codes") +
                 ", tensor scale " + shortest(op.scales.tensor);
    if (is_float) {
      quant_scale = 1.0f / op.scales.tensor;
      if (!(quant_scale > 0.0f && std::isfinite(quant_scale))) throw UsageError(sopt + ": 1/scale is not a finite float");
    }
  }
  if (is_float) {
    std::vector<std::uint32_t> codes(n);
    ArrayOptions qo;
    const auto run = [&](const ArrayOptions& o) {
      switch (in.dtype) {
        case npy::DType::float16: return quantize_float16_bits(f, view<std::uint16_t>(in), codes, o);
        case npy::DType::float32: return quantize(f, view<float>(in), codes, o);
        default: return quantize(f, view<double>(in), codes, o);
      }
    };
    if (sarg == "auto") {
      const double amax = run(qo).amax;
      quant_scale = auto_scale_arg(amax, max_finite(f));
      op.scales.tensor = 1.0f / quant_scale;
      op.summary = format_name(f) + " from " + npy::dtype_name(in.dtype) + ", tensor scale " +
                   shortest(op.scales.tensor) + " (auto: amax " + shortest(amax) + ")";
    }
    qo.scale = quant_scale;
    run(qo);
    op.codes = code_array(codes, total_bits(f), in.shape);
  } else if (in.dtype == code_type) {
    op.codes = std::move(in);
    // Every code must belong to the format.
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t c = code_type == npy::DType::uint8 ? op.codes.data[i] : view<std::uint16_t>(op.codes)[i];
      if (total_bits(f) < 32 && (c >> total_bits(f)) != 0)
        throw UsageError(path + ": element " + std::to_string(i) + " (code " + std::to_string(c) +
                         ") does not fit in " + format_name(f));
    }
  } else {
    throw UsageError(path + " holds " + npy::dtype_name(in.dtype) + "; codes of " + format_name(f) +
                     " are " + npy::dtype_name(code_type) + " (or give float16/32/64 values)");
  }
  op.m = CodeMatrix{f, op.codes.data.data(), rows, cols, Layout::row_major, 0};
  return op;
}


}  // namespace fp8emu::cli
