// fp8lm: trains a small GPT language model on character-level text under FP8 precision
// recipes and several seeds, and reports how each recipe compares with float32
// (docs/lm-study.md).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>

#include "common/study_common.hpp"
#include "fp8emu/program.hpp"
#include "fp8sim/comm.hpp"
#include "lm/study.hpp"
#include "lm/sweep.hpp"

namespace {

namespace fs = std::filesystem;
using common::number;
using common::UsageError;
using lm::Options;

constexpr const char* kUsage =
    "usage: fp8lm [options]\n"
    "Trains a GPT language model on character-level text under FP8 precision recipes and\n"
    "several seeds, then prints a results table and writes CSV, JSON, PNG plots and a\n"
    "markdown report.\n"
    "\n"
    "  --recipes LIST           comma-separated recipe names or .recipe files (default:\n"
    "                           fp32,bf16,fp8-hybrid-delayed,fp8-e4m3-blockwise,mxfp8,fp8-e5m2,nvfp4)\n"
    "  --set KEY=VALUE          change a recipe key in every recipe but the fp32 baseline\n"
    "                           (repeatable)\n"
    "  --attention-recipe       run the attention products Q K^T and P V under the recipe too\n"
    "                           (default: float32)\n"
    "  --list-recipes           print the chosen recipes in full and exit\n"
    "  --iters N                training iterations per run (default 250)\n"
    "  --seeds N                seeds per recipe (default 2), seeds S..S+N-1\n"
    "  --first-seed S           first seed (default 1)\n"
    "  --full                   nanoGPT's setting: 2000 iterations, 3 seeds, an evaluation\n"
    "                           every 250 iterations (options given explicitly win)\n"
    "  --threads N              threads in all (default: the CPUs this process may use);\n"
    "                           runs are spread over them, a run alone gets them all\n"
    "  --out DIR                results directory (default results/lm; a sweep: results/lm-sweep)\n"
    "  --data FILE              UTF-8 text (default data/bible-kjv.txt, written by\n"
    "                           bash tools/run.sh main)\n"
    "  --layers N --heads N --width N --context N   the model (default 4, 4, 128, 64)\n"
    "  --mlp N                  MLP hidden width (default 4 x width)\n"
    "  --untied-head            a head of its own (default: tied to the token embedding)\n"
    "  --dropout X              (default 0)\n"
    "  --batch N                sequences per step (default 12)\n"
    "  --micro-batches M        split each step's batch into M micro-batches, their gradients\n"
    "                           summed in a fixed order (default 1; M divides --batch)\n"
    "  --ranks R                data-parallel ranks, simulated in this process (default 1; R\n"
    "                           divides M, M / R a power of two); under mpirun without --sweep\n"
    "                           the job's ranks train each run together (R = the job's size)\n"
    "  --lr X --min-lr X        peak and floor of the cosine schedule (default 1e-3, 1e-4)\n"
    "  --warmup N               linear warmup iterations (default 100)\n"
    "  --weight-decay X         AdamW's decoupled weight decay (default 0.1)\n"
    "  --beta1 X --beta2 X      AdamW's moment decay (default 0.9, 0.99)\n"
    "  --grad-clip X            global gradient-norm threshold (default 1; 0: none)\n"
    "  --eval-every N           iterations between evaluations (default: iterations / 8,\n"
    "                           rounded up; there is always one at the end)\n"
    "  --eval-batches N         batches of validation windows per evaluation (default 20)\n"
    "  --log-every N            steps per row of quantization statistics (default 10)\n"
    "  --stats-every N          gather statistics on every Nth step (default 1; 0: never)\n"
    "  --resume                 continue from the checkpoints in DIR/checkpoints (a sweep: skip\n"
    "                           its complete runs)\n"
    "  --sweep KEY=V1,V2,...    a sweep: a run per value, recipe and seed (repeatable: several\n"
    "                           keys give a grid); KEY a recipe key or one of the options above\n"
    "                           without its dashes (lr, batch, iters, ...); under mpirun too\n"
    "  --sweep-file FILE        the --sweep lines of FILE, one KEY=V1,V2,... a line, # comments\n"
    "  --stop-after-eval E      stop every run after its evaluation E (its checkpoint written)\n"
    "  --no-plots               do not run gnuplot\n"
    "  --progress auto|bar|lines|none   (auto: a bar on a terminal, lines otherwise)\n"
    "  --version                print the version and exit\n";

// The lines of a sweep file: `KEY=V1,V2,...` each, `#` comments, blank lines skipped.
void read_sweep_file(const std::string& path, std::vector<lm::SweepLine>& lines) {
  std::ifstream in(path);
  if (!in) throw UsageError("--sweep-file " + path + ": cannot read it");
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    const std::string_view t = fp8sim::trim_blanks(std::string_view(line).substr(0, line.find('#')));
    if (!t.empty()) lines.push_back({std::string(t), path + " line " + std::to_string(n)});
  }
  if (in.bad()) throw UsageError("--sweep-file " + path + ": cannot read it");
}

}  // namespace

