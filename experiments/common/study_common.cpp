// What the precision studies share (see study_common.hpp).
#include "common/study_common.hpp"

#include <fcntl.h>
#include <omp.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "fp8emu/file.hpp"
#include "fp8sim/dataset.hpp"
#include "fp8sim/qgemm.hpp"

namespace common {

namespace fs = std::filesystem;

std::string option_value(int argc, char** argv, int& i) {
  if (i + 1 >= argc) throw UsageError(std::string(argv[i]) + " needs a value");
  return argv[++i];
}

bool parse_study_option(int argc, char** argv, int& i, const char* program, const char* usage, StudySettings& s,
                        bool& list_only) {
  const std::string a = argv[i];
  if (a == "--help" || a == "-h") {
    std::cout << usage;
    std::exit(0);
  } else if (a == "--version") {
    std::cout << program << " " << FP8EMU_VERSION << "\n";
    std::exit(0);
  } else if (a == "--list-recipes") list_only = true;
  else if (a == "--recipes") s.recipes = split_list(option_value(argc, argv, i));
  else if (a == "--set") add_set(s.sets, option_value(argc, argv, i));
  else if (a == "--seeds") {
    s.seeds = number(a, option_value(argc, argv, i), 1, 1000);
    s.seeds_given = true;
  } else if (a == "--first-seed") s.first_seed = number<std::uint64_t>(a, option_value(argc, argv, i), 0, ~0ull >> 1);
  else if (a == "--threads") s.threads = number(a, option_value(argc, argv, i), 1, 4096);
  else if (a == "--out") {
    s.out = option_value(argc, argv, i);
    if (s.out.empty()) throw UsageError("--out: an empty directory name (use . for this directory)");
  } else if (a == "--resume") s.resume = true;
  else if (a == "--no-plots") s.plots = false;
  else if (a == "--progress") {
    s.progress = option_value(argc, argv, i);
    if (s.progress != "auto" && s.progress != "bar" && s.progress != "lines" && s.progress != "none")
      throw UsageError("--progress: auto, bar, lines or none, got '" + s.progress + "'");
  } else return false;
  return true;
}

std::vector<std::string> split_list(const std::string& s, const std::string& flag) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    const std::size_t c = s.find(',', pos);
    const std::string item = s.substr(pos, c == s.npos ? s.npos : c - pos);
    if (item.empty()) throw UsageError(flag + ": empty name in '" + s + "'");
    out.push_back(item);
    if (c == s.npos) break;
    pos = c + 1;
  }
  return out;
}

void add_set(std::vector<std::string>& sets, const std::string& v) {
  const std::size_t eq = v.find('=');
  if (eq == std::string::npos) throw UsageError("--set: expected KEY=VALUE, got '" + v + "'");
  const std::string_view key = fp8sim::trim_blanks(std::string_view(v).substr(0, eq));
  for (const std::string& other : sets)
    if (fp8sim::trim_blanks(std::string_view(other).substr(0, other.find('='))) == key)
      throw UsageError("--set: key '" + std::string(key) + "' given twice");
  sets.push_back(v);
}

std::string clock_text(double s) {
  char b[32];
  const int t = int(s + 0.5);
  std::snprintf(b, sizeof b, "%d:%02d", t / 60, t % 60);
  return b;
}

