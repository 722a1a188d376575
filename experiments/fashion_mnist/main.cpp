// fp8study: trains a network on Fashion-MNIST under FP8 precision recipes and several
// seeds, and reports how each recipe compares with float32 (docs/study.md).
#include <fcntl.h>
#include <omp.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string_view>

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

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class T>
T number(const std::string& flag, const std::string& v, T lo, T hi) {
  T x{};
  const auto r = std::from_chars(v.data(), v.data() + v.size(), x);
  if (r.ec != std::errc() || r.ptr != v.data() + v.size() || !(x >= lo && x <= hi)) {
    std::ostringstream s;
    s << flag << ": '" << v << "' must be a number in " << lo << ".." << hi;
    throw UsageError(s.str());
  }
  return x;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    const std::size_t c = s.find(',', pos);
    const std::string item = s.substr(pos, c == s.npos ? s.npos : c - pos);
    if (item.empty()) throw UsageError("--recipes: empty name in '" + s + "'");
    out.push_back(item);
    if (c == s.npos) break;
    pos = c + 1;
  }
  return out;
}

Options parse(int argc, char** argv, bool& list_only) {
  Options o;
  bool lr_set = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      std::exit(0);
    } else if (a == "--version") {
      std::cout << "fp8study " << FP8EMU_VERSION << "\n";
      std::exit(0);
    } else if (a == "--list-recipes") list_only = true;
    else if (a == "--model") o.model = value();
    else if (a == "--recipes") o.recipes = split_list(value());
    else if (a == "--set") {
      const std::string v = value();
      const std::size_t eq = v.find('=');
      if (eq == std::string::npos) throw UsageError("--set: expected KEY=VALUE, got '" + v + "'");
      const std::string_view key = fp8sim::trim_blanks(std::string_view(v).substr(0, eq));
      for (const std::string& other : o.sets)
        if (fp8sim::trim_blanks(std::string_view(other).substr(0, other.find('='))) == key)
          throw UsageError("--set: key '" + std::string(key) + "' given twice");
      o.sets.push_back(v);
    } else if (a == "--epochs") o.epochs = number(a, value(), 1, 1000);
    else if (a == "--seeds") o.seeds = number(a, value(), 1, 1000);
    else if (a == "--first-seed") o.first_seed = number<std::uint64_t>(a, value(), 0, ~0ull >> 1);
    else if (a == "--threads") o.threads = number(a, value(), 1, 4096);
    else if (a == "--out") {
      o.out = value();
      if (o.out.empty()) throw UsageError("--out: an empty directory name (use . for this directory)");
    }
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
    else if (a == "--resume") o.resume = true;
    else if (a == "--stop-after-epoch") o.stop_after_epoch = number(a, value(), 1, 1000);
    else if (a == "--no-plots") o.plots = false;
    else if (a == "--progress") {
      o.progress = value();
      if (o.progress != "auto" && o.progress != "bar" && o.progress != "lines" && o.progress != "none")
        throw UsageError("--progress: auto, bar, lines or none, got '" + o.progress + "'");
    } else throw UsageError("unknown option '" + a + "' (see --help)");
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

std::string clock_text(double s) {
  char b[32];
  const int t = int(s + 0.5);
  std::snprintf(b, sizeof b, "%d:%02d", t / 60, t % 60);
  return b;
}

// Progress: a bar redrawn at most 10 times a second on a terminal, or one line per
// finished epoch of a run. Called from the worker threads.
class Progress {
 public:
  Progress(std::string mode, std::int64_t total_steps, int runs)
      : total_(total_steps), runs_(runs), start_(std::chrono::steady_clock::now()) {
    if (mode == "auto") mode = ::isatty(2) ? "bar" : "lines";
    mode_ = mode;
  }
  void step() {
    const std::int64_t d = ++done_;
    if (mode_ != "bar") return;
    std::lock_guard<std::mutex> lock(mu_);
    const double t = elapsed();
    if (t - last_ < 0.1 && d < total_) return;
    last_ = t;
    draw(d, t);
  }
  void epoch(const fp8sim::Run& r, const std::string& recipe) {
    std::lock_guard<std::mutex> lock(mu_);
    if (r.done()) ++runs_done_;
    if (mode_ != "lines") return;
    const fp8sim::EpochRow& e = r.epoch_rows.back();
    char b[256];
    std::snprintf(b, sizeof b, "[%3d%% %s] %-20s seed %-3llu epoch %d/%d  train loss %.4f  test accuracy %.2f%%  (%.1f s)\n",
                  int(100.0 * double(done_) / double(std::max<std::int64_t>(total_, 1))), clock_text(elapsed()).c_str(),
                  recipe.c_str(), (unsigned long long)r.config().seed, e.epoch, r.config().epochs, e.train_loss,
                  100 * e.test_accuracy, e.seconds);
    std::cerr << b << std::flush;
  }
  void finish() {
    if (mode_ == "bar") {
      std::lock_guard<std::mutex> lock(mu_);
      draw(done_, elapsed());
      std::cerr << "\n";
    }
  }

