// The language-model training run: it learns a repeating sequence; its numbers are the
// same on every run and thread count, and after a resume; the schedule, clipping, batches
// and evaluation windows are as documented; bad settings and data are refused.
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <functional>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numbers>
#include <set>
#include <string>
#include <vector>

#include "fp8sim/checkpoint.hpp"
#include "fp8sim/lm.hpp"
#include "sim/checks.hpp"
#include "sim/files.hpp"

using namespace fp8sim;
using test_checks::error_of;
namespace fs = std::filesystem;

namespace {

// A sequence of period 12 over 16 token ids, with repeats (3, 7 and 9 twice each), so the
// next token is not decided by the current one alone.
const TokenSplit& pattern() {
  static const TokenSplit d = [] {
    const std::int32_t period[12] = {3, 7, 1, 9, 3, 12, 7, 5, 9, 0, 14, 2};
    TokenSplit s;
    s.vocab = 16;
    for (int i = 0; i < 1500; ++i) s.train.push_back(period[i % 12]);
    for (int i = 0; i < 300; ++i) s.val.push_back(period[(i + 5) % 12]);
    return s;
  }();
  return d;
}

GptConfig tiny_model() {
  GptConfig m;
  m.context = 16;
  m.layers = 2;
  m.heads = 2;
  m.width = 16;
  return m;
}

LmConfig tiny(const std::string& recipe = "fp32") {
  LmConfig c;
  c.recipe = named_recipe(recipe);
  c.model = tiny_model();
  c.seed = 3;
  c.iterations = 20;
  c.batch = 4;
  c.lr = 1e-2f;
  c.min_lr = 1e-3f;
  c.warmup = 5;
  c.eval_every = 10;
  c.eval_batches = 2;
  c.log_every = 5;
  c.exec.threads = 1;
  return c;
}

void train_all(LmRun& r) {
  while (!r.done()) r.train_until_eval();
}

std::string temp_path(const std::string& name) { return test_files::temp_path("fp8sim-lm-", name); }
using test_files::read_bytes;
using test_files::write_bytes;

// Counts the fields in which two runs differ (histories, statistics, parameters, moments,
// delayed-scaling state).
int differences(LmRun& a, LmRun& b) {
  int d = 0;
  d += a.iterations_done() != b.iterations_done();
  d += a.step_loss != b.step_loss;
  d += a.grad_norm != b.grad_norm;
  d += a.clipped != b.clipped;
  d += a.eval_rows.size() != b.eval_rows.size();
  for (std::size_t i = 0; i < std::min(a.eval_rows.size(), b.eval_rows.size()); ++i) {
    const EvalRow &x = a.eval_rows[i], &y = b.eval_rows[i];
    d += x.iteration != y.iteration || x.train_loss != y.train_loss || x.val_loss != y.val_loss;
  }
  d += a.stats_rows.size() != b.stats_rows.size();
  for (std::size_t i = 0; i < std::min(a.stats_rows.size(), b.stats_rows.size()); ++i) {
    const StatsRow &x = a.stats_rows[i], &y = b.stats_rows[i];
    d += x.step != y.step || x.layer != y.layer || x.role != y.role || x.operand != y.operand ||
         x.stats.count != y.stats.count || x.stats.amax != y.stats.amax || x.stats.signal != y.stats.signal ||
         x.stats.noise != y.stats.noise || x.stats.flushed != y.stats.flushed;
  }
  d += a.total.count != b.total.count || a.total.signal != b.total.signal || a.total.noise != b.total.noise;
  const auto pa = a.model().params(), pb = b.model().params();
  d += pa.size() != pb.size();
  for (std::size_t i = 0; i < std::min(pa.size(), pb.size()); ++i)
    d += pa[i]->value.data != pb[i]->value.data || pa[i]->m1 != pb[i]->m1 || pa[i]->m2 != pb[i]->m2;
  const auto ca = a.model().gemm_cores(), cb = b.model().gemm_cores();
  for (std::size_t i = 0; i < std::min(ca.size(), cb.size()); ++i)
    for (int r = 0; r < kRoles; ++r)
      for (int o = 0; o < 2; ++o) {
        const OperandState &x = ca[i]->states[r][o], &y = cb[i]->states[r][o];
        d += x.history != y.history || x.recorded != y.recorded || x.scale != y.scale;
      }
  return d;
}

// The amax values recorded by delayed scaling, over every GEMM core.
std::int64_t recorded(LmRun& r) {
  std::int64_t n = 0;
  for (GemmCore* c : r.model().gemm_cores())
    for (int role = 0; role < kRoles; ++role)
      for (int o = 0; o < 2; ++o) n += c->states[role][o].recorded;
  return n;
}

}  // namespace

