#include "findings/lm_compare.hpp"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "common/study_common.hpp"
#include "lm/text.hpp"

namespace findings {

using common::UsageError;

LmVariant lm_variant(const std::string& label, const std::string& base,
                     const std::vector<std::pair<std::string, std::string>>& keys,
                     const std::string& what) {
  LmVariant v;
  v.label = label;
  v.recipe = fp8sim::named_recipe(base);
  for (const auto& [k, val] : keys) fp8sim::set_recipe_key(v.recipe, k, val);
  v.recipe.name = label;
  v.what = what;
  fp8sim::check_recipe(v.recipe);
  return v;
}

fp8sim::LmConfig LmSettings::config() const {
  fp8sim::LmConfig c;
  c.model.layers = layers;
  c.model.heads = heads;
  c.model.width = width;
  c.model.context = context;
  c.batch = batch;
  c.iterations = iterations;
  c.warmup = std::min<std::int64_t>(100, iterations / 10);
  c.eval_every = std::max<std::int64_t>(1, (iterations + 4) / 5);
  c.eval_batches = eval_batches;
  return c;
}

namespace {

OptionSetter set_size(std::int64_t& x, std::int64_t hi) {
  return set_number<std::int64_t>(x, 1, hi);
}

}  // namespace

std::vector<Option> lm_run_options(LmSettings& s, const std::string& per) {
  return {
      {"--seeds", "K",
       "seeds per " + per + " (default " + std::to_string(s.seeds) + "), seeds S..S+K-1",
       set_number(s.seeds, 1, 100)},
      {"--first-seed", "S", "first seed (default 1)",
       set_number<std::uint64_t>(s.first_seed, 0, ~std::uint64_t{0} - 100)},
      {"--threads", "N", "threads in all (default: the CPUs this process may use)",
       set_number(s.threads, 1, 1024)},
      {"--data", "FILE",
       std::string("UTF-8 text (default ") + lm::kDefaultData +
           ", written by\nbash tools/run.sh main)",
       set_text(s.data)},
      {"--layers", "N", "", set_size(s.layers, 64)},
      {"--heads", "N", "", set_size(s.heads, 1024)},
      {"--width", "N", "", set_size(s.width, 1 << 14)},
      {"--context", "N", "", set_size(s.context, 1 << 14)},
      {"--batch", "N", "", set_size(s.batch, 1 << 14)},
      {"--eval-batches", "N", "the model and batches (default 2, 2, 64, 64, 8, 8)",
       set_size(s.eval_batches, 1 << 14)},
  };
}

void check_lm_settings(const LmSettings& s) {
  if (s.width % s.heads != 0)
    throw UsageError("--width " + std::to_string(s.width) + " is not a multiple of --heads " +
                     std::to_string(s.heads));
}

LmSettings parse_lm_settings(int argc, char** argv, const std::string& name,
                             const std::string& about, std::int64_t iterations) {
  LmSettings s;
  s.iterations = iterations;
  s.out = default_out(name);
  OptionTable table = {name, about, lm_run_options(s, "variant"),
                       "\nDefault --iters: " + std::to_string(iterations) + ".\n"};
  // --iters and --variants after --seeds and --first-seed.
  table.options.insert(
      table.options.begin() + 2,
      {{"--iters", "N", "training iterations per run (default: below)",
        set_size(s.iterations, 1 << 24)},
       {"--variants", "LIST",
        "comma-separated labels of the variants to run (default: all;\n"
        "the fp32 baseline always runs)",
        set_names(s.only)}});
  table.add_outputs(s.out, s.plots);
  table.parse(argc, argv);
  check_lm_settings(s);
  return s;
}

double LmResult::mean() const { return common::mean(val_loss); }
double LmResult::sd() const { return common::stdev(val_loss); }

const LmResult& LmComparison::at(const std::string& label) const {
  for (const LmResult& r : results)
    if (r.variant.label == label) return r;
  throw std::out_of_range("no variant " + label);
}

bool LmComparison::has(const std::string& label) const {
  return std::any_of(results.begin(), results.end(),
                     [&](const LmResult& r) { return r.variant.label == label; });
}

double LmComparison::delta(const std::string& label) const {
  return at(label).mean() - results.front().mean();
}

double LmComparison::tolerance() const { return std::max(0.005, 2 * results.front().sd()); }

LmComparison lm_compare(const LmSettings& s, const std::vector<LmVariant>& variants,
                        const std::string& name) {
  std::vector<LmVariant> chosen;
  for (const std::string& l : s.only) {
    if (std::none_of(variants.begin(), variants.end(),
                     [&](const LmVariant& v) { return v.label == l; })) {
      std::string known;
      for (const LmVariant& v : variants) known += (known.empty() ? "" : ", ") + v.label;
      throw UsageError("--variants: unknown variant '" + l + "' (" + known + ")");
    }
    if (std::count(s.only.begin(), s.only.end(), l) > 1)
      throw UsageError("--variants: '" + l + "' given twice");
  }
  for (std::size_t k = 0; k < variants.size(); ++k)
    if (k == 0 || s.only.empty() || std::count(s.only.begin(), s.only.end(), variants[k].label))
      chosen.push_back(variants[k]);

  const lm::Text text = lm::load(s.data);
  LmComparison c;
  c.settings = s;
  c.data = lm::describe(text);
  fp8sim::GptConfig gc = s.config().model;
  gc.vocab = text.split.vocab;
  try {
    c.model = fp8sim::Gpt(gc, 0).description();
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("the model: ") + e.what());
  }
  std::cerr << "fp8exp " << name << ": data: " << c.data << "\n";

