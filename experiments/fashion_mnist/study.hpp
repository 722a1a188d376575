// The Fashion-MNIST precision study: the settings of one study and its outputs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fashion_mnist/data.hpp"
#include "fp8sim/train.hpp"

namespace study {

/// The recipe every other is compared with; --set leaves it as it is.
inline constexpr const char* kBaseline = "fp32";

/// Everything the command line decides: the RunConfig every run starts from (model,
/// epochs, batch, optimizer, statistics, limits; each run sets its recipe and seed), and
/// the study's own settings.
struct Options : fp8sim::RunConfig {
  Options() { epochs = 10; }
  std::vector<std::string> recipes;   ///< Names or .recipe files; empty: the seven default recipes (main.cpp).
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

/// How the threads are shared: `parallel` runs at once, `per_run` threads each.
struct ThreadPlan {
  int cpus = 1, threads = 1, parallel = 1, per_run = 1;
};

/// What the literature predicts for a named recipe (empty for a custom one).
std::string prediction(const std::string& recipe_name);

/// Writes every output file under o.out (each with write_file)
/// and returns the results table as printed. `plot_note` says why plots are missing.
std::string write_outputs(const Options& o, const std::vector<RecipeRuns>& all, double wall_seconds,
                          const std::string& model_description, const ThreadPlan& plan, std::string& plot_note);

/// Writes `text` to `path` with fp8emu::write_file (fp8emu/file.hpp); throws DataError.
void write_file(const std::string& path, const std::string& text);

}  // namespace study