namespace lm {

Options parse(const std::vector<std::string>& args, bool& list_only) {
  std::vector<char*> argv_storage{const_cast<char*>("fp8lm")};
  for (const std::string& a : args) argv_storage.push_back(const_cast<char*>(a.c_str()));
  const int argc = int(argv_storage.size());
  char** argv = argv_storage.data();
  Options o;
  bool iters_set = false, eval_set = false;
  for (int i = 1; i < argc; ++i) {
    const int first = i;
    const std::string a = argv[i];
    const auto value = [&] { return common::option_value(argc, argv, i); };
    if (common::parse_study_option(argc, argv, i, "fp8lm", kUsage, o, list_only)) {
    } else if (a == "--attention-recipe") o.model.attention_recipe = true;
    else if (a == "--iters") {
      o.iterations = number<std::int64_t>(a, value(), 1, 1ll << 30);
      iters_set = true;
    } else if (a == "--full") o.full = true;
    else if (a == "--data") o.data = value();
    else if (a == "--layers") o.model.layers = number<std::int64_t>(a, value(), 1, 256);
    else if (a == "--heads") o.model.heads = number<std::int64_t>(a, value(), 1, 1024);
    else if (a == "--width") o.model.width = number<std::int64_t>(a, value(), 1, 1 << 16);
    else if (a == "--context") o.model.context = number<std::int64_t>(a, value(), 1, 1 << 16);
    else if (a == "--mlp") o.model.mlp = number<std::int64_t>(a, value(), 1, 1 << 18);
    else if (a == "--untied-head") o.model.tied_head = false;
    else if (a == "--dropout") o.model.dropout = number(a, value(), 0.0f, 0.99f);
    else if (a == "--batch") o.batch = number<std::int64_t>(a, value(), 1, 1 << 16);
    else if (a == "--micro-batches") o.micro_batches = number<std::int64_t>(a, value(), 1, 1 << 16);
    else if (a == "--ranks") o.ranks = number<std::int64_t>(a, value(), 1, 1 << 16);
    else if (a == "--lr") o.lr = number(a, value(), 1e-12f, 1e3f);
    else if (a == "--min-lr") o.min_lr = number(a, value(), 0.0f, 1e3f);
    else if (a == "--warmup") o.warmup = number<std::int64_t>(a, value(), 0, 1ll << 30);
    else if (a == "--weight-decay") o.weight_decay = number(a, value(), 0.0f, 1.0f);
    else if (a == "--beta1") o.beta1 = number(a, value(), 0.0f, 0.9999f);
    else if (a == "--beta2") o.beta2 = number(a, value(), 0.0f, 0.9999f);
    else if (a == "--grad-clip") o.grad_clip = number(a, value(), 0.0f, 1e6f);
    else if (a == "--eval-every") {
      o.eval_every = number<std::int64_t>(a, value(), 1, 1ll << 30);
      eval_set = true;
    } else if (a == "--eval-batches") o.eval_batches = number<std::int64_t>(a, value(), 1, 1 << 16);
    else if (a == "--log-every") o.log_every = number(a, value(), 1, 1 << 30);
    else if (a == "--stats-every") o.stats_every = number(a, value(), 0, 1 << 30);
    else if (a == "--stop-after-eval") o.stop_after_eval = number(a, value(), 1, 1 << 20);
    else if (a == "--sweep") o.sweep.push_back({value(), "--sweep"});
    else if (a == "--sweep-file") read_sweep_file(value(), o.sweep);
    else throw UnknownOption("unknown option '" + a + "' (see --help)");
    if (a != "--sweep" && a != "--sweep-file" && a != "--resume") o.given.emplace_back(argv + first, argv + i + 1);
  }
  if (o.full) {
    if (!iters_set) o.iterations = lm::kFullIterations;
    if (!o.seeds_given) o.seeds = lm::kFullSeeds;
    if (!eval_set) o.eval_every = lm::kFullEvalEvery;
  } else if (!eval_set) {
    o.eval_every = std::max<std::int64_t>(1, (o.iterations + lm::kEvaluations - 1) / lm::kEvaluations);
  }
  if (o.min_lr > o.lr)
    throw UsageError("--min-lr " + common::fixed(o.min_lr, 6) + " is above --lr " + common::fixed(o.lr, 6));
  if (o.model.width % o.model.heads != 0)
    throw UsageError("--width " + std::to_string(o.model.width) + " is not a multiple of --heads " +
                     std::to_string(o.model.heads));
  if (o.recipes.empty())
    for (const char* n : lm::kDefaultRecipes) o.recipes.emplace_back(n);
  if (!o.sweep.empty() && o.stop_after_eval)
    throw UsageError("--stop-after-eval: not with a sweep (--resume reruns a sweep's unfinished runs whole)");
  return o;
}

}  // namespace lm

