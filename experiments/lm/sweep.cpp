// fp8lm's sweeps (sweep.hpp): the grid, the runs, rank 0's work queue, the outputs.
#include "lm/sweep.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

namespace lm {
namespace {

namespace fs = std::filesystem;
using common::UsageError;

// Message tags: to rank 0 (requests and results), to a worker (its next run), and a
// rank's failure in collectively().
constexpr int kTagUp = 101, kTagDown = 102, kTagError = 103;
constexpr std::uint64_t kNoRun = ~0ull;

// fp8lm's options that set the whole sweep rather than one run: not sweep keys.
constexpr const char* kSweepSettings[] = {"recipes", "set",   "seeds",   "first-seed",      "threads",
                                          "out",     "progress", "resume", "stop-after-eval", "sweep",
                                          "sweep-file", "list-recipes", "help", "version"};

// The options that each run's command line replaces (run_args), left out of the report.
constexpr std::string_view kPerRank[] = {"--recipes", "--seeds", "--first-seed", "--out", "--threads", "--progress"};

// One key of the grid and its values, as given.
struct Key {
  std::string name, origin;
  bool recipe = false;  // a recipe key (--set), else a training option (--NAME)
  std::vector<std::string> values;
};

// The grid: points (the keys' values, the last key fastest) x recipes x seeds, a run each;
// run k is (point, recipe, seed) with the seed fastest.
struct Plan {
  std::vector<Key> keys;
  std::vector<std::string> recipe_names;  // the names of o.recipes, for the directories
  std::size_t points = 1, runs = 0;
  std::map<std::string, Text> texts;  // by --data path
};

struct RunId {
  std::size_t point = 0, recipe = 0;
  std::uint64_t seed = 0;
};

RunId run_id(const Options& o, const Plan&, std::size_t k) {
  const std::size_t seeds = std::size_t(o.seeds), recipes = o.recipes.size();
  return {k / (seeds * recipes), k / seeds % recipes, o.first_seed + k % seeds};
}

// The value index of each key at point `point`.
std::vector<std::size_t> point_values(const Plan& p, std::size_t point) {
  std::vector<std::size_t> v(p.keys.size());
  for (std::size_t i = p.keys.size(); i-- > 0;) {
    v[i] = point % p.keys[i].values.size();
    point /= p.keys[i].values.size();
  }
  return v;
}

// "KEY=VALUE_KEY=VALUE", a directory name (and a CSV field): bytes outside [A-Za-z0-9.+-]
// of a key or value as %XX, so that distinct points have distinct names.
std::string point_name(const Plan& p, std::size_t point) {
  const auto escaped = [](const std::string& s) {
    std::string e;
    for (unsigned char c : s) {
      if (std::isalnum(c) || c == '.' || c == '+' || c == '-') e += char(c);
      else {
        char b[4];
        std::snprintf(b, sizeof b, "%%%02X", c);
        e += b;
      }
    }
    return e;
  };
  const std::vector<std::size_t> v = point_values(p, point);
  std::string name;
  for (std::size_t i = 0; i < p.keys.size(); ++i)
    name += (i ? "_" : "") + escaped(p.keys[i].name) + "=" + escaped(p.keys[i].values[v[i]]);
  return name;
}

// "KEY=VALUE, KEY=VALUE" for messages.
std::string point_text(const Plan& p, std::size_t point) {
  const std::vector<std::size_t> v = point_values(p, point);
  std::string s;
  for (std::size_t i = 0; i < p.keys.size(); ++i) s += (i ? ", " : "") + p.keys[i].name + "=" + p.keys[i].values[v[i]];
  return s;
}

// The run's directory under --out.
std::string run_dir(const Options& o, const Plan& p, std::size_t k) {
  const RunId id = run_id(o, p, k);
  return "runs/" + point_name(p, id.point) + "/" + p.recipe_names[id.recipe] + "/seed-" + std::to_string(id.seed);
}

// Whether option `name` is one that a run's command line replaces.
bool per_rank(const std::string& name) {
  return std::find(std::begin(kPerRank), std::end(kPerRank), name) != std::end(kPerRank);
}

// The run's command line: the sweep's options (but those it replaces), the point's keys (a
// recipe key as --set, left out for the fp32 baseline, which --set never changes, as is
// every --set), the run's recipe and seed, and where and on how many threads it runs.
std::vector<std::string> run_args(const Options& o, const Plan& p, std::size_t k, const std::string& out,
                                  int threads) {
  const RunId id = run_id(o, p, k);
  const bool baseline = p.recipe_names[id.recipe] == common::kBaseline;
  std::vector<std::string> a;
  for (const auto& g : o.given)
    if (!(baseline && g.front() == "--set") && !per_rank(g.front())) a.insert(a.end(), g.begin(), g.end());
  const std::vector<std::size_t> v = point_values(p, id.point);
  for (std::size_t i = 0; i < p.keys.size(); ++i) {
    const std::string& value = p.keys[i].values[v[i]];
    if (!p.keys[i].recipe) a.insert(a.end(), {"--" + p.keys[i].name, value});
    else if (!baseline) a.insert(a.end(), {"--set", p.keys[i].name + "=" + value});
  }
  a.insert(a.end(), {"--recipes", o.recipes[id.recipe], "--seeds", "1", "--first-seed", std::to_string(id.seed),
                     "--out", out, "--threads", std::to_string(threads), "--progress", "none"});
  return a;
}

// Whether `key` is a training option of fp8lm (--KEY VALUE) or else a recipe key; refuses
// the sweep's own settings and options without a value.
bool training_key(const std::string& key, const std::string& where) {
  for (const char* s : kSweepSettings)
    if (key == s) throw UsageError(where + ": '" + key + "' is a setting of the whole sweep, not a sweep key");
  bool list_only = false;
  try {
    parse({"--" + key}, list_only);
  } catch (const UnknownOption&) {
    return false;
  } catch (const UsageError&) {
    return true;  // --KEY needs a value
  }
  throw UsageError(where + ": --" + key + " takes no value: not a sweep key");
}

// One line `KEY=V1,V2,...` (of --sweep or a sweep file).
Key parse_line(const SweepLine& line) {
  const std::string where = line.origin + " '" + line.text + "'";
  const std::size_t eq = line.text.find('=');
  if (eq == std::string::npos) throw UsageError(where + ": expected KEY=V1,V2,...");
  Key k;
  k.origin = line.origin;
  k.name = std::string(fp8sim::trim_blanks(std::string_view(line.text).substr(0, eq)));
  if (k.name.empty()) throw UsageError(where + ": no key before '='");
  const std::string list = line.text.substr(eq + 1);
  for (std::size_t pos = 0;;) {
    const std::size_t c = list.find(',', pos);
    const std::string v(fp8sim::trim_blanks(std::string_view(list).substr(pos, c == list.npos ? list.npos : c - pos)));
    if (v.empty()) throw UsageError(where + ": key '" + k.name + "': an empty value");
    if (std::find(k.values.begin(), k.values.end(), v) != k.values.end())
      throw UsageError(where + ": key '" + k.name + "': the value '" + v + "' is given twice");
    k.values.push_back(v);
    if (c == list.npos) break;
    pos = c + 1;
  }
  k.recipe = !training_key(k.name, where);
  return k;
}

// The grid of `o`, every run's options checked (and the model built once per point, on its
// data) before any run starts: throws UsageError naming the key or point.
Plan make_plan(const Options& o) {
  Plan p;
  for (const SweepLine& line : o.sweep) {
    Key k = parse_line(line);
    for (const Key& other : p.keys)
      if (other.name == k.name) throw UsageError("--sweep: key '" + k.name + "' given twice (" + other.origin + ", " + k.origin + ")");
    for (const auto& g : o.given)
      if (!k.recipe ? g.front() == "--" + k.name
                    : g.front() == "--set" && fp8sim::trim_blanks(std::string_view(g.back()).substr(0, g.back().find('='))) == k.name)
        throw UsageError("--sweep: key '" + k.name + "' is also given as " + g.front() + " " + (g.size() > 1 ? g.back() : ""));
    if (p.points > kMaxSweepRuns / k.values.size())
      throw UsageError("--sweep: more than " + std::to_string(kMaxSweepRuns) + " points");
    p.points *= k.values.size();
    p.keys.push_back(std::move(k));
  }
  const std::size_t per_point = o.recipes.size() * std::size_t(o.seeds);
  if (p.points > kMaxSweepRuns / per_point)
    throw UsageError("--sweep: " + std::to_string(p.points) + " points x " + std::to_string(o.recipes.size()) +
                     " recipes x " + std::to_string(o.seeds) + " seeds is more than " + std::to_string(kMaxSweepRuns) +
                     " runs");
  p.runs = p.points * per_point;
  bool any_recipe_key = false, any_changed = false;
  for (const Key& k : p.keys) any_recipe_key |= k.recipe;
  for (const std::string& spec : o.recipes) {
    p.recipe_names.push_back(fp8sim::resolve_recipe(spec).name);
    any_changed |= p.recipe_names.back() != common::kBaseline;
  }
  if (any_recipe_key && !any_changed)
    throw UsageError("--sweep: a recipe key changes no recipe: it leaves the fp32 baseline as it is, as --set does");
  for (std::size_t point = 0; point < p.points; ++point) {
    const std::string where = "--sweep " + point_text(p, point);
    try {
      if (point_name(p, point).size() > 255) throw UsageError("the directory name of the point is too long");
      for (std::size_t r = 0; r < o.recipes.size(); ++r) {
        bool list_only = false;
        const std::size_t k = point * per_point + r * std::size_t(o.seeds);
        const Options ro = parse(run_args(o, p, k, "-", 1), list_only);
        const std::vector<common::StudyRecipe> recipes = common::resolve_recipes(ro.recipes, ro.sets);
        if (r) continue;
        auto it = p.texts.find(ro.data);
        if (it == p.texts.end()) it = p.texts.emplace(ro.data, load(ro.data)).first;
        fp8sim::LmConfig c = ro;  // the model on this point's data, as run_study builds it
        c.recipe = recipes.front().recipe;
        c.seed = ro.first_seed;
        try {
          const fp8sim::LmRun run(c, it->second.split);
        } catch (const fp8sim::RecipeError&) {
          throw;
        } catch (const std::invalid_argument& e) {
          throw UsageError(std::string("the model or the training settings: ") + e.what());
        }
      }
    } catch (const UsageError& e) {
      throw UsageError(where + ": " + e.what());
    } catch (const fp8sim::RecipeError& e) {
      throw UsageError(where + ": " + e.what());
    } catch (const fp8sim::DataError& e) {
      throw UsageError(where + ": " + e.what());
    }
  }
  return p;
}

// A run's files (paths relative to its directory, sorted) and its wall time.
struct RunFiles {
  std::vector<std::pair<std::string, std::string>> files;
  double seconds = 0;
};

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in && !in.eof()) throw fp8sim::DataError(path.string() + ": cannot read it");
  return bytes;
}

