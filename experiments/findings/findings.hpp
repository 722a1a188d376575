// What every experiment of fp8exp shares: its subcommand entry, its --out directory and
// the three outputs it writes there (a CSV, gnuplot PNGs, report.md), each atomically
// through experiments/common (docs/experiments.md).
#pragma once

#include <string>
#include <vector>

namespace findings {

/// One experiment: `fp8exp NAME [options]` calls run(argc, argv) with argv[0] = NAME.
struct Subcommand {
  const char* name;
  const char* description;  ///< One line, for `fp8exp --help`.
  int (*run)(int argc, char** argv);
};

/// The experiments' entry points, one per source file (listed in main.cpp's table).
int run_stagnation(int argc, char** argv);
int run_accumulation(int argc, char** argv);
int run_outliers(int argc, char** argv);
int run_spike(int argc, char** argv);
int run_underflow(int argc, char** argv);
int run_formats(int argc, char** argv);
int run_optimizer(int argc, char** argv);
int run_mx_scales(int argc, char** argv);

/// "results/NAME", the default --out of experiment NAME.
std::string default_out(const std::string& name);

/// What report.md says: the published claim with its source beside this run's measurement.
struct Report {
  std::string title;     ///< "Stagnation and its cures".
  std::string command;   ///< The command line of this run.
  std::string claim;     ///< The claim, in a paragraph.
  std::string source;    ///< Its primary source (paper, DOI or arXiv id).
  std::string measured;  ///< What this run measured (markdown: paragraphs, tables).
  std::string agrees;    ///< Whether the measurement agrees with the claim, and how it was decided.
  std::string notes;     ///< Anything else (plots missing, settings); may be empty.
};

/// The outputs of one experiment, written into `dir` (created when missing).
class Outputs {
 public:
  /// Creates `dir`; throws fp8sim::DataError when it cannot.
  Outputs(std::string dir, bool plots);
  const std::string& dir() const { return dir_; }
  /// Writes DIR/FILE (a CSV or a plot's data) atomically.
  void write(const std::string& file, const std::string& text) const;
  /// Writes DIR/plots.gp, runs gnuplot on it and moves each of `pngs` into place. The
  /// script writes each PNG as "PNG.tmp". Returns "" or why the plots are missing.
  std::string plot(const std::string& script, const std::vector<std::string>& pngs) const;
  /// Writes DIR/report.md from `r`.
  void report(const Report& r) const;

 private:
  std::string dir_;
  bool plots_;
};

/// The command line argv[0..argc) of a subcommand as "fp8exp NAME ARGS...".
std::string command_line(int argc, char** argv);

}  // namespace findings