namespace {

std::string checkpoint_path(const Options& o, const fp8sim::Recipe& r, std::uint64_t seed) {
  return (fs::path(o.out) / "checkpoints" / (r.name + "-seed" + std::to_string(seed) + ".ckpt")).string();
}

// One line per evaluation of a run, for --progress lines.
std::string eval_line(const fp8sim::LmRun& r, const std::string& recipe) {
  const fp8sim::EvalRow& e = r.eval_rows.back();
  char b[256];
  std::snprintf(b, sizeof b, "%-20s seed %-3llu iteration %lld/%lld  train loss %.4f  val loss %.4f  (%.1f s)",
                recipe.c_str(), (unsigned long long)r.config().seed, (long long)e.iteration,
                (long long)r.config().iterations, e.train_loss, e.val_loss, e.seconds);
  return b;
}

}  // namespace

namespace lm {

int run_study(const Options& o, const Text& text, bool quiet, fp8sim::Communicator& comm) {
  // 1. Recipes, each but the baseline with the --set changes, checked before any work.
  std::vector<common::StudyRecipe> recipes = common::resolve_recipes(o.recipes, o.sets);

  // 2. Runs. A configuration the model or the run refuses is a usage error, found before
  // anything is written (in a data-parallel job on every rank, rank 0 saying it).
  const bool data_parallel = comm.size() > 1, writer = comm.rank() == 0;
  std::vector<lm::RecipeRuns> all;
  for (common::StudyRecipe& r : recipes) {
    lm::RecipeRuns rr;
    rr.recipe = std::move(r.recipe);
    rr.changed_by_set = r.changed_by_set;
    all.push_back(std::move(rr));
  }
  const bool built = lm::collectively(comm, [&] {
    for (auto& rr : all)
      for (int s = 0; s < o.seeds; ++s) {
        fp8sim::LmConfig c = o;  // the study's LmConfig, with this run's recipe and seed
        c.recipe = rr.recipe;
        c.seed = o.first_seed + std::uint64_t(s);
        if (data_parallel) c.ranks = comm.size();
        try {
          rr.runs.push_back(std::make_unique<fp8sim::LmRun>(c, text.split, comm));
        } catch (const fp8sim::RecipeError&) {
          throw;
        } catch (const std::invalid_argument& e) {
          throw UsageError(std::string("the model or the training settings: ") + e.what());
        }
      }
  });
  if (!built) return 0;  // rank 0 ends the job

  // 3. The results directory, locked for this study; the runs restored from their
  // checkpoints with --resume. In a data-parallel job (several ranks training each run
  // together) rank 0 alone writes: the directory, checkpoints and outputs; the other
  // ranks read the checkpoints on --resume.
  std::optional<common::DirectoryLock> lock;
  if (writer) {
    std::error_code ec;
    fs::create_directories(fs::path(o.out) / "checkpoints", ec);
    if (ec) throw fp8sim::DataError(o.out + ": cannot create the results directory: " + ec.message());
    lock.emplace(o.out, "fp8lm");
  }
  std::ostringstream discard;
  std::ostream& out = quiet ? discard : std::cout;
  std::ostream& err = quiet ? discard : std::cerr;
  std::vector<std::pair<fp8sim::LmRun*, const fp8sim::Recipe*>> work;
  int total_runs = 0;
  for (auto& rr : all)
    for (auto& run : rr.runs) {
      const std::string ck = checkpoint_path(o, rr.recipe, run->config().seed);
      if (o.resume && fs::exists(ck)) {
        run->load(ck);
      } else if (writer && fs::exists(ck)) {
        fs::remove(ck);
      }
      ++total_runs;
      if (!run->done()) work.emplace_back(run.get(), &rr.recipe);
    }

  // 4. Train: runs spread over the threads, runs at once x threads per run <= threads; a
  // run's numbers do not depend on which thread or how many threads it gets.
  // A data-parallel job trains one run at a time, all ranks together (their collective
  // calls must meet), with all the threads.
  const common::ThreadPlan plan = common::plan_threads(o.threads, data_parallel ? std::min<std::size_t>(work.size(), 1) : work.size());
  err << common::plan_text("fp8lm", plan) << "\n";
  for (const auto& rr : all)
    if (const std::string roles = common::slow_roles(rr.recipe); !roles.empty())
      err << "fp8lm: note: " << rr.recipe.name << " runs " << roles
                << " on the scalar reference GEMM path (no fast path for its formats and accumulation): slow\n";
  std::int64_t total_steps = 0;
  for (auto& [run, recipe] : work) {
    std::int64_t last = run->config().iterations;
    if (o.stop_after_eval) last = std::min(last, std::int64_t(o.stop_after_eval) * run->config().eval_every);
    total_steps += std::max<std::int64_t>(0, last - run->iterations_done());
  }
  common::Progress progress(quiet ? "none" : o.progress, total_steps, total_runs);
  const auto t0 = std::chrono::steady_clock::now();
  const bool stopped = common::train_runs(
      work, plan, progress,
      [](fp8sim::LmRun& run, const std::function<void(std::int64_t)>& on_step) { run.train_until_eval(on_step); },
      [&](const fp8sim::LmRun& run) {
        return o.stop_after_eval && run.eval_rows.size() >= std::size_t(o.stop_after_eval);
      },
      [&](const fp8sim::LmRun& run, const fp8sim::Recipe& r) {
        return writer ? checkpoint_path(o, r, run.config().seed) : std::string();
      },
      [](const fp8sim::LmRun& run, const fp8sim::Recipe& r) { return eval_line(run, r.name); });
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (stopped) {
    out << "stopped after evaluation " << o.stop_after_eval
              << " as asked (--stop-after-eval); checkpoints in " << (fs::path(o.out) / "checkpoints").string()
              << "; continue with --resume\n";
    return 0;
  }

  // 5. Outputs (rank 0's: every rank holds the same results).
  if (!writer) return 0;
  std::string plot_note;
  fp8sim::GptConfig gc = o.model;
  gc.vocab = text.split.vocab;
  const std::string model_description = fp8sim::Gpt(gc, 0).description();
  out << lm::write_outputs(o, all, wall, model_description, text, plan, plot_note);
  if (!plot_note.empty()) err << "fp8lm: " << plot_note << "\n";
  int n_diverged = 0;
  const std::string diverged = common::diverged_runs(all, n_diverged);
  if (n_diverged)
    err << "fp8lm: warning: " << common::count_text(n_diverged, "run") << " diverged: " << diverged
              << "; their numbers are marked diverged in the table, report.md and summary.json\n";
  std::string pngs;
  for (const char* png : {"val_loss.png", "train_loss.png", "layer_amax.png"})
    if (plot_note.empty() && fs::exists(fs::path(o.out) / png)) pngs += std::string(", ") + png;
  out << "results in " << o.out << "/ (report.md, summary.json, evals.csv, steps.csv, layer_stats.csv, "
      << kTimingsFile << pngs << ")\n";
  return 0;
}

}  // namespace lm

