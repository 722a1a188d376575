// fp8emu CLI: fp8emu compare, a kernel's output against the expected one.
#include "commands.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <span>
#include <string>
#include <vector>

#include "args.hpp"
#include "fp8emu/array.hpp"
#include "fp8emu/compare.hpp"
#include "fp8emu/explain.hpp"
#include "fp8emu/file.hpp"
#include "fp8emu/json.hpp"

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

// Returns element i as its bits (the dtype's width).
std::uint64_t raw_bits(const npy::Array& x, std::size_t i) {
  const std::size_t w = npy::item_size(x.dtype);
  std::uint64_t b = 0;
  std::memcpy(&b, x.data.data() + i * w, w);
  return b;
}

// Returns element i decoded, in its shortest round-trip form, with its hex bits.
std::string shown(const CompareInput& in, const npy::Array& x, std::size_t i, double value) {
  const std::uint64_t b = raw_bits(x, i);
  if (in.codes) return shortest(value) + " (" + hex_code(b, total_bits(in.f)) + ")";
  const int bits = int(8 * npy::item_size(x.dtype));
  const std::string v = x.dtype == npy::DType::float64 ? shortest(value) : shortest(float(value));
  return v + " (" + hex_code(b, bits) + ")";
}


// Returns the report as JSON (fp8emu/json.hpp: non-finite numbers as strings).
std::string report_json(const CompareInput& in, const CompareReport& r, double tolerance,
                        const std::string& epath, const std::string& apath) {
  json::Value j = json::Value::object();
  j.set("format", format_name(in.f));
  j.set("as", in.codes ? "codes" : "values");
  j.set("expected", epath);
  j.set("actual", apath);
  j.set("dtype", npy::dtype_name(in.e.dtype));
  json::Value shape = json::Value::array();
  for (std::size_t d : in.e.shape) shape.push(d);
  j.set("shape", std::move(shape));
  j.set("tolerance_ulps", tolerance);
  j.set("total", r.total);
  j.set("exact", r.exact);
  j.set("tolerated", r.tolerated);
  j.set("failed", r.failed);
  j.set("passed", r.passed());
  json::Value hist = json::Value::array();
  for (std::size_t b = 0; b < kUlpBuckets; ++b)
    if (r.histogram[b])
      hist.push(json::Value::object().set("ulps", ulp_bucket_label(b)).set("count", r.histogram[b]));
  j.set("ulp_histogram", std::move(hist));
  json::Value kinds = json::Value::object();
  for (std::size_t k = 0; k < kDifferenceCount; ++k)
    kinds.set(difference_name(Difference(k)), r.by_kind[k]);
  j.set("by_class", std::move(kinds));
  auto extreme = [&](double v, std::uint64_t i) {
    if (!(v > 0)) return json::Value();
    return json::Value::object().set("value", v).set("index", i).set("at", multi_index(in.e.shape, i));
  };
  j.set("max_ulps", extreme(r.max_ulps, r.max_ulps_index));
  j.set("max_abs_error", extreme(r.max_abs_error, r.max_abs_index));
  j.set("max_rel_error", extreme(r.max_rel_error, r.max_rel_index));
  if (!in.codes) {
    j.set("off_grid_expected", r.off_grid_expected);
    j.set("off_grid_actual", r.off_grid_actual);
  }
  json::Value list = json::Value::array();
  const int bits = in.codes ? total_bits(in.f) : int(8 * npy::item_size(in.e.dtype));
  for (const MismatchRecord& m : r.first)
    list.push(json::Value::object()
                  .set("index", m.index)
                  .set("at", multi_index(in.e.shape, m.index))
                  .set("expected", m.expected)
                  .set("expected_hex", hex_code(raw_bits(in.e, m.index), bits))
                  .set("actual", m.actual)
                  .set("actual_hex", hex_code(raw_bits(in.a, m.index), bits))
                  .set("ulps", m.ulps)
                  .set("class", difference_name(m.kind))
                  .set("tolerated", m.tolerated));
  j.set("first_mismatches", std::move(list));
  return j.dump();
}

