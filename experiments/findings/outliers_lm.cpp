// fp8exp outliers-lm: the language model's half of experiment 3 (fp8exp outliers measures
// the SQNR of synthetic matrices). The small GPT of the other language-model experiments
// trained under variants that differ only in the scaling granularity of every GEMM
// operand: e4m3fn per tensor, per row, per 1 x 128 block and per MX block of 32; e2m1fn
// per tensor, per MX block of 32 and per NVFP4 block of 16. And whether the trained
// float32 model's GEMM inputs have outlier channels at all.
//   Dettmers, Lewis, Belkada and Zettlemoyer, "LLM.int8(): 8-bit matrix multiplication for
//   transformers at scale", arXiv:2208.07339 (outlier features in a few hidden dimensions).
//   DeepSeek-AI, "DeepSeek-V3 technical report", arXiv:2412.19437, section 3.3.1
//   (fine-grained quantization: 1 x 128 tiles of activations against outliers).
#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/study_common.hpp"
#include "findings/findings.hpp"
#include "findings/lm_compare.hpp"
#include "fp8sim/layers.hpp"
#include "fp8sim/lm.hpp"
#include "lm/text.hpp"

namespace findings {
namespace {

constexpr const char* kName = "outliers-lm";
/// The default of --iters.
constexpr std::int64_t kIterations = 200;
/// LLM.int8()'s magnitude of an outlier feature (section 4): |x| >= 6.
constexpr double kOutlierMagnitude = 6.0;
/// ... in at least 6% of the sequence positions.
constexpr double kOutlierPositions = 0.06;

using Keys = std::vector<std::pair<std::string, std::string>>;

/// The variants, fixed before the first run. Each group keeps its base recipe's formats,
/// accumulation and storage and sets all.scaling, so that its variants differ only there.
std::vector<LmVariant> variants() {
  // e2m1fn: the nvfp4 recipe without stochastic rounding and the Hadamard transform.
  const Keys fp4 = {{"grad.rounding", "rne"}, {"wgrad.a.hadamard", "0"}, {"wgrad.b.hadamard", "0"}};
  const auto e2m1 = [&](const std::string& label, const std::string& scaling,
                        const std::string& what) {
    Keys k = fp4;
    k.emplace_back("all.scaling", scaling);
    return lm_variant(label, "nvfp4", k,
                      "nvfp4 with grad.rounding = rne, wgrad.a/b.hadamard = 0, all.scaling = " +
                          scaling + ": " + what);
  };
  // e4m3fn: the mxfp8 recipe (e4m3fn for every operand).
  const auto e4m3 = [](const std::string& label, const std::string& scaling,
                       const std::string& what) {
    return lm_variant(label, "mxfp8", {{"all.scaling", scaling}},
                      "mxfp8 with all.scaling = " + scaling + ": " + what);
  };
  return {
      lm_variant("fp32", "fp32", {}, "float32 throughout (the baseline)"),
      e4m3("e4m3-tensor", "tensor", "one float32 scale per operand"),
      e4m3("e4m3-row", "row", "one per row (token, or output channel of a weight)"),
      e4m3("e4m3-block1x128", "block:1x128", "one per 1 x 128 block along K"),
      e4m3("e4m3-mx", "mx", "MX blocks of 32 along K, e8m0 scales rounded up"),
      e2m1("e2m1-tensor", "tensor", "one float32 scale per operand"),
      e2m1("e2m1-mx", "mx", "MX blocks of 32 along K, e8m0 scales rounded up"),
      e2m1("e2m1-nvfp4", "nvfp4", "blocks of 16 along K, e4m3fn scales and a tensor scale"),
  };
}

/// The groups of the test: the per-tensor variant and the finer ones of the same format.
struct Group {
  const char* tensor;
  std::vector<const char*> finer;
};
const Group kGroups[] = {{"e4m3-tensor", {"e4m3-row", "e4m3-block1x128", "e4m3-mx"}},
                         {"e2m1-tensor", {"e2m1-mx", "e2m1-nvfp4"}}};

/// One GEMM's input (fprop operand a) over the validation windows.
struct InputRow {
  std::string gemm;
  fp8sim::QuantStats stats;
  double rms() const { return stats.count ? std::sqrt(stats.signal / double(stats.count)) : 0.0; }
};

/// Per-channel statistics of rows of W values.
struct Channels {
  std::vector<double> amax, big;  ///< Per channel: max |x|; the rows with |x| >= 6.
  std::int64_t rows = 0;
  double sum2 = 0;  ///< Sum of x^2 over all.
  explicit Channels(std::int64_t width) : amax(std::size_t(width), 0.0), big(std::size_t(width), 0.0) {}
  void add(const float* y, std::int64_t n) {
    const std::size_t W = amax.size();
    for (std::int64_t r = 0; r < n; ++r)
      for (std::size_t k = 0; k < W; ++k) {
        const double v = std::fabs(double(y[std::size_t(r) * W + k]));
        amax[k] = std::max(amax[k], v);
        big[k] += v >= kOutlierMagnitude;
        sum2 += v * v;
      }
    rows += n;
  }
  double largest() const { return *std::max_element(amax.begin(), amax.end()); }
  double median() const {
    std::vector<double> v = amax;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }
  /// Channels with |x| >= 6 in at least 6% of the rows.
  int outliers() const {
    return int(std::count_if(big.begin(), big.end(),
                             [&](double b) { return b >= kOutlierPositions * double(rows); }));
  }
  double crest() const { return largest() / std::sqrt(sum2 / double(rows * std::int64_t(amax.size()))); }
};

/// What the trained float32 model's activations show.
struct Activations {
  std::vector<InputRow> inputs;
  bool same_loss = false;  ///< The probe's validation loss is the baseline's, bit for bit.
  /// The first GEMM's input (h0.attn.qkv: ln1 of the embeddings), and N(0, 1) values of
  /// the same shape for comparison.
  Channels first, normal;
};

/// Trains the float32 baseline of the first seed again (the same run as lm_compare's, whose
/// final validation loss is `baseline_loss`) and
/// measures its GEMM inputs on the validation windows: the amax and RMS of every GEMM's
/// input from the QuantStats of a forward under a probe recipe (float32 with a power-of-two
/// per-tensor scale of fprop.a, which changes no bit), and the first GEMM's input per
/// channel, computed from the embeddings and h0's ln1 as the model computes it.
Activations measure_activations(const LmSettings& s, const LmVariant& fp32, double baseline_loss) {
  const lm::Text text = lm::load(s.data);
  fp8sim::LmConfig cfg = s.config();
  cfg.recipe = fp32.recipe;
  cfg.seed = s.first_seed;
  fp8sim::LmRun run(cfg, text.split);
  fp8emu::Execution exec;
  exec.threads = common::plan_threads(s.threads, 1).per_run;
  run.set_execution(exec);
  while (!run.done()) run.train_until_eval();
  fp8sim::Gpt& model = run.model();

  const LmVariant probe =
      lm_variant("probe", "fp32", {{"fprop.a.scaling", "tensor:pow2:margin=64"}}, "");
  fp8sim::StepContext ctx;
  ctx.recipe = &probe.recipe;
  ctx.training = true;  // statistics are gathered in training steps only; no gradient is taken
  ctx.exec = exec;
  for (fp8sim::GemmCore* g : model.gemm_cores()) g->states[0][0].stats = {};

  const std::int64_t T = cfg.model.context, B = cfg.batch, W = cfg.model.width;
  // The first GEMM's input: ln1(wte[token] + wpe[position]), as the model computes it.
  fp8sim::LayerNorm ln1(W);
  const fp8sim::Param *wte = nullptr, *wpe = nullptr;
  for (fp8sim::Param* p : model.params()) {
    if (p->name == "wte") wte = p;
    if (p->name == "wpe") wpe = p;
    if (p->name == "h0.ln1.gain") ln1.gain.value = p->value;
    if (p->name == "h0.ln1.bias") ln1.bias.value = p->value;
  }
  if (!wte || !wpe) throw std::logic_error("outliers-lm: the model has no wte or wpe");
  const std::vector<std::int64_t>& starts = run.validation_starts();
  const std::vector<std::int32_t>& val = text.split.val;
  std::vector<std::int32_t> tokens(std::size_t(B * T)), targets(tokens.size());
  fp8sim::Tensor x, y;
  x.reshape({B * T, W});
  y.reshape({B * T, W});
  Activations a{{}, false, Channels(W), Channels(W)};
  double loss = 0;
  for (std::int64_t e = 0; e < cfg.eval_batches; ++e) {
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t t = 0; t < T; ++t) {
        const std::size_t i = std::size_t(b * T + t);
        const std::size_t at = std::size_t(starts[std::size_t(e * B + b)] + t);
        tokens[i] = val[at];
        targets[i] = val[at + 1];
        for (std::int64_t k = 0; k < W; ++k)
          x.data[i * std::size_t(W) + std::size_t(k)] =
              wte->value.data[std::size_t(tokens[i] * W + k)] + wpe->value.data[std::size_t(t * W + k)];
      }
    loss += model.step(tokens.data(), targets.data(), B, T, ctx, false);
    ln1.forward(x, y, ctx);
    a.first.add(y.data.data(), B * T);
  }
  a.same_loss = loss / double(cfg.eval_batches) == baseline_loss;
  const std::vector<std::string> names = model.gemm_names();
  const std::vector<fp8sim::GemmCore*> cores = model.gemm_cores();
  for (std::size_t k = 0; k < cores.size(); ++k)
    a.inputs.push_back({names[k], cores[k]->states[0][0].stats});
  // N(0, 1) values of the first input's shape (seed 0, stream 0).
  std::vector<float> z(std::size_t(a.first.rows * W));
  const fp8emu::RandomKey key = fp8emu::random_key(0, 0);
  for (std::size_t i = 0; i < z.size(); ++i) z[i] = float(fp8emu::random_normal(key, i));
  a.normal.add(z.data(), a.first.rows);
  return a;
}

std::string ratio(double v) { return common::fixed(v, 2); }

int run(int argc, char** argv) {
  const char* const about =
      "Trains the language model in float32 and under e4m3fn with one scale per tensor,\n"
      "per row, per 1 x 128 block and per MX block of 32, and under e2m1fn per tensor, per\n"
      "MX block of 32 and per NVFP4 block of 16, and compares the final validation losses;\n"
      "measures the trained float32 model's GEMM inputs for outlier channels.";
  const LmSettings s = parse_lm_settings(argc, argv, kName, about, kIterations);
  const std::vector<LmVariant> all = variants();
  const LmComparison c = lm_compare(s, all, kName);
  const Activations act = measure_activations(s, all.front(), c.results.front().val_loss.front());

  // The test, fixed before the run: in each group, (1) every finer granularity's mean final
  // loss is not above per-tensor scaling's by more than the tolerance, and (2) per-tensor
  // scaling's is above the best finer one's by more than the tolerance.
  const double tol = c.tolerance();
  int agree = 0, cases = 0;
  std::ostringstream checks;
  for (const Group& g : kGroups) {
    if (!c.has(g.tensor)) continue;
    const double t = c.at(g.tensor).mean();
    double best = 0;
    const char* best_label = nullptr;
    for (const char* f : g.finer) {
      if (!c.has(f)) continue;
      const double v = c.at(f).mean();
      const bool ok = v <= t + tol;
      ++cases;
      agree += ok;
      checks << "- " << f << " " << common::fixed(v, 4) << " against " << g.tensor << " "
             << common::fixed(t, 4) << ": " << (ok ? "not worse" : "worse") << "\n";
      if (!best_label || v < best) best = v, best_label = f;
    }
    if (!best_label) continue;
    const bool worse = t > best + tol;
    ++cases;
    agree += worse;
    checks << "- " << g.tensor << " " << common::fixed(t, 4) << " against the best finer, "
           << best_label << " " << common::fixed(best, 4) << ": "
           << (worse ? "worse by more than the tolerance" : "not worse by more than the tolerance")
           << "\n";
  }

  const Channels& f = act.first;
  std::string headline;
  for (std::size_t k = 1; k < c.results.size(); ++k)
    headline += (k > 1 ? ", " : "") + c.results[k].variant.label + " " +
                common::signed_fixed(c.delta(c.results[k].variant.label), 4);
  headline = "final val loss minus fp32's (nats/token): " + headline + " (fp32 " +
             loss_sd(c.results.front()) + "); the first GEMM's input: largest channel amax / median " +
             ratio(f.largest() / f.median()) + " (N(0, 1): " +
             ratio(act.normal.largest() / act.normal.median()) + "), " +
             std::to_string(f.outliers()) + " outlier channels";

  Report r;
  r.title = "Scaling granularity under outliers: the language model";
  r.command = command_line(argc, argv);
  r.claim =
      "LLM activations have outlier features: a few hidden dimensions (channels) whose values "
      "are much larger than the rest, in every token. One scale per tensor is then set by the "
      "outliers and the other channels lose their accuracy; scaling at a finer granularity "
      "along K (1 x 128 tiles per token, MX blocks of 32, NVFP4 blocks of 16) confines each "
      "outlier to its own block. So low-precision training with finer scaling should be no "
      "worse than with per-tensor scaling, and per-tensor scaling worse. LLM.int8() calls a "
      "hidden dimension an outlier feature when its magnitude reaches 6 in at least 6% of the "
      "sequence positions (and 25% of the layers), and finds such features systematic in "
      "models from about 6.7B parameters on.";
  r.source =
      "T. Dettmers, M. Lewis, Y. Belkada, L. Zettlemoyer, \"LLM.int8(): 8-bit matrix "
      "multiplication for transformers at scale\", arXiv:2208.07339, section 4 (emergent "
      "outlier features); DeepSeek-AI, \"DeepSeek-V3 technical report\", arXiv:2412.19437, "
      "section 3.3.1 (per-tensor FP8 scaling is sensitive to activation outliers; 1 x 128 "
      "activation tiles).";

  std::ostringstream m;
  m << "Headline: " << headline << ".\n\nDoes this model have outlier channels? The float32 "
    << "model of seed " << s.first_seed << ", trained again as above, on its " << f.rows
    << " validation positions. The first GEMM's input (h0.attn.qkv: ln1 of the embeddings, "
       "computed as the model computes it), per channel: the largest amax "
    << ratio(f.largest()) << ", the median " << ratio(f.median()) << ", their ratio "
    << ratio(f.largest() / f.median()) << "; amax / RMS " << ratio(f.crest()) << "; "
    << f.outliers() << " of " << f.amax.size()
    << " channels reach |x| >= 6 in at least 6% of the positions. N(0, 1) values of the same "
       "shape (fp8emu::random_normal, seed 0): ratio "
    << ratio(act.normal.largest() / act.normal.median()) << ", amax / RMS "
    << ratio(act.normal.crest()) << ", " << act.normal.outliers()
    << " such channels. Every GEMM's input (fprop operand a) over the same positions:\n\n"
       "| GEMM | elements | amax | RMS | amax / RMS |\n|---|---|---|---|---|\n";
  for (const InputRow& x : act.inputs)
    m << "| " << x.gemm << " | " << x.stats.count << " | " << ratio(x.stats.amax) << " | "
      << common::fixed(x.rms(), 3) << " | " << ratio(x.stats.amax / x.rms()) << " |\n";
  m << "\nThese amax and RMS are the QuantStats of forward passes under a probe recipe, float32 "
       "with a power-of-two scale per tensor of each fprop input (`fprop.a.scaling = "
       "tensor:pow2:margin=64`), which changes no value: its validation loss equals the fp32 "
       "baseline's of seed "
    << s.first_seed << " bit for bit: "
    << (act.same_loss ? "yes" : "no")
    << ".\n\nFinal validation loss (nats per token) of each variant:";
  r.measured = m.str();
  r.agrees = std::string(cases == 0 ? "Not decided (--variants left out what the tests need)"
                                    : verdict(agree, cases)) +
             ": " + std::to_string(agree) + " of " + std::to_string(cases) +
             " checks hold. The tests, fixed before the run, on the mean final validation losses, "
             "in each group (e4m3fn, e2m1fn): every finer granularity is not above per-tensor "
             "scaling by more than the tolerance (twice the seed standard deviation of fp32's "
             "loss, at least 0.005 nats; here " +
             common::fixed(tol, 4) +
             "), and per-tensor scaling is above the best finer one by more than the "
             "tolerance:\n\n" +
             checks.str();
  r.notes =
      "The variants differ only in all.scaling (every operand of every role). The e4m3fn group "
      "is the mxfp8 recipe (e4m3fn for weights, activations and gradients, float32 "
      "accumulation); the e2m1fn group the nvfp4 recipe without stochastic rounding and the "
      "Hadamard transform, which keeps the last block and the head in bf16, so in this 2-block "
      "model only the first block's GEMMs run in e2m1fn. MX scales are rounded up (NVIDIA's "
      "rule: nothing saturates, as with the float32 amax scales of the others), unlike the OCP "
      "floor rule of fp8exp outliers. At the default width 64, a 1 x 128 block holds a whole "
      "row of every operand whose K is at most 128 (the fprop of qkv, proj, up and the head, "
      "the dgrad of proj, down and the head), where it is per-row scaling; it differs where K "
      "is larger: the fprop of mlp.down (K = 256), the dgrad of qkv (192) and up (256), and the "
      "wgrad GEMMs (K = the batch's 512 tokens). "
      "The measured inputs are in " +
      std::string(kName) + "-inputs.csv and " + kName + "-channels.csv.";
  write_lm_outputs(c, kName, r, headline);

  std::ostringstream inputs, channels;
  inputs << "gemm,elements,amax,rms,amax_over_rms\n";
  for (const InputRow& x : act.inputs)
    inputs << x.gemm << ',' << x.stats.count << ',' << common::csv_number(x.stats.amax) << ','
           << common::csv_number(x.rms()) << ',' << common::csv_number(x.stats.amax / x.rms()) << '\n';
  channels << "channel,amax,fraction_at_least_6,normal_amax,normal_fraction_at_least_6\n";
  for (std::size_t k = 0; k < f.amax.size(); ++k)
    channels << k << ',' << common::csv_number(f.amax[k]) << ','
             << common::csv_number(f.big[k] / double(f.rows)) << ','
             << common::csv_number(act.normal.amax[k]) << ','
             << common::csv_number(act.normal.big[k] / double(act.normal.rows)) << '\n';
  const common::DirectoryLock lock(s.out, "fp8exp");
  const Outputs out(s.out, s.plots);
  out.write(std::string(kName) + "-inputs.csv", inputs.str());
  out.write(std::string(kName) + "-channels.csv", channels.str());
  return 0;
}

}  // namespace

int run_outliers_lm(int argc, char** argv) { return run(argc, argv); }

}  // namespace findings