  std::vector<std::unique_ptr<fp8sim::LmRun>> runs;
  for (const LmVariant& v : chosen)
    for (int k = 0; k < s.seeds; ++k) {
      fp8sim::LmConfig cfg = s.config();
      cfg.recipe = v.recipe;
      cfg.seed = s.first_seed + std::uint64_t(k);
      try {
        runs.push_back(std::make_unique<fp8sim::LmRun>(cfg, text.split));
      } catch (const fp8sim::RecipeError&) {
        throw;
      } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("the model or the training settings: ") + e.what());
      }
    }
  const common::ThreadPlan plan = common::plan_threads(s.threads, runs.size());
  std::cerr << common::plan_text("fp8exp " + name, plan) << "\n";
  std::mutex mu;
  std::size_t finished = 0;
  const auto t0 = std::chrono::steady_clock::now();
  common::for_each_run(runs.size(), plan.parallel, [&](std::size_t i) {
    fp8sim::LmRun& run = *runs[i];
    fp8emu::Execution exec;
    exec.threads = plan.per_run;
    run.set_execution(exec);
    while (!run.done()) run.train_until_eval();
    const std::lock_guard<std::mutex> g(mu);
    std::cerr << "fp8exp " << name << ": [" << ++finished << "/" << runs.size() << "] "
              << run.config().recipe.name << " seed " << run.config().seed << ": val loss "
              << common::loss_text(run.eval_rows.back().val_loss) << "\n";
  });
  c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (std::size_t v = 0; v < chosen.size(); ++v) {
    LmResult r;
    r.variant = chosen[v];
    for (int k = 0; k < s.seeds; ++k) {
      const fp8sim::LmRun& run = *runs[v * std::size_t(s.seeds) + std::size_t(k)];
      r.val_loss.push_back(run.eval_rows.back().val_loss);
      r.evals.push_back(run.eval_rows);
      r.quant.merge(run.total);
      r.quant_seed.push_back(run.total);
      r.diverged.push_back(run.divergence());
    }
    c.results.push_back(std::move(r));
  }
  return c;
}

namespace {

// " diverged: seed S (why); ..." for the runs of `r` that diverged, or "".
std::string diverged_text(const LmResult& r, std::uint64_t first_seed) {
  std::string d;
  for (std::size_t k = 0; k < r.diverged.size(); ++k)
    if (!r.diverged[k].empty())
      d += (d.empty() ? " diverged: " : "; ") + std::string("seed ") +
           std::to_string(first_seed + k) + " (" + r.diverged[k] + ")";
  return d;
}

// "1.234%", or "-" without a whole.
std::string percent(std::int64_t part, std::int64_t whole) {
  return whole ? common::pct(part, whole) + "%" : "-";
}

}  // namespace

std::string loss_sd(const LmResult& r) {
  return common::loss_text(r.mean()) + " (sd " + common::fixed(r.sd(), 4) + ")";
}

std::string lm_headline(const LmComparison& c, const std::vector<std::string>& labels) {
  std::vector<std::string> shown = labels;
  if (shown.empty())
    for (std::size_t k = 1; k < c.results.size(); ++k) shown.push_back(c.results[k].variant.label);
  std::string h;
  for (const std::string& l : shown)
    if (c.has(l)) h += (h.empty() ? "" : ", ") + l + " " + common::signed_fixed(c.delta(l), 4);
  return "final val loss minus fp32's (nats/token): " + h + " (fp32 " + loss_sd(c.results.front()) +
         ")";
}

std::string lm_verdict(int held, int decided) {
  return decided == 0 ? "Not decided (--variants left out what the tests need)"
                      : verdict(held, decided);
}

