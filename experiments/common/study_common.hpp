// What the precision studies (fp8study, fp8lm) share: command-line helpers, the recipes
// of a study with --set applied, the lock on a results directory, how threads are shared
// between runs, the progress display, number formatting, atomic output files and gnuplot.
#pragma once

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fp8emu/array.hpp"
#include "fp8sim/qgemm.hpp"
#include "fp8sim/recipe.hpp"

namespace common {

/// A usage or input error: the program prints it and exits with status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The recipe every other is compared with; --set leaves it as it is.
inline constexpr const char* kBaseline = "fp32";

/// Parses `v` as a number in [lo, hi]; throws UsageError naming `flag`.
template <class T>
T number(const std::string& flag, const std::string& v, T lo, T hi) {
  T x{};
  const auto r = std::from_chars(v.data(), v.data() + v.size(), x);
  if (r.ec != std::errc() || r.ptr != v.data() + v.size() || !(x >= lo && x <= hi)) {
    std::ostringstream s;
    s << flag << ": '" << v << "' must be a number in " << lo << ".." << hi;
    throw UsageError(s.str());
  }
  return x;
}

/// The settings every study has beside its runs' configuration (the programs' Options
/// derive from it and from their run configuration).
struct StudySettings {
  std::vector<std::string> recipes;  ///< Names or .recipe files; empty: the study's default.
  std::vector<std::string> sets;     ///< key=value applied to every recipe but the baseline.
  int seeds = 3;
  bool seeds_given = false;          ///< --seeds was on the command line.
  std::uint64_t first_seed = 1;
  int threads = 0;                   ///< 0: the CPUs this process may use.
  std::string out;
  bool resume = false;
  bool plots = true;
  std::string progress = "auto";     ///< auto, bar, lines, none.
};

/// Returns the value of the option argv[i], advancing i; throws UsageError when there is none.
std::string option_value(int argc, char** argv, int& i);

/// Reads the option argv[i] (and its value, advancing i) when every study has it:
/// --help / -h and --version (print `usage`, or "PROGRAM VERSION", and exit 0),
/// --list-recipes, --recipes, --set, --seeds, --first-seed, --threads, --out, --resume,
/// --no-plots, --progress. Returns false for any other option.
bool parse_study_option(int argc, char** argv, int& i, const char* program, const char* usage, StudySettings& s,
                        bool& list_only);

/// Splits the comma-separated list `s` of option `flag`; an empty item is refused.
std::vector<std::string> split_list(const std::string& s, const std::string& flag = "--recipes");

/// Adds one --set KEY=VALUE to `sets`; refuses a value without '=' and a key given twice.
void add_set(std::vector<std::string>& sets, const std::string& kv);

/// "m:ss".
std::string clock_text(double seconds);
/// "1 run", "2 runs".
std::string count_text(long n, const std::string& what);

/// A recipe of a study, and whether --set changed it.
struct StudyRecipe {
  fp8sim::Recipe recipe;
  bool changed_by_set = false;
};

/// Resolves every name or .recipe file of `specs`, applies `sets` to each but the fp32
/// baseline (the keys are checked on the baseline too), checks each recipe, and refuses a
/// recipe given twice and a --set that changes nothing because only the baseline is
/// studied. Throws UsageError or fp8sim::RecipeError.
std::vector<StudyRecipe> resolve_recipes(const std::vector<std::string>& specs, const std::vector<std::string>& sets);

/// "--set a=1 --set b=2 changed: x, y (not the fp32 baseline)" for the recipes (name,
/// changed by --set) of a study, or "" without --set.
std::string set_note(const std::vector<std::string>& sets, const std::vector<std::pair<std::string, bool>>& recipes);

/// The GEMM roles' names, and the tensor each operand slot quantizes: [role][operand].
inline constexpr const char* kRoleNames[3] = {"fprop", "dgrad", "wgrad"};
inline constexpr const char* kTensorNames[3][2] = {{"input", "weight"}, {"grad", "weight"}, {"grad", "input"}};

/// Every recipe in full, as --list-recipes prints it.
std::string recipes_listing(const std::vector<StudyRecipe>& recipes);

/// The recipe's GEMM roles that have no fast path ("fprop, wgrad"), or "".
std::string slow_roles(const fp8sim::Recipe& r);

/// Holds an exclusive lock on DIR/.PROGRAM.lock for the life of the object: a second study
/// writing into the same directory would replace this one's results.
class DirectoryLock {
 public:
  DirectoryLock(const std::string& dir, const std::string& program);
  ~DirectoryLock();
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  int fd_ = -1;
};

/// How the threads are shared: `parallel` runs at once, `per_run` threads each.
struct ThreadPlan {
  int cpus = 1, threads = 1, parallel = 1, per_run = 1;
};
/// Runs at once x threads per run <= threads (0: the CPUs this process may use), for
/// `runs` runs to train.
ThreadPlan plan_threads(int threads, std::size_t runs);
/// "PROGRAM: threads: 2 runs at a time, 1 thread each (2 CPUs)".
std::string plan_text(const std::string& program, const ThreadPlan& plan);

/// Calls body(0 .. runs - 1) on `parallel` threads (dynamic schedule); the first exception
/// thrown is rethrown once every body has ended.
void for_each_run(std::size_t runs, int parallel, const std::function<void(std::size_t)>& body);

class Progress;

/// Trains every run of `work` (a run and its recipe) to its end, plan.parallel runs at a
/// time with plan.per_run threads each, piece by piece: train(run, on_step) trains one
/// piece (an epoch, or up to the next evaluation) and calls on_step after each step; then
/// run.save(checkpoint(run, recipe)) (none where that path is empty) and
/// progress.line(run.done(), line(run, recipe)).
/// A run for which stop(run) holds before a piece stops there. Returns whether any did.
template <class Run, class Train, class Stop, class Checkpoint, class Line>
bool train_runs(const std::vector<std::pair<Run*, const fp8sim::Recipe*>>& work, const ThreadPlan& plan,
                Progress& progress, Train train, Stop stop, Checkpoint checkpoint, Line line);

/// The runs that diverged, "NAME seed S (why); ...", for a study's recipes (each with
/// `recipe.name` and `runs`, whose elements have config().seed and divergence()); `count`
/// is set to their number.
template <class RecipeRuns>
std::string diverged_runs(const std::vector<RecipeRuns>& all, int& count) {
  std::string s;
  count = 0;
  for (const auto& rr : all)
    for (const auto& run : rr.runs)
      if (const std::string why = run->divergence(); !why.empty()) {
        s += (s.empty() ? "" : "; ") + rr.recipe.name + " seed " + std::to_string(run->config().seed) + " (" + why + ")";
        ++count;
      }
  return s;
}

/// The summary named kBaseline, or nullptr.
template <class Summary>
const Summary* find_baseline(const std::vector<Summary>& sums) {
  for (const auto& x : sums)
    if (x.name == kBaseline) return &x;
  return nullptr;
}

/// Progress: a bar redrawn at most 10 times a second on a terminal, or one line per
/// finished piece of a run. Called from the worker threads.
class Progress {
 public:
  /// mode: auto (a bar on a terminal, lines otherwise), bar, lines or none.
  Progress(std::string mode, std::int64_t total_steps, int runs);
  void step();
  /// With mode lines prints "[PCT% m:ss] TEXT"; `run_done` counts a finished run.
  void line(bool run_done, const std::string& text);
  void finish();

