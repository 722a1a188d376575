// The language-model study's outputs: results table, CSV, JSON, gnuplot plots and the
// markdown report with the literature's predictions.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <numbers>
#include <sstream>

#include "fp8emu/json.hpp"
#include "lm/study.hpp"

namespace lm {
namespace {

namespace fs = std::filesystem;
using common::csv_number;
using common::fixed;
using common::kBaseline;
using common::kRoleNames;
using common::kTensorNames;
using common::loss_text;
using common::mean;
using common::pct;
using common::signed_fixed;
using common::stdev;
using common::write_file;

// What the sources say of each named recipe (docs/lm-study.md repeats them with the full
// references; docs/references.md, "Training recipes").
const std::map<std::string, std::string>& predictions() {
  static const std::map<std::string, std::string> p = {
      {"fp32",
       "Baseline. nanoGPT's character-level Shakespeare model of this size (4 layers, 4 heads, 128 wide, "
       "context 64, batch 12, 2000 iterations) reaches a validation loss of about 1.88 nats on that text "
       "(github.com/karpathy/nanoGPT, README); this text and its vocabulary differ, so the number is a scale, "
       "not a target."},
      {"bf16",
       "Matches float32: bfloat16 GEMM operands with float32 accumulation and master weights train to float32 "
       "quality without changes (Kalamkar et al. 2019, arXiv 1905.12322)."},
      {"fp8-hybrid-delayed",
       "Matches the 16-bit baseline: GPT models of 126M to 175B parameters trained with e4m3 forward, e5m2 "
       "gradients and per-tensor scaling reach perplexities 19.24 (126M), 10.66 (1.3B) and 6.68 (175B) against "
       "19.14, 10.62 and 6.65 in 16 bits, a loss about 0.2% higher (Micikevicius et al. 2022, arXiv 2209.05433). "
       "Delayed scaling from an amax history is Transformer Engine's DelayedScaling recipe; the first step "
       "runs with scale 1."},
      {"fp8-hybrid-current",
       "Matches the baseline as delayed scaling does (Micikevicius et al. 2022); the scale follows each "
       "tensor's own amax (Transformer Engine, Float8CurrentScaling)."},
      {"fp8-e4m3-blockwise",
       "Relative loss error below 0.25% against the BF16 baseline with e4m3 on every tensor, 1x128 activation "
       "and 128x128 weight scaling and promotion to float32 every 128 products (DeepSeek-V3, arXiv 2412.19437, "
       "section 3.3)."},
      {"mxfp8",
       "Matches BF16 with e4m3 for every tensor and the block scale rounded up, for models up to 8B "
       "parameters (Mishra et al. 2025, arXiv 2506.08027; OCP MX v1.0 for the format)."},
      {"fp8-e5m2",
       "No published claim of parity: the FP8 formats paper recommends e4m3 for weights and activations and "
       "keeps e5m2 for gradients, whose range they need (Micikevicius et al. 2022, arXiv 2209.05433). e5m2 "
       "forward has one significand bit fewer than e4m3, so expect a loss no lower than the hybrid's."},
      {"nvfp4",
       "Close to FP8: a 12B model trained on 10T tokens with NVFP4 (e2m1, 16-element blocks with e4m3 scales "
       "and a float32 tensor scale, 16x16 weight blocks, stochastic rounding of gradients, a random Hadamard "
       "transform on the weight-gradient inputs, some layers in BF16) follows the FP8 baseline's loss "
       "closely and scores 62.58% on MMLU-Pro against FP8's 62.62% (NVIDIA, arXiv 2509.25149)."},
      {"mxfp6",
       "Minimal loss against FP32: the MX paper trains generative language models with sub-8-bit weights, "
       "activations and gradients without changing the training recipe (Rouhani et al. 2023, arXiv "
       "2310.10537)."},
      {"mxfp4",
       "A loss penalty is expected: MXFP4 in place of BF16 for every GEMM operand degrades the model "
       "noticeably unless stochastic rounding and a random Hadamard transform are added (Tseng et al. 2025, "
       "arXiv 2502.20586); the MX paper pairs MXFP4 weights with MXFP6 activations and gradients "
       "(Rouhani et al. 2023, arXiv 2310.10537)."},
      {"fp16-accumulate",
       "FP8 operands with a float16 accumulator lose small products once the sum grows (no published training "
       "result with this accumulator; DeepSeek-V3 promotes to float32 every 128 products because a narrow "
       "accumulator costs accuracy, arXiv 2412.19437, section 3.3)."},
      {"fp8-unscaled",
       "Per-tensor scaling exists because FP8's range does not cover every tensor (Micikevicius et al. 2022): "
       "without it values above the format's max saturate and small values, gradients first, flush to zero. "
       "Expect a cost in proportion to the underflow and saturation measured here."},
  };
  return p;
}

struct Summary : common::RecipeSummary {
  std::vector<double> val_loss, seconds, clipped;
  double mean_loss = 0, std_loss = 0, mean_seconds = 0, mean_clipped = 0;
};

std::vector<Summary> summarize(const std::vector<RecipeRuns>& all) {
  std::vector<Summary> out;
  for (const auto& rr : all) {
    Summary s;
    s.start(rr);
    for (const auto& run : rr.runs) {
      s.val_loss.push_back(run->eval_rows.back().val_loss);
      s.seconds.push_back(run->eval_rows.back().seconds);
      s.clipped.push_back(double(run->clipped));
      s.add(*run);
    }
    s.mean_loss = mean(s.val_loss);
    s.std_loss = stdev(s.val_loss);
    s.mean_seconds = mean(s.seconds);
    s.mean_clipped = mean(s.clipped);
    out.push_back(s);
  }
  return out;
}

const Summary* baseline(const std::vector<Summary>& s) { return common::find_baseline(s); }

double bits(double nats) { return nats / std::numbers::ln2; }

// The difference from the baseline in percent of the baseline's loss.
double percent(const Summary& s, const Summary& base) { return 100.0 * (s.mean_loss - base.mean_loss) / base.mean_loss; }

// The rule of "within the seed spread": |difference of the means| <= 2 x the larger of the
// two recipes' sample standard deviations over seeds.
double spread_limit(const Summary& s, const Summary& base) { return 2.0 * std::max(s.std_loss, base.std_loss); }

// "within", "outside", or why there is no comparison.
std::string spread_word(const Summary& s, const Summary* base) {
  if (!base || &s == base) return "-";
  if (s.diverged() || base->diverged()) return "diverged";
  if (s.val_loss.size() < 2 || base->val_loss.size() < 2) return "1 seed";
  return std::fabs(s.mean_loss - base->mean_loss) <= spread_limit(s, *base) ? "within" : "outside";
}

std::string amax_text(const fp8sim::QuantStats& q) {
  if (!q.uses) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", q.amax);
  return b;
}

// `s` without trailing blanks.
std::string trimmed(std::string s) {
  s.erase(s.find_last_not_of(' ') + 1);
  return s;
}

// The results table; with `wall` >= 0 (printed), with the seconds per run and the wall
// time, else (report.md) without: the files depend on the settings and the data only.
std::string table(const Options& o, const std::vector<Summary>& sums, double wall) {
  const Summary* base = baseline(sums);
  const bool timed = wall >= 0;
  std::ostringstream t;
  char line[320];
  std::snprintf(line, sizeof line, "%-20s %17s %7s %9s %8s %9s %10s %10s %8s %8s", "recipe", "val loss (+-sd)",
                "bpc", "vs fp32%", "spread", "max amax", "underflow%", "saturated%", "clipped", timed ? "s/run" : "");
  t << trimmed(line) << "\n" << std::string(timed ? 116 : 107, '-') << "\n";
  for (const auto& s : sums) {
    const std::string loss = loss_text(s.mean_loss) + " +- " + fixed(s.std_loss, 4);
    const std::string vs = base && &s != base ? signed_fixed(percent(s, *base), 2) : "-";
    std::snprintf(line, sizeof line, "%-20s %17s %7s %9s %8s %9s %10s %10s %8s %8s", s.name.c_str(), loss.c_str(),
                  fixed(bits(s.mean_loss), 3).c_str(), vs.c_str(), spread_word(s, base).c_str(),
                  amax_text(s.quant).c_str(), pct(s.quant.flushed, s.quant.nonzero).c_str(),
                  pct(s.quant.saturated, s.quant.count).c_str(), fixed(s.mean_clipped, 1).c_str(),
                  timed ? fixed(s.mean_seconds, 1).c_str() : "");
    t << trimmed(line);
    if (s.diverged()) t << "  diverged (" << s.diverged_seeds.size() << " of " << s.val_loss.size() << " seeds)";
    t << "\n";
  }
  std::vector<std::pair<std::string, bool>> names;
  for (const auto& x : sums) names.emplace_back(x.name, x.changed_by_set);
  if (const std::string note = common::set_note(o.sets, names); !note.empty()) t << note << "\n";
  if (timed) t << "wall time " << fixed(wall, 1) << " s\n";
  return t.str();
}

// The recipe whose per-layer amax is drawn: the first one in the study that quantizes to
// fewer than 16 bits and has statistics, and the reference beside it: fp32 when it has
// statistics (it quantizes nothing, so it has none), else bf16 (its amax is the
// unquantized tensor's).
const RecipeRuns* amax_recipe(const std::vector<RecipeRuns>& all, bool reference) {
  for (const auto& rr : all) {
    const bool ref = rr.recipe.name == kBaseline || rr.recipe.name == "bf16";
    if (ref != reference || rr.runs.empty()) continue;
    for (const auto& row : rr.runs.front()->stats_rows)
      if (row.role == 0 && row.operand == 0) return &rr;
  }
  return nullptr;
}

// The fprop input operand's amax per logged step and layer of the first seed: "step a0 a1
// ...", NaN where a layer has no row (gnuplot leaves it out).
std::string amax_dat(const RecipeRuns& rr, const std::vector<std::string>& names) {
  std::map<std::int64_t, std::vector<double>> rows;
  for (const auto& r : rr.runs.front()->stats_rows)
    if (r.role == 0 && r.operand == 0) {
      auto& v = rows[r.step];
      v.resize(names.size(), std::nan(""));
      v[std::size_t(r.layer)] = r.stats.amax;
    }
  std::ostringstream s;
  s << "# step";
  for (const auto& n : names) s << " " << n;
  s << "\n";
  for (const auto& [step, v] : rows) {
    s << step;
    for (double a : v) s << " " << (std::isnan(a) ? std::string("NaN") : csv_number(a));
    s << "\n";
  }
  return s.str();
}

// Writes the plot data and plots.gp, runs gnuplot; returns "" or why plots are missing.
std::string plots(const Options& o, const std::vector<RecipeRuns>& all, std::string& amax_note) {
  const fs::path dir = fs::path(o.out) / "plot-data";
  fs::create_directories(dir);
  std::string val_plot, train_plot;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto& rr = all[i];
    const std::string name = rr.recipe.name;
    std::vector<const std::vector<double>*> curves;
    for (const auto& run : rr.runs) curves.push_back(&run->step_loss);
    write_file((dir / (name + ".train.dat")).string(),
               common::smoothed_mean_dat(curves, 20, "step mean_loss_over_seeds_smoothed_20"));
    std::ostringstream v;
    v << "# iteration mean_val_loss_over_seeds\n";
    for (std::size_t e = 0; e < rr.runs.front()->eval_rows.size(); ++e) {
      double loss = 0;
      for (const auto& run : rr.runs) loss += run->eval_rows[e].val_loss / double(rr.runs.size());
      v << rr.runs.front()->eval_rows[e].iteration << " " << csv_number(loss) << "\n";
    }
    write_file((dir / (name + ".val.dat")).string(), v.str());
    const std::string sep = i ? ", \\\n     " : "";
    val_plot += sep + "'plot-data/" + name + ".val.dat' using 1:2 with linespoints lw 2 title '" + name + "'";
    train_plot += sep + "'plot-data/" + name + ".train.dat' using 1:2 with lines lw 2 title '" + name + "'";
  }
  std::ostringstream g;
  g << "# gnuplot script of the study's plots (run from the results directory)\n"
    << "set terminal pngcairo size 1000,640 noenhanced\nset grid\nset key outside right\n"
    << "set output 'val_loss.png.tmp'\nset title 'validation loss (mean over seeds)'\n"
    << "set xlabel 'iteration'\nset ylabel 'cross-entropy (nats per character)'\nplot " << val_plot << "\n"
    << "set output 'train_loss.png.tmp'\nset title 'training loss (mean over seeds, 20-step moving average)'\n"
    << "set xlabel 'iteration'\nset logscale y\nplot " << train_plot << "\nunset logscale y\n";
  std::vector<std::string> pngs = {"val_loss.png", "train_loss.png"};
  const RecipeRuns* chosen = amax_recipe(all, false);
  const RecipeRuns* ref = amax_recipe(all, true);
  if (chosen || ref) {
    const std::vector<std::string> names = (chosen ? chosen : ref)->runs.front()->model().gemm_names();
    std::vector<const RecipeRuns*> panels;
    if (ref) panels.push_back(ref);
    if (chosen) panels.push_back(chosen);
    g << "set terminal pngcairo size " << 700 * panels.size() << ",700 noenhanced\n"
      << "set output 'layer_amax.png.tmp'\nset multiplot layout 1," << panels.size() << "\n"
      << "set logscale y\nset key outside bottom horizontal font ',8'\nset xlabel 'step'\nset ylabel 'amax'\n";
    for (const RecipeRuns* p : panels) {
      const std::string file = "plot-data/" + p->recipe.name + ".amax.dat";
      write_file((fs::path(o.out) / file).string(), amax_dat(*p, names));
      g << "set title '" << p->recipe.name << ": amax of the forward input of each GEMM layer (seed "
        << p->runs.front()->config().seed << ")'\nplot ";
      // The layers with statistics (the attention products have none unless under the recipe).
      std::vector<bool> has(names.size(), false);
      for (const auto& row : p->runs.front()->stats_rows)
        if (row.role == 0 && row.operand == 0) has[std::size_t(row.layer)] = true;
      bool first = true;
      for (std::size_t l = 0; l < names.size(); ++l)
        if (has[l]) {
          g << (first ? "" : ", \\\n     ") << "'" << file << "' using 1:" << l + 2 << " with lines title '"
            << names[l] << "'";
          first = false;
        }
      g << "\n";
    }
    g << "unset multiplot\n";
    pngs.push_back("layer_amax.png");
    amax_note = std::string("`layer_amax.png`: the amax of each GEMM layer's forward input, per logged step, ") +
                (ref ? "for " + ref->recipe.name : std::string()) + (ref && chosen ? " and " : "") +
                (chosen ? "for " + chosen->recipe.name : std::string()) +
                (ref && ref->recipe.name != kBaseline
                     ? " (fp32 quantizes nothing and keeps no statistics; bf16's amax is the unquantized tensor's)"
                     : "") +
                ".";
  } else {
    amax_note = "No per-layer amax picture: no recipe of this study kept statistics of a forward input.";
    std::error_code ec;
    fs::remove(fs::path(o.out) / "layer_amax.png", ec);  // an earlier study's picture would mislead
  }
  write_file((fs::path(o.out) / "plots.gp").string(), g.str());
  return common::run_gnuplot(o.out, o.plots, pngs);
}

std::string measured(const Summary& s, const Summary* base) {
  std::ostringstream m;
  m << fixed(s.mean_loss, 4) << " +- " << fixed(s.std_loss, 4) << " nats (" << fixed(bits(s.mean_loss), 3)
    << " bits per character; seeds:";
  for (double v : s.val_loss) m << " " << fixed(v, 4);
  m << ")";
  if (!base || &s == base) return m.str() + (base ? " (the baseline)" : "");
  if (s.diverged()) return m.str() + "; diverged, no comparison";
  if (base->diverged()) return m.str() + "; the baseline diverged, no comparison";
  m << "; " << signed_fixed(percent(s, *base), 2) << "% against fp32 (" << signed_fixed(s.mean_loss - base->mean_loss, 4)
    << " nats)";
  const std::string w = spread_word(s, base);
  if (w == "1 seed") return m.str() + "; one seed: no spread to compare with";
  m << ", " << w << " the seed spread (the limit, 2 x the larger standard deviation, is "
    << fixed(spread_limit(s, *base), 4) << " nats)";
  return m.str();
}

}  // namespace

