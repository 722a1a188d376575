// fp8emu CLI: fp8emu explain, one conversion step by step.
#include "commands.hpp"

#include <iostream>
#include <string>

#include "args.hpp"
#include "fp8emu/explain.hpp"

namespace fp8emu::cli {
namespace {

// The help text; the option names come from their tables (options.hpp).
std::string explain_help() {
  std::string sat;
  for (const auto& e : enum_names<Saturation>())
    sat += std::string(sat.empty() ? "" : ",\n                      ") + std::string(e.name) +
           (e.value == Saturation::finite ? " (default: " : " (") + std::string(e.description) + ")";
  return "usage: fp8emu explain FORMAT VALUE [options]\n"
         "       fp8emu explain FORMAT --code CODE [--json]\n"
         "\n"
         "Encodes VALUE (a decimal or hex float such as 3.3, -1e-3, 0x1.8p-7, inf, nan)\n"
         "in FORMAT and shows the sign, exponent and mantissa fields, the decoded value,\n"
         "the two neighbouring values of the format, the error in ulps, and whether the\n"
         "result overflowed (saturated) or underflowed. A stochastic rounding also shows\n"
         "for how many of the 2^N random values the result rounds away from zero.\n"
         "With --code, shows one code.\n"
         "\n"
         "options:\n"
         "  --rounding MODE     " + option_help(Rounding::nearest_even) + "\n"
         "  --saturation S      " + sat + "\n"
         "  --sr-bits N         random bits of stochastic rounding, 1..32 (default " +
         std::to_string(default_stochastic_bits) + ")\n"
         "  --random R          the random value R, 0 <= R < 2^N (default 0)\n"
         "  --nan MODE          " + option_help(NanEncoding::canonical, " or ") + " (" +
         std::string(option_entry(NanEncoding::nvidia).description) + ")\n"
         "  --daz, --ftz        flush subnormal inputs / results to zero\n"
         "  --code CODE         explain a code (decimal or 0x hex) instead of a value\n"
         "  --json              print the same facts as JSON (numbers as the text shows\n"
         "                      them, the text itself as member \"text\")\n";
}

}  // namespace

int cmd_explain(int argc, char** argv) {
  Args a = parse_args(argc, argv,
                      {"--rounding", "--saturation", "--sr-bits", "--random", "--nan", "--code"},
                      {"--daz", "--ftz", "--json", "--help"});
  if (a.opt.count("--help")) return std::cout << explain_help() << kVariantHelp, 0;
  const bool by_code = a.opt.count("--code") > 0;
  const bool json = a.opt.count("--json") > 0;
  if (a.pos.size() != (by_code ? 1u : 2u))
    throw UsageError(by_code ? "usage: fp8emu explain FORMAT --code CODE"
                             : "usage: fp8emu explain FORMAT VALUE [options]");
  const Format f = format_arg(a.pos[0], false);
  const std::string note = variant_note(f);
  if (by_code) {
    const int b = total_bits(f);
    const std::uint64_t max = b >= 32 ? 0xFFFFFFFFull : (1ull << b) - 1;
    const auto code = std::uint32_t(parse_unsigned(a.opt["--code"], "code", max));
    if (json) return std::cout << code_json(f, code).dump(), 0;
    std::cout << code_text(f, code) << (note.empty() ? "" : note + "\n");
    return 0;
  }
  const ConvertOptions o = convert_options(a);
  std::uint32_t random = 0;
  if (a.opt.count("--random")) {
    if (!is_stochastic(o.rounding))
      throw UsageError("--random needs a stochastic --rounding (" + stochastic_names() + ")");
    const std::uint64_t max = (std::uint64_t{1} << o.stochastic_bits) - 1;
    random = std::uint32_t(parse_unsigned(a.opt["--random"], "--random", max));
  }
  const double x = parse_value(a.pos[1]);
  const Explanation e = explain(f, x, o, random);
  if (json) return std::cout << to_json(e).dump(), 0;
  std::cout << to_text(e) << (note.empty() ? "" : note + "\n");
  return 0;
}

}  // namespace fp8emu::cli
