// fp8study: trains a network on Fashion-MNIST under FP8 precision recipes and several
// seeds, and reports how each recipe compares with float32 (docs/study.md).
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <iostream>
#include <string_view>

#include "common/study_common.hpp"
#include "fp8emu/program.hpp"
#include "fashion_mnist/models.hpp"
#include "study.hpp"

namespace {

namespace fs = std::filesystem;
using study::Options;

// The recipes the study runs by default, as docs/study.md times them; the other named
// recipes (fp8-e5m2, nvfp4, mxfp6, mxfp4, fp16-accumulate) run with --recipes.
constexpr std::array<std::string_view, 7> kDefaultRecipes = {
    "fp32", "bf16", "fp8-hybrid-delayed", "fp8-hybrid-current", "fp8-e4m3-blockwise", "mxfp8", "fp8-unscaled"};

constexpr const char* kUsage =
    "usage: fp8study [options]\n"
    "Trains a network on Fashion-MNIST under FP8 precision recipes and several seeds, then\n"
    "prints a results table and writes CSV, JSON, PNG plots and a markdown report.\n"
    "\n"
    "  --model mlp|mlp-ln|cnn   network (default mlp: 784-256-256-10 with ReLU)\n"
    "  --recipes LIST           comma-separated recipe names or .recipe files\n"
    "                           (default: fp32, bf16, fp8-hybrid-delayed, fp8-hybrid-current,\n"
    "                           fp8-e4m3-blockwise, mxfp8, fp8-unscaled; see --list-recipes)\n"
    "  --set KEY=VALUE          change a recipe key in every recipe but the fp32 baseline\n"
    "                           (repeatable)\n"
    "  --list-recipes           print the named recipes in full and exit\n"
    "  --epochs N               epochs per run (default 10)\n"
    "  --seeds N                seeds per recipe (default 3), seeds S..S+N-1\n"
    "  --first-seed S           first seed (default 1)\n"
    "  --threads N              threads in all (default: the CPUs this process may use);\n"
    "                           runs are spread over them, a run alone gets them all\n"
    "  --out DIR                results directory (default results/fashion-mnist)\n"
    "  --data DIR               Fashion-MNIST directory (default /usr/share/datasets/fashion-mnist)\n"
    "  --batch N                examples per step (default 128)\n"
    "  --optimizer adamw|sgd    (default adamw, lr 1e-3; sgd: lr 0.05, momentum 0.9)\n"
    "  --lr X  --weight-decay X --momentum X\n"
    "  --log-every N            steps per row of quantization statistics (default 10)\n"
    "  --stats-every N          gather statistics on every Nth step (default 1; 0: never)\n"
    "  --train-limit N          use only the first N training examples\n"
    "  --test-limit N           use only the first N test examples\n"
    "  --resume                 continue from the checkpoints in DIR/checkpoints\n"
    "  --stop-after-epoch E     stop every run after epoch E (its checkpoint written)\n"
    "  --no-plots               do not run gnuplot\n"
    "  --progress auto|bar|lines|none   (auto: a bar on a terminal, lines otherwise)\n"
    "  --version                print the version and exit\n";

using common::number;
using common::UsageError;

Options parse(int argc, char** argv, bool& list_only) {
  Options o;
  bool lr_set = false;
  for (int i = 1; i < argc; ++i) {
    if (common::parse_study_option(argc, argv, i, "fp8study", kUsage, o, list_only)) continue;
    const std::string a = argv[i];
    const auto value = [&] { return common::option_value(argc, argv, i); };
    if (a == "--model") o.model = value();
    else if (a == "--epochs") o.epochs = number(a, value(), 1, 1000);
    else if (a == "--data") o.data = value();
    else if (a == "--batch") o.batch = number(a, value(), 1, 60000);
    else if (a == "--optimizer") {
      const std::string v = value();
      if (v == "adamw") o.optimizer.kind = fp8sim::OptimizerKind::adamw;
      else if (v == "sgd") o.optimizer.kind = fp8sim::OptimizerKind::sgd;
      else throw UsageError("--optimizer: adamw or sgd, got '" + v + "'");
    } else if (a == "--lr") {
      o.optimizer.lr = number(a, value(), 1e-12f, 1e3f);
      lr_set = true;
    } else if (a == "--weight-decay") o.optimizer.weight_decay = number(a, value(), 0.0f, 1.0f);
    else if (a == "--momentum") o.optimizer.momentum = number(a, value(), 0.0f, 0.9999f);
    else if (a == "--log-every") o.log_every = number(a, value(), 1, 1 << 30);
    else if (a == "--stats-every") o.stats_every = number(a, value(), 0, 1 << 30);
    else if (a == "--train-limit") o.train_limit = number<std::int64_t>(a, value(), 1, 1ll << 40);
    else if (a == "--test-limit") o.test_limit = number<std::int64_t>(a, value(), 1, 1ll << 40);
    else if (a == "--stop-after-epoch") o.stop_after_epoch = number(a, value(), 1, 1000);
    else throw UsageError("unknown option '" + a + "' (see --help)");
  }
  if (!lr_set && o.optimizer.kind == fp8sim::OptimizerKind::sgd) o.optimizer.lr = 0.05f;
  if (o.train_limit && o.train_limit < o.batch)
    throw UsageError("--train-limit " + std::to_string(o.train_limit) + " is smaller than one batch (" +
                     std::to_string(o.batch) + ")");
  bool known = false;
  for (const auto& k : fashion_mnist::model_kinds()) known |= k == o.model;
  if (!known) throw UsageError("--model: mlp, mlp-ln or cnn, got '" + o.model + "'");
  if (o.recipes.empty())
    for (auto n : kDefaultRecipes) o.recipes.emplace_back(n);
  return o;
}

// One line per finished epoch of a run, for --progress lines.
std::string epoch_line(const fp8sim::Run& r, const std::string& recipe) {
  const fp8sim::EpochRow& e = r.epoch_rows.back();
  char b[256];
  std::snprintf(b, sizeof b, "%-20s seed %-3llu epoch %d/%d  train loss %.4f  test accuracy %.2f%%  (%.1f s)",
                recipe.c_str(), (unsigned long long)r.config().seed, e.epoch, r.config().epochs, e.train_loss,
                100 * e.test_accuracy, e.seconds);
  return b;
}

std::string checkpoint_path(const Options& o, const fp8sim::Recipe& r, std::uint64_t seed) {
  return (fs::path(o.out) / "checkpoints" / (r.name + "-seed" + std::to_string(seed) + ".ckpt")).string();
}

// Times one training step of `c` on a batch of at most 16 examples and returns the
// estimated seconds of `epochs` epochs of the run: the reference GEMM's time grows with
// the batch, and an evaluation pass costs about a third of a training step per example.
double estimate_run_seconds(const fp8sim::RunConfig& c, int epochs, const fp8sim::Dataset& train,
                            const fp8sim::Dataset& test, int threads) {
  const std::int64_t probe = std::min<std::int64_t>(c.batch, 16);
  fp8sim::Run probe_run(c, fashion_mnist::make_model(c.model, train, c.seed), train, test);
  fp8emu::Execution exec;
  exec.threads = threads;
  probe_run.set_execution(exec);
  fp8sim::Tensor x;
  x.reshape({probe, train.features()});
  std::copy(train.x.begin(), train.x.begin() + probe * train.features(), x.data.begin());
  const auto t0 = std::chrono::steady_clock::now();
  probe_run.train_step(x, train.y.data());
  const double step = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() *
                      double(c.batch) / double(probe);
  const std::int64_t test_n = c.test_limit ? std::min(c.test_limit, test.count) : test.count;
  const double eval_steps = double(test_n) / double(c.batch) / 3.0;
  return step * (double(probe_run.steps_per_epoch()) + eval_steps) * double(epochs);
}

int run_study(int argc, char** argv) {
  bool list_only = false;
  const Options o = parse(argc, argv, list_only);

  // 1. Recipes, each but the baseline with the --set changes, checked before any work.
  std::vector<common::StudyRecipe> recipes = common::resolve_recipes(o.recipes, o.sets);
  if (list_only) {
    std::cout << common::recipes_listing(recipes);
    return 0;
  }
  std::vector<study::RecipeRuns> all;
  for (common::StudyRecipe& r : recipes) {
    study::RecipeRuns rr;
    rr.recipe = std::move(r.recipe);
    rr.changed_by_set = r.changed_by_set;
    all.push_back(std::move(rr));
  }

  // 2. The results directory, locked for this study, and the data.
  std::error_code ec;
  fs::create_directories(fs::path(o.out) / "checkpoints", ec);
  if (ec) throw fp8sim::DataError(o.out + ": cannot create the results directory: " + ec.message());
  const common::DirectoryLock lock(o.out, "fp8study");
  const fp8sim::Dataset train = fashion_mnist::load(o.data, true);
  const fp8sim::Dataset test = fashion_mnist::load(o.data, false);

  // 3. Runs, restored from their checkpoints with --resume.
  std::vector<std::pair<fp8sim::Run*, const fp8sim::Recipe*>> work;
  int total_runs = 0;
  for (auto& rr : all)
    for (int s = 0; s < o.seeds; ++s) {
      fp8sim::RunConfig c = o;  // the study's RunConfig, with this run's recipe and seed
      c.recipe = rr.recipe;
      c.seed = o.first_seed + std::uint64_t(s);
      rr.runs.push_back(std::make_unique<fp8sim::Run>(c, fashion_mnist::make_model(c.model, train, c.seed), train, test));
      fp8sim::Run& run = *rr.runs.back();
      const std::string ck = checkpoint_path(o, rr.recipe, c.seed);
      if (o.resume && fs::exists(ck)) {
        run.load(ck);
        if (run.epochs_done() > c.epochs)
          throw UsageError(ck + ": " + std::to_string(run.epochs_done()) + " epochs done, more than --epochs " +
                           std::to_string(c.epochs) + " asks for; resume with --epochs " +
                           std::to_string(run.epochs_done()) + " or more, or start again without --resume");
      } else if (fs::exists(ck)) {
        fs::remove(ck);
      }
      ++total_runs;
      if (!run.done()) work.emplace_back(&run, &rr.recipe);
    }

  // 4. Train: runs spread over the threads, runs at once x threads per run <= threads; a
  // run's numbers do not depend on which thread or how many threads it gets.
  const common::ThreadPlan plan = common::plan_threads(o.threads, work.size());
  const int per_run = plan.per_run;
  std::cerr << common::plan_text("fp8study", plan) << "\n";
  // A configuration on the scalar reference GEMM path is slow: say so, with an estimate.
  for (const auto& rr : all) {
    const std::string roles = common::slow_roles(rr.recipe);
    int pending = 0, epochs = 0;
    for (const auto& [run, recipe] : work)
      if (recipe == &rr.recipe) {
        ++pending;
        epochs = std::max(epochs, run->config().epochs - run->epochs_done());
      }
    if (roles.empty() || pending == 0) continue;
    const double s = estimate_run_seconds(rr.runs.front()->config(), epochs, train, test, per_run);
    char b[64];
    std::snprintf(b, sizeof b, "%.3g", s);
    std::cerr << "fp8study: note: " << rr.recipe.name << " runs " << roles
              << " on the scalar reference GEMM path (no fast path for its formats and accumulation): about " << b
              << " s per run on " << common::count_text(per_run, "thread") << ", " << common::count_text(pending, "run") << " to go\n";
  }
  std::int64_t total_steps = 0;
  for (auto& [run, recipe] : work) {
    const int last = o.stop_after_epoch ? std::min(o.stop_after_epoch, run->config().epochs) : run->config().epochs;
    total_steps += std::max(0, last - run->epochs_done()) * run->steps_per_epoch();
  }
  common::Progress progress(o.progress, total_steps, total_runs);
  const auto t0 = std::chrono::steady_clock::now();
  const bool stopped = common::train_runs(
      work, plan, progress,
      [](fp8sim::Run& run, const std::function<void(std::int64_t)>& on_step) { run.train_epoch(on_step); },
      [&](const fp8sim::Run& run) { return o.stop_after_epoch && run.epochs_done() >= o.stop_after_epoch; },
      [&](const fp8sim::Run& run, const fp8sim::Recipe& r) { return checkpoint_path(o, r, run.config().seed); },
      [](const fp8sim::Run& run, const fp8sim::Recipe& r) { return epoch_line(run, r.name); });
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (stopped) {
    std::cout << "stopped after epoch " << o.stop_after_epoch << " as asked (--stop-after-epoch); checkpoints in "
              << (fs::path(o.out) / "checkpoints").string() << "; continue with --resume\n";
    return 0;
  }

  // 5. Outputs.
  std::string plot_note;
  const std::string model_description = fashion_mnist::make_model(o.model, train, 0).description();
  std::cout << study::write_outputs(o, all, wall, model_description, plan, plot_note);
  if (!plot_note.empty()) std::cerr << "fp8study: " << plot_note << "\n";
  int n_diverged = 0;
  const std::string diverged = common::diverged_runs(all, n_diverged);
  if (n_diverged)
    std::cerr << "fp8study: warning: " << common::count_text(n_diverged, "run") << " diverged: " << diverged
              << "; their numbers are marked diverged in the table, report.md and summary.json\n";
  std::cout << "results in " << o.out << "/ (report.md, summary.json, epochs.csv, steps.csv, quant_stats.csv"
            << (plot_note.empty() ? ", loss.png, accuracy.png" : "") << ")\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  fp8emu::wait_passively(argv);
  return common::run_main("fp8study", [&] { return run_study(argc, argv); });
}