TEST_CASE("lm: training on a repeating sequence lowers the validation loss", "[sim][lm]") {
  LmConfig c = tiny();
  c.iterations = 100;
  c.eval_every = 25;
  LmRun r(c, pattern());
  const double before = r.evaluate();
  // An untrained model predicts nearly uniformly: about ln 16 = 2.77 nats.
  CHECK(std::abs(before - std::log(16.0)) < 0.3);
  train_all(r);
  REQUIRE(r.eval_rows.size() == 4);
  CHECK(r.step_loss.size() == 100);
  CHECK(r.grad_norm.size() == 100);
  for (std::size_t i = 0; i < 4; ++i) {
    const EvalRow& e = r.eval_rows[i];
    CHECK(e.iteration == std::int64_t(25 * (i + 1)));
    double sum = 0;
    for (std::size_t s = 25 * i; s < 25 * (i + 1); ++s) sum += r.step_loss[s];
    CHECK(e.train_loss == Approx(sum / 25).epsilon(1e-12));
  }
  INFO("validation loss " << before << " -> " << r.eval_rows.back().val_loss);
  CHECK(r.eval_rows.back().val_loss < 0.4 * before);
  CHECK(r.eval_rows.back().val_loss < r.eval_rows.front().val_loss);
  CHECK(r.divergence().empty());
  CHECK(r.evaluate() == r.eval_rows.back().val_loss);  // evaluation changes nothing
}

TEST_CASE("lm: the same run twice and on 1 or 2 threads gives the same bits", "[sim][lm]") {
  for (const char* recipe : {"fp32", "fp8-hybrid-delayed"}) {
    INFO(recipe);
    LmConfig c = tiny(recipe);
    LmRun a(c, pattern()), b(c, pattern());
    c.exec.threads = 2;
    c.exec.parallel_threshold = 1;  // the array kernels split even these small tensors
    LmRun two(c, pattern());
    train_all(a);
    train_all(b);
    train_all(two);
    CHECK(differences(a, b) == 0);
    CHECK(differences(a, two) == 0);
    CHECK(a.eval_rows.size() == 2);
    // What is compared exists: statistics under FP8, none under fp32; delayed scaling
    // recorded an amax per step.
    if (std::string(recipe) == "fp32") {
      CHECK(a.stats_rows.empty());
      CHECK(recorded(a) == 0);
    } else {
      CHECK(!a.stats_rows.empty());
      CHECK(a.total.count > 0);
      CHECK(recorded(a) > 0);
      // Evaluation neither records amax values nor gathers statistics.
      const std::int64_t n = recorded(a), count = a.total.count;
      a.evaluate();
      CHECK(recorded(a) == n);
      a.train_until_eval();  // done: nothing happens
      CHECK(a.total.count == count);
      CHECK(a.eval_rows.size() == 2);
    }
    // Another seed gives other numbers.
    c.seed = 4;
    LmRun other(c, pattern());
    train_all(other);
    CHECK(differences(a, other) > 0);
  }
}

TEST_CASE("lm: statistics rows every log_every steps, none with stats_every 0", "[sim][lm]") {
  LmConfig c = tiny("fp8-hybrid-current");
  LmRun r(c, pattern());
  train_all(r);
  const std::size_t gemms = r.model().gemm_names().size();
  std::set<std::int64_t> steps;
  std::set<int> layers;
  std::int64_t uses = 0;
  for (const StatsRow& row : r.stats_rows) {
    steps.insert(row.step);
    layers.insert(row.layer);
    uses += row.stats.uses;
  }
  CHECK(steps == std::set<std::int64_t>{5, 10, 15, 20});
  CHECK(layers.size() == gemms);
  CHECK(uses == r.total.uses);  // every step's statistics are in a row
  c.stats_every = 0;
  LmRun none(c, pattern());
  train_all(none);
  CHECK(none.stats_rows.empty());
  CHECK(none.total.uses == 0);
  CHECK(none.step_loss == r.step_loss);  // statistics change no number
}