void write_lm_outputs(const LmComparison& c, const std::string& name, Report r,
                      const std::string& headline) {
  const LmSettings& s = c.settings;
  const Outputs out(s.out, s.plots);
  const common::DirectoryLock lock(s.out, "fp8exp");

  std::ostringstream csv, ev;
  csv << "variant,seed,final_val_loss,minus_fp32_same_seed,saturated_fraction,flushed_fraction,"
         "diverged\n";
  ev << "variant,seed,iteration,train_loss,val_loss\n";
  const double base = c.results.front().mean();
  for (const LmResult& x : c.results)
    for (std::size_t k = 0; k < x.val_loss.size(); ++k) {
      const std::uint64_t seed = s.first_seed + k;
      csv << x.variant.label << ',' << seed << ',' << common::csv_number(x.val_loss[k]) << ','
          << common::csv_number(x.val_loss[k] - c.results.front().val_loss[k]) << ','
          << common::csv_number(x.quant_seed[k].saturated_fraction()) << ','
          << common::csv_number(x.quant_seed[k].flushed_fraction()) << ','
          << (x.diverged[k].empty() ? 0 : 1) << '\n';
      for (const fp8sim::EvalRow& e : x.evals[k])
        ev << x.variant.label << ',' << seed << ',' << e.iteration << ','
           << common::csv_number(e.train_loss) << ',' << common::csv_number(e.val_loss) << '\n';
    }
  out.write(name + ".csv", csv.str());
  out.write(name + "-evals.csv", ev.str());

  // The plot: validation loss against the iteration, mean over the seeds, per variant.
  std::ostringstream gp;
  gp << "set terminal pngcairo size 1000,700 noenhanced\nset output 'val_loss.png.tmp'\nset grid\n"
        "set title 'fp8exp "
     << name << ": validation loss, mean over " << s.seeds
     << " seeds'\nset xlabel 'iteration'\nset ylabel 'val loss (nats per token)'\nset key top "
        "right\nplot";
  for (std::size_t v = 0; v < c.results.size(); ++v) {
    const LmResult& x = c.results[v];
    std::ostringstream dat;
    dat << "# iteration mean_val_loss (" << x.variant.label << ")\n";
    for (std::size_t e = 0; e < x.evals.front().size(); ++e) {
      std::vector<double> l;
      for (const auto& seed_evals : x.evals) l.push_back(seed_evals[e].val_loss);
      dat << x.evals.front()[e].iteration << ' ' << common::csv_number(common::mean(l)) << '\n';
    }
    const std::string file = "plot-data/" + x.variant.label + ".dat";
    out.write(file, dat.str());
    gp << (v ? ", " : " ") << "'" << file << "' using 1:2 with linespoints title '"
       << x.variant.label << "'";
  }
  gp << "\nunset output\n";
  const std::string plot_note = out.plot(gp.str(), {"val_loss.png"});

  std::ostringstream t;
  t << "\n\n| variant | what | final val loss, mean (sd) over " << s.seeds
    << " seeds | minus fp32 | saturated | flushed |\n|---|---|---|---|---|---|\n";
  for (const LmResult& x : c.results)
    t << "| " << x.variant.label << " | " << x.variant.what << " | " << loss_sd(x) << " | "
      << common::signed_fixed(x.mean() - base, 4) << " | "
      << percent(x.quant.saturated, x.quant.count) << " | "
      << percent(x.quant.flushed, x.quant.nonzero) << " |" << diverged_text(x, s.first_seed)
      << "\n";
  t << "\nSaturated: the GEMM operands' elements clipped by the saturating cast; flushed: their "
       "nonzero "
       "elements that became zero; both over every operand, step and seed (0% for float32 "
       "operands). "
       "Model: "
    << c.model << "; " << s.iterations << " iterations of " << s.batch << " sequences of "
    << s.context
    << " characters, AdamW (lr 1e-3, cosine to 1e-4); every variant trains from the same initial "
       "weights on the "
       "same batches per seed. Data: "
    << c.data << ". Wall time " << common::fixed(c.seconds, 1) << " s on "
    << common::count_text(common::plan_threads(s.threads, 1).cpus, "CPU") << ".";
  r.measured += t.str();
  r.notes += (r.notes.empty() ? "" : "\n\n") +
             std::string("Plot: val_loss.png. Per-seed numbers: ") + name +
             ".csv; every evaluation: " + name + "-evals.csv. The tolerance rule (twice float32's "
             "seed standard deviation, at least 0.005 nats) was changed once, after the first "
             "default runs: it first also allowed each variant's own seed spread, which counted "
             "very noisy variants (FP8 master weights, +0.46 and +1.01 nats) as not worse." +
             (plot_note.empty() ? "" : " " + plot_note);
  out.report(r);
  std::cout << "fp8exp " << name << ": " << headline << "\nfp8exp " << name << ": wrote report.md, "
            << name << ".csv" << (plot_note.empty() ? " and val_loss.png" : "") << " into " << s.out
            << " (" << common::fixed(c.seconds, 1) << " s)\n";
  if (!plot_note.empty()) std::cout << "fp8exp " << name << ": " << plot_note << "\n";
}

}  // namespace findings