// Trains run k in a directory of its own under the temporary directory, as fp8lm run with
// the run's options, and returns what it wrote but its checkpoints, its lock file and its
// timings (the sweep's timings.csv has the run's wall time).
RunFiles train_run(const Options& o, const Plan& p, std::size_t k, int threads) {
  const fs::path stage =
      fs::temp_directory_path() / ("fp8lm-run-" + std::to_string(::getpid()) + "-" + std::to_string(k));
  struct Remove {
    fs::path path;
    ~Remove() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  } remove{stage};
  fs::remove_all(stage);
  bool list_only = false;
  const Options ro = parse(run_args(o, p, k, stage.string(), threads), list_only);
  const auto t0 = std::chrono::steady_clock::now();
  run_study(ro, p.texts.at(ro.data), true);
  RunFiles r;
  for (const auto& e : fs::recursive_directory_iterator(stage)) {
    const std::string rel = fs::relative(e.path(), stage).generic_string();
    if (!e.is_regular_file() || rel.rfind("checkpoints/", 0) == 0 || rel == ".fp8lm.lock" || rel == kTimingsFile)
      continue;
    r.files.emplace_back(rel, read_bytes(e.path()));
  }
  std::sort(r.files.begin(), r.files.end());
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

// "# fp8lm OPTIONS": the first line of a run's list of files, the run's command line but
// where and on how many threads it ran (which change no byte of it).
std::string command_line(const Options& o, const Plan& p, std::size_t k) {
  const std::vector<std::string> a = run_args(o, p, k, "DIR", 1);
  std::string line = "# fp8lm";
  for (std::size_t i = 0; i + 6 < a.size(); ++i) line += " " + a[i];
  return line + " --out DIR";
}

// Whether the run in `dir` is complete: its list of files is there, and every file in it
// with its size. A complete run of another command line is refused (UsageError).
bool complete(const fs::path& dir, const std::string& command) {
  std::ifstream in(dir / kRunFilesList);
  std::string line;
  if (!in || !std::getline(in, line)) return false;
  int files = 0;
  const std::string first = line;
  while (std::getline(in, line)) {
    const std::size_t sp = line.find(' ');
    std::error_code ec;
    if (sp == line.npos || fs::file_size(dir / line.substr(sp + 1), ec) != std::strtoull(line.c_str(), nullptr, 10) || ec)
      return false;
    ++files;
  }
  if (files && first != command)
    throw UsageError((dir / kRunFilesList).string() + ": the run of other options (" + first.substr(std::min<std::size_t>(2, first.size())) +
                     "), not " + command.substr(2) + ": remove it or choose another --out");
  return files > 0;
}

// Writes a run's files into `dir` (replacing what an unfinished run left), the list last.
void write_run(const fs::path& dir, const RunFiles& r, const std::string& command) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  std::string list = command + "\n";
  for (const auto& [rel, bytes] : r.files) {
    fs::create_directories((dir / rel).parent_path());
    common::write_file((dir / rel).string(), bytes);
    list += std::to_string(bytes.size()) + " " + rel + "\n";
  }
  common::write_file((dir / kRunFilesList).string(), list);
}

