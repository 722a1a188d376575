// fp8emu CLI: fp8emu arith, elementwise arithmetic on .npy arrays of codes.
#include "commands.hpp"

#include <iostream>
#include <span>
#include <string>
#include <vector>

#include "args.hpp"
#include "fp8emu/arith_array.hpp"
#include "fp8emu/compare.hpp"

namespace fp8emu::cli {
namespace {

// The help text; the operation and option names come from their tables (options.hpp).
std::string arith_help() {
  std::string ops;
  for (const auto& e : enum_names<ArithOp>())
    ops += "  " + std::string(e.name) + std::string(6 - e.name.size(), ' ') +
           std::string(e.description) + "\n";
  return "usage: fp8emu arith OP --format F --a A.npy [--b B.npy] [--c C.npy] [options] OUT.npy\n"
         "\n"
         "Computes OP elementwise on the codes of format F in A, B and C (uint8, uint16 or\n"
         "int32, of at most 16 bits), each result rounded once from the exact one, and writes\n"
         "its codes to OUT (uint8 for formats of <= 8 bits, else uint16). The operands'\n"
         "shapes broadcast as NumPy's do; OUT has the broadcast shape. A code that does not\n"
         "fit in F is an error naming its operand and index.\n"
         "\n"
         "operations (operands):\n" +
         ops +
         "\n"
         "options:\n"
         "  --format F          the format of the operands and the result\n"
         "  --rounding R        " + option_help(Rounding::nearest_even) + "\n"
         "  --saturation S      " + option_help(Saturation::finite) + "\n"
         "  --nan MODE          " + option_help(NanEncoding::canonical, " or ") + "\n"
         "  --daz, --ftz        subnormal operands / results count as zero\n"
         "  --sr-bits K         random bits of stochastic rounding, 1..32 (default " +
         std::to_string(default_stochastic_bits) + ")\n"
         "  --seed N, --stream T  the random stream: element i of OUT (C order) uses\n"
         "                      random_bits(seed, stream, i), whatever the thread count\n"
         "  --threads T         OpenMP threads (default: all); results do not depend on it\n";
}

// Reads the codes of operand `opt` as 32-bit codes; `shape` receives its shape.
std::vector<std::uint32_t> read_codes(const std::string& path, const std::string& opt,
                                      std::vector<std::size_t>& shape) {
  const npy::Array in = npy::read(path);
  std::vector<std::uint32_t> codes = codes_of(in, path, "arith", opt + ": ");
  shape = in.shape;
  return codes;
}

}  // namespace

int cmd_arith(int argc, char** argv) {
  Args a = parse_args(argc, argv,
                      {"--format", "--a", "--b", "--c", "--rounding", "--saturation", "--nan",
                       "--sr-bits", "--seed", "--stream", "--threads"},
                      {"--daz", "--ftz", "--help"});
  if (a.opt.count("--help")) return std::cout << arith_help() << kVariantHelp, 0;
  const char* usage =
      "usage: fp8emu arith OP --format F --a A.npy [--b B.npy] [--c C.npy] [options] OUT.npy";
  if (a.pos.size() != 2 || !a.opt.count("--format") || !a.opt.count("--a")) throw UsageError(usage);
  const ArithOp op = option_arg<ArithOp>(a.pos[0]);
  const int count = operand_count(op);
  const char* names[3] = {"--a", "--b", "--c"};
  for (int k = 1; k < 3; ++k) {
    if (k < count && !a.opt.count(names[k]))
      throw UsageError(a.pos[0] + " takes " + std::to_string(count) + " operands: give " +
                       names[k]);
    if (k >= count && a.opt.count(names[k]))
      throw UsageError(a.pos[0] + " takes " + std::to_string(count) + " operand" +
                       (count > 1 ? "s" : "") + "; " + names[k] + " is not one");
  }
  const Format f = format_arg(a.opt["--format"]);
  const int bits = total_bits(f);
  if (bits > 16)
    throw UsageError("codes of " + format_name(f) + " need " + std::to_string(bits) +
                     " bits; arith reads and writes formats of at most 16 bits");
  ArrayOptions o;
  o.convert = convert_options(a);
  o.exec.threads = threads_arg(a);
  if (a.opt.count("--seed")) o.seed = parse_unsigned(a.opt["--seed"], "--seed", ~0ull);
  if (a.opt.count("--stream")) o.stream = parse_unsigned(a.opt["--stream"], "--stream", ~0ull);

  auto codes = std::vector<std::vector<std::uint32_t>>(std::size_t(count));
  auto shapes = std::vector<std::vector<std::size_t>>(std::size_t(count));
  for (int k = 0; k < count; ++k)
    codes[std::size_t(k)] = read_codes(a.opt[names[k]], names[k], shapes[std::size_t(k)]);
  std::vector<std::size_t> shape;
  try {
    shape = broadcast_shape(shapes);
  } catch (const std::invalid_argument& e) {
    std::string s;
    for (int k = 0; k < count; ++k)
      s += std::string(k ? ", " : "") + names[k] + " " + shape_text(shapes[std::size_t(k)]);
    throw UsageError(std::string(e.what()) + " (" + s + ")");
  }
  std::vector<CodeOperand<std::uint32_t>> ops;
  for (int k = 0; k < count; ++k)
    ops.push_back({codes[std::size_t(k)], broadcast_strides(shapes[std::size_t(k)], shape)});
  std::size_t n = 1;
  for (std::size_t d : shape) n *= d;
  std::vector<std::uint32_t> out(n);
  arith(op, f, shape, std::span<const CodeOperand<std::uint32_t>>(ops), std::span(out), o);
  npy::write(a.pos[1], code_array(out, bits, shape));
  std::cout << to_string(op) << " of " << n << " codes of " << format_name(f) << " ("
            << to_string(o.convert.rounding) << ", " << to_string(o.convert.saturation)
            << "); shape " << shape_text(shape) << "; " << random_text(o.convert, o.seed)
            << (is_stochastic(o.convert.rounding) ? ", stream " + std::to_string(o.stream) : "")
            << "\n";
  return 0;
}

}  // namespace fp8emu::cli
