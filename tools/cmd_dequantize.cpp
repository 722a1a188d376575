// fp8emu CLI: fp8emu dequantize, a .npy array of codes to values.
#include "commands.hpp"

#include <bit>
#include <cmath>
#include <cstring>
#include <iostream>
#include <span>
#include <string>
#include <vector>

#include "args.hpp"
#include "fp8emu/array.hpp"

namespace fp8emu::cli {
namespace {

constexpr const char* kDequantizeHelp =
    "usage: fp8emu dequantize --format F [--scale X] [--dtype float32|float64|float16] IN.npy "
    "OUT.npy\n"
    "\n"
    "Decodes the codes in IN (uint8, uint16 or int32, any shape) of format F and writes\n"
    "their values divided by the scale (default 1), rounded once (nearest-even; overflow\n"
    "gives inf), as float32 (default), float64 or float16, with IN's shape.\n"
    "A code that does not fit in F is an error naming its index.\n";

}  // namespace

int cmd_dequantize(int argc, char** argv) {
  Args a = parse_args(argc, argv, {"--format", "--scale", "--dtype", "--threads"}, {"--help"});
  if (a.opt.count("--help")) return std::cout << kDequantizeHelp << kVariantHelp, 0;
  if (a.pos.size() != 2 || !a.opt.count("--format"))
    throw UsageError("usage: fp8emu dequantize --format F [--scale X] [--dtype T] IN.npy OUT.npy");
  const Format f = format_arg(a.opt["--format"]);
  ArrayOptions o;
  o.exec.threads = threads_arg(a);
  if (a.opt.count("--scale")) o.scale = scale_arg(a.opt["--scale"], "--scale");
  const std::string dtype = a.opt.count("--dtype") ? a.opt["--dtype"] : "float32";
  if (dtype != "float32" && dtype != "float64" && dtype != "float16")
    throw UsageError("unknown --dtype '" + dtype + "' (float32 float64 float16)");
  if (dtype != "float64" && !fits_float(f))
    throw UsageError("the values of " + format_name(f) + " do not fit in float32; use --dtype float64");
  const npy::Array in = npy::read(a.pos[0]);
  const std::size_t n = in.size();
  const std::vector<std::uint32_t> codes = codes_of(in, a.pos[0], "dequantize");
  npy::Array out;
  out.shape = in.shape;
  out.dtype = dtype == "float32"   ? npy::DType::float32
              : dtype == "float64" ? npy::DType::float64
                                   : npy::DType::float16;
  out.data.resize(n * npy::item_size(out.dtype));
  if (dtype == "float32") {
    dequantize(f, codes, std::span<float>(reinterpret_cast<float*>(out.data.data()), n), o);
  } else if (dtype == "float64") {
    dequantize(f, codes, std::span<double>(reinterpret_cast<double*>(out.data.data()), n), o);
  } else {
    // The exact values (they fit in float), divided by the scale rounded to odd in double
    // (53 >= 11 + 2 bits: the nearest-even float16 of that is the one of the exact quotient),
    // then rounded to float16 by the library.
    std::vector<double> v(n);
    ArrayOptions exact = o;
    exact.scale = 1.0f;
    dequantize(f, codes, std::span<double>(v), exact);
    if (o.scale != 1.0f)
      for (double& x : v) {
        const double q = x / double(o.scale);
        const double r = std::fma(q, double(o.scale), -x);  // q * scale - x, exact
        const bool even = (std::bit_cast<std::uint64_t>(q) & 1) == 0;
        x = r != 0 && std::isfinite(q) && even ? std::nextafter(q, r < 0 ? HUGE_VAL : -HUGE_VAL)
                                               : q;
      }
    ArrayOptions to16 = o;
    to16.scale = 1.0f;
    to16.convert = ConvertOptions{Rounding::nearest_even, Saturation::none};
    std::vector<std::uint16_t> h(n);
    quantize(formats::float16{}, std::span<const double>(v), std::span<std::uint16_t>(h), to16);
    if (n) std::memcpy(out.data.data(), h.data(), 2 * n);
  }
  npy::write(a.pos[1], out);
  std::cout << "dequantized " << n << " codes of " << format_name(f) << " to " << dtype << "\n";
  return 0;
}

}  // namespace fp8emu::cli