std::string prediction(const std::string& recipe_name) {
  const auto it = predictions().find(recipe_name);
  return it == predictions().end() ? "" : it->second;
}

std::string write_outputs(const Options& o, const std::vector<RecipeRuns>& all, double wall,
                          const std::string& model_description, const Text& text, const common::ThreadPlan& plan,
                          std::string& plot_note) {
  const std::vector<Summary> sums = summarize(all);
  const Summary* base = baseline(sums);
  const fs::path out(o.out);
  const std::vector<std::string> names = all.front().runs.front()->model().gemm_names();

  // 1. CSV files.
  std::ostringstream steps, evals, stats;
  steps << "recipe,seed,step,loss,grad_norm,clipped,lr,comm_values,comm_underflow,comm_overflow,comm_mu\n";
  evals << "recipe,seed,iteration,train_loss,val_loss,val_bits_per_char\n";
  stats << "recipe,seed,step,layer,name,role,operand,tensor,amax,flushed,saturated,underflow_pct,saturated_pct,"
           "sqnr_db,elements\n";
  for (const auto& rr : all)
    for (const auto& run : rr.runs) {
      const fp8sim::LmConfig& c = run->config();
      const std::string key = rr.recipe.name + "," + std::to_string(c.seed) + ",";
      for (std::size_t s = 0; s < run->step_loss.size(); ++s) {
        steps << key << s + 1 << "," << csv_number(run->step_loss[s]) << "," << csv_number(run->grad_norm[s]) << ","
              << (c.grad_clip > 0 && run->grad_norm[s] > double(c.grad_clip) ? 1 : 0) << ","
              << csv_number(c.learning_rate(std::int64_t(s)));
        const fp8sim::CommStats cs = s < run->comm_stats.size() ? run->comm_stats[s] : fp8sim::CommStats{};
        steps << "," << cs.quantized << "," << cs.underflow << "," << cs.overflow << "," << csv_number(cs.mu) << "\n";
      }
      for (const auto& e : run->eval_rows)
        evals << key << e.iteration << "," << csv_number(e.train_loss) << "," << csv_number(e.val_loss) << ","
              << csv_number(bits(e.val_loss)) << "\n";
      for (const auto& r : run->stats_rows)
        stats << key << r.step << "," << r.layer << "," << names[std::size_t(r.layer)] << "," << kRoleNames[r.role]
              << "," << (r.operand ? "b" : "a") << "," << kTensorNames[r.role][r.operand] << ","
              << csv_number(r.stats.amax) << "," << r.stats.flushed << "," << r.stats.saturated << ","
              << csv_number(100 * r.stats.flushed_fraction()) << "," << csv_number(100 * r.stats.saturated_fraction())
              << "," << csv_number(r.stats.sqnr_db()) << "," << r.stats.count << "\n";
    }
  write_file((out / "steps.csv").string(), steps.str());
  write_file((out / "evals.csv").string(), evals.str());
  write_file((out / "layer_stats.csv").string(), stats.str());

  // 2. JSON summary (numbers with 10 significant digits; a non-finite one is a string).
  const auto num = [](double v) { return fp8emu::json::Value::number(v, 10); };
  using fp8emu::json::Value;
  Value j = Value::object();
  j.set("study", "lm").set("model", model_description).set("data", text.path).set("bytes", text.bytes);
  j.set("characters", text.chars()).set("vocabulary", std::int64_t(text.vocab.size()));
  j.set("train_characters", std::int64_t(text.split.train.size()))
      .set("val_characters", std::int64_t(text.split.val.size()));
  Value seeds = Value::array();
  for (int s = 0; s < o.seeds; ++s) seeds.push(o.first_seed + std::uint64_t(s));
  j.set("seeds", std::move(seeds));
  j.set("iterations", o.iterations)
      .set("full", o.full)
      .set("batch", o.batch)
      .set("lr", num(o.lr))
      .set("min_lr", num(o.min_lr))
      .set("warmup", o.warmup)
      .set("weight_decay", num(o.weight_decay))
      .set("grad_clip", num(o.grad_clip))
      .set("eval_every", o.eval_every)
      .set("eval_batches", o.eval_batches)
      .set("attention_recipe", o.model.attention_recipe)
      .set("micro_batches", o.micro_batches)
      .set("ranks", o.ranks);
  Value set = Value::array();
  for (const std::string& k : o.sets) set.push(k);
  j.set("set", std::move(set));
  Value recipes = Value::array();
  for (std::size_t i = 0; i < sums.size(); ++i) {
    const Summary& s = sums[i];
    Value r = Value::object();
    r.set("name", s.name).set("description", s.description);
    Value losses = Value::array();
    for (double v : s.val_loss) losses.push(num(v));
    const bool compare = base && &s != base;
    r.set("val_loss", std::move(losses))
        .set("mean", num(s.mean_loss))
        .set("std", num(s.std_loss))
        .set("bits_per_char", num(bits(s.mean_loss)))
        .set("vs_fp32_pct", compare ? num(percent(s, *base)) : Value())
        .set("within_seed_spread", compare && spread_word(s, base) == "within"  ? Value(true)
                                   : compare && spread_word(s, base) == "outside" ? Value(false)
                                                                                 : Value())
        .set("max_amax", s.quant.uses ? num(s.quant.amax) : Value())
        .set("underflow_pct", s.quant.nonzero ? num(100 * s.quant.flushed_fraction()) : Value())
        .set("saturated_pct", s.quant.count ? num(100 * s.quant.saturated_fraction()) : Value())
        .set("sqnr_db", s.quant.uses ? num(s.quant.sqnr_db()) : Value())
        .set("clipped_steps_per_run", num(s.mean_clipped))
        .set("diverged", s.diverged());
    Value div = Value::array();
    for (std::size_t k = 0; k < s.diverged_seeds.size(); ++k)
      div.push(Value::object().set("seed", s.diverged_seeds[k]).set("why", s.diverged_why[k]));
    r.set("diverged_seeds", std::move(div))
        .set("changed_by_set", s.changed_by_set)
        .set("prediction", prediction(s.name))
        .set("recipe", fp8sim::recipe_text(all[i].recipe));
    recipes.push(std::move(r));
  }
  j.set("recipes", std::move(recipes));
  write_file((out / "summary.json").string(), j.dump());

  // 2b. Wall times and the thread plan, apart: every other file depends on the settings and
  // the data only (a sweep's runs are compared byte for byte).
  Value tj = Value::object();
  tj.set("wall_seconds", num(wall))
      .set("threads", plan.threads)
      .set("runs_at_once", plan.parallel)
      .set("threads_per_run", plan.per_run)
      .set("cpus", plan.cpus);
  Value runs = Value::array();
  for (const auto& rr : all)
    for (const auto& run : rr.runs)
      runs.push(Value::object()
                    .set("recipe", rr.recipe.name)
                    .set("seed", run->config().seed)
                    .set("seconds", num(run->eval_rows.back().seconds)));
  tj.set("runs", std::move(runs));
  write_file((out / kTimingsFile).string(), tj.dump());

  // 3. Plots.
  std::string amax_note;
  plot_note = plots(o, all, amax_note);

  // 4. Report.
  std::ostringstream r;
  r << "# Language-model precision study\n\n"
    << "Model: " << model_description << (o.model.attention_recipe ? ", attention products under the recipe" : "")
    << ". Data: " << text.path << ", " << text.bytes << " bytes, " << text.chars() << " characters, "
    << text.vocab.size() << " distinct; the first " << text.split.train.size() << " characters train, the last "
    << text.split.val.size() << " validate. " << o.iterations << " iterations of batch " << o.batch
    << " per run, AdamW lr " << o.lr << " (warmup " << o.warmup << ", cosine to " << o.min_lr << "), weight decay "
    << o.weight_decay << ", gradient clipping at " << o.grad_clip << "; " << common::count_text(o.seeds, "seed") << " (" << o.first_seed
    << ".." << o.first_seed + std::uint64_t(o.seeds) - 1 << "); validation every " << o.eval_every
    << " iterations on " << o.eval_batches * o.batch << " fixed windows"
    << (o.full ? " (--full)" : "") << "."
    << (o.micro_batches > 1 || o.ranks > 1
            ? " Data-parallel: each step's batch in " + std::to_string(o.micro_batches) +
                  (o.micro_batches == 1 ? " micro-batch" : " micro-batches") +
                  " on " + common::count_text(int(o.ranks), "rank") +
                  ", the gradients summed in a fixed order and communicated as each recipe's `comm` says "
                  "(docs/simulator.md, \"Data-parallel training\")."
            : std::string())
    << " Every Linear GEMM (forward, input gradient, weight gradient) runs "
    << "through fp8emu with its operands quantized as the recipe says. The numbers do not depend on the "
       "threads; the wall times and the thread plan are in `" << kTimingsFile << "`.\n\n"
    << "## Results\n\n```\n" << table(o, sums, -1) << "```\n\n"
    << "- val loss: validation cross-entropy after the last iteration, in nats per character, mean +- sample "
       "standard deviation over seeds; bpc: the same in bits per character (nats / ln 2).\n"
    << "- vs fp32%: difference of the means in percent of fp32's loss (positive: worse).\n"
    << "- spread: `within` when |difference of the means| <= 2 x the larger of the two recipes' standard "
       "deviations over seeds, `outside` otherwise. With 2 or 3 seeds the standard deviation is itself "
       "uncertain: `outside` says the difference is larger than the seeds' own scatter, not that it is "
       "significant in a statistical test.\n"
    << "- max amax: the largest |x| of any quantized GEMM operand over training; underflow%: nonzero values "
       "that quantized to zero; saturated%: values whose scaled magnitude exceeded the format's largest finite "
       "value; over every quantized operand of every step (`-`: nothing is quantized).\n"
    << "- clipped: steps per run whose gradient norm exceeded the clipping threshold.\n"
    << "- diverged: a run whose loss or gradient norm became non-finite; its numbers are not a measurement "
       "of the recipe.\n"
    << (o.sets.empty() ? "" : "- --set: changes every recipe but the fp32 baseline; the line under the table says which.\n")
    << "\n## Prediction and measurement, per recipe\n\n"
    << "The literature's results come from models of hundreds of millions to hundreds of billions of "
       "parameters trained on billions to trillions of tokens; each run here sees " << o.iterations * o.batch * o.model.context
    << " characters. A difference here that the papers do not see, or the reverse, is a fact about this "
       "scale, and is reported as measured.\n\n";
  for (std::size_t i = 0; i < sums.size(); ++i) {
    const Summary& s = sums[i];
    const std::string p = prediction(s.name);
    r << "### " << s.name << "\n\n" << s.description << ".\n\n"
      << "- Literature: " << (p.empty() ? "none (a custom recipe)." : p) << "\n"
      << "- Measured: " << measured(s, base) << ". ";
    r << s.notes();
    if (s.quant.uses)
      r << "Max amax " << amax_text(s.quant) << ", underflow " << pct(s.quant.flushed, s.quant.nonzero)
        << "%, saturated " << pct(s.quant.saturated, s.quant.count) << "%, SQNR " << fixed(s.quant.sqnr_db(), 1)
        << " dB over all quantized operands; " << fixed(s.mean_clipped, 1) << " clipped steps per run.\n\n";
    else
      r << "No operand is quantized; " << fixed(s.mean_clipped, 1) << " clipped steps per run.\n\n";
  }
  r << "## Files\n\n"
    << "- `evals.csv`: per run and evaluation, the training loss since the previous evaluation and the "
       "validation loss (nats, and bits per character).\n"
    << "- `steps.csv`: every step's batch loss, gradient norm before clipping, whether it was clipped, and "
       "the learning rate; and the gradient communication of data-parallel training (docs/simulator.md, "
       "\"Data-parallel training\"): the values quantized in the all-reduce's ring, those that underflowed "
       "to zero and overflowed (saturated), and FP8-LM's automatic scaling factor mu (0, 0, 0 and 1 for "
       "float32 communication or one rank).\n"
    << "- `layer_stats.csv`: per GEMM layer (index and name), role and operand, merged over " << o.log_every
    << " steps: amax, flushed and saturated counts and percentages, SQNR, elements.\n"
    << "- `summary.json`: this table, with every recipe in full and its prediction.\n"
    << "- `" << kTimingsFile << "`: the wall time, the thread plan and each run's seconds.\n"
    << "- `val_loss.png`, `train_loss.png`: the curves (gnuplot script `plots.gp`, data in `plot-data/`).\n"
    << "- " << amax_note << "\n";
  if (!plot_note.empty()) r << "\nPlots: " << plot_note << ".\n";
  write_file((out / "report.md").string(), r.str());
  return table(o, sums, wall);
}

}  // namespace lm