// Messages between the ranks: bytes in, bytes out.
struct Writer {
  std::vector<std::byte> b;
  Writer& u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) b.push_back(std::byte(v >> (8 * i)));
    return *this;
  }
  Writer& str(const std::string& s) {
    u64(s.size());
    for (char c : s) b.push_back(std::byte(c));
    return *this;
  }
};

struct Reader {
  const std::vector<std::byte>& b;
  std::size_t pos = 0;
  std::uint64_t u64() {
    if (b.size() - pos < 8) throw std::runtime_error("a message cut short");
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t(b[pos++]) << (8 * i);
    return v;
  }
  std::string str() {
    const std::uint64_t n = u64();
    if (b.size() - pos < n) throw std::runtime_error("a message cut short");
    std::string s(reinterpret_cast<const char*>(b.data() + pos), std::size_t(n));
    pos += std::size_t(n);
    return s;
  }
};

// To rank 0: 'R' (a request), 'D' run seconds files (done, and a request), 'F' run what
// (failed, and a request), 'X' (this rank has finished).
enum Kind : std::uint64_t { kRequest = 'R', kDone = 'D', kFailed = 'F', kExit = 'X' };

Writer done_message(std::size_t k, const RunFiles& r) {
  Writer w;
  std::uint64_t bits;
  std::memcpy(&bits, &r.seconds, 8);
  w.u64(kDone).u64(k).u64(bits).u64(r.files.size());
  for (const auto& [rel, bytes] : r.files) w.str(rel).str(bytes);
  return w;
}

