// fp8emu CLI: fp8emu quantize, a .npy array of floats to codes or values.
#include "commands.hpp"

#include <iostream>
#include <span>
#include <string>
#include <vector>

#include "args.hpp"
#include "fp8emu/array.hpp"
#include "fp8emu/explain.hpp"

namespace fp8emu::cli {
namespace {

// The help text; the option names come from their tables (options.hpp).
std::string quantize_help() {
  return
    "usage: fp8emu quantize --format F [options] IN.npy OUT.npy\n"
    "\n"
    "Rounds every element of IN (float16, float32 or float64, any shape, C order) times\n"
    "the scale to the format F, once from the exact product, and writes OUT with the\n"
    "same shape. OUT is written whole to a temporary file and renamed, so a failed run\n"
    "leaves no partial file; an OUT that exists and is not a regular file (a directory,\n"
    "FIFO or device) is refused, and a symbolic link is written through.\n"
    "\n"
    "options:\n"
    "  --format F          target format (see fp8emu formats)\n"
    "  --rounding R        " + option_help(Rounding::nearest_even) + "\n"
    "  --saturation S      " + option_help(Saturation::finite) + " (as in fp8emu explain)\n"
    "  --sr-bits K         random bits of stochastic rounding, 1..32 (default " +
    std::to_string(default_stochastic_bits) + ")\n"
    "  --seed N            seed of the random bits (default 0): element i uses\n"
    "                      random_bits(seed, stream 0, i), whatever the thread count\n"
    "  --scale X|auto      multiply by X (rounded to float32, finite, > 0) before\n"
    "                      rounding; auto maps the largest magnitude of IN to the\n"
    "                      format's largest finite value and prints the scale\n"
    "  --output codes      write the codes: uint8 (formats of <= 8 bits) or uint16 (default)\n"
    "  --output values     write float32 values: the rounded value divided by the scale\n"
    "  --nan MODE          " + option_help(NanEncoding::canonical, " or ") + "\n"
    "  --daz, --ftz        flush subnormal inputs (in IN's own type) / results to zero\n"
    "  --threads T         OpenMP threads (default: all); results do not depend on it\n";
}

}  // namespace

int cmd_quantize(int argc, char** argv) {
  Args a = parse_args(argc, argv,
                      {"--format", "--rounding", "--saturation", "--sr-bits", "--seed", "--scale",
                       "--output", "--nan", "--threads"},
                      {"--daz", "--ftz", "--help"});
  if (a.opt.count("--help")) return std::cout << quantize_help() << kVariantHelp, 0;
  if (a.pos.size() != 2 || !a.opt.count("--format"))
    throw UsageError("usage: fp8emu quantize --format F [options] IN.npy OUT.npy");
  const Format f = format_arg(a.opt["--format"]);
  ArrayOptions o;
  o.convert = convert_options(a);
  o.exec.threads = threads_arg(a);
  if (a.opt.count("--seed")) o.seed = parse_unsigned(a.opt["--seed"], "--seed", ~0ull);
  const std::string output = a.opt.count("--output") ? a.opt["--output"] : "codes";
  if (output != "codes" && output != "values")
    throw UsageError("unknown --output '" + output + "' (codes values)");
  const int bits = total_bits(f);
  if (output == "codes" && bits > 16)
    throw UsageError("codes of " + format_name(f) + " need " + std::to_string(bits) +
                     " bits; use --output values");
  if (output == "values" && !fits_float(f))
    throw UsageError("the values of " + format_name(f) + " do not fit in float32");
  const bool automatic = a.opt.count("--scale") && a.opt["--scale"] == "auto";
  if (a.opt.count("--scale") && !automatic)
    o.scale = scale_arg(a.opt["--scale"], "--scale", ", or auto");
  const npy::Array in = npy::read(a.pos[0]);
  if (in.dtype != npy::DType::float16 && in.dtype != npy::DType::float32 &&
      in.dtype != npy::DType::float64)
    throw UsageError(a.pos[0] + " holds " + npy::dtype_name(in.dtype) +
                     "; quantize reads float16, float32 or float64 (dequantize reads codes)");
  const std::size_t n = in.size();
  // Quantize into 32-bit codes, then narrow or decode them.
  std::vector<std::uint32_t> codes(n);
  auto run = [&](const ArrayOptions& opts) {
    switch (in.dtype) {
      case npy::DType::float16:
        return quantize_float16_bits(f, view<std::uint16_t>(in), codes, opts);
      case npy::DType::float32:
        return quantize(f, view<float>(in), codes, opts);
      default:
        return quantize(f, view<double>(in), codes, opts);
    }
  };
  ArrayStats st;
  if (automatic) {
    ArrayOptions probe = o;
    probe.convert = {};  // only amax is wanted from this pass
    const double amax = run(probe).amax;
    o.scale = auto_scale_arg(amax, max_finite(f));
  }
  st = run(o);
  npy::Array out;
  out.shape = in.shape;
  if (output == "codes") {
    out = code_array(codes, bits, in.shape);
  } else {
    out.dtype = npy::DType::float32;
    out.data.resize(n * 4);
    dequantize(f, codes, std::span<float>(reinterpret_cast<float*>(out.data.data()), n), o);
  }
  npy::write(a.pos[1], out);
  std::cout << "quantized " << n << " " << npy::dtype_name(in.dtype) << " values to "
            << format_name(f) << " (" << to_string(o.convert.rounding) << ", "
            << to_string(o.convert.saturation) << "); amax " << shortest(st.amax)
            << "; scale " << shortest(o.scale)
            << (automatic                ? " (auto)"
                : a.opt.count("--scale") ? ""
                                         : " (default)")
            << "; " << random_text(o.convert, o.seed) << "\n";
  return 0;
}

}  // namespace fp8emu::cli
