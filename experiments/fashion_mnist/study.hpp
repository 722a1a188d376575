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
/// the study's own settings (recipes, seeds, threads, results directory, ...).
struct Options : fp8sim::RunConfig, common::StudySettings {
  Options() {
    epochs = 10;
    out = "results/fashion-mnist";
  }
  std::string data = fashion_mnist::kDir;
  int stop_after_epoch = 0;  ///< > 0: stop every run after this epoch (tests resume).
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