// The last row of evals.csv: iteration, train loss, val loss, val bits per character, as written.
std::vector<std::string> last_eval(const std::string& evals) {
  std::string last;
  std::istringstream in(evals);
  for (std::string line; std::getline(in, line);) last = line;
  std::vector<std::string> f;
  std::istringstream l(last);
  for (std::string x; std::getline(l, x, ',');) f.push_back(x);
  if (f.size() != 6) return {"", "", "", ""};
  return {f[2], f[3], f[4], f[5]};
}

// Rank 0's queue of runs and what came back: writes each run as it ends.
class Queue {
 public:
  Queue(const Options& o, const Plan& p, std::vector<std::size_t> todo)
      : o_(o), p_(p), todo_(std::move(todo)), seconds_(p.runs, -1), rank_(p.runs, -1) {}

  std::optional<std::size_t> next() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!failure_.empty() || next_ == todo_.size()) return std::nullopt;
    return todo_[next_++];
  }

  void done(std::size_t k, const RunFiles& r, int rank) {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string dir = run_dir(o_, p_, k);
    try {
      write_run(fs::path(o_.out) / dir, r, command_line(o_, p_, k));
    } catch (const std::exception& e) {
      if (failure_.empty()) failure_ = "run " + dir + " from rank " + std::to_string(rank) + ": writing it: " + e.what();
      return;
    }
    seconds_[k] = r.seconds;
    rank_[k] = rank;
    ++finished_;
    if (o_.progress == "none") return;
    std::string val;
    for (const auto& [rel, bytes] : r.files)
      if (rel == "evals.csv") val = last_eval(bytes)[2];
    std::fprintf(stderr, "fp8lm: [%zu/%zu] %s: val loss %s (rank %d, %.1f s)\n", finished_, todo_.size(), dir.c_str(),
                 val.c_str(), rank, r.seconds);
  }

  void failed(std::size_t k, int rank, const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    if (failure_.empty())
      failure_ = "run " + (k < p_.runs ? run_dir(o_, p_, k) : std::string("?")) + " failed on rank " +
                 std::to_string(rank) + ": " + what;
  }

  std::string failure() {
    std::lock_guard<std::mutex> lock(mu_);
    return failure_;
  }
  double seconds(std::size_t k) const { return seconds_[k]; }
  int rank(std::size_t k) const { return rank_[k]; }

 private:
  const Options& o_;
  const Plan& p_;
  std::vector<std::size_t> todo_;
  std::size_t next_ = 0, finished_ = 0;
  std::vector<double> seconds_;
  std::vector<int> rank_;
  std::string failure_;
  std::mutex mu_;
};

