// fp8emu CLI: fp8emu formats, the format catalog.
#include "commands.hpp"

#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include "args.hpp"
#include "fp8emu/array.hpp"
#include "fp8emu/explain.hpp"
#include "fp8emu/format.hpp"

namespace fp8emu::cli {
namespace {

constexpr const char* kFormatsHelp =
    "usage: fp8emu formats [--csv]\n"
    "\n"
    "Lists every catalog format: bits, exponent and mantissa widths, bias, policy,\n"
    "largest finite value, smallest normal and smallest positive value, epsilon,\n"
    "emin/emax, the number of finite codes, and the codes of NaN and infinities.\n"
    "Other formats are spelled binary{K}p{P}{s|u}{e|f} or e{E}m{M}[:bias=B][:policy=P][:unsigned].\n"
    "\n"
    "  --csv    machine-readable output\n";

}  // namespace

int cmd_formats(int argc, char** argv) {
  Args a = parse_args(argc, argv, {}, {"--csv", "--help"});
  if (a.opt.count("--help")) return std::cout << kFormatsHelp, 0;
  if (!a.pos.empty()) throw UsageError("formats takes no arguments");
  const bool csv = a.opt.count("--csv") > 0;
  if (csv)
    std::cout << "name,bits,exponent_bits,mantissa_bits,bias,signed,policy,max_finite,min_normal,"
                 "min_positive,epsilon,emin,emax,finite_codes,nan_code,pos_inf_code,neg_inf_code,source\n";
  else
    std::printf("%-16s %4s %2s %2s %4s %-15s %-13s %-13s %-13s %-10s %5s %4s %8s %6s %6s\n", "name",
                "bits", "E", "M", "bias", "policy", "max", "min_normal", "min_positive", "epsilon",
                "emin", "emax", "finite", "nan", "+inf");
  for (const auto& e : catalog()) {
    const Format& f = e.format;
    const int b = total_bits(f);
    auto opt = [&](std::optional<std::uint32_t> c) { return c ? hex_code(*c, b) : std::string("-"); };
    if (csv) {
      std::cout << e.name << ',' << b << ',' << f.exponent_bits << ',' << f.mantissa_bits << ','
                << f.bias << ',' << (f.is_signed ? 1 : 0) << ',' << policy_name(f.policy) << ','
                << shortest(max_finite(f)) << ',' << shortest(min_normal(f)) << ','
                << shortest(min_positive(f)) << ',' << shortest(epsilon(f)) << ',' << emin(f) << ','
                << emax(f) << ',' << finite_code_count(f) << ',' << opt(nan_code(f)) << ','
                << opt(positive_inf_code(f)) << ',' << opt(negative_inf_code(f)) << ",\""
                << e.source << "\"\n";
    } else {
      std::printf("%-16s %4d %2d %2d %4d %-15s %-13.6g %-13.6g %-13.6g %-10.4g %5d %4d %8llu %6s %6s\n",
                  std::string(e.name).c_str(), b, f.exponent_bits, f.mantissa_bits, f.bias,
                  std::string(policy_name(f.policy)).c_str(), max_finite(f), min_normal(f),
                  min_positive(f), epsilon(f), emin(f), emax(f),
                  (unsigned long long)finite_code_count(f), opt(nan_code(f)).c_str(),
                  opt(positive_inf_code(f)).c_str());
    }
  }
  if (!csv) std::cout << kVariantHelp << "\n" << simd_summary() << "\n";
  return 0;
}

}  // namespace fp8emu::cli
