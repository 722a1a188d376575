// fp8exp optimizer: AdamW's moments and the master weights stored in bf16 (nearest and
// stochastic), float16 and FP8 (e4m3fn, e5m2, each scaled per tensor), the GEMMs in
// float32, so that only the storage differs from the float32 baseline.
//   Peng et al., "FP8-LM: Training FP8 large language models", arXiv:2310.18313 (2023).
#include <string>
#include <string_view>
#include <vector>

#include "common/study_common.hpp"
#include "findings/findings.hpp"
#include "findings/lm_compare.hpp"

namespace findings {
namespace {

constexpr const char* kName = "optimizer";
/// The default of --iters.
constexpr std::int64_t kIterations = 150;

/// Where a storage spec goes, with a short label prefix.
struct Target {
  const char* key;
  const char* prefix;
  const char* what;
};
constexpr Target kTargets[] = {
    {"moment1", "m1", "AdamW's first moment"},
    {"moment2", "m2", "AdamW's second moment"},
    {"master", "master", "the master weights"},
};
/// The storage specs tried, with their labels and the targets they are tried on
/// (stochastic rounding for the master weights only; f16 for the second moment and the
/// master weights, the 16-bit formats FP8-LM keeps them in).
struct Spec {
  const char* spec;
  const char* label;
  bool moment1, moment2, master;
};
constexpr Spec kSpecs[] = {
    {"bf16", "bf16", true, true, true},
    {"bf16:sr", "bf16-sr", false, false, true},
    {"f16", "f16", false, true, true},
    {"e4m3fn:scaled", "e4m3-scaled", true, true, true},
    {"e5m2:scaled", "e5m2-scaled", true, true, true},
};

std::vector<LmVariant> variants() {
  std::vector<LmVariant> v = {
      lm_variant("fp32", "fp32", {}, "float32 GEMMs, master weights and moments")};
  for (const Target& t : kTargets)
    for (const Spec& s : kSpecs)
      if (std::string_view(t.key) == "moment1"   ? s.moment1
          : std::string_view(t.key) == "moment2" ? s.moment2
                                                 : s.master)
        v.push_back(lm_variant(
            std::string(t.prefix) + "-" + s.label, "fp32", {{t.key, s.spec}},
            std::string(t.what) + " stored as `" + s.spec + "` (" + t.key + " = " + s.spec + ")"));
  return v;
}

int run(int argc, char** argv) {
  const char* const about =
      "Trains the language model with float32 GEMMs and AdamW's first moment, second moment\n"
      "or master weights stored in bf16 (nearest, stochastic), f16, e4m3fn or e5m2 (scaled\n"
      "per tensor), one at a time, and compares the final validation losses with float32.\n"
      "Variants: m1-bf16, m1-e4m3-scaled, m1-e5m2-scaled, m2-bf16, m2-f16, m2-e4m3-scaled,\n"
      "m2-e5m2-scaled, master-bf16, master-bf16-sr, master-f16, master-e4m3-scaled,\n"
      "master-e5m2-scaled.";
  const LmSettings s = parse_lm_settings(argc, argv, kName, about, kIterations);
  const LmComparison c = lm_compare(s, variants(), kName);
  Report r;
  r.title = "Optimizer-state and master-weight precision";
  r.command = command_line(argc, argv);
  r.claim =
      "FP8-LM keeps AdamW's first moment in FP8 with a per-tensor scale without loss, but the "
      "second moment needs "
      "16 bits (its values span a range FP8 cannot hold: small ones flush to zero and blow up the "
      "update), and FP8 "
      "master weights degrade training (they keep master weights in FP16 with a tensor scale).";
  r.source =
      "Peng et al., \"FP8-LM: Training FP8 large language models\", arXiv:2310.18313 (2023), "
      "section 2.2.";
  const auto has = [&](const std::string& l) { return c.has(l); };
  // "equal": not above fp32 by more than the tolerance; "worse": above it by more.
  const auto equal = [&](const std::string& l) { return c.delta(l) <= c.tolerance(); };
  const auto worse = [&](const std::string& l) { return c.delta(l) > c.tolerance(); };
  std::vector<std::string> parts;
  int held = 0, decided = 0;
  const auto part = [&](bool needs, bool ok, const std::string& text) {
    if (!needs) return;
    ++decided;
    held += ok;
    parts.push_back(std::string(ok ? "holds" : "does not hold") + ": " + text);
  };
  const auto d = [&](const std::string& l) {
    return l + " " + common::signed_fixed(c.delta(l), 4) + " (tolerance " +
           common::fixed(c.tolerance(), 4) + ")";
  };
  part(has("m1-e4m3-scaled"), has("m1-e4m3-scaled") && equal("m1-e4m3-scaled"),
       "an e4m3fn first moment is not worse than fp32 by more than the tolerance: " +
           (has("m1-e4m3-scaled") ? d("m1-e4m3-scaled") : ""));
  const bool m2 = has("m2-e4m3-scaled") && has("m2-e5m2-scaled") && has("m2-f16");
  part(m2, m2 && worse("m2-e4m3-scaled") && worse("m2-e5m2-scaled") && equal("m2-f16"),
       "both FP8 second moments are worse than fp32 and an f16 one is not: " +
           (m2 ? d("m2-e4m3-scaled") + ", " + d("m2-e5m2-scaled") + ", " + d("m2-f16") : ""));
  const bool ms = has("master-e4m3-scaled") && has("master-e5m2-scaled");
  part(ms, ms && worse("master-e4m3-scaled") && worse("master-e5m2-scaled"),
       "both FP8 master weights are worse than fp32: " +
           (ms ? d("master-e4m3-scaled") + ", " + d("master-e5m2-scaled") : ""));
  r.agrees = lm_verdict(held, decided) + ": " + std::to_string(held) + " of " +
             std::to_string(decided) +
             " parts of the claim hold. Each variant's mean final validation loss minus fp32's, "
             "against the "
             "tolerance (twice the seed standard deviation of fp32's loss, at least 0.005 nats), "
             "the tests "
             "fixed before the run:\n";
  for (const std::string& p : parts) r.agrees += "\n- " + p;
  r.measured =
      "Final validation loss (nats per token) of each variant (one storage changed at a time):";
  write_lm_outputs(c, kName, r,
                   lm_headline(c, {"m1-e4m3-scaled", "m2-e4m3-scaled", "m2-f16", "master-bf16",
                                   "master-bf16-sr", "master-e4m3-scaled"}));
  return 0;
}

}  // namespace

int run_optimizer(int argc, char** argv) { return run(argc, argv); }

}  // namespace findings
