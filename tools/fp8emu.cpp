// fp8emu: the command-line tool.
//
//   fp8emu formats [--csv]
//   fp8emu explain FORMAT VALUE [options]     fp8emu explain FORMAT --code CODE
//   fp8emu table FORMAT
//   fp8emu quantize --format F [options] IN.npy OUT.npy
//   fp8emu dequantize --format F [--scale X] [--dtype T] IN.npy OUT.npy
//   fp8emu gemm --a A.npy --b B.npy [options] OUT.npy
//   fp8emu compare --format F --expected E.npy --actual A.npy [options]
//   fp8emu arith OP --format F --a A.npy [--b B.npy] [--c C.npy] [options] OUT.npy
//   fp8emu plot KIND FORMAT... -o OUT.png|OUT.svg [options]
//   fp8emu --version
//
// Exit status: 0 on success, 2 on bad usage or bad input (with a message on stderr);
// compare exits 1 when some element differs beyond the tolerance, plot when gnuplot is
// missing or fails.
#include <iostream>
#include <stdexcept>
#include <string>

#include "args.hpp"
#include "commands.hpp"
#include "fp8emu/array.hpp"
#include "fp8emu/program.hpp"

#ifndef FP8EMU_VERSION
#error "FP8EMU_VERSION (the project version) is defined by the build"
#endif

namespace {

using namespace fp8emu::cli;

constexpr const char* kMainHelp =
    "fp8emu: bit-exact emulation of FP8 and other low-precision float formats.\n"
    "\n"
    "usage: fp8emu COMMAND [ARGS]   (fp8emu COMMAND --help for details)\n"
    "       fp8emu --version\n"
    "\n"
    "commands:\n"
    "  formats   list the format catalog with derived properties\n"
    "  explain   show how a value is encoded in a format, field by field\n"
    "  table     print every code of a format and its value as CSV\n"
    "  quantize    round a .npy array of floats to a format (codes or values)\n"
    "  dequantize  decode a .npy array of codes to float32 or float64\n"
    "  gemm        multiply two .npy matrices in emulated precision (accumulation presets)\n"
    "  compare     compare a kernel's output with the expected one, in ulps of a format\n"
    "  arith       add, sub, mul, div, fma or sqrt on .npy arrays of codes, rounded once\n"
    "  plot        draw a format's values, spacing or rounding error (PNG or SVG, by gnuplot)\n";

}  // namespace

int main(int argc, char** argv) {
  fp8emu::wait_passively(argv);
  try {
    if (argc < 2) {
      std::cerr << kMainHelp;
      return 2;
    }
    const std::string cmd = argv[1];
    if (cmd == "--help" || cmd == "-h" || cmd == "help") return std::cout << kMainHelp, 0;
    if (cmd == "--version") {
      if (argc > 2) throw UsageError("--version takes no arguments");
      const std::string simd = fp8emu::simd_summary();  // throws for a bad FP8EMU_SIMD_TARGET
      return std::cout << "fp8emu " FP8EMU_VERSION "\n" << simd << "\n", 0;
    }
    if (cmd == "formats") return cmd_formats(argc - 2, argv + 2);
    if (cmd == "explain") return cmd_explain(argc - 2, argv + 2);
    if (cmd == "table") return cmd_table(argc - 2, argv + 2);
    if (cmd == "quantize") return cmd_quantize(argc - 2, argv + 2);
    if (cmd == "dequantize") return cmd_dequantize(argc - 2, argv + 2);
    if (cmd == "gemm") return cmd_gemm(argc - 2, argv + 2);
    if (cmd == "compare") return cmd_compare(argc - 2, argv + 2);
    if (cmd == "arith") return cmd_arith(argc - 2, argv + 2);
    if (cmd == "plot") return cmd_plot(argc - 2, argv + 2);
    throw UsageError("unknown command '" + cmd +
                     "' (formats, explain, table, quantize, dequantize, gemm, compare, arith, plot; see fp8emu --help)");
  } catch (const UsageError& e) {
    std::cerr << "fp8emu: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "fp8emu: error: " << e.what() << "\n";
    return 2;
  }
}