// Rank 0's scheduler: the one thread of rank 0 that calls the communicator; answers every
// request with the next run (or none), then writes what came with it (so that the worker
// trains while rank 0 writes), until every other rank has finished.
void serve(fp8sim::Communicator& comm, Queue& q) {
  try {
    for (int left = comm.size() - 1; left > 0;) {
      const fp8sim::Message m = comm.receive_any(kTagUp);
      Reader r{m.bytes};
      std::uint64_t kind = 0, k = kNoRun;
      RunFiles f;
      try {
        kind = r.u64();
        if (kind == kDone) {
          k = r.u64();
          const std::uint64_t bits = r.u64(), n = r.u64();
          std::memcpy(&f.seconds, &bits, 8);
          for (std::uint64_t i = 0; i < n; ++i) {
            std::string rel = r.str();
            f.files.emplace_back(std::move(rel), r.str());
          }
        } else if (kind == kFailed) {
          k = r.u64();
          q.failed(std::size_t(k), m.from, r.str());
        }
      } catch (const std::exception& e) {
        kind = 0;
        q.failed(kNoRun, m.from, std::string("a bad message: ") + e.what());
      }
      if (kind == kExit) {
        --left;
        continue;
      }
      Writer w;
      w.u64(q.next().value_or(kNoRun));
      comm.send(w.b, m.from, kTagDown);
      if (kind == kDone) q.done(std::size_t(k), f, m.from);
    }
  } catch (const std::exception& e) {
    comm.abort(std::string("fp8lm: the sweep's scheduler: ") + e.what(), 1);
  }
}