TEST_CASE("lm: the fingerprint names every setting but the threads", "[sim][lm]") {
  const LmConfig base = tiny();
  const std::vector<std::function<void(LmConfig&)>> changes = {
      [](LmConfig& c) { c.recipe = named_recipe("bf16"); },
      [](LmConfig& c) { c.model.layers = 3; },
      [](LmConfig& c) { c.model.dropout = 0.1f; },
      [](LmConfig& c) { c.seed = 4; },
      [](LmConfig& c) { c.iterations = 21; },
      [](LmConfig& c) { c.batch = 5; },
      [](LmConfig& c) { c.lr = std::nextafter(c.lr, 1.0f); },
      [](LmConfig& c) { c.min_lr = 2e-3f; },
      [](LmConfig& c) { c.warmup = 6; },
      [](LmConfig& c) { c.beta1 = 0.8f; },
      [](LmConfig& c) { c.beta2 = 0.999f; },
      [](LmConfig& c) { c.eps = 1e-6f; },
      [](LmConfig& c) { c.weight_decay = 0; },
      [](LmConfig& c) { c.grad_clip = 0.5f; },
      [](LmConfig& c) { c.eval_every = 5; },
      [](LmConfig& c) { c.eval_batches = 3; },
      [](LmConfig& c) { c.log_every = 1; },
      [](LmConfig& c) { c.stats_every = 2; },
  };
  std::set<std::string> seen{base.fingerprint()};
  for (const auto& change : changes) {
    LmConfig c = base;
    change(c);
    seen.insert(c.fingerprint());
  }
  CHECK(seen.size() == changes.size() + 1);
  LmConfig threads = base;
  threads.exec.threads = 2;
  CHECK(threads.fingerprint() == base.fingerprint());
}

TEST_CASE("lm: batches are random windows of the training tokens, evaluation windows are fixed",
          "[sim][lm]") {
  LmConfig c = tiny();
  LmRun r(c, pattern());
  const std::int64_t last = std::int64_t(pattern().train.size()) - c.model.context - 1;
  std::set<std::int64_t> seen;
  std::int64_t out_of_range = 0, checked = 0;
  for (std::int64_t s = 0; s < 200; ++s)
    for (std::int64_t b : r.batch_starts(s)) {
      out_of_range += b < 0 || b > last;
      seen.insert(b);
      ++checked;
    }
  CHECK(checked == 800);
  CHECK(out_of_range == 0);
  CHECK(seen.size() > 550);  // of 1484 possible starts; uniform draws: 619 expected
  CHECK(r.batch_starts(7) == LmRun(c, pattern()).batch_starts(7));
  CHECK(r.batch_starts(7) != r.batch_starts(8));
  LmConfig other = tiny("fp8-hybrid-current");
  other.seed = 9;
  CHECK(LmRun(other, pattern()).batch_starts(7) != r.batch_starts(7));
  // Evaluation: eval_batches x batch windows, evenly spaced from the first to the last,
  // the same for every recipe and seed.
  const std::vector<std::int64_t>& v = r.validation_starts();
  REQUIRE(v.size() == 8);
  const std::int64_t val_last = std::int64_t(pattern().val.size()) - c.model.context - 1;  // 283
  for (std::size_t i = 0; i < v.size(); ++i) CHECK(v[i] == std::int64_t(std::floor(double(i) * val_last / 7.0)));
  CHECK(v.back() == val_last);
  CHECK(LmRun(other, pattern()).validation_starts() == v);
}

