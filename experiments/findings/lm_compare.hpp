// The language-model experiments of fp8exp (formats, optimizer, mx-scales): a small GPT
// (fp8sim/lm.hpp) trained on character-level text under a list of recipe variants, every
// variant with the same seeds, so the same initial weights and the same batches, and its
// final validation loss compared with the float32 variant's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "findings/findings.hpp"
#include "fp8sim/lm.hpp"
#include "fp8sim/qgemm.hpp"
#include "fp8sim/recipe.hpp"
#include "lm/text.hpp"

namespace findings {

/// One variant: a label (a valid recipe name: it names plot-data files) and its recipe.
struct LmVariant {
  std::string label;
  fp8sim::Recipe recipe;
  std::string what;  ///< One line: how it differs from its base recipe.
};

/// A named recipe with `key = value` settings applied (set_recipe_key), named `label`.
LmVariant lm_variant(const std::string& label, const std::string& base,
                     const std::vector<std::pair<std::string, std::string>>& keys,
                     const std::string& what);

/// The settings of an LM experiment, from the command line.
struct LmSettings {
  int seeds = 3;
  std::uint64_t first_seed = 1;
  std::int64_t iterations = 200;
  int threads = 0;   ///< 0: the CPUs this process may use.
  std::string data = lm::kDefaultData;
  std::string out;
  bool plots = true;
  std::vector<std::string> only;  ///< --variants: labels to run (empty: all).
  // The model and batches (the defaults: 2 layers, 2 heads, width 64, context 64, batch 8).
  std::int64_t layers = 2, heads = 2, width = 64, context = 64, batch = 8, eval_batches = 8;
  /// The LmConfig every run starts from (recipe and seed set per run).
  fp8sim::LmConfig config() const;
};

/// Parses the options every LM experiment has (an OptionTable), `iterations` the default
/// of --iters; --help prints `about`, what experiment `name` does, above the options.
/// Throws common::UsageError.
LmSettings parse_lm_settings(int argc, char** argv, const std::string& name,
                             const std::string& about, std::int64_t iterations);

/// The options of the training runs, rows of an OptionTable that store into `s` (their
/// defaults are its values): --seeds (seeds per `per`, "variant"), --first-seed,
/// --threads, --data and the model's sizes --layers to --eval-batches. For an experiment
/// with options of its own beside these (fp8exp spike); check_lm_settings after parsing.
std::vector<Option> lm_run_options(LmSettings& s, const std::string& per);
/// Throws common::UsageError when --width is not a multiple of --heads.
void check_lm_settings(const LmSettings& s);

/// One variant's runs.
struct LmResult {
  LmVariant variant;
  std::vector<double> val_loss;  ///< Final validation loss per seed (nats per token).
  std::vector<std::vector<fp8sim::EvalRow>> evals;  ///< Every evaluation, per seed.
  fp8sim::QuantStats quant;                    ///< Merged over the GEMM operands and the seeds.
  std::vector<fp8sim::QuantStats> quant_seed;  ///< Merged over the GEMM operands, per seed.
  std::vector<std::string> diverged;           ///< Per seed: why the run diverged, or "".
  double mean() const;
  double sd() const;
};

/// Everything one comparison produced.
struct LmComparison {
  LmSettings settings;
  std::string model;              ///< The model, in a line.
  std::string data;               ///< The data, in a line.
  std::vector<LmResult> results;  ///< In the order of the variants; results[0] is the baseline.
  double seconds = 0;
  /// The result labelled `label`; throws std::out_of_range.
  const LmResult& at(const std::string& label) const;
  /// Whether the variant labelled `label` ran (--variants may leave it out).
  bool has(const std::string& label) const;
  /// Mean val loss of `label` minus the baseline's.
  double delta(const std::string& label) const;
  /// Twice the seed standard deviation of the baseline's final validation loss, at least
  /// 0.005 nats: the difference below which two variants count as equal.
  double tolerance() const;
};

/// Trains every variant of `variants` (variants[0] the baseline; --variants may drop
/// others, never it) for each seed, runs spread over the threads.
LmComparison lm_compare(const LmSettings& s, const std::vector<LmVariant>& variants,
                        const std::string& name);

/// Writes NAME.csv (one row per variant and seed: its loss, the loss minus fp32's of the
/// same seed, the fractions saturated and flushed), NAME-evals.csv, val_loss.png and
/// report.md (`r` with the results table appended to r.measured), and prints the headline.
void write_lm_outputs(const LmComparison& c, const std::string& name, Report r,
                      const std::string& headline);

/// "2.1234 (sd 0.0012)".
std::string loss_sd(const LmResult& r);

/// "final val loss minus fp32's (nats/token): LABEL +0.0012, ... (fp32 2.1234 (sd
/// 0.0012))" for the variants of `labels` that ran, in that order, or every variant but
/// the baseline when `labels` is empty.
std::string lm_headline(const LmComparison& c, const std::vector<std::string>& labels = {});

/// The verdict of `held` of `decided` parts of a claim (findings::verdict), or "Not
/// decided (--variants left out what the tests need)" when none was decided.
std::string lm_verdict(int held, int decided);

}  // namespace findings
