// The study's outputs: results table, CSV, JSON, gnuplot plots and the markdown report.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iterator>
#include <map>
#include <sstream>

#include "fp8emu/file.hpp"
#include "fp8emu/json.hpp"
#include "study.hpp"

namespace study {
namespace {

namespace fs = std::filesystem;
using common::csv_number;
using common::fixed;
using common::loss_text;
using common::mean;
using common::pct;
using common::signed_fixed;
using common::stdev;
using common::write_file;

// What the sources say of each named recipe (docs/study.md repeats them with the full
// references; docs/references.md, "Training recipes").
const std::map<std::string, std::string>& predictions() {
  static const std::map<std::string, std::string> p = {
      {"fp32",
       "Baseline. Fashion-MNIST benchmarks put an MLP at about 88-89% test accuracy in float32 "
       "(Xiao, Rasul and Vollgraf 2017, arXiv 1708.07747, and its benchmark table)."},
      {"bf16",
       "Matches float32: bfloat16 GEMM operands with float32 accumulation and master weights train "
       "to float32 accuracy without changes (Kalamkar et al. 2019, arXiv 1905.12322)."},
      {"fp8-hybrid-delayed",
       "Matches the 16-bit baseline within run-to-run variation: e4m3 forward, e5m2 gradients and "
       "per-tensor scaling (Micikevicius et al. 2022, arXiv 2209.05433); delayed scaling is Transformer "
       "Engine's default recipe. The first step runs with scale 1 (no history yet)."},
      {"fp8-hybrid-current",
       "Matches the baseline as delayed scaling does; the scale follows each tensor's own amax, so a "
       "sudden growth cannot overflow a stale scale (Transformer Engine, Float8CurrentScaling)."},
      {"fp8-e4m3-blockwise",
       "Relative loss error below 0.25% against the BF16 baseline with e4m3 everywhere, 1x128 / 128x128 "
       "scaling, promotion every 128 products and bf16 AdamW moments (DeepSeek-V3, arXiv 2412.19437, "
       "section 3.3)."},
      {"mxfp8",
       "Matches the BF16 baseline with e4m3 for every tensor and the block scale rounded up "
       "(Mishra et al. 2025, arXiv 2506.08027; OCP MX v1.0 for the format)."},
      {"fp8-unscaled",
       "Per-tensor scaling exists because FP8's range does not cover every tensor (Micikevicius et al. "
       "2022): without it, values above the format's max saturate and small values (gradients first) "
       "flush to zero. The cost depends on the network's magnitudes: expect a loss of accuracy in "
       "proportion to the underflow and saturation this run measures, possibly none."},
  };
  return p;
}

struct Summary : common::RecipeSummary {
  std::vector<double> accuracy, train_loss, seconds;
  double mean_acc = 0, std_acc = 0, mean_loss = 0, mean_seconds = 0;
};

std::vector<Summary> summarize(const std::vector<RecipeRuns>& all) {
  std::vector<Summary> out;
  for (const auto& rr : all) {
    Summary s;
    s.start(rr);
    for (const auto& run : rr.runs) {
      const fp8sim::EpochRow& e = run->epoch_rows.back();
      s.accuracy.push_back(100.0 * e.test_accuracy);
      s.train_loss.push_back(e.train_loss);
      double t = 0;
      for (const auto& row : run->epoch_rows) t += row.seconds;
      s.seconds.push_back(t);
      s.add(*run);
    }
    s.mean_acc = mean(s.accuracy);
    s.std_acc = stdev(s.accuracy);
    s.mean_loss = mean(s.train_loss);
    s.mean_seconds = mean(s.seconds);
    out.push_back(s);
  }
  return out;
}

const Summary* baseline(const std::vector<Summary>& s) { return common::find_baseline(s); }

using common::kRoleNames;
using common::kTensorNames;

// The --set line under the table, or "".
std::string set_note(const Options& o, const std::vector<Summary>& sums) {
  std::vector<std::pair<std::string, bool>> names;
  for (const auto& x : sums) names.emplace_back(x.name, x.changed_by_set);
  return common::set_note(o.sets, names);
}

std::string table(const Options& o, const std::vector<Summary>& sums, double wall) {
  const Summary* base = baseline(sums);
  std::ostringstream t;
  char line[256];
  std::snprintf(line, sizeof line, "%-20s %18s %9s %12s %11s %11s %9s\n", "recipe", "test acc % (+-sd)", "vs fp32",
                "train loss", "underflow%", "saturated%", "s/run");
  t << line << std::string(96, '-') << "\n";
  for (const auto& s : sums) {
    const std::string acc = fixed(s.mean_acc, 2) + " +- " + fixed(s.std_acc, 2);
    const std::string vs = base && &s != base ? signed_fixed(s.mean_acc - base->mean_acc, 2) : "-";
    std::snprintf(line, sizeof line, "%-20s %18s %9s %12s %11s %11s %9s", s.name.c_str(), acc.c_str(), vs.c_str(),
                  loss_text(s.mean_loss).c_str(), pct(s.quant.flushed, s.quant.nonzero).c_str(),
                  pct(s.quant.saturated, s.quant.count).c_str(), fixed(s.mean_seconds, 1).c_str());
    t << line;
    if (s.diverged())
      t << "  diverged (" << s.diverged_seeds.size() << " of " << s.accuracy.size() << " seeds)";
    t << "\n";
  }
  if (const std::string note = set_note(o, sums); !note.empty()) t << note << "\n";
  t << "wall time " << fixed(wall, 1) << " s\n";
  return t.str();
}

// Runs gnuplot on the curves; returns an empty string or why the plots are missing.
std::string plots(const Options& o, const std::vector<RecipeRuns>& all) {
  const fs::path dir = fs::path(o.out) / "plot-data";
  fs::create_directories(dir);
  std::string loss_plot, acc_plot;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto& rr = all[i];
    const std::string name = rr.recipe.name;
    // Training loss: the mean over seeds, smoothed over a window of 20 steps.
    std::vector<const std::vector<double>*> curves;
    for (const auto& run : rr.runs) curves.push_back(&run->step_loss);
    write_file((dir / (name + ".loss.dat")).string(),
               common::smoothed_mean_dat(curves, 20, "step mean_loss_over_seeds_smoothed_20"));
    std::ostringstream a;
    a << "# epoch mean_test_accuracy_percent\n";
    for (std::size_t e = 0; e < rr.runs.front()->epoch_rows.size(); ++e) {
      double acc = 0;
      for (const auto& run : rr.runs) acc += 100.0 * run->epoch_rows[e].test_accuracy / double(rr.runs.size());
      a << e + 1 << " " << csv_number(acc) << "\n";
    }
    write_file((dir / (name + ".accuracy.dat")).string(), a.str());
    const std::string sep = i ? ", \\\n     " : "";
    loss_plot += sep + "'plot-data/" + name + ".loss.dat' using 1:2 with lines lw 2 title '" + name + "'";
    acc_plot += sep + "'plot-data/" + name + ".accuracy.dat' using 1:2 with linespoints lw 2 title '" + name + "'";
  }
  std::ostringstream g;
  g << "# gnuplot script of the study's plots (run from the results directory)\n"
    << "set terminal pngcairo size 1000,640 noenhanced\nset grid\nset key outside right\n"
    << "set output 'loss.png.tmp'\nset title 'training loss (mean over seeds, 20-step moving average)'\n"
    << "set xlabel 'step'\nset ylabel 'cross-entropy'\nset logscale y\nplot " << loss_plot << "\n"
    << "unset logscale y\nset output 'accuracy.png.tmp'\nset title 'test accuracy (mean over seeds)'\n"
    << "set xlabel 'epoch'\nset ylabel 'accuracy (%)'\nset xtics 1\nplot " << acc_plot << "\n";
  write_file((fs::path(o.out) / "plots.gp").string(), g.str());
  return common::run_gnuplot(o.out, o.plots, {"loss.png", "accuracy.png"});
}

std::string verdict(const Summary& s, const Summary* base) {
  if (s.diverged()) return "diverged, no comparison";
  if (base && base->diverged()) return "the baseline diverged, no comparison";
  if (!base || &s == base) return "-";
  const double d = s.mean_acc - base->mean_acc;
  const double noise = 2.0 * std::sqrt(s.std_acc * s.std_acc + base->std_acc * base->std_acc);
  std::string v = signed_fixed(d, 2) + " points vs fp32; ";
  if (s.accuracy.size() < 2) return v + "one seed: no spread to compare with";
  return v + (std::fabs(d) <= noise ? "within" : "outside") + " twice the seed-to-seed spread (" +
         fixed(noise, 2) + ")";
}

}  // namespace