TEST_CASE("lm: the learning rate warms up linearly and decays by a cosine to min_lr", "[sim][lm]") {
  LmConfig c = tiny();
  c.lr = 6e-3f;
  c.min_lr = 6e-4f;
  c.warmup = 10;
  c.iterations = 110;
  const double lr = double(c.lr), lo = double(c.min_lr);
  CHECK(c.learning_rate(0) == Approx(lr / 11).epsilon(1e-12));
  CHECK(c.learning_rate(4) == Approx(lr * 5 / 11).epsilon(1e-12));
  CHECK(c.learning_rate(9) == Approx(lr * 10 / 11).epsilon(1e-12));
  CHECK(c.learning_rate(10) == Approx(lr).epsilon(1e-12));  // the peak
  // Halfway through the decay the cosine is 0: the mean of lr and min_lr.
  CHECK(c.learning_rate(60) == Approx((lr + lo) / 2).epsilon(1e-12));
  // A quarter in: (1 + cos(pi / 4)) / 2 of the way from min_lr to lr.
  CHECK(c.learning_rate(35) == Approx(lo + (lr - lo) * (2 + std::sqrt(2.0)) / 4).epsilon(1e-12));
  CHECK(c.learning_rate(110) == lo);
  CHECK(c.learning_rate(500) == lo);
  for (std::int64_t s = 10; s < 110; ++s) CHECK(c.learning_rate(s + 1) < c.learning_rate(s));
  c.warmup = 0;
  CHECK(c.learning_rate(0) == lr);
}

TEST_CASE("lm: gradients above grad_clip are scaled to it before the AdamW step", "[sim][lm]") {
  LmConfig c = tiny();
  c.iterations = 1;
  c.eval_every = 1;
  c.grad_clip = 1e-3f;
  c.weight_decay = 0.1f;
  LmRun r(c, pattern());
  // The unclipped gradient of step 0, from the same model and batch outside the run.
  GptConfig m = tiny_model();
  m.vocab = 16;
  Gpt ref(m, c.seed);
  std::vector<std::int32_t> tokens, targets;
  for (std::int64_t b : r.batch_starts(0))
    for (std::int64_t t = 0; t < m.context; ++t) {
      tokens.push_back(pattern().train[std::size_t(b + t)]);
      targets.push_back(pattern().train[std::size_t(b + t + 1)]);
    }
  StepContext ctx;
  ctx.recipe = &c.recipe;
  ctx.seed = c.seed;
  ref.step(tokens.data(), targets.data(), c.batch, m.context, ctx, true);
  double sum = 0;
  for (Param* p : ref.params())
    for (float g : p->grad.data) sum += double(g) * g;
  const double norm = std::sqrt(sum);
  REQUIRE(norm > 100 * c.grad_clip);

  r.train_until_eval();
  REQUIRE(r.grad_norm.size() == 1);
  CHECK(r.grad_norm[0] == Approx(norm).epsilon(1e-12));
  CHECK(r.clipped == 1);
  const auto ps = r.model().params(), w0 = ref.params();
  REQUIRE(ps.size() == w0.size());
  const double lr0 = c.learning_rate(0), b1 = c.beta1, b2 = c.beta2, scale = c.grad_clip / norm;
  double clipped_sum = 0;
  std::int64_t n = 0, bad_grad = 0, bad_moment = 0, bad_value = 0, decayed = 0;
  for (std::size_t i = 0; i < ps.size(); ++i) {
    decayed += ps[i]->decay;
    for (std::size_t j = 0; j < ps[i]->value.data.size(); ++j, ++n) {
      const double g0 = w0[i]->grad.data[j], g = ps[i]->grad.data[j];  // the run keeps the clipped one
      clipped_sum += g * g;
      bad_grad += std::abs(g - g0 * scale) > 1e-6 * std::abs(g0 * scale) + 1e-30;
      // Step 1 of AdamW: m1 = (1 - b1) g, m2 = (1 - b2) g^2, bias corrections 1 - b1 and 1 - b2.
      const double m1 = ps[i]->m1[j], m2 = ps[i]->m2[j];
      bad_moment += std::abs(m1 - (1 - b1) * g) > 1e-6 * std::abs((1 - b1) * g) + 1e-30 ||
                    std::abs(m2 - (1 - b2) * g * g) > 1e-5 * ((1 - b2) * g * g) + 1e-30;
      const double w = w0[i]->value.data[j], wd = ps[i]->decay ? c.weight_decay : 0.0;
      const double expect = w - lr0 * wd * w - lr0 * g / (std::abs(g) + c.eps);
      bad_value += std::abs(ps[i]->value.data[j] - expect) > 1e-6 * std::abs(expect) + 1e-9;
    }
  }
  CHECK(n == r.model().parameter_count());
  CHECK(decayed > 0);
  CHECK(std::sqrt(clipped_sum) == Approx(c.grad_clip).epsilon(1e-5));
  CHECK(bad_grad == 0);
  CHECK(bad_moment == 0);
  CHECK(bad_value == 0);

  // A tiny threshold clips every step, none clips none.
  c.iterations = 10;
  c.eval_every = 5;
  LmRun every(c, pattern());
  train_all(every);
  CHECK(every.clipped == 10);
  c.grad_clip = 0;
  LmRun never(c, pattern());
  train_all(never);
  CHECK(never.clipped == 0);
  CHECK(never.grad_norm[0] == every.grad_norm[0]);  // the same first step, unclipped
  CHECK(never.grad_norm != every.grad_norm);
}