namespace {

int fp8lm_main(int argc, char** argv, fp8sim::Communicator& comm) {
  bool list_only = false;
  lm::Options o;
  // Every rank parses the same command line; an error anywhere ends every rank, rank 0
  // saying it.
  const bool parsed = lm::collectively(comm, [&] {
    o = lm::parse(std::vector<std::string>(argv + 1, argv + argc), list_only);
    // Several ranks without a sweep: data-parallel training, R = the job's size.
    const bool ranks_given =
        std::any_of(o.given.begin(), o.given.end(), [](const auto& g) { return g.front() == "--ranks"; });
    if (comm.size() > 1 && o.sweep.empty() && ranks_given && o.ranks != comm.size())
      throw UsageError("--ranks " + std::to_string(o.ranks) + ": the job has " + std::to_string(comm.size()) +
                       " ranks (data-parallel training under mpirun takes R from the job; --ranks "
                       "simulates ranks in one process)");
  });
  if (!parsed) return 0;  // rank 0 ends the job (collectively)
  if (!o.sweep.empty() && !list_only) return lm::run_sweep(o, comm);
  if (comm.size() > 1 && !list_only) {
    // Data-parallel: every rank reads the text and builds every run; the runs train one
    // after another, each on all ranks; rank 0 writes. A failure on any rank ends the job.
    bool ok = lm::collectively(comm, [&] { common::resolve_recipes(o.recipes, o.sets); });
    if (!ok) return 0;
    lm::Text text;
    ok = lm::collectively(comm, [&] { text = lm::load(o.data); });
    if (!ok) return 0;
    if (comm.rank() == 0)
      std::cerr << "fp8lm: data: " << lm::describe(text) << "\nfp8lm: data-parallel training on "
                << comm.size() << " ranks (" << comm.description() << ")\n";
    o.ranks = comm.size();
    return lm::run_study(o, text, comm.rank() != 0, comm);
  }
  if (comm.rank() != 0) return 0;
  // The recipes are checked before the text is read (run_study resolves them again).
  const std::vector<common::StudyRecipe> recipes = common::resolve_recipes(o.recipes, o.sets);
  if (list_only) {
    std::cout << common::recipes_listing(recipes);
    return 0;
  }
  const lm::Text text = lm::load(o.data);
  std::cerr << "fp8lm: data: " << lm::describe(text) << "\n";
  return lm::run_study(o, text, false, fp8sim::local_communicator());
}

}  // namespace

int main(int argc, char** argv) {
  fp8emu::wait_passively(argv);
  fp8sim::Communicator& comm = fp8sim::world_communicator(argc, argv);
  return common::run_main("fp8lm", [&] { return fp8lm_main(argc, argv, comm); });
}