 private:
  double elapsed() const;
  void draw(std::int64_t d, double t);
  std::string mode_;
  std::int64_t total_;
  int runs_, runs_done_ = 0;
  std::atomic<std::int64_t> done_{0};
  std::chrono::steady_clock::time_point start_;
  double last_ = -1;
  std::mutex mu_;
};

template <class Run, class Train, class Stop, class Checkpoint, class Line>
bool train_runs(const std::vector<std::pair<Run*, const fp8sim::Recipe*>>& work, const ThreadPlan& plan,
                Progress& progress, Train train, Stop stop, Checkpoint checkpoint, Line line) {
  std::atomic<bool> stopped{false};
  try {
    for_each_run(work.size(), plan.parallel, [&](std::size_t i) {
      Run& run = *work[i].first;
      fp8emu::Execution exec;
      exec.threads = plan.per_run;
      run.set_execution(exec);
      while (!run.done()) {
        if (stop(run)) {
          stopped = true;
          break;
        }
        train(run, [&](std::int64_t) { progress.step(); });
        if (const std::string path = checkpoint(run, *work[i].second); !path.empty()) run.save(path);
        progress.line(run.done(), line(run, *work[i].second));
      }
    });
  } catch (...) {
    progress.finish();
    throw;
  }
  progress.finish();
  return stopped;
}

/// Writes `text` to `path` with fp8emu::write_file (fp8emu/file.hpp); throws DataError.
void write_file(const std::string& path, const std::string& text);

/// Mean; 0 for none.
double mean(const std::vector<double>& v);
/// Sample standard deviation (n - 1); 0 for fewer than two values.
double stdev(const std::vector<double>& v);

/// What every study's summary of one recipe's runs holds beside its measurements.
struct RecipeSummary {
  std::string name, description;
  fp8sim::QuantStats quant;                   ///< Merged over the runs.
  std::vector<std::uint64_t> diverged_seeds;  ///< Runs whose divergence() is not empty.
  std::vector<std::string> diverged_why;
  bool changed_by_set = false;
  bool diverged() const { return !diverged_seeds.empty(); }
  /// Takes the name, description and --set mark of a study's recipe (RecipeRuns).
  template <class RecipeRuns>
  void start(const RecipeRuns& rr) {
    name = rr.recipe.name;
    description = rr.recipe.description;
    changed_by_set = rr.changed_by_set;
  }
  /// Merges a run's statistics and notes its divergence.
  template <class Run>
  void add(const Run& run) {
    quant.merge(run.total);
    if (const std::string why = run.divergence(); !why.empty()) {
      diverged_seeds.push_back(run.config().seed);
      diverged_why.push_back(why);
    }
  }
  /// "Seed S diverged: WHY. " per diverged run, and "Changed by --set. ".
  std::string notes() const;
};

/// Fixed point with `digits` decimals; "nan", "inf", "-inf" for the others.
std::string fixed(double v, int digits);
/// A loss in a table: fixed point with 4 decimals, or with an exponent when it exploded.
std::string loss_text(double v);
/// fixed() with a '+' before a non-negative value.
std::string signed_fixed(double v, int digits);
/// 100 part / whole with 3 decimals, "-" when whole is 0.
std::string pct(std::int64_t part, std::int64_t whole);
/// A number in CSV: 9 significant digits.
std::string csv_number(double v);

/// The curves' mean at each point (the length of the first), as a moving average over the
/// last `window` points: "# HEADER" then "POINT VALUE" lines, points from 1.
std::string smoothed_mean_dat(const std::vector<const std::vector<double>*>& curves, std::size_t window,
                              const std::string& header);

/// Runs `gnuplot plots.gp` in `dir` (plots.gp written already) and moves each of `pngs`
/// (drawn as PNG.tmp) into place, through fp8emu::run_gnuplot. Returns "" or why the plots
/// are missing, in the studies' words. With plots false, only says that they were skipped.
std::string run_gnuplot(const std::string& dir, bool plots, const std::vector<std::string>& pngs);

/// main() of a study program: runs `body`; a UsageError, RecipeError or DataError prints
/// "PROGRAM: MESSAGE" and returns 2, any other exception "PROGRAM: error: MESSAGE" and 1.
int run_main(const char* program, const std::function<int()>& body);

}  // namespace common
