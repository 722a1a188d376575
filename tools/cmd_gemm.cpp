// fp8emu CLI: fp8emu gemm, a matrix product in emulated precision.
#include "commands.hpp"

#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "args.hpp"
#include "fp8emu/array.hpp"
#include "fp8emu/gemm.hpp"
#include "gemm_operand.hpp"

namespace fp8emu::cli {
namespace {

constexpr const char* kGemmHelp =
    "usage: fp8emu gemm --a A.npy --b B.npy [options] OUT.npy\n"
    "\n"
    "Computes OUT = alpha * A B (+ beta * C) for A (M x K) and B (K x N), 2-D .npy arrays.\n"
    "Code arrays (uint8, uint16) are codes of --a-format / --b-format; float arrays\n"
    "(float16, float32, float64) are first quantized to that format (nearest-even,\n"
    "saturating), with their scale when one is given. OUT is float32 (M x N), or codes of\n"
    "--out-format (nearest-even, saturating). Prints the accumulation, its random bits,\n"
    "and for each operand the scales used (block scales: count, min, max, blocks of amax 0).\n"
    "\n"
    "options:\n"
    "  --a-format F, --b-format F   operand formats (default e4m3fn; e2m1fn with nvfp4)\n"
    "  --a-scale S, --b-scale S     the operand's scale:\n"
    "    X             a number: float inputs are quantized as x / X; X dequantizes\n"
    "    auto          float inputs: x * s quantized, s = max / amax rounded to float32\n"
    "                  (Transformer Engine's rule; 1 for amax 0); 1/s dequantizes\n"
    "    FILE.npy      code inputs: block scales (float32, float64, or uint8 codes:\n"
    "                  e8m0 unless --X-scale-codes e4m3), with --X-block RxC\n"
    "    block:RxC     float inputs: one float32 scale per R x C block of the operand\n"
    "                  as stored (DeepSeek-V3: A block:1x128, B block:128x128), by the\n"
    "                  rule of auto applied to the block\n"
    "    mx            float inputs: blocks of 32 along K (A 1x32, B 32x1), e8m0 scale\n"
    "                  2^(floor(log2 amax) - emax) (OCP MX v1.0); elements above max\n"
    "                  times the scale saturate; 2^-127 for amax 0\n"
    "    nvfp4         float inputs: blocks of 16 along K, e4m3fn block scales and a\n"
    "                  float32 tensor scale (docs/gemm.md gives the rule)\n"
    "                The last block along each dimension is shorter when the block does\n"
    "                not divide it; a block that spans K scales whole rows / columns. A\n"
    "                block of amax 0 quantizes to zeros. Block scales need float32 or\n"
    "                float16 inputs without NaN or infinity, and A and B blocks along K\n"
    "                of one size when both split K.\n"
    "  --a-block RxC, --b-block RxC block shape of a scale file, e.g. 1x128, 128x128, 1x32\n"
    "  --a-scale-codes E, --b-scale-codes E   e8m0 (default) or e4m3 for uint8 scale files\n"
    "  --accumulate SPEC            PRESET[,key=value...] (default fp32); presets: fp32, fp16,\n"
    "                               bf16, nvidia-h100-fp8, nvidia-ada-fp8, nvidia-b200-fp8,\n"
    "                               nvidia-v100-fp16, nvidia-a100-fp16, nvidia-h100-fp16,\n"
    "                               amd-mi300-fp8, amd-mi300-fp16; keys in docs/gemm.md\n"
    "                               (each at most once)\n"
    "  --alpha X, --beta X          (default 1 and 0); --c C.npy is read when beta != 0\n"
    "  --out-format F               write codes of F instead of float32 values\n"
    "  --threads N                  OpenMP threads (default: all)\n";

}  // namespace

int cmd_gemm(int argc, char** argv) {
  Args a = parse_args(argc, argv,
                      {"--a", "--b", "--c", "--a-format", "--b-format", "--a-scale", "--b-scale",
                       "--a-block", "--b-block", "--a-scale-codes", "--b-scale-codes", "--accumulate",
                       "--alpha", "--beta", "--out-format", "--threads"},
                      {"--help"});
  if (a.opt.count("--help")) return std::cout << kGemmHelp << kVariantHelp, 0;
  if (a.pos.size() != 1 || !a.opt.count("--a") || !a.opt.count("--b"))
    throw UsageError("usage: fp8emu gemm --a A.npy --b B.npy [options] OUT.npy");
  GemmOptions o;
  try {
    o.accumulation = parse_accumulation(a.opt.count("--accumulate") ? a.opt["--accumulate"] : "fp32");
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--accumulate: ") + e.what());
  }
  o.exec.threads = threads_arg(a);
  if (a.opt.count("--alpha")) o.alpha = float(parse_value(a.opt["--alpha"]));
  if (a.opt.count("--beta")) o.beta = float(parse_value(a.opt["--beta"]));
  std::optional<Format> out_format;
  if (a.opt.count("--out-format")) {
    out_format = format_arg(a.opt["--out-format"]);
    if (total_bits(*out_format) > 16) throw UsageError("--out-format: codes of at most 16 bits");
  }
  const GemmOperand A = gemm_operand(a, "a"), B = gemm_operand(a, "b");
  if (A.m.cols != B.m.rows)
    throw UsageError("shape mismatch: A is " + std::to_string(A.m.rows) + "x" + std::to_string(A.m.cols) +
                     " and B is " + std::to_string(B.m.rows) + "x" + std::to_string(B.m.cols));
  o.a_scales = A.scales;
  o.b_scales = B.scales;
  const std::int64_t M = A.m.rows, N = B.m.cols;
  std::vector<float> c(std::size_t(M * N), 0.0f);
  if (o.beta != 0.0f) {
    if (!a.opt.count("--c")) throw UsageError("--beta needs --c C.npy");
    const npy::Array ca = npy::read(a.opt["--c"]);
    if (ca.dtype != npy::DType::float32 || ca.shape != std::vector<std::size_t>{std::size_t(M), std::size_t(N)})
      throw UsageError(a.opt["--c"] + ": C must be float32 of shape " + std::to_string(M) + "x" + std::to_string(N));
    if (!c.empty()) std::memcpy(c.data(), ca.data.data(), c.size() * 4);
  }
  std::string_view path;
  try {
    path = gemm_fast_path(A.m, B.m, o);
    gemm(A.m, B.m, c.data(), N, o);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  npy::Array out;
  out.shape = {std::size_t(M), std::size_t(N)};
  if (out_format) {
    std::vector<std::uint32_t> codes(c.size());
    quantize(*out_format, std::span<const float>(c), codes, ArrayOptions{});
    out = code_array(codes, total_bits(*out_format), out.shape);
  } else {
    out.dtype = npy::DType::float32;
    out.data.resize(c.size() * 4);
    if (!c.empty()) std::memcpy(out.data.data(), c.data(), c.size() * 4);
  }
  npy::write(a.pos[0], out);
  std::cout << "gemm " << M << "x" << A.m.cols << " (" << format_name(A.m.format) << ") by "
            << B.m.rows << "x" << N << " (" << format_name(B.m.format) << "), accumulation "
            << accumulation_spec(o.accumulation) << "; path " << path << "; "
            << random_text(o.accumulation.convert, o.accumulation.seed) << "\n"
            << "  A: " << A.summary << "\n"
            << "  B: " << B.summary << "\n";
  return 0;
}

}  // namespace fp8emu::cli