void print_report(const CompareInput& in, const CompareReport& r, double tolerance) {
  std::printf("compare: %llu elements of %s %s (%s, shape %s), tolerance %s ulps\n",
              (unsigned long long)r.total, format_name(in.f).c_str(), in.codes ? "codes" : "values",
              npy::dtype_name(in.e.dtype), shape_text(in.e.shape).c_str(), shortest(tolerance).c_str());
  std::printf("  %-20s %12llu  %s\n", "bit-exact", (unsigned long long)r.exact, percent(r.exact, r.total).c_str());
  std::printf("  %-20s %12llu  %s\n", "within tolerance", (unsigned long long)r.tolerated,
              percent(r.tolerated, r.total).c_str());
  std::printf("  %-20s %12llu  %s\n", "beyond tolerance", (unsigned long long)r.failed,
              percent(r.failed, r.total).c_str());
  if (!in.codes && (r.off_grid_expected || r.off_grid_actual))
    std::printf("  not values of %s: %llu expected, %llu actual (distances are fractional there)\n",
                format_name(in.f).c_str(), (unsigned long long)r.off_grid_expected,
                (unsigned long long)r.off_grid_actual);
  const std::uint64_t mismatches = r.tolerated + r.failed;
  if (mismatches == 0) {
    std::printf("PASS: every element is bit-exact\n");
    return;
  }
  std::printf("ulp distance of the mismatches:\n");
  for (std::size_t b = 0; b < kUlpBuckets; ++b)
    if (r.histogram[b])
      std::printf("  %-20s %12llu\n", ulp_bucket_label(b).c_str(), (unsigned long long)r.histogram[b]);
  std::printf("mismatches by class:\n");
  for (std::size_t k = 0; k < kDifferenceCount; ++k)
    if (r.by_kind[k])
      std::printf("  %-20s %12llu\n", std::string(difference_name(Difference(k))).c_str(),
                  (unsigned long long)r.by_kind[k]);
  if (r.max_abs_error > 0 || r.max_ulps > 0) {
    std::printf("largest errors (pairs of finite values):\n");
    auto line = [&](const char* what, double v, std::uint64_t i) {
      if (!(v > 0)) return;
      std::printf("  %-9s %-14s at %s (flat %llu)\n", what, shortest(v).c_str(),
                  multi_index(in.e.shape, i).c_str(), (unsigned long long)i);
    };
    line("ulps", r.max_ulps, r.max_ulps_index);
    line("absolute", r.max_abs_error, r.max_abs_index);
    line("relative", r.max_rel_error, r.max_rel_index);
  }
  if (!r.first.empty()) {
    std::printf("first %zu mismatches:\n", r.first.size());
    std::printf("  %-16s %10s  %-26s %-26s %10s  %s\n", "index", "flat", "expected", "actual", "ulps",
                "class");
    for (const MismatchRecord& m : r.first)
      std::printf("  %-16s %10llu  %-26s %-26s %10s  %s%s\n", multi_index(in.e.shape, m.index).c_str(),
                  (unsigned long long)m.index, shown(in, in.e, m.index, m.expected).c_str(),
                  shown(in, in.a, m.index, m.actual).c_str(), shortest(m.ulps).c_str(),
                  std::string(difference_name(m.kind)).c_str(), m.tolerated ? " (tolerated)" : "");
  }
  if (r.passed())
    std::printf("PASS: %llu mismatches, all within %s ulps\n", (unsigned long long)mismatches,
                shortest(tolerance).c_str());
  else
    std::printf("FAIL: %llu element%s differ%s by more than %s ulps\n", (unsigned long long)r.failed,
                r.failed == 1 ? "" : "s", r.failed == 1 ? "s" : "", shortest(tolerance).c_str());
}

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
      default: {
        // float16 widened to float (exact); the report shows its bits from the file.
        std::vector<float> ev(in.e.size()), av(in.a.size());
        dequantize(formats::float16{}, view<std::uint16_t>(in.e), std::span<float>(ev));
        dequantize(formats::float16{}, view<std::uint16_t>(in.a), std::span<float>(av));
        r = compare_values(in.f, ev, av, o);
      }
    }
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  print_report(in, r, tolerance);
  if (a.opt.count("--json")) {
    const std::string j = report_json(in, r, tolerance, epath, apath);
    write_file(a.opt["--json"], j);
  }
  std::fflush(stdout);
  return r.passed() ? 0 : 1;
}


}  // namespace fp8emu::cli
