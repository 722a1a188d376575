// fp8exp underflow: gradients cast to FP8 without a scale underflow. A deep ReLU MLP on
// Fashion-MNIST is trained under plain casts of its gradients (fp8-unscaled: e5m2, and
// e4m3fn as a harsher variant) and under per-tensor scaling, and the fraction of each
// layer's nonzero output-gradient values that became zero (QuantStats::flushed over
// nonzero, the dgrad and wgrad operand a) is logged over training beside the loss.
//   Micikevicius et al., "FP8 Formats for Deep Learning", arXiv:2209.05433.
//   Mellempudi, Srinivasan, Das and Kaul, "Mixed Precision Training With 8-bit Floating
//   Point", arXiv:1905.12334.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/study_common.hpp"
#include "fashion_mnist/data.hpp"
#include "findings/findings.hpp"
#include "fp8sim/layers.hpp"
#include "fp8sim/recipe.hpp"
#include "fp8sim/train.hpp"

namespace findings {
namespace {

using common::UsageError;

constexpr const char* kName = "underflow";

/// The variant of fp8-unscaled that this experiment adds: e4m3fn gradients, unscaled.
constexpr const char* kE4m3Unscaled = "fp8-unscaled-e4m3";

/// The gradient operand slots: operand a of dgrad and of wgrad (common::kTensorNames).
constexpr int kDgrad = 1, kWgrad = 2;

struct Options {
  std::vector<std::string> recipes = {"fp32", "fp8-unscaled", kE4m3Unscaled, "fp8-hybrid-delayed"};
  int depth = 8;
  int width = 128;
  int epochs = 8;
  std::int64_t train = 60000, test = 10000;
  int batch = 128;
  int log_every = 20;
  double lr = 1e-3;
  std::uint64_t seed = 1;
  int threads = 0;
  std::string data = fashion_mnist::kDir;
  std::string out = default_out(kName);
  bool plots = true;
};

Options parse(int argc, char** argv) {
  Options o;
  OptionTable table = {
      kName,
      "Trains a deep ReLU MLP on Fashion-MNIST under unscaled FP8 casts of the gradients and\n"
      "under per-tensor scaling, and logs per layer the fraction of nonzero output-gradient\n"
      "values that the cast flushed to zero, with the training loss.",
      {
          {"--recipes", "LIST",
           "comma-separated recipes (default\n"
           "fp32,fp8-unscaled,fp8-unscaled-e4m3,fp8-hybrid-delayed);\n"
           "fp8-unscaled-e4m3 is fp8-unscaled with e4m3fn gradients",
           set_names(o.recipes)},
          {"--depth", "N", "linear layers (default 8), N - 1 hidden layers with ReLU",
           set_number(o.depth, 2, 64)},
          {"--width", "W", "hidden features (default 128)", set_number(o.width, 1, 4096)},
          {"--epochs", "E", "epochs (default 8)", set_number(o.epochs, 1, 1000)},
          {"--train", "N", "training examples used, the first N (default 60000: all)",
           set_number<std::int64_t>(o.train, 1, 60000)},
          {"--test", "N", "test examples used, the first N (default 10000: all)",
           set_number<std::int64_t>(o.test, 1, 10000)},
          {"--batch", "B", "examples per step (default 128)", set_number(o.batch, 1, 60000)},
          {"--log-every", "S", "steps per logged window (default 20)",
           set_number(o.log_every, 1, 1000000)},
          {"--lr", "X", "AdamW learning rate (default 0.001)", set_number(o.lr, 1e-8, 10.0)},
          {"--seed", "S", "seed of initialisation and shuffling (default 1)",
           set_number<std::uint64_t>(o.seed, 0, ~std::uint64_t{0})},
          {"--threads", "T", "threads (default: the CPUs this process may use)",
           set_number(o.threads, 0, 1024)},
          {"--data", "DIR",
           std::string("Fashion-MNIST directory (default ") + fashion_mnist::kDir + ")",
           set_text(o.data)},
      },
      ""};
  table.add_outputs(o.out, o.plots);
  table.parse(argc, argv);
  if (o.batch > o.train)
    throw UsageError("--batch " + std::to_string(o.batch) + " is larger than --train " +
                     std::to_string(o.train) + ": an epoch would have no step");
  // The last partial batch of an epoch is dropped.
  const std::int64_t steps = o.train / o.batch * o.epochs;
  if (o.log_every > steps)
    throw UsageError("--log-every " + std::to_string(o.log_every) + " is more than the " +
                     std::to_string(steps) + " steps of the run: nothing would be logged");
  return o;
}

/// The recipe named `spec`: kE4m3Unscaled, a named recipe or a .recipe file.
fp8sim::Recipe recipe_of(const std::string& spec) {
  if (spec == kE4m3Unscaled) {
    fp8sim::Recipe r = fp8sim::named_recipe("fp8-unscaled");
    fp8sim::set_recipe_key(r, "grad.format", "e4m3fn");
    r.name = kE4m3Unscaled;
    r.description = "e4m3fn forward and gradients, plain saturating casts (no scaling)";
    return r;
  }
  try {
    fp8sim::Recipe r = fp8sim::resolve_recipe(spec);
    fp8sim::check_recipe(r);
    return r;
  } catch (const fp8sim::RecipeError& e) {
    throw UsageError(std::string("--recipes: ") + e.what());
  }
}

/// The network: depth linear layers, width features wide, ReLU between them.
fp8sim::Model make_model(const Options& o, const fp8sim::Dataset& data, std::uint64_t seed) {
  std::vector<std::unique_ptr<fp8sim::Layer>> layers;
  std::int64_t in = data.features();
  for (int l = 0; l < o.depth; ++l) {
    const std::int64_t out = l + 1 == o.depth ? data.classes : o.width;
    layers.push_back(std::make_unique<fp8sim::Linear>(l, in, out));
    if (l + 1 < o.depth) layers.push_back(std::make_unique<fp8sim::ReLU>());
    in = out;
  }
  return fp8sim::Model(std::move(layers), {data.features()}, seed);
}

/// One logged window of one layer's output gradient.
struct Cell {
  bool dgrad = false, wgrad = false;  ///< Whether the slot was quantized.
  fp8sim::QuantStats d, w;
};

/// One recipe's run and its logged windows: cells[window][layer].
struct Result {
  fp8sim::Recipe recipe;
  std::unique_ptr<fp8sim::Run> run;
  std::vector<std::int64_t> steps;  ///< The last step of each window.
  std::vector<double> loss;         ///< Mean batch loss of each window.
  std::vector<std::vector<Cell>> cells;
  double test_loss = 0, test_accuracy = 0, seconds = 0;
  std::string divergence;
};

void collect(Result& r, int depth, int log_every) {
  const fp8sim::Run& run = *r.run;
  const std::int64_t steps = std::int64_t(run.step_loss.size());
  for (std::int64_t s = log_every; s <= steps; s += log_every) {
    r.steps.push_back(s);
    double sum = 0;
    for (std::int64_t k = s - log_every; k < s; ++k) sum += run.step_loss[std::size_t(k)];
    r.loss.push_back(sum / log_every);
    r.cells.emplace_back(std::size_t(depth));
  }
  for (const fp8sim::StatsRow& row : run.stats_rows) {
    if (row.operand != 0 || (row.role != kDgrad && row.role != kWgrad)) continue;
    if (row.step % log_every || row.layer < 0 || row.layer >= depth) continue;
    const std::size_t w = std::size_t(row.step / log_every - 1);
    if (w >= r.cells.size()) continue;
    Cell& c = r.cells[w][std::size_t(row.layer)];
    if (row.role == kDgrad) {
      c.dgrad = true;
      c.d = row.stats;
    } else {
      c.wgrad = true;
      c.w = row.stats;
    }
  }
}

/// The shortest text that reads back as `v`.
std::string num(double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string pct(double f) { return common::fixed(100 * f, 2) + "%"; }

bool quantized(const Result& r) {
  for (const auto& w : r.cells)
    for (const Cell& c : w)
      if (c.wgrad) return true;
  return false;
}

/// Whether the recipe casts the gradients to a format of at most 8 bits without a scale
/// (the unscaled recipes), or scales them (the scaled ones); bf16 or fp32 gradients are
/// neither.
bool narrow(const fp8sim::OperandSpec& g) {
  return int(g.format.is_signed) + g.format.exponent_bits + g.format.mantissa_bits <= 8;
}
bool unscaled(const fp8sim::Recipe& r) {
  const fp8sim::OperandSpec& g = r.roles[kWgrad].a;
  return g.scaling.kind == fp8sim::ScalingKind::none && narrow(g);
}
bool scaled(const fp8sim::Recipe& r) {
  return r.roles[kWgrad].a.scaling.kind != fp8sim::ScalingKind::none;
}

int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  std::vector<Result> results;
  {
    std::set<std::string> seen;
    for (const std::string& s : o.recipes) {
      if (!seen.insert(s).second) throw UsageError("--recipes: '" + s + "' given twice");
      Result r;
      r.recipe = recipe_of(s);
      for (const Result& x : results)
        if (x.recipe.name == r.recipe.name)
          throw UsageError("--recipes: two recipes are named '" + r.recipe.name + "'");
      results.push_back(std::move(r));
    }
  }
  const fp8sim::Dataset train = fashion_mnist::load(o.data, true);
  const fp8sim::Dataset test = fashion_mnist::load(o.data, false);
  const Outputs out(o.out, o.plots);
  const common::DirectoryLock lock(o.out, "fp8exp");

  const auto t0 = std::chrono::steady_clock::now();
  for (Result& r : results) {
    fp8sim::RunConfig c;
    c.recipe = r.recipe;
    c.model = "mlp-depth" + std::to_string(o.depth) + "-width" + std::to_string(o.width);
    c.seed = o.seed;
    c.epochs = o.epochs;
    c.batch = o.batch;
    c.optimizer.lr = float(o.lr);
    c.log_every = o.log_every;
    c.train_limit = o.train;
    c.test_limit = o.test;
    r.run = std::make_unique<fp8sim::Run>(c, make_model(o, train, o.seed), train, test);
  }
  const common::ThreadPlan plan = common::plan_threads(o.threads, results.size());
  std::cerr << common::plan_text("fp8exp underflow", plan) << "\n";
  common::for_each_run(results.size(), plan.parallel, [&](std::size_t i) {
    Result& r = results[i];
    fp8emu::Execution exec;
    exec.threads = plan.per_run;
    r.run->set_execution(exec);
    const auto s0 = std::chrono::steady_clock::now();
    while (!r.run->done()) r.run->train_epoch();
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
    r.test_loss = r.run->epoch_rows.back().test_loss;
    r.test_accuracy = r.run->epoch_rows.back().test_accuracy;
    r.divergence = r.run->divergence();
    collect(r, o.depth, o.log_every);
  });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // CSV: every window of every layer of every recipe.
  std::ostringstream csv;
  csv << "step,recipe,layer,dgrad_grad_flushed_fraction,wgrad_grad_flushed_fraction,grad_count,"
         "grad_nonzero,"
         "grad_flushed,grad_amax,train_loss\n";
  for (const Result& r : results)
    for (std::size_t w = 0; w < r.steps.size(); ++w)
      for (int l = 0; l < o.depth; ++l) {
        const Cell& c = r.cells[w][std::size_t(l)];
        csv << r.steps[w] << ',' << r.recipe.name << ',' << l + 1 << ','
            << (c.dgrad ? num(c.d.flushed_fraction()) : "") << ','
            << (c.wgrad ? num(c.w.flushed_fraction()) : "") << ','
            << (c.wgrad ? std::to_string(c.w.count) : "") << ','
            << (c.wgrad ? std::to_string(c.w.nonzero) : "") << ','
            << (c.wgrad ? std::to_string(c.w.flushed) : "") << ',' << (c.wgrad ? num(c.w.amax) : "")
            << ',' << num(r.loss[w]) << '\n';
      }
  out.write("underflow.csv", csv.str());

  // Plots: the flushed fraction of wgrad's gradient operand against the step, one line per
  // layer, one panel per recipe that quantizes the gradients; and the loss of every recipe.
  std::vector<std::string> pngs = {"underflow-flushed.png", "underflow-loss.png"};
  std::ostringstream gp;
  int panels = 0;
  for (const Result& r : results) panels += quantized(r);
  gp << "set terminal pngcairo size 1000," << std::max(400, 350 * panels)
     << " noenhanced\nset grid\nset key outside right\nset output 'underflow-flushed.png.tmp'\n"
        "set multiplot layout "
     << std::max(panels, 1)
     << ",1 title 'output gradients flushed to zero by the cast (wgrad operand a), per layer'\n";
  for (const Result& r : results) {
    if (!quantized(r)) continue;
    gp << "set title '" << r.recipe.name << "'\nset xlabel 'step'\nset ylabel 'flushed fraction'\n"
       << "set yrange [0:1]\nplot";
    for (int l = 0; l < o.depth; ++l) {
      std::ostringstream dat;
      dat << "# step wgrad_grad_flushed_fraction (" << r.recipe.name << ", layer " << l + 1
          << ")\n";
      for (std::size_t w = 0; w < r.steps.size(); ++w)
        dat << r.steps[w] << ' ' << num(r.cells[w][std::size_t(l)].w.flushed_fraction()) << '\n';
      const std::string file =
          "plot-data/" + r.recipe.name + "-layer" + std::to_string(l + 1) + ".dat";
      out.write(file, dat.str());
      gp << (l ? ", " : " ") << "'" << file << "' using 1:2 with lines title 'layer " << l + 1
         << "'";
    }
    gp << "\n";
  }
  gp << "unset multiplot\nunset output\nset terminal pngcairo size 1000,500 noenhanced\nset "
        "autoscale y\n"
        "set output 'underflow-loss.png.tmp'\nset title 'training loss (mean over each logged "
        "window)'\n"
        "set xlabel 'step'\nset ylabel 'loss'\nplot";
  for (std::size_t i = 0; i < results.size(); ++i) {
    const Result& r = results[i];
    std::ostringstream dat;
    dat << "# step train_loss (" << r.recipe.name << ")\n";
    for (std::size_t w = 0; w < r.steps.size(); ++w)
      dat << r.steps[w] << ' ' << num(r.loss[w]) << '\n';
    const std::string file = "plot-data/" + r.recipe.name + "-loss.dat";
    out.write(file, dat.str());
    gp << (i ? ", " : " ") << "'" << file << "' using 1:2 with lines title '" << r.recipe.name
       << "'";
  }
  gp << "\nunset output\n";
  const std::string plot_note = out.plot(gp.str(), pngs);

  // The report: per recipe and layer, the flushed fraction in the first and the last window.
  const std::size_t last = results.front().steps.size() - 1;
  std::ostringstream table;
  table << "| recipe | layer | grad flushed, first window (dgrad / wgrad) | nonzero share before "
           "the cast | "
           "last window (dgrad / wgrad) | nonzero share | grad amax, last window "
           "|\n|---|---|---|---|---|---|---|\n";
  for (const Result& r : results) {
    if (!quantized(r)) continue;
    for (int l = 0; l < o.depth; ++l) {
      const Cell& a = r.cells.front()[std::size_t(l)];
      const Cell& b = r.cells[last][std::size_t(l)];
      const auto both = [](const Cell& c) {
        if (c.w.nonzero == 0) return std::string("no nonzero value");
        return (c.dgrad ? pct(c.d.flushed_fraction()) : std::string("-")) + " / " +
               pct(c.w.flushed_fraction());
      };
      const auto share = [](const Cell& c) {
        return pct(c.w.count ? double(c.w.nonzero) / double(c.w.count) : 0);
      };
      table << "| " << r.recipe.name << " | " << l + 1 << " | " << both(a) << " | " << share(a)
            << " | " << both(b) << " | " << share(b) << " | " << num(b.w.amax) << " |\n";
    }
  }
  std::ostringstream losses;
  losses << "| recipe | training loss, first window | last window | test loss | test accuracy | "
            "wall time |\n"
            "|---|---|---|---|---|---|\n";
  for (const Result& r : results)
    losses << "| " << r.recipe.name << " | " << common::fixed(r.loss.front(), 4) << " | "
           << common::fixed(r.loss[last], 4) << " | " << common::fixed(r.test_loss, 4) << " | "
           << pct(r.test_accuracy) << " | " << common::fixed(r.seconds, 1) << " s |"
           << (r.divergence.empty() ? "" : " diverged: " + r.divergence) << "\n";

  // The claim, as checked: in the last window, every unscaled recipe flushes a larger
  // fraction of the nonzero output-gradient values of all layers together than every
  // scaled FP8 recipe.
  std::vector<const Result*> bare, scaled_ones;
  for (const Result& r : results) {
    if (!quantized(r)) continue;
    if (unscaled(r.recipe)) bare.push_back(&r);
    if (scaled(r.recipe)) scaled_ones.push_back(&r);
  }
  const auto f_end = [&](const Result* r, int l) {
    return r->cells[last][std::size_t(l)].w.flushed_fraction();
  };
  const auto f_start = [&](const Result* r, int l) {
    return r->cells.front()[std::size_t(l)].w.flushed_fraction();
  };
  // Over every layer: a layer above that flushes everything leaves the ones below it no
  // nonzero gradient value, which their own fraction cannot show.
  const auto f_all = [&](const Result* r) {
    fp8sim::QuantStats t;
    for (const Cell& c : r->cells[last]) t.merge(c.w);
    return t.flushed_fraction();
  };
  int holds = 0, pairs = 0;
  std::ostringstream where_not;
  for (const Result* u : bare)
    for (const Result* s : scaled_ones) {
      ++pairs;
      if (f_all(u) > f_all(s)) {
        ++holds;
      } else {
        where_not << "- " << u->recipe.name << " flushed " << pct(f_all(u))
                  << " of the gradient values, " << s->recipe.name << " " << pct(f_all(s)) << ".\n";
      }
    }
  std::string headline;
  if (!bare.empty()) {
    const Result* u = bare.front();
    const int top = o.depth - 1;
    const auto at = [&](const Result* r) {
      std::string t = r->recipe.name + ": " + pct(f_all(r)) +
                      " of all layers' nonzero output-gradient values "
                      "flushed to zero in the last window, at layer 1 ";
      const Cell& c = r->cells[last][0];
      const Cell& c0 = r->cells.front()[0];
      return t + (c.w.nonzero ? pct(f_end(r, 0)) : std::string("no nonzero value arrives")) +
             " (in the first window " +
             (c0.w.nonzero ? pct(f_start(r, 0)) : std::string("no nonzero value")) + ")";
    };
    headline = "under " + at(u) + ", at layer " + std::to_string(o.depth) + " next to the loss " +
               pct(f_end(u, top));
    for (const Result* s : scaled_ones) headline += "; under " + at(s);
    for (std::size_t k = 1; k < bare.size(); ++k)
      headline += "; under " + at(bare[k]) + ", at layer " + std::to_string(o.depth) + " " +
                  pct(f_end(bare[k], top));
    headline += "; final training loss";
    for (const Result& r : results)
      headline += " " + r.recipe.name + " " + common::fixed(r.loss[last], 3);
    headline += ".";
  } else {
    headline = "no recipe of this run casts the gradients unscaled.";
  }

  Report rep;
  rep.title = "Gradient underflow without scaling";
  rep.command = command_line(argc, argv);
  rep.claim =
      "FP8's dynamic range is too narrow to hold gradients as they come: cast to FP8 without a "
      "scale, the small gradient values fall below the smallest subnormal (2^-16 for e5m2, 2^-9 "
      "for e4m3fn) and become zero, more so for small-magnitude tensors such as the gradients of "
      "layers far from the loss. A scale per tensor that moves its values into the format's range "
      "(loss scaling for e5m2 gradients in Mellempudi et al.; per-tensor scaling factors in "
      "Micikevicius et al.) keeps them and training matches the higher-precision baseline.";
  rep.source =
      "P. Micikevicius et al., \"FP8 Formats for Deep Learning\", arXiv:2209.05433 (per-tensor "
      "scaling of FP8 tensors, since FP8's range does not cover all tensors of a network); "
      "N. Mellempudi, S. Srinivasan, D. Das, B. Kaul, \"Mixed Precision Training With 8-bit "
      "Floating Point\", arXiv:1905.12334 (e5m2 gradients trained with loss scaling to avoid "
      "underflow).";
  std::ostringstream m;
  m << "Headline: " << headline << "\n\nThe network: " << o.depth << " linear layers ("
    << train.features() << " -> " << o.width << " x " << o.depth - 1 << " -> " << train.classes
    << ") with ReLU between them, PyTorch-style uniform initialisation, AdamW lr " << num(o.lr)
    << ", batch " << o.batch << ", the first " << o.train << " Fashion-MNIST training examples for "
    << o.epochs << " epochs (" << results.front().run->step_loss.size() << " steps), seed "
    << o.seed
    << ". Layer 1 is the input layer, farthest from the loss. A layer's output gradient is operand "
       "a of its "
       "dgrad and wgrad GEMMs (layer 1 has no dgrad: its input gradient is not needed); the "
       "flushed "
       "fraction is the share of its nonzero values that became zero in the cast, merged over each "
       "window of "
    << o.log_every << " steps. First window: steps 1.." << o.log_every << "; last: steps "
    << results.front().steps[last] - o.log_every + 1 << ".." << results.front().steps[last]
    << ". Wall time " << common::fixed(seconds, 1) << " s ("
    << common::plan_text("fp8exp underflow", plan) << ").\n\n"
    << table.str() << "\n"
    << losses.str()
    << "\nPlots: underflow-flushed.png (the flushed fraction against the step, per layer, per FP8 "
       "recipe), "
       "underflow-loss.png; every window is in underflow.csv.";
  rep.measured = m.str();
  rep.agrees =
      bare.empty() || scaled_ones.empty()
          ? std::string("Not decided: the run needs an unscaled and a scaled FP8 recipe.")
          : verdict(holds, pairs) +
                ": in " + std::to_string(holds) + " of " + std::to_string(pairs) +
                " pairs of an unscaled and a scaled recipe, the unscaled one flushed a larger "
                "fraction of the nonzero output-gradient values of all layers together in the "
                "last window (the test fixed before the run, not tuned to agree)." +
                (where_not.str().empty() ? "" : " Where not:\n\n" + where_not.str());
  rep.notes = plot_note;
  out.report(rep);

  print_summary("underflow", headline, holds, pairs, "pairs", "report.md, underflow.csv", o.out, seconds,
                plot_note);
  return 0;
}

}  // namespace

int run_underflow(int argc, char** argv) { return run(argc, argv); }

}  // namespace findings