// sweep.csv, report.md and timings.csv, from the runs' directories.
void write_sweep_outputs(const Options& o, const Plan& p, const Queue& q, double wall, int ranks) {
  const fs::path out(o.out);
  std::ostringstream csv, times;
  for (const Key& k : p.keys) csv << k.name << ",";
  csv << "recipe,seed,iterations,final_train_loss,final_val_loss,val_bits_per_char,diverged,directory\n";
  times << "directory,rank,seconds\n";
  // Per point and recipe: the final validation losses over the seeds, and whether any diverged.
  std::vector<std::vector<double>> losses(p.points * o.recipes.size());
  std::vector<int> diverged(losses.size(), 0);
  for (std::size_t k = 0; k < p.runs; ++k) {
    const RunId id = run_id(o, p, k);
    const std::string dir = run_dir(o, p, k);
    const std::vector<std::string> e = last_eval(read_bytes(out / dir / "evals.csv"));
    const bool div = read_bytes(out / dir / "summary.json").find("\"diverged\": true") != std::string::npos;
    const std::vector<std::size_t> v = point_values(p, id.point);
    for (std::size_t i = 0; i < p.keys.size(); ++i) csv << p.keys[i].values[v[i]] << ",";
    csv << p.recipe_names[id.recipe] << "," << id.seed << "," << e[0] << "," << e[1] << "," << e[2] << "," << e[3]
        << "," << (div ? 1 : 0) << "," << dir << "\n";
    const std::size_t g = id.point * o.recipes.size() + id.recipe;
    losses[g].push_back(std::strtod(e[2].c_str(), nullptr));
    diverged[g] += div;
    if (q.rank(k) >= 0) times << dir << "," << q.rank(k) << "," << common::fixed(q.seconds(k), 3) << "\n";
    else times << dir << ",-,complete before (--resume)\n";
  }
  times << "wall," << ranks << "," << common::fixed(wall, 3) << "\n";

  std::ostringstream r;
  r << "# Language-model precision sweep\n\n"
    << common::count_text(long(p.runs), "run") << ": " << common::count_text(long(p.points), "point") << " x "
    << common::count_text(long(o.recipes.size()), "recipe") << " x " << common::count_text(o.seeds, "seed") << " ("
    << o.first_seed << ".." << o.first_seed + std::uint64_t(o.seeds) - 1 << "). The grid, the first key slowest:\n\n";
  for (const Key& k : p.keys) {
    r << "- `" << k.name << "` (" << (k.recipe ? "a recipe key, as --set: not on the fp32 baseline" : "--" + k.name) << "):";
    for (const std::string& v : k.values) r << " " << v;
    r << "\n";
  }
  r << "\nThe options of every run:";
  for (const auto& g : o.given)
    if (!per_rank(g.front()))
      for (const std::string& a : g) r << " " << a;
  r << "\nEach run's directory `runs/POINT/RECIPE/seed-S/` holds what fp8lm writes when run with these options, "
       "the point's keys, `--recipes RECIPE --seeds 1 --first-seed S` (its checkpoints and `"
    << kTimingsFile << "` aside), and `"
    << kRunFilesList << "`, its command line and the list of its files, written last. Every run's numbers are in `sweep.csv`; the wall "
       "times in `timings.csv`.\n\n## Final validation loss\n\nMean +- sample standard deviation over the seeds, "
       "nats per character; vs fp32: the difference in percent of the same point's fp32 loss.\n\n|";
  for (const Key& k : p.keys) r << " " << k.name << " |";
  r << " recipe | val loss | vs fp32 % | diverged |\n|";
  for (std::size_t i = 0; i < p.keys.size() + 4; ++i) r << "---|";
  r << "\n";
  for (std::size_t point = 0; point < p.points; ++point) {
    const std::vector<std::size_t> v = point_values(p, point);
    const double* base = nullptr;
    double base_mean = 0;
    for (std::size_t i = 0; i < o.recipes.size(); ++i)
      if (p.recipe_names[i] == common::kBaseline) {
        base_mean = common::mean(losses[point * o.recipes.size() + i]);
        base = &base_mean;
      }
    for (std::size_t i = 0; i < o.recipes.size(); ++i) {
      const std::vector<double>& l = losses[point * o.recipes.size() + i];
      r << "|";
      for (std::size_t j = 0; j < p.keys.size(); ++j) r << " " << p.keys[j].values[v[j]] << " |";
      const double m = common::mean(l);
      r << " " << p.recipe_names[i] << " | " << common::loss_text(m) << " +- " << common::fixed(common::stdev(l), 4)
        << " | "
        << (base && p.recipe_names[i] != common::kBaseline ? common::signed_fixed(100 * (m - *base) / *base, 2) : "-")
        << " | " << diverged[point * o.recipes.size() + i] << " of " << l.size() << " |\n";
    }
  }
  // The table first, the report last: a report.md says that its sweep is complete.
  common::write_file((out / "sweep.csv").string(), csv.str());
  common::write_file((out / "timings.csv").string(), times.str());
  common::write_file((out / "report.md").string(), r.str());
}

}  // namespace

bool collectively(fp8sim::Communicator& comm, const std::function<void()>& body) {
  std::exception_ptr error;
  std::string what;
  try {
    body();
  } catch (const std::exception& e) {
    error = std::current_exception();
    what = e.what();
  }
  if (comm.size() == 1) {
    if (error) std::rethrow_exception(error);
    return true;
  }
  // The lowest failing rank r as the maximum of size - r (0: none failed).
  double lowest[1] = {error ? double(comm.size() - comm.rank()) : 0.0};
  comm.allreduce_max(lowest);
  if (lowest[0] == 0) return true;
  const int failing = comm.size() - int(lowest[0]);
  if (comm.rank() == 0) {
    if (error) std::rethrow_exception(error);
    const fp8sim::Message m = comm.receive_any(kTagError);
    throw UsageError("rank " + std::to_string(failing) + ": " +
                     std::string(reinterpret_cast<const char*>(m.bytes.data()), m.bytes.size()));
  }
  if (comm.rank() == failing)
    comm.send(std::as_bytes(std::span(what.data(), what.size())), 0, kTagError);
  return false;
}

