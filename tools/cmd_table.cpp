// fp8emu CLI: fp8emu table, every code of a format.
#include "commands.hpp"

#include <iostream>
#include <string>

#include "args.hpp"
#include "fp8emu/explain.hpp"

namespace fp8emu::cli {
namespace {

constexpr const char* kTableHelp =
    "usage: fp8emu table FORMAT\n"
    "\n"
    "Prints every code of FORMAT (at most 16 bits) as CSV: code, hex, bits, class, value.\n";

}  // namespace

int cmd_table(int argc, char** argv) {
  Args a = parse_args(argc, argv, {}, {"--help"});
  if (a.opt.count("--help")) return std::cout << kTableHelp << kVariantHelp, 0;
  if (a.pos.size() != 1) throw UsageError("usage: fp8emu table FORMAT");
  const Format f = format_arg(a.pos[0]);
  const int b = total_bits(f);
  if (b > 16) throw UsageError("table prints formats of at most 16 bits; " + a.pos[0] + " has " + std::to_string(b));
  std::string out = "code,hex,bits,class,value\n";
  for (std::uint32_t c = 0; c < (1u << b); ++c) {
    const CodeFields fl = fields(f, c);
    out += std::to_string(c) + "," + hex_code(c, b) + "," + field_bits(f, c) + "," +
           std::string(class_name(fl.value_class)) + "," + shortest(fl.value) + "\n";
  }
  std::cout << out;
  return 0;
}

}  // namespace fp8emu::cli