 private:
  double elapsed() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }
  void draw(std::int64_t d, double t) {
    const double f = double(d) / double(std::max<std::int64_t>(total_, 1));
    const int width = 30, fill = int(f * width);
    std::string bar = std::string(std::size_t(fill), '#') + std::string(std::size_t(width - fill), '.');
    const double eta = f > 0.01 ? t * (1 - f) / f : 0;
    char b[200];
    std::snprintf(b, sizeof b, "\r[%s] %3d%%  %lld/%lld steps  %d/%d runs  elapsed %s  eta %s ", bar.c_str(),
                  int(100 * f), (long long)d, (long long)total_, runs_done_, runs_, clock_text(t).c_str(),
                  f > 0.01 ? clock_text(eta).c_str() : "?");
    std::cerr << b << std::flush;
  }
  std::string mode_;
  std::int64_t total_;
  int runs_, runs_done_ = 0;
  std::atomic<std::int64_t> done_{0};
  std::chrono::steady_clock::time_point start_;
  double last_ = -1;
  std::mutex mu_;
};

std::string checkpoint_path(const Options& o, const fp8sim::Recipe& r, std::uint64_t seed) {
  return (fs::path(o.out) / "checkpoints" / (r.name + "-seed" + std::to_string(seed) + ".ckpt")).string();
}

std::string count_text(long n, const std::string& what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

// Holds an exclusive lock on DIR/.fp8study.lock for the life of the object: a second study
// writing into the same directory would replace this one's results.
class DirectoryLock {
 public:
  explicit DirectoryLock(const std::string& dir) {
    const std::string path = (fs::path(dir) / ".fp8study.lock").string();
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd_ < 0) throw fp8sim::DataError(path + ": cannot open the lock file: " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int e = errno;
      ::close(fd_);
      if (e == EWOULDBLOCK)
        throw UsageError(dir + ": another fp8study is writing here (it holds " + path +
                         "); wait for it to end or choose another --out");
      throw fp8sim::DataError(path + ": cannot lock: " + std::strerror(e));
    }
  }
  ~DirectoryLock() { ::close(fd_); }
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  int fd_ = -1;
};

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
  // --set on the baseline is still parsed, so that a bad key is reported either way.
  std::vector<study::RecipeRuns> all;
  for (const std::string& spec : o.recipes) {
    study::RecipeRuns rr;
    rr.recipe = fp8sim::resolve_recipe(spec);
    const bool is_baseline = rr.recipe.name == study::kBaseline;
    fp8sim::Recipe changed = rr.recipe;
    for (const std::string& kv : o.sets) {
      const std::size_t eq = kv.find('=');
      fp8sim::set_recipe_key(changed, kv.substr(0, eq), kv.substr(eq + 1));
    }
    if (!is_baseline) {
      rr.changed_by_set = fp8sim::recipe_text(changed) != fp8sim::recipe_text(rr.recipe);
      rr.recipe = std::move(changed);
    }
    fp8sim::check_recipe(rr.recipe);
    for (const auto& other : all)
      if (other.recipe.name == rr.recipe.name) throw UsageError("recipe '" + rr.recipe.name + "' given twice");
    all.push_back(std::move(rr));
  }
  if (!o.sets.empty()) {
    bool any = false;
    for (const auto& rr : all) any |= rr.recipe.name != study::kBaseline;
    if (!any)
      throw UsageError("--set changes no recipe: it leaves the fp32 baseline as it is (change a copy of it in a "
                       ".recipe file instead)");
  }
  if (list_only) {
    for (const auto& rr : all) std::cout << "# " << rr.recipe.name << "\n" << fp8sim::recipe_text(rr.recipe) << "\n";
    return 0;
  }

  // 2. The results directory, locked for this study, and the data.
  std::error_code ec;
  fs::create_directories(fs::path(o.out) / "checkpoints", ec);
  if (ec) throw fp8sim::DataError(o.out + ": cannot create the results directory: " + ec.message());
  const DirectoryLock lock(o.out);
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
  study::ThreadPlan plan;
  plan.cpus = omp_get_num_procs();
  plan.threads = o.threads ? o.threads : plan.cpus;
  plan.parallel = std::max(1, std::min<int>(plan.threads, int(work.size())));
  plan.per_run = std::max(1, plan.threads / plan.parallel);
  const int parallel = plan.parallel, per_run = plan.per_run;
  std::cerr << "fp8study: threads: " << count_text(parallel, "run") << " at a time, " << count_text(per_run, "thread")
            << " each (" << count_text(plan.cpus, "CPU") << ")\n";
  // A configuration on the scalar reference GEMM path is slow: say so, with an estimate.
  for (const auto& rr : all) {
    std::string roles;
    for (int i = 0; i < fp8sim::kRoles; ++i)
      if (!fp8sim::recipe_gemm_fast_path(rr.recipe.roles[i]))
        roles += std::string(roles.empty() ? "" : ", ") + std::array{"fprop", "dgrad", "wgrad"}[std::size_t(i)];
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
              << " s per run on " << count_text(per_run, "thread") << ", " << count_text(pending, "run") << " to go\n";
  }
  std::int64_t total_steps = 0;
  for (auto& [run, recipe] : work) {
    const int last = o.stop_after_epoch ? std::min(o.stop_after_epoch, run->config().epochs) : run->config().epochs;
    total_steps += std::max(0, last - run->epochs_done()) * run->steps_per_epoch();
  }
  Progress progress(o.progress, total_steps, total_runs);
  const auto t0 = std::chrono::steady_clock::now();
  std::exception_ptr error;
  std::mutex error_mu;
  bool stopped = false;