std::string prediction(const std::string& recipe_name) {
  const auto it = predictions().find(recipe_name);
  return it == predictions().end() ? "" : it->second;
}

std::string write_outputs(const Options& o, const std::vector<RecipeRuns>& all, double wall,
                          const std::string& model_description, const ThreadPlan& plan, std::string& plot_note) {
  const std::vector<Summary> sums = summarize(all);
  const Summary* base = baseline(sums);
  const fs::path out(o.out);

  // 1. CSV files.
  std::ostringstream steps, epochs, stats;
  steps << "recipe,seed,step,epoch,loss\n";
  epochs << "recipe,seed,epoch,train_loss,test_loss,test_accuracy\n";
  stats << "recipe,seed,step,layer,role,operand,tensor,amax,underflow_pct,saturated_pct,sqnr_db,elements\n";
  for (const auto& rr : all)
    for (const auto& run : rr.runs) {
      const std::string key = rr.recipe.name + "," + std::to_string(run->config().seed) + ",";
      const std::int64_t per_epoch = run->steps_per_epoch();
      for (std::size_t s = 0; s < run->step_loss.size(); ++s)
        steps << key << s + 1 << "," << std::int64_t(s) / per_epoch + 1 << "," << csv_number(run->step_loss[s]) << "\n";
      for (const auto& e : run->epoch_rows)
        epochs << key << e.epoch << "," << csv_number(e.train_loss) << "," << csv_number(e.test_loss) << ","
               << csv_number(e.test_accuracy) << "\n";
      for (const auto& r : run->stats_rows)
        stats << key << r.step << "," << r.layer << "," << kRoleNames[r.role] << "," << (r.operand ? "b" : "a") << ","
              << kTensorNames[r.role][r.operand] << "," << csv_number(r.stats.amax) << ","
              << csv_number(100 * r.stats.flushed_fraction()) << "," << csv_number(100 * r.stats.saturated_fraction())
              << "," << csv_number(r.stats.sqnr_db()) << "," << r.stats.count << "\n";
    }
  write_file((out / "steps.csv").string(), steps.str());
  write_file((out / "epochs.csv").string(), epochs.str());
  write_file((out / "quant_stats.csv").string(), stats.str());

  // 2. JSON summary.
  // Numbers with 10 significant digits; a non-finite one is a string (fp8emu/json.hpp),
  // null marks a value that does not exist (no baseline, no elements counted).
  const auto num = [](double v) { return fp8emu::json::Value::number(v, 10); };
  using fp8emu::json::Value;
  Value j = Value::object();
  j.set("study", "fashion-mnist").set("model", o.model).set("network", model_description).set("epochs", o.epochs);
  Value seeds = Value::array();
  for (int s = 0; s < o.seeds; ++s) seeds.push(o.first_seed + std::uint64_t(s));
  j.set("seeds", std::move(seeds));
  j.set("batch", o.batch)
      .set("optimizer", o.optimizer.kind == fp8sim::OptimizerKind::adamw ? "adamw" : "sgd")
      .set("lr", num(o.optimizer.lr))
      .set("train_limit", o.train_limit)
      .set("test_limit", o.test_limit)
      .set("wall_seconds", num(wall))
      .set("threads", plan.threads)
      .set("runs_at_once", plan.parallel)
      .set("threads_per_run", plan.per_run)
      .set("cpus", plan.cpus);
  Value set = Value::array();
  for (const std::string& k : o.sets) set.push(k);
  j.set("set", std::move(set));
  Value recipes = Value::array();
  for (std::size_t i = 0; i < sums.size(); ++i) {
    const Summary& s = sums[i];
    Value r = Value::object();
    r.set("name", s.name).set("description", s.description);
    Value acc = Value::array();
    for (double a : s.accuracy) acc.push(num(a));
    r.set("test_accuracy_pct", std::move(acc))
        .set("mean", num(s.mean_acc))
        .set("std", num(s.std_acc))
        .set("vs_fp32", base ? num(s.mean_acc - base->mean_acc) : Value())
        .set("final_train_loss", num(s.mean_loss))
        .set("underflow_pct", s.quant.nonzero ? num(100 * s.quant.flushed_fraction()) : Value())
        .set("saturated_pct", s.quant.count ? num(100 * s.quant.saturated_fraction()) : Value())
        .set("sqnr_db", num(s.quant.sqnr_db()))
        .set("seconds_per_run", num(s.mean_seconds))
        .set("diverged", s.diverged());
    Value div = Value::array();
    for (std::size_t k = 0; k < s.diverged_seeds.size(); ++k)
      div.push(Value::object().set("seed", s.diverged_seeds[k]).set("why", s.diverged_why[k]));
    r.set("diverged_seeds", std::move(div))
        .set("changed_by_set", s.changed_by_set)
        .set("recipe", fp8sim::recipe_text(all[i].recipe));
    recipes.push(std::move(r));
  }
  j.set("recipes", std::move(recipes));
  write_file((out / "summary.json").string(), j.dump());

  // 3. Plots.
  plot_note = plots(o, all);

  // 4. Report.
  const std::string tab = table(o, sums, wall);
  std::ostringstream r;
  r << "# Fashion-MNIST precision study\n\n"
    << "Network: " << model_description << " (`--model " << o.model << "`). " << o.epochs << " epochs, "
    << o.seeds << " seeds (" << o.first_seed << ".." << o.first_seed + std::uint64_t(o.seeds) - 1 << "), batch "
    << o.batch << ", " << (o.optimizer.kind == fp8sim::OptimizerKind::adamw ? "AdamW" : "SGD with momentum")
    << " lr " << o.optimizer.lr << ". Training set " << (o.train_limit ? std::to_string(o.train_limit) : "60000")
    << " images, test set " << (o.test_limit ? std::to_string(o.test_limit) : "10000")
    << " images. Every GEMM (forward, input gradient, weight gradient) runs through fp8emu with its operands "
       "quantized as the recipe says. Threads: "
    << plan.threads << " (" << plan.parallel << " runs at once, " << plan.per_run << " per run; " << plan.cpus
    << " CPUs); the numbers do not depend on them.\n\n"
    << "## Results\n\n```\n" << tab << "```\n\n"
    << "- test acc: accuracy on the test set after the last epoch, mean +- sample standard deviation over seeds.\n"
    << "- vs fp32: difference of the means, in percentage points.\n"
    << "- train loss: mean cross-entropy of the last epoch's batches.\n"
    << "- underflow%: nonzero values that quantized to zero, over every quantized GEMM operand of every step.\n"
    << "- saturated%: values whose scaled magnitude exceeded the format's largest finite value.\n"
    << "- s/run: wall time of one run (training and evaluation).\n"
    << "- diverged: a run whose batch or test loss became non-finite, or whose mean training loss in an epoch "
       "exceeded "
    << fixed(fp8sim::kDivergenceFactor, 0) << " times the first epoch's; its numbers are not a measurement of the recipe.\n"
    << (o.sets.empty() ? "" : "- --set: changes every recipe but the fp32 baseline; the line under the table says which.\n")
    << "\n"
    << "## Prediction and measurement, per recipe\n\n";
  for (std::size_t i = 0; i < sums.size(); ++i) {
    const Summary& s = sums[i];
    const std::string p = prediction(s.name);
    r << "### " << s.name << "\n\n" << s.description << ".\n\n"
      << "- Literature: " << (p.empty() ? "none (a custom recipe)." : p) << "\n"
      << "- Measured: " << fixed(s.mean_acc, 2) << "% +- " << fixed(s.std_acc, 2) << " (seeds:";
    for (double a : s.accuracy) r << " " << fixed(a, 2);
    r << ")" << (&s == base ? " (the baseline)" : "; " + verdict(s, base)) << ". ";
    r << s.notes();
    if (s.quant.count)
      r << "Underflow " << pct(s.quant.flushed, s.quant.nonzero) << "%, saturated "
        << pct(s.quant.saturated, s.quant.count) << "%, SQNR " << fixed(s.quant.sqnr_db(), 1)
        << " dB over all quantized operands.\n\n";
    else
      r << "No operand is quantized.\n\n";
  }
  r << "## Files\n\n"
    << "- `epochs.csv`: per run and epoch, training loss, test loss and accuracy.\n"
    << "- `steps.csv`: every step's batch loss.\n"
    << "- `quant_stats.csv`: per quantized operand (layer, GEMM role, operand), merged over " << o.log_every
    << " steps: amax, underflow %, saturated %, SQNR.\n"
    << "- `summary.json`: this table, with every recipe in full.\n"
    << "- `loss.png`, `accuracy.png`: the curves (gnuplot script `plots.gp`, data in `plot-data/`).\n";
  if (!plot_note.empty()) r << "\nPlots: " << plot_note << ".\n";
  write_file((out / "report.md").string(), r.str());
  return tab;
}

}  // namespace study
