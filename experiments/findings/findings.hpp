// What every experiment of fp8exp shares: its subcommand entry, its --out directory and
// the three outputs it writes there (a CSV, gnuplot PNGs, report.md), each atomically
// through experiments/common (docs/experiments.md).
#pragma once

#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/study_common.hpp"
#include "fp8emu/options.hpp"

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
int run_outliers_lm(int argc, char** argv);

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

/// Returns the comma-separated list `v` of option `flag` as numbers in [lo, hi], in the
/// order given; throws common::UsageError naming the flag for an empty list or item, a
/// bad number, or a number given twice.
template <class T>
std::vector<T> number_list(const std::string& flag, const std::string& v, T lo, T hi) {
  std::vector<T> out;
  std::size_t pos = 0;
  while (pos <= v.size()) {
    const std::size_t c = v.find(',', pos);
    const std::string item = v.substr(pos, c == v.npos ? v.npos : c - pos);
    if (item.empty()) throw common::UsageError(flag + ": empty item in '" + v + "'");
    const T x = common::number<T>(flag, item, lo, hi);
    for (const T& y : out)
      if (y == x) throw common::UsageError(flag + ": '" + item + "' given twice");
    out.push_back(x);
    if (c == v.npos) break;
    pos = c + 1;
  }
  return out;
}

/// How an option stores its value: called with the option's flag (for messages) and its
/// value ("" for a switch); throws common::UsageError for a bad value.
using OptionSetter = std::function<void(const std::string& flag, const std::string& value)>;

/// One option of an experiment's command line, a row of its OptionTable.
struct Option {
  std::string flag;  ///< "--terms"; "": a heading, `help` a line of its own above the
                     ///< options after it ("The training part:"), never matched by parse.
  std::string arg;   ///< The name of its value in the usage ("N"); "": a switch, no value.
  std::string help;  ///< Its help; each '\n' starts a line at the help column. "": it
                     ///< shares the help of the next option, listed on one line with it.
  OptionSetter set;
};

/// The command line of experiment `name`: `fp8exp NAME [options]`, its options in a table.
struct OptionTable {
  std::string name;             ///< "stagnation".
  std::string about;            ///< What the experiment does: the usage's first paragraph.
  std::vector<Option> options;  ///< In the order of the usage.
  std::string footer;           ///< Lines after the options' list ("" for none).

  /// "usage: fp8exp NAME [options]", `about`, a blank line, one line per option (flag and
  /// value, the help from column 20, on the next line when they are longer) and `footer`.
  std::string usage() const;
  /// Appends the options every experiment ends with: --out DIR (default results/NAME, not
  /// "") and --no-plots (sets `plots` to false).
  void add_outputs(std::string& out, bool& plots);
  /// Applies argv[1..argc) (argv[0] is the name) in order, a later value of an option
  /// replacing an earlier one. --help or -h prints usage() and exits 0. Throws
  /// common::UsageError for an option missing its value ("--terms needs a value"), an
  /// unknown option ("unknown option '--x' (fp8exp NAME --help lists them)"), and from
  /// the setters.
  void parse(int argc, char** argv) const;
};

/// The setters of the usual options: a number in [lo, hi] (common::number), a list of
/// them (number_list), a text, a comma-separated list of names (common::split_list), and
/// a switch that sets `x` to false (--no-plots).
template <class T>
OptionSetter set_number(T& x, T lo, T hi) {
  return [&x, lo, hi](const std::string& flag, const std::string& v) {
    x = common::number<T>(flag, v, lo, hi);
  };
}
template <class T>
OptionSetter set_numbers(std::vector<T>& x, T lo, T hi) {
  return [&x, lo, hi](const std::string& flag, const std::string& v) {
    x = number_list<T>(flag, v, lo, hi);
  };
}
OptionSetter set_text(std::string& x);
OptionSetter set_names(std::vector<std::string>& x);
OptionSetter set_false(bool& x);

/// The setters of an option enum E (fp8emu::option_table): one name, or a comma-separated
/// list of them, each at most once. An unknown name throws "FLAG: unknown WHAT 'NAME' (one
/// of A, B)".
template <fp8emu::Option E>
E parse_choice(const std::string& flag, const std::string& name) {
  try {
    return fp8emu::parse<E>(name);
  } catch (const std::invalid_argument& e) {
    throw common::UsageError(flag + ": " + e.what());
  }
}
template <fp8emu::Option E>
OptionSetter set_choice(E& x) {
  return [&x](const std::string& flag, const std::string& v) { x = parse_choice<E>(flag, v); };
}
template <fp8emu::Option E>
OptionSetter set_choices(std::vector<E>& x) {
  return [&x](const std::string& flag, const std::string& v) {
    std::vector<E> chosen;
    for (const std::string& name : common::split_list(v, flag)) {
      const E e = parse_choice<E>(flag, name);
      for (const E& y : chosen)
        if (y == e) throw common::UsageError(flag + ": '" + name + "' given twice");
      chosen.push_back(e);
    }
    x = std::move(chosen);
  };
}

/// Returns the verdict of `agree` of `cases` checks that hold: "Yes" (all), "No" (none)
/// or "Partly"; "Not tested" when there are none.
std::string verdict(int agree, int cases);

/// Prints the closing lines of experiment `name`: "fp8exp NAME: HEADLINE", then "fp8exp
/// NAME: agrees in AGREE of CASES WHAT; wrote FILES[ and plots] into DIR (S s)", and the
/// plots' note when they are missing.
void print_summary(const std::string& name, const std::string& headline, int agree, int cases,
                   const std::string& what, const std::string& files, const std::string& dir,
                   double seconds, const std::string& plot_note);

}  // namespace findings