#pragma omp parallel for schedule(dynamic, 1) num_threads(parallel)
  for (std::size_t i = 0; i < work.size(); ++i) {
    try {
      fp8sim::Run& run = *work[i].first;
      fp8emu::Execution exec;
      exec.threads = per_run;
      run.set_execution(exec);
      while (!run.done()) {
        if (o.stop_after_epoch && run.epochs_done() >= o.stop_after_epoch) {
          std::lock_guard<std::mutex> lock(error_mu);
          stopped = true;
          break;
        }
        run.train_epoch([&](std::int64_t) { progress.step(); });
        run.save(checkpoint_path(o, *work[i].second, run.config().seed));
        progress.epoch(run, work[i].second->name);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
    }
  }
  progress.finish();
  if (error) std::rethrow_exception(error);
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
  std::string diverged;
  int n_diverged = 0;
  for (const auto& rr : all)
    for (const auto& run : rr.runs)
      if (const std::string why = run->divergence(); !why.empty()) {
        diverged += (diverged.empty() ? "" : "; ") + rr.recipe.name + " seed " + std::to_string(run->config().seed) +
                    " (" + why + ")";
        ++n_diverged;
      }
  if (n_diverged)
    std::cerr << "fp8study: warning: " << count_text(n_diverged, "run") << " diverged: " << diverged
              << "; their numbers are marked diverged in the table, report.md and summary.json\n";
  std::cout << "results in " << o.out << "/ (report.md, summary.json, epochs.csv, steps.csv, quant_stats.csv"
            << (plot_note.empty() ? ", loss.png, accuracy.png" : "") << ")\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  fp8emu::wait_passively(argv);
  try {
    return run_study(argc, argv);
  } catch (const UsageError& e) {
    std::cerr << "fp8study: " << e.what() << "\n";
    return 2;
  } catch (const fp8sim::RecipeError& e) {
    std::cerr << "fp8study: " << e.what() << "\n";
    return 2;
  } catch (const fp8sim::DataError& e) {
    std::cerr << "fp8study: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "fp8study: error: " << e.what() << "\n";
    return 1;
  }
}
