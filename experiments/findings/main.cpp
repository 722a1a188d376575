// fp8exp: precision experiments that reproduce published findings on FP8 and other
// low-precision formats, one subcommand per experiment (docs/experiments.md).
#include <cstring>
#include <iostream>
#include <string>

#include "common/study_common.hpp"
#include "findings/findings.hpp"

namespace {

using findings::Subcommand;

/// The experiments, one entry each: a new one adds its entry here, its run_NAME to
/// findings.hpp and its source file to experiments/CMakeLists.txt.
constexpr Subcommand kSubcommands[] = {
    {"stagnation", "sums of many small terms under RNE, stochastic rounding and Kahan summation",
     findings::run_stagnation},
    {"accumulation", "nvidia-h100-fp8 accumulation error against K, with and without promotion to float32",
     findings::run_accumulation},
    {"outliers", "scaling granularity (tensor, row, 1x128, MX, NVFP4) under outlier channels",
     findings::run_outliers},
    {"outliers-lm", "the language model under those scalings; does it have outlier channels?",
     findings::run_outliers_lm},
    {"spike", "delayed scaling's amax history against current scaling on an activation spike",
     findings::run_spike},
    {"underflow", "unscaled FP8 casts of a deep network's gradients flush them to zero; per-tensor scaling",
     findings::run_underflow},
    {"formats", "the language model under the FP8 hybrid, e4m3 everywhere and e5m2 everywhere",
     findings::run_formats},
    {"optimizer", "the language model with AdamW moments and master weights in bf16, fp16 and FP8",
     findings::run_optimizer},
    {"mx-scales", "MXFP8 / MXFP4 with e8m0 scales rounded down or up; NVFP4 without SR or Hadamard",
     findings::run_mx_scales},
};

void list(std::ostream& out) {
  out << "usage: fp8exp NAME [options]   (fp8exp NAME --help for the options of NAME)\n"
         "Precision experiments that reproduce published findings; each writes a CSV, plots\n"
         "and report.md into --out (default results/NAME).\n\nexperiments:\n";
  for (const Subcommand& c : kSubcommands) {
    out << "  " << c.name;
    for (std::size_t k = std::strlen(c.name); k < 16; ++k) out << ' ';
    out << c.description << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    list(std::cerr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h") {
    list(std::cout);
    return 0;
  }
  if (name == "--version") {
    std::cout << "fp8exp " << FP8EMU_VERSION << "\n";
    return 0;
  }
  for (const Subcommand& c : kSubcommands)
    if (name == c.name)
      return common::run_main("fp8exp", [&] { return c.run(argc - 1, argv + 1); });
  std::cerr << "fp8exp: unknown experiment '" << name << "'\n";
  list(std::cerr);
  return 2;
}
