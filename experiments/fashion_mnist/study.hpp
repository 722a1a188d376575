// The Fashion-MNIST precision study: the settings of one study and its outputs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/study_common.hpp"
#include "fashion_mnist/data.hpp"
#include "fp8sim/train.hpp"

namespace study {

using common::kBaseline;
using common::ThreadPlan;

/// Everything the command line decides: the RunConfig every run starts from (model,
/// epochs, batch, optimizer, statistics, limits; each run sets its recipe and seed), and
/// the study's own settings.
struct Options : fp8sim::RunConfig {
  Options() { epochs = 10; }
  std::vector<std::string> recipes;   ///< Names or .recipe files; empty: every named recipe.
  std::vector<std::string> sets;      ///< key=value applied to every recipe but the baseline.
  int seeds = 3;
  std::uint64_t first_seed = 1;
  int threads = 0;                    ///< 0: the CPUs this process may use.
  std::string out = "results/fashion-mnist";
  std::string data = fashion_mnist::kDir;
  bool resume = false;
  int stop_after_epoch = 0;           ///< > 0: stop every run after this epoch (tests resume).
  bool plots = true;
  std::string progress = "auto";      ///< auto, bar, lines, none.
};

/// One recipe's runs, one per seed, in seed order.
struct RecipeRuns {
  fp8sim::Recipe recipe;
  bool changed_by_set = false;  ///< --set changed the recipe.
  std::vector<std::unique_ptr<fp8sim::Run>> runs;
};

/// What the literature predicts for a named recipe (empty for a custom one).
std::string prediction(const std::string& recipe_name);

/// Writes every output file under o.out (each with write_file)
/// and returns the results table as printed. `plot_note` says why plots are missing.
std::string write_outputs(const Options& o, const std::vector<RecipeRuns>& all, double wall_seconds,
                          const std::string& model_description, const ThreadPlan& plan, std::string& plot_note);

}  // namespace study
