// fp8emu CLI: fp8emu compare, a kernel's output against the expected one.
#include "commands.hpp"

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "args.hpp"
#include "fp8emu/array.hpp"
#include "fp8emu/compare.hpp"
#include "fp8emu/file.hpp"

namespace fp8emu::cli {
namespace {

constexpr const char* kCompareHelp =
    "usage: fp8emu compare --format F --expected E.npy --actual A.npy [options]\n"
    "\n"
    "Compares a kernel's output (A) with the expected output (E) element by element,\n"
    "in ulps of format F, and prints the bit-exact matches, a histogram of the ulp\n"
    "distances of the mismatches, the largest absolute and relative errors, the\n"
    "mismatches by class (nan_vs_number, nan_bits, inf_vs_finite, sign,\n"
    "zero_vs_subnormal, zero_vs_normal, magnitude) and the first mismatches with their\n"
    "index and both values, decoded and in hex. E and A must have the same shape and\n"
    "dtype.\n"
    "\n"
    "options:\n"
    "  --as codes|values    codes: uint8 / uint16 / int32 arrays of F's codes, NaN codes\n"
    "                       compared bit for bit; values: float16 / float32 / float64\n"
    "                       arrays, distances measured on F's grid (fractional off it),\n"
    "                       any NaN equal to any NaN (default: from the dtype)\n"
    "  --tolerance-ulps N   accept mismatches of at most N ulps (N >= 0, may be\n"
    "                       fractional); NaN vs number and infinity vs anything else\n"
    "                       are never accepted. Default 0: bit-exact only\n"
    "  --show N             list the first N mismatches (default 10)\n"
    "  --json REPORT        also write the report as JSON (written whole, as OUT of quantize)\n"
    "\n"
    "Exit status: 0 when every element is bit-identical or within the tolerance, 1\n"
    "otherwise, 2 on bad input (shape or dtype mismatch, unreadable file, a code that\n"
    "does not fit F, bad option) with a message.\n";

// The two arrays of a comparison and how to print their elements.
struct CompareInput {
  Format f;
  bool codes = true;
  npy::Array e, a;
};

}  // namespace

int cmd_compare(int argc, char** argv) {
  Args a = parse_args(argc, argv, {"--format", "--expected", "--actual", "--as", "--tolerance-ulps", "--show", "--json"},
                      {"--help"});
  if (a.opt.count("--help")) return std::cout << kCompareHelp << kVariantHelp, 0;
  if (!a.pos.empty() || !a.opt.count("--format") || !a.opt.count("--expected") || !a.opt.count("--actual"))
    throw UsageError("usage: fp8emu compare --format F --expected E.npy --actual A.npy [options]");
  CompareInput in;
  in.f = format_arg(a.opt["--format"]);
  double tolerance = 0;
  if (a.opt.count("--tolerance-ulps")) {
    tolerance = parse_finite(a.opt["--tolerance-ulps"], "--tolerance-ulps", "a finite number >= 0");
    if (!(tolerance >= 0))
      throw UsageError("invalid --tolerance-ulps '" + a.opt["--tolerance-ulps"] +
                       "': expected a finite number >= 0");
  }
  CompareOptions o;
  o.tolerance_ulps = tolerance;
  if (a.opt.count("--show")) o.keep = parse_unsigned(a.opt["--show"], "--show", 1000000);
  const std::string epath = a.opt["--expected"], apath = a.opt["--actual"];
  auto load = [](const std::string& path, const char* which) {
    try {
      return npy::read(path);
    } catch (const npy::Error& e) {
      throw UsageError(std::string(which) + " " + e.what());
    }
  };
  in.e = load(epath, "--expected:");
  in.a = load(apath, "--actual:");
  if (in.e.shape != in.a.shape)
    throw UsageError("shape mismatch: " + epath + " is " + shape_text(in.e.shape) + ", " + apath + " is " +
                     shape_text(in.a.shape));
  if (in.e.dtype != in.a.dtype)
    throw UsageError(std::string("dtype mismatch: ") + epath + " holds " + npy::dtype_name(in.e.dtype) + ", " +
                     apath + " holds " + npy::dtype_name(in.a.dtype));
  const npy::DType dt = in.e.dtype;
  const bool float_dtype = dt == npy::DType::float16 || dt == npy::DType::float32 || dt == npy::DType::float64;
  const std::string as = a.opt.count("--as") ? a.opt["--as"] : (float_dtype ? "values" : "codes");
  if (as != "codes" && as != "values") throw UsageError("unknown --as '" + as + "' (codes values)");
  in.codes = as == "codes";
  if (in.codes && float_dtype)
    throw UsageError(std::string("--as codes needs arrays of codes (uint8, uint16 or int32); the inputs hold ") +
                     npy::dtype_name(dt));
  if (!in.codes && !float_dtype)
    throw UsageError(std::string("--as values needs float16, float32 or float64 arrays; the inputs hold ") +
                     npy::dtype_name(dt) + " (use --as codes)");
  if (in.codes && int(8 * npy::item_size(dt)) < total_bits(in.f))
    throw UsageError("codes of " + format_name(in.f) + " have " + std::to_string(total_bits(in.f)) + " bits; " +
                     npy::dtype_name(dt) + " cannot hold them");
  if (in.codes && total_bits(in.f) > 32) throw UsageError("codes mode takes formats of at most 32 bits");
  CompareReport r;
  try {
    switch (dt) {
      case npy::DType::uint8:
        r = compare_codes(in.f, view<std::uint8_t>(in.e), view<std::uint8_t>(in.a), o);
        break;
      case npy::DType::uint16:
        r = compare_codes(in.f, view<std::uint16_t>(in.e), view<std::uint16_t>(in.a), o);
        break;
      case npy::DType::int32:  // codes of up to 31 bits; a negative int32 does not fit any
        r = compare_codes(in.f, view<std::uint32_t>(in.e), view<std::uint32_t>(in.a), o);
        break;
      case npy::DType::float64:
        r = compare_values(in.f, view<double>(in.e), view<double>(in.a), o);
        break;
      case npy::DType::float32:
        r = compare_values(in.f, view<float>(in.e), view<float>(in.a), o);
        break;
      default:  // float16, widened to float (exact); the report shows its bits
        r = compare_float16_bits(in.f, view<std::uint16_t>(in.e), view<std::uint16_t>(in.a), o);
    }
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  CompareSubject subject;
  subject.format = in.f;
  subject.codes = in.codes;
  subject.dtype = npy::dtype_name(dt);
  subject.value_bits = int(8 * npy::item_size(dt));
  subject.shape = in.e.shape;
  subject.tolerance_ulps = tolerance;
  subject.expected = epath;
  subject.actual = apath;
  std::fputs(compare_text(subject, r).c_str(), stdout);
  if (a.opt.count("--json")) write_file(a.opt["--json"], compare_json(subject, r));
  std::fflush(stdout);
  return r.passed() ? 0 : 1;
}


}  // namespace fp8emu::cli