TEST_CASE("lm: a resumed run ends with the numbers of an uninterrupted one", "[sim][lm][checkpoint]") {
  const LmConfig c = tiny("fp8-hybrid-delayed");
  LmRun whole(c, pattern());
  train_all(whole);
  // A moved run keeps training as itself; progress sees every step.
  LmRun moved(c, pattern());
  LmRun first = std::move(moved);
  std::vector<std::int64_t> seen;
  first.train_until_eval([&](std::int64_t done) { seen.push_back(done); });
  REQUIRE(first.iterations_done() == 10);
  CHECK(seen == std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  const std::string p = temp_path("resume.ckpt");
  first.save(p);
  LmRun resumed(c, pattern());
  resumed.load(p);
  CHECK(resumed.iterations_done() == 10);
  CHECK(differences(first, resumed) == 0);
  CHECK(recorded(resumed) > 0);  // the delayed-scaling state came back
  train_all(resumed);
  CHECK(resumed.done());
  CHECK(differences(whole, resumed) == 0);
  CHECK(resumed.eval_rows.size() == 2);
  // The checkpoint is version 4, decodes to what the run holds and encodes back to itself.
  const std::vector<std::uint8_t> bytes = read_bytes(p);
  std::uint32_t version = 0;
  std::memcpy(&version, bytes.data() + 8, 4);
  CHECK(version == kLmCheckpointVersion);
  const CheckpointState s = decode_checkpoint(bytes, first.checkpoint_layout(), p);
  CHECK(s.grad_norm == first.grad_norm);
  CHECK(s.eval_rows.size() == 1);
  CHECK(encode_checkpoint(first.checkpoint_layout().fingerprint, s) == bytes);
  // A Run reads version 2 only.
  CheckpointLayout run_layout = first.checkpoint_layout();
  run_layout.lm = false;
  CHECK(error_of([&] { decode_checkpoint(bytes, run_layout, p); }) ==
        p + ": checkpoint of format version 4; this fp8sim reads version 2");
  // A checkpoint before the first step is valid too.
  LmRun fresh(c, pattern());
  fresh.save(p);
  LmRun again(c, pattern());
  again.load(p);
  CHECK(again.iterations_done() == 0);
}

TEST_CASE("lm: a checkpoint holds the delayed-scaling state of per-layer precision", "[sim][lm][checkpoint]") {
  // fp32, with the first block under delayed scaling (a layer override).
  LmConfig c = tiny();
  LayerOverride o;
  o.pattern = "h0.*";
  o.recipe = "fp8-hybrid-delayed";
  const Recipe delayed = named_recipe(o.recipe);
  for (int r = 0; r < kRoles; ++r) o.roles[r] = delayed.roles[r];
  c.recipe.layers.push_back(o);
  c.model.dropout = 0.1f;
  LmRun whole(c, pattern()), first(c, pattern());
  train_all(whole);
  first.train_until_eval();
  const std::vector<std::string> names = first.model().gemm_names();
  const std::vector<GemmCore*> cores = first.model().gemm_cores();
  REQUIRE(names.size() == cores.size());
  int with_state = 0, without = 0;
  for (std::size_t i = 0; i < cores.size(); ++i)
    (cores[i]->states[0][0].recorded > 0 ? with_state : without) += 1;
  CHECK(with_state >= 2);  // at least h0.attn.qkv and h0.mlp.up
  CHECK(without >= 3);
  const std::string p = temp_path("layers.ckpt");
  first.save(p);
  LmRun resumed(c, pattern());
  resumed.load(p);
  CHECK(differences(first, resumed) == 0);
  train_all(resumed);
  CHECK(differences(whole, resumed) == 0);
}

TEST_CASE("lm: damaged, truncated and foreign checkpoints are refused and change nothing",
          "[sim][lm][checkpoint]") {
  const LmConfig c = tiny("fp8-hybrid-delayed");
  LmRun first(c, pattern());
  first.train_until_eval();
  const std::string good_path = temp_path("good.ckpt"), p = temp_path("bad.ckpt");
  first.save(good_path);
  const std::vector<std::uint8_t> good = read_bytes(good_path);
  auto refused = [&](const std::vector<std::uint8_t>& b, const LmConfig& cfg = tiny("fp8-hybrid-delayed"),
                     const TokenSplit& data = pattern()) {
    write_bytes(p, b);
    LmRun r(cfg, data);
    const std::string e = error_of([&] { r.load(p); });
    INFO(e);
    CHECK(r.iterations_done() == 0);
    CHECK(r.step_loss.empty());
    return e.rfind(p + ": ", 0) == 0 ? e.substr(p.size() + 2) : "unnamed: " + e;
  };
  // A flipped byte in the parameters, in the gradient norms near the end, and in the header.
  for (std::size_t at : {good.size() / 2, good.size() - 60, std::size_t(9)}) {
    std::vector<std::uint8_t> b = good;
    b[at] ^= 0x04;
    const std::string e = refused(b);
    CHECK((e.find("checksum mismatch") != std::string::npos || e.find("format version") != std::string::npos));
  }
  // Truncated.
  CHECK(refused(std::vector<std::uint8_t>(good.begin(), good.end() - 100)).find("truncated checkpoint") == 0);
  // Another seed, another schedule, other tokens.
  LmConfig other = c;
  other.seed = 4;
  CHECK(refused(good, other).find("the checkpoint is from a run with other settings") == 0);
  other = c;
  other.warmup = 6;
  CHECK(refused(good, other).find("the checkpoint is from a run with other settings") == 0);
  TokenSplit shifted = pattern();
  shifted.train[100] = 4;
  CHECK(refused(good, c, shifted).find("the checkpoint is from a run with other settings") == 0);
  // A valid frame whose language-model section does not fit the run.
  LmRun layout_run(c, pattern());
  const CheckpointLayout layout = layout_run.checkpoint_layout();
  auto changed = [&](const std::function<void(CheckpointState&)>& f) {
    CheckpointState s = decode_checkpoint(good, layout, "test");
    f(s);
    return refused(encode_checkpoint(layout.fingerprint, s));
  };
  CHECK(changed([](CheckpointState& s) { s.grad_norm.pop_back(); }).find("gradient norms number 9") != std::string::npos);
  CHECK(changed([](CheckpointState& s) { s.grad_norm[2] = -1; }).find("negative norm") != std::string::npos);
  CHECK(changed([](CheckpointState& s) { s.clipped = 11; }).find("clipped count 11 is outside") != std::string::npos);
  CHECK(changed([](CheckpointState& s) { s.eval_rows[0].iteration = 9; }).find("evaluation row 1") != std::string::npos);
  CHECK(changed([](CheckpointState& s) { s.eval_rows.clear(); }).find("evaluation rows number 0") != std::string::npos);
  CHECK(changed([](CheckpointState& s) { s.lm = false; }).find("format version 2") != std::string::npos);
  // A run refused a checkpoint trains as a fresh one.
  std::vector<std::uint8_t> b = good;
  b[b.size() / 3] ^= 1;
  write_bytes(p, b);
  LmRun refused_run(c, pattern()), fresh(c, pattern());
  CHECK_THROWS_AS(refused_run.load(p), DataError);
  train_all(refused_run);
  train_all(fresh);
  CHECK(differences(refused_run, fresh) == 0);
  CHECK(error_of([&] { fresh.load(temp_path("missing.ckpt")); }).find("cannot open the checkpoint") != std::string::npos);
}

TEST_CASE("lm: bad settings and data are refused with what is wrong", "[sim][lm]") {
  auto error = [](const std::function<void(LmConfig&)>& change, const TokenSplit& data = pattern()) {
    LmConfig c = tiny();
    change(c);
    return error_of([&] { LmRun r(c, data); });
  };
  CHECK(error([](LmConfig& c) { c.iterations = 0; }) == "iterations must be in [1, 2^40]");
  CHECK(error([](LmConfig& c) { c.batch = 0; }) == "batch must be in [1, 2^24]");
  CHECK(error([](LmConfig& c) { c.eval_every = 0; }) == "eval-every must be >= 1");
  CHECK(error([](LmConfig& c) { c.batch = (1 << 19) + 1; }) == "batch x model heads must be at most 2^20");
  CHECK(error([](LmConfig& c) { c.model.width = 15; }).find("model: width") == 0);
  CHECK(error([](LmConfig& c) { c.eval_batches = 0; }).find("eval-batches must be") == 0);
  CHECK(error([](LmConfig& c) { c.min_lr = 1; }) == "min-lr must be in [0, lr]");
  CHECK(error([](LmConfig& c) { c.grad_clip = -1; }).find("grad-clip must be") == 0);
  CHECK(error([](LmConfig& c) { c.beta2 = 1; }) == "beta2 must be in [0, 1)");
  CHECK(error([](LmConfig& c) { c.log_every = 0; }) == "log-every must be >= 1");
  CHECK(error([](LmConfig&) {}) == "no error");
  TokenSplit short_train = pattern();
  short_train.train.resize(16);  // one window needs context + 1 = 17 tokens
  CHECK(error([](LmConfig&) {}, short_train) ==
        "the training tokens (16) are fewer than one window of context + 1 = 17 tokens");
  short_train.train.resize(17);
  CHECK(error([](LmConfig&) {}, short_train) == "no error");
  TokenSplit short_val = pattern();
  short_val.val.resize(3);
  CHECK(error([](LmConfig&) {}, short_val) ==
        "the validation tokens (3) are fewer than one window of context + 1 = 17 tokens");
  TokenSplit outside = pattern();
  outside.val[7] = 16;
  CHECK(error([](LmConfig&) {}, outside) == "the validation token 7 is 16, outside the vocabulary [0, 16)");
  LmConfig c = tiny();
  c.iterations = 0;
  CHECK_THROWS_AS(LmRun(c, pattern()), std::invalid_argument);
  CHECK_THROWS_AS(LmRun(tiny(), short_val), DataError);
}

TEST_CASE("lm: a non-finite gradient norm is recorded and its update skipped", "[sim][lm]") {
  // A learning rate of 1e30 blows the weights up until the gradients overflow.
  LmConfig c = tiny();
  c.lr = 1e30f;
  c.min_lr = 0;
  c.warmup = 0;
  c.grad_clip = 0;
  c.iterations = 8;
  c.eval_every = 1;
  LmRun r(c, pattern());
  std::int64_t skipped = 0, unchanged = 0;
  while (!r.done()) {
    std::vector<std::vector<float>> before;
    for (Param* p : r.model().params()) before.push_back(p->value.data);
    r.train_until_eval();
    if (!std::isfinite(r.grad_norm.back())) {
      ++skipped;
      std::size_t i = 0;
      bool same = true;
      for (Param* p : r.model().params()) same = same && p->value.data == before[i++];
      unchanged += same;
    }
  }
  REQUIRE(skipped > 0);
  CHECK(unchanged == skipped);
  CHECK(!r.divergence().empty());
  INFO(r.divergence());
  CHECK(r.divergence().find("non-finite") == 0);
}