std::string count_text(long n, const std::string& what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

std::vector<StudyRecipe> resolve_recipes(const std::vector<std::string>& specs, const std::vector<std::string>& sets) {
  std::vector<StudyRecipe> all;
  for (const std::string& spec : specs) {
    StudyRecipe rr;
    rr.recipe = fp8sim::resolve_recipe(spec);
    const bool is_baseline = rr.recipe.name == kBaseline;
    // --set on the baseline is still parsed, so that a bad key is reported either way.
    fp8sim::Recipe changed = rr.recipe;
    for (const std::string& kv : sets) {
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
  if (!sets.empty()) {
    bool any = false;
    for (const auto& rr : all) any |= rr.recipe.name != kBaseline;
    if (!any)
      throw UsageError("--set changes no recipe: it leaves the fp32 baseline as it is (change a copy of it in a "
                       ".recipe file instead)");
  }
  return all;
}

std::string set_note(const std::vector<std::string>& sets, const std::vector<std::pair<std::string, bool>>& recipes) {
  if (sets.empty()) return "";
  std::string s;
  for (const std::string& kv : sets) s += "--set " + kv + " ";
  std::string changed;
  bool baseline = false;
  for (const auto& [name, by_set] : recipes) {
    if (by_set) changed += (changed.empty() ? "" : ", ") + name;
    baseline |= name == kBaseline;
  }
  s += "changed: " + (changed.empty() ? std::string("no recipe") : changed);
  if (baseline) s += std::string(" (not the ") + kBaseline + " baseline)";
  return s;
}

std::string recipes_listing(const std::vector<StudyRecipe>& recipes) {
  std::string s;
  for (const auto& rr : recipes) s += "# " + rr.recipe.name + "\n" + fp8sim::recipe_text(rr.recipe) + "\n";
  return s;
}

std::string slow_roles(const fp8sim::Recipe& r) {
  std::string roles;
  for (int i = 0; i < fp8sim::kRoles; ++i)
    if (!fp8sim::recipe_gemm_fast_path(r.roles[i]))
      roles += std::string(roles.empty() ? "" : ", ") + std::array{"fprop", "dgrad", "wgrad"}[std::size_t(i)];
  return roles;
}

DirectoryLock::DirectoryLock(const std::string& dir, const std::string& program) {
  const std::string path = (fs::path(dir) / ("." + program + ".lock")).string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd_ < 0) throw fp8sim::DataError(path + ": cannot open the lock file: " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    ::close(fd_);
    if (e == EWOULDBLOCK)
      throw UsageError(dir + ": another " + program + " is writing here (it holds " + path +
                       "); wait for it to end or choose another --out");
    throw fp8sim::DataError(path + ": cannot lock: " + std::strerror(e));
  }
}

DirectoryLock::~DirectoryLock() { ::close(fd_); }

ThreadPlan plan_threads(int threads, std::size_t runs) {
  ThreadPlan plan;
  plan.cpus = omp_get_num_procs();
  plan.threads = threads ? threads : plan.cpus;
  plan.parallel = std::max(1, std::min<int>(plan.threads, int(runs)));
  plan.per_run = std::max(1, plan.threads / plan.parallel);
  return plan;
}

std::string plan_text(const std::string& program, const ThreadPlan& plan) {
  return program + ": threads: " + count_text(plan.parallel, "run") + " at a time, " +
         count_text(plan.per_run, "thread") + " each (" + count_text(plan.cpus, "CPU") + ")";
}

void for_each_run(std::size_t runs, int parallel, const std::function<void(std::size_t)>& body) {
  std::exception_ptr error;
  std::mutex error_mu;
#pragma omp parallel for schedule(dynamic, 1) num_threads(parallel)
  for (std::size_t i = 0; i < runs; ++i) {
    try {
      body(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

Progress::Progress(std::string mode, std::int64_t total_steps, int runs)
    : total_(total_steps), runs_(runs), start_(std::chrono::steady_clock::now()) {
  if (mode == "auto") mode = ::isatty(2) ? "bar" : "lines";
  mode_ = mode;
}

void Progress::step() {
  const std::int64_t d = ++done_;
  if (mode_ != "bar") return;
  std::lock_guard<std::mutex> lock(mu_);
  const double t = elapsed();
  if (t - last_ < 0.1 && d < total_) return;
  last_ = t;
  draw(d, t);
}

void Progress::line(bool run_done, const std::string& text) {
  std::lock_guard<std::mutex> lock(mu_);
  if (run_done) ++runs_done_;
  if (mode_ != "lines") return;
  char b[32];
  std::snprintf(b, sizeof b, "[%3d%% %s] ", int(100.0 * double(done_) / double(std::max<std::int64_t>(total_, 1))),
                clock_text(elapsed()).c_str());
  std::cerr << b << text << "\n" << std::flush;
}

void Progress::finish() {
  if (mode_ == "bar") {
    std::lock_guard<std::mutex> lock(mu_);
    draw(done_, elapsed());
    std::cerr << "\n";
  }
}

double Progress::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::draw(std::int64_t d, double t) {
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

void write_file(const std::string& path, const std::string& text) {
  try {
    fp8emu::write_file(path, text);
  } catch (const fp8emu::FileError& e) {
    throw fp8sim::DataError(e.what());
  }
}

std::string RecipeSummary::notes() const {
  std::ostringstream r;
  for (std::size_t k = 0; k < diverged_seeds.size(); ++k)
    r << "Seed " << diverged_seeds[k] << " diverged: " << diverged_why[k] << ". ";
  if (changed_by_set) r << "Changed by --set. ";
  return r.str();
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / double(v.size());
}

double stdev(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size() - 1));
}

std::string fixed(double v, int digits) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

std::string loss_text(double v) {
  if (std::isfinite(v) && std::fabs(v) >= 1e5) {
    char b[32];
    std::snprintf(b, sizeof b, "%.3e", v);
    return b;
  }
  return fixed(v, 4);
}

std::string signed_fixed(double v, int digits) { return (v >= 0 ? "+" : "") + fixed(v, digits); }

std::string pct(std::int64_t part, std::int64_t whole) {
  return whole ? fixed(100.0 * double(part) / double(whole), 3) : "-";
}

std::string csv_number(double v) {
  std::ostringstream s;
  s << std::setprecision(9) << v;
  return s.str();
}

std::string smoothed_mean_dat(const std::vector<const std::vector<double>*>& curves, std::size_t window,
                              const std::string& header) {
  std::ostringstream l;
  l << "# " << header << "\n";
  const std::size_t points = curves.empty() ? 0 : curves.front()->size();
  double sum = 0;
  std::vector<double> m(points, 0.0);
  for (std::size_t s = 0; s < points; ++s) {
    for (const std::vector<double>* c : curves) m[s] += (*c)[s] / double(curves.size());
    sum += m[s];
    if (s >= window) sum -= m[s - window];
    l << s + 1 << " " << csv_number(sum / double(std::min<std::size_t>(s + 1, window))) << "\n";
  }
  return l.str();
}

std::string run_gnuplot(const std::string& dir, bool plots, const std::vector<std::string>& pngs) {
  if (!plots) return "plots skipped (--no-plots); plots.gp and plot-data/ are written";
  bool finished = false;
  const std::string why = fp8emu::run_gnuplot(dir, "plots.gp", pngs, &finished);
  // A study's report says what its reader can do when gnuplot did not finish: install it,
  // read the log, or draw the plots from what is written.
  if (!finished)
    return "gnuplot failed or is missing (apt-get install gnuplot-nox); see gnuplot.log; plots.gp and plot-data/ are written";
  return why;
}

int run_main(const char* program, const std::function<int()>& body) {
  try {
    return body();
  } catch (const UsageError& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return 2;
  } catch (const fp8sim::RecipeError& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return 2;
  } catch (const fp8sim::DataError& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << program << ": error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace common
