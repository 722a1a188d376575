// The language-model precision study (fp8lm): the settings of one study and its outputs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/study_common.hpp"
#include "fp8sim/comm.hpp"
#include "fp8sim/lm.hpp"
#include "lm/text.hpp"

namespace lm {

/// Iterations per run of the default study (sized to finish within 10 minutes on 2 cores),
/// and of --full (nanoGPT's character-level Shakespeare setting).
inline constexpr std::int64_t kDefaultIterations = 250;
inline constexpr std::int64_t kFullIterations = 2000;
inline constexpr int kDefaultSeeds = 2, kFullSeeds = 3;
/// Evaluations per run when --eval-every is not given (the last at the end of the run).
inline constexpr std::int64_t kEvaluations = 8;
/// --full evaluates every 250 iterations, as nanoGPT's configuration does.
inline constexpr std::int64_t kFullEvalEvery = 250;

/// The recipes of the default study.
inline constexpr const char* kDefaultRecipes[] = {"fp32", "bf16", "fp8-hybrid-delayed", "fp8-e4m3-blockwise",
                                                  "mxfp8", "fp8-e5m2", "nvfp4"};

/// The file of a study's wall times and thread plan: every other output file depends on the
/// settings and the data only.
inline constexpr const char* kTimingsFile = "timings.json";

/// One line of a sweep: `KEY=V1,V2,...` and where it was given ("--sweep", "FILE line N").
struct SweepLine {
  std::string text, origin;
};

/// Everything the command line decides: the LmConfig every run starts from (each run sets
/// its recipe and seed), and the study's own settings (recipes, seeds, threads, ...).
struct Options : fp8sim::LmConfig, common::StudySettings {
  Options() {
    iterations = kDefaultIterations;
    seeds = kDefaultSeeds;
    out = "results/lm";
  }
  bool full = false;
  std::string data = kDefaultData;
  int stop_after_eval = 0;  ///< > 0: stop every run after this many evaluations.
  std::vector<SweepLine> sweep;  ///< --sweep and --sweep-file lines, in the order given.
  /// The options as given, each with its value, but those of a sweep (--sweep, --sweep-file,
  /// --resume): a sweep's run parses these, its point's keys, its recipe and seed.
  std::vector<std::vector<std::string>> given;
};

/// An option fp8lm does not know (a sweep key that is no option may be a recipe key).
struct UnknownOption : common::UsageError {
  using UsageError::UsageError;
};

/// fp8lm's one option parser: `args` without the program's name. Throws UsageError.
Options parse(const std::vector<std::string>& args, bool& list_only);

/// The study `o` describes, on `text`: trains its runs (from their checkpoints with
/// o.resume) and writes its outputs under o.out. `quiet`: prints nothing (a sweep's run).
/// With a communicator of several ranks the study is data-parallel: every rank calls it,
/// the runs train one at a time on all ranks (LmConfig::ranks = the job's size), and rank
/// 0 alone writes. Returns the exit status.
int run_study(const Options& o, const Text& text, bool quiet,
              fp8sim::Communicator& comm = fp8sim::local_communicator());

/// One recipe's runs, one per seed, in seed order.
struct RecipeRuns {
  fp8sim::Recipe recipe;
  bool changed_by_set = false;
  std::vector<std::unique_ptr<fp8sim::LmRun>> runs;
};

/// What the literature predicts for a named recipe (empty for a custom one).
std::string prediction(const std::string& recipe_name);

/// Writes every output file under o.out (each with write_file) and returns the results
/// table as printed. `plot_note` says why plots are missing.
std::string write_outputs(const Options& o, const std::vector<RecipeRuns>& all, double wall_seconds,
                          const std::string& model_description, const Text& text, const common::ThreadPlan& plan,
                          std::string& plot_note);

}  // namespace lm