int run_sweep(const Options& given, fp8sim::Communicator& comm) {
  // Not into a study's default directory, whose report.md the sweep's would replace.
  Options o = given;
  if (std::none_of(o.given.begin(), o.given.end(), [](const auto& g) { return g.front() == "--out"; }))
    o.out = kDefaultSweepOut;
  Plan p;
  if (!collectively(comm, [&] { p = make_plan(o); })) return 0;  // rank 0 ends the job
  const bool root = comm.rank() == 0;

  if (!root) {
    // A worker: asks rank 0 for a run whenever one of its slots is free.
    const common::ThreadPlan plan = common::plan_threads(o.threads, p.runs);
    std::mutex comm_mu;
    common::for_each_run(std::size_t(plan.parallel), plan.parallel, [&](std::size_t) {
      Writer msg;
      msg.u64(kRequest);
      for (;;) {
        std::vector<std::byte> reply;
        {
          std::lock_guard<std::mutex> lock(comm_mu);
          comm.send(msg.b, 0, kTagUp);
          reply = comm.receive_any(kTagDown).bytes;
        }
        const std::uint64_t k = Reader{reply}.u64();
        if (k == kNoRun) return;
        try {
          msg = done_message(std::size_t(k), train_run(o, p, std::size_t(k), plan.per_run));
        } catch (const std::exception& e) {
          msg = Writer{};
          msg.u64(kFailed).u64(k).str(e.what());
        }
      }
    });
    Writer bye;
    bye.u64(kExit);
    comm.send(bye.b, 0, kTagUp);
    return 0;
  }

  // Rank 0: the results directory, locked; the runs to do (--resume: those not complete).
  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) throw fp8sim::DataError(o.out + ": cannot create the results directory: " + ec.message());
  const common::DirectoryLock lock(o.out, "fp8lm");
  std::vector<std::size_t> todo;
  for (std::size_t k = 0; k < p.runs; ++k)
    if (!o.resume || !complete(fs::path(o.out) / run_dir(o, p, k), command_line(o, p, k))) todo.push_back(k);
  const common::ThreadPlan plan = common::plan_threads(o.threads, todo.size());
  if (o.progress != "none")
    std::cerr << "fp8lm: sweep: " << common::count_text(long(p.runs), "run") << " ("
              << common::count_text(long(p.points), "point") << " x " << common::count_text(long(o.recipes.size()), "recipe")
              << " x " << common::count_text(o.seeds, "seed") << "), " << todo.size() << " to train on "
              << common::count_text(comm.size(), "rank") << " (" << comm.description() << "); rank 0: "
              << common::count_text(plan.parallel, "run") << " at a time, " << common::count_text(plan.per_run, "thread")
              << " each\n";
  Queue q(o, p, std::move(todo));
  const auto t0 = std::chrono::steady_clock::now();
  std::thread scheduler;
  if (comm.size() > 1) scheduler = std::thread([&] { serve(comm, q); });
  try {
    common::for_each_run(std::size_t(plan.parallel), plan.parallel, [&](std::size_t) {
      while (const std::optional<std::size_t> k = q.next()) {
        try {
          q.done(*k, train_run(o, p, *k, plan.per_run), 0);
        } catch (const std::exception& e) {
          q.failed(*k, 0, e.what());
        }
      }
    });
  } catch (const std::exception& e) {
    q.failed(kNoRun, 0, e.what());
  }
  if (scheduler.joinable()) scheduler.join();
  if (const std::string f = q.failure(); !f.empty())
    throw std::runtime_error(f + " (the sweep's complete runs are kept: --resume goes on from them)");
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  write_sweep_outputs(o, p, q, wall, comm.size());
  std::cout << "sweep: " << common::count_text(long(p.runs), "run") << " in " << o.out
            << "/runs; sweep.csv, report.md, timings.csv in " << o.out << "/\n";
  return 0;
}

}  // namespace lm
