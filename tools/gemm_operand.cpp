// fp8emu CLI: the operands of fp8emu gemm (see gemm_operand.hpp).
#include "gemm_operand.hpp"

#include <algorithm>
#include <cmath>
#include <string_view>

#include "fp8emu/array.hpp"
#include "fp8emu/explain.hpp"
#include "fp8emu/quantize_matrix.hpp"

namespace fp8emu::cli {
namespace {

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

// Says which block scales quantize_operand gave `q` (scaling s): their shape, encoding,
// count, min and max, how many blocks are all zeros, and NVFP4's tensor scale.
std::string block_summary(const QuantizedMatrix& q, const OperandScale& s) {
  std::vector<float> values(q.float_scales);
  for (const std::uint8_t c : q.code_scales)
    values.push_back(q.encoding == ScaleEncoding::e8m0 ? float(decode(formats::e8m0fnu{}, c))
                                                       : float(decode(formats::e4m3fn{}, c)));
  const auto zero = std::count(q.block_amax.begin(), q.block_amax.end(), 0.0);
  return std::string(matrix_scaling_name(s.scaling)) + " scales of " + std::to_string(s.block_rows) + "x" +
         std::to_string(s.block_cols) + " blocks (" +
         (q.encoding == ScaleEncoding::e4m3 ? std::string("e4m3fn") : std::string(to_string(q.encoding))) +
         "): " + scale_range(values) + "; " + std::to_string(zero) + " with amax 0" +
         (s.scaling == MatrixScaling::nvfp4
              ? "; tensor scale " + shortest(q.tensor) + " (amax " + shortest(q.amax) + ")"
              : "");
}

}  // namespace

GemmOperand gemm_operand(Args& a, const std::string& name) {
  const std::string path = a.opt["--" + name];
  const std::string sopt = "--" + name + "-scale";
  const std::string sarg = a.opt.count(sopt) ? a.opt[sopt] : "";
  const bool file = sarg.size() > 4 && sarg.ends_with(".npy");
  OperandScale scale;  // none, a tensor scale, auto or block scales (FILE.npy: below)
  if (!file) {
    try {
      scale = parse_operand_scale(sarg, name == "a" ? Operand::a : Operand::b, sopt, ", FILE.npy");
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
  }
  const bool blocked = scale.scaling != MatrixScaling::none && scale.scaling != MatrixScaling::tensor;
  const bool is_auto = scale.scaling == MatrixScaling::tensor && scale.scale == 0.0f;
  const std::string fopt = "--" + name + "-format";
  const Format f =
      format_arg(a.opt.count(fopt) ? a.opt[fopt] : format_name(default_operand_format(scale)));
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
  op.summary = is_float ? format_name(f) + " from " + npy::dtype_name(in.dtype) + ", no scale"
                        : format_name(f) + " codes, no scale";
  for (const std::string o : {"-block", "-scale-codes"})
    if (!file && a.opt.count("--" + name + o))
      throw UsageError("--" + name + o + " applies to " + sopt +
                       " FILE.npy (block scales of code inputs)");
  if ((blocked || is_auto) && !is_float)
    throw UsageError(sopt + " " + sarg + " needs float input (" + path + " holds codes)");
  if (file) {
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
  } else if (scale.scaling == MatrixScaling::tensor && !is_auto) {
    op.scales.tensor = scale.scale;
    op.summary = (is_float ? format_name(f) + " from " + npy::dtype_name(in.dtype)
                           : format_name(f) + " codes") +
                 ", tensor scale " + shortest(op.scales.tensor);
  }
  if (is_float) {
    // quantize_operand: the codes and scales of the library's quantize-matrix step.
    const FloatOperand x{in.data.data(),
                         in.dtype == npy::DType::float16   ? FloatOperand::Type::float16
                         : in.dtype == npy::DType::float32 ? FloatOperand::Type::float32
                                                           : FloatOperand::Type::float64,
                         rows, cols};
    try {
      quantize_operand(x, f, scale, sopt, op.q);
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
    if (is_auto) {
      auto_scale_arg(op.q.amax, max_finite(f));  // NaN or infinity: an error
      op.summary = format_name(f) + " from " + npy::dtype_name(in.dtype) + ", tensor scale " +
                   shortest(op.q.tensor) + " (auto: amax " + shortest(op.q.amax) + ")";
    } else if (blocked) {
      op.summary = format_name(f) + " from " + npy::dtype_name(in.dtype) + ", " + block_summary(op.q, scale);
    }
    op.m = op.q.matrix();
    op.scales = op.q.scales();
    return op;
  }
  if (in.dtype == code_type) {
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
