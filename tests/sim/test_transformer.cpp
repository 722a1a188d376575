// The GPT model (fp8sim/transformer.hpp): its loss against an independent float64 forward
// written here (naive loops sharing no code with sim/src/transformer.cpp or layers.cpp),
// every parameter's gradient against central differences of that float64 loss, the causal
// mask, softmax stability, dropout, the activation spike, initialisation, thread-count
// independence, per-layer precision by name and alias, and the attention products under
// the recipe.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "files.hpp"
#include "fp8emu/random.hpp"
#include "fp8sim/lm.hpp"
#include "fp8sim/recipe.hpp"
#include "fp8sim/transformer.hpp"

using namespace fp8sim;

namespace {

using Values = std::map<std::string, std::vector<double>>;

double uniform(std::uint64_t stream, std::size_t i) {
  return double(fp8emu::random_bits(fp8emu::random_key(7, stream), i)) * 0x1p-32;
}

// ---- the float64 reference forward -------------------------------------------

// Rows of x (n x d) normalised, times gain plus bias (biased variance, eps 1e-5).
std::vector<double> layer_norm64(const std::vector<double>& x, std::int64_t n, std::int64_t d,
                                 const std::vector<double>& g, const std::vector<double>& b) {
  std::vector<double> y(x.size());
  for (std::int64_t r = 0; r < n; ++r) {
    double m = 0, v = 0;
    for (std::int64_t i = 0; i < d; ++i) m += x[std::size_t(r * d + i)];
    m /= double(d);
    for (std::int64_t i = 0; i < d; ++i) v += (x[std::size_t(r * d + i)] - m) * (x[std::size_t(r * d + i)] - m);
    v /= double(d);
    for (std::int64_t i = 0; i < d; ++i)
      y[std::size_t(r * d + i)] =
          (x[std::size_t(r * d + i)] - m) / std::sqrt(v + 1e-5) * g[std::size_t(i)] + b[std::size_t(i)];
  }
  return y;
}

// x (n x in) W^T (W: out x in) + bias (empty: none).
std::vector<double> affine64(const std::vector<double>& x, std::int64_t n, std::int64_t in, std::int64_t out,
                             const std::vector<double>& w, const std::vector<double>* bias) {
  std::vector<double> y(std::size_t(n * out));
  for (std::int64_t r = 0; r < n; ++r)
    for (std::int64_t o = 0; o < out; ++o) {
      double s = bias ? (*bias)[std::size_t(o)] : 0.0;
      for (std::int64_t k = 0; k < in; ++k) s += x[std::size_t(r * in + k)] * w[std::size_t(o * in + k)];
      y[std::size_t(r * out + o)] = s;
    }
  return y;
}

// The documented dropout mask: element i of site `site` at step `step` is dropped when
// the bits of (seed, 2^58 + (step << 8) + site, i) are below p 2^32; kept elements are
// multiplied by 1 / (1 - p). Sites: 0 the embeddings, 1 + 3 l block l's attention
// probabilities (index over batch, head, query, key), 2 + 3 l its attention output,
// 3 + 3 l its MLP output.
double keep(double p, std::uint64_t seed, std::uint64_t step, std::uint64_t site, std::uint64_t i) {
  if (p == 0) return 1.0;
  const std::uint32_t bits = fp8emu::random_bits(fp8emu::random_key(seed, (1ull << 58) + (step << 8) + site), i);
  return double(bits) < p * 0x1p32 ? 0.0 : 1.0 / (1.0 - p);
}

struct Reference {
  GptConfig c;
  std::int64_t mlp;
  std::vector<std::int32_t> tokens, targets;
  std::int64_t B, T;
  std::vector<double> logits;  // of the last call
  std::uint64_t seed = 0, step = 0;  // of the dropout masks (c.dropout > 0)
  double max_score = 0;              // the largest |score| of the last call

  // The input of GEMM layer `what` of block l ("head": l < 0) at this training step: x, or
  // x times c.spike.factor when a spike covers the step and its pattern names the layer.
  std::vector<double> spiked(std::vector<double> x, std::int64_t l, const std::string& what) const {
    const ActivationSpike& s = c.spike;
    if (s.steps <= 0 || step < std::uint64_t(s.first) || step >= std::uint64_t(s.first + s.steps)) return x;
    const bool named = l < 0 ? layer_matches(s.layers, what)
                             : layer_matches(s.layers, "h" + std::to_string(l) + "." + what) ||
                                   layer_matches(s.layers, "h-" + std::to_string(c.layers - l) + "." + what);
    if (named)
      for (double& e : x) e *= s.factor;
    return x;
  }

  double loss(Values& v) {
    const std::int64_t W = c.width, H = c.heads, hd = W / H, N = B * T, V = c.vocab;
    const double p = c.dropout;
    std::vector<double> x(std::size_t(N * W));
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t k = 0; k < W; ++k)
        x[std::size_t(n * W + k)] = (v["wte"][std::size_t(tokens[std::size_t(n)] * W + k)] +
                                     v["wpe"][std::size_t((n % T) * W + k)]) *
                                    keep(p, seed, step, 0, std::uint64_t(n * W + k));
    max_score = 0;
    for (std::int64_t l = 0; l < c.layers; ++l) {
      const std::string h = "h" + std::to_string(l) + ".";
      const auto a = layer_norm64(x, N, W, v[h + "ln1.gain"], v[h + "ln1.bias"]);
      const auto qkv = affine64(spiked(a, l, "attn.qkv"), N, W, 3 * W, v[h + "attn.qkv.weight"], &v[h + "attn.qkv.bias"]);
      std::vector<double> y(std::size_t(N * W), 0.0);
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t hh = 0; hh < H; ++hh)
          for (std::int64_t i = 0; i < T; ++i) {
            // Scores of query i against keys j <= i, their softmax, the mix of values.
            std::vector<double> s(std::size_t(i + 1));
            double mx = -1e300;
            for (std::int64_t j = 0; j <= i; ++j) {
              double d = 0;
              for (std::int64_t k = 0; k < hd; ++k)
                d += qkv[std::size_t((b * T + i) * 3 * W + hh * hd + k)] *
                     qkv[std::size_t((b * T + j) * 3 * W + W + hh * hd + k)];
              s[std::size_t(j)] = d / std::sqrt(double(hd));
              mx = std::max(mx, s[std::size_t(j)]);
              max_score = std::max(max_score, std::fabs(s[std::size_t(j)]));
            }
            double z = 0;
            for (double& e : s) z += e = std::exp(e - mx);
            for (std::int64_t j = 0; j <= i; ++j) {
              const std::uint64_t index = std::uint64_t(((b * H + hh) * T + i) * T + j);
              const double pij = s[std::size_t(j)] / z * keep(p, seed, step, std::uint64_t(1 + 3 * l), index);
              for (std::int64_t k = 0; k < hd; ++k)
                y[std::size_t((b * T + i) * W + hh * hd + k)] +=
                    pij * qkv[std::size_t((b * T + j) * 3 * W + 2 * W + hh * hd + k)];
            }
          }
      const auto o = affine64(spiked(y, l, "attn.proj"), N, W, W, v[h + "attn.proj.weight"], &v[h + "attn.proj.bias"]);
      for (std::size_t e = 0; e < x.size(); ++e) x[e] += o[e] * keep(p, seed, step, std::uint64_t(2 + 3 * l), e);
      const auto a2 = layer_norm64(x, N, W, v[h + "ln2.gain"], v[h + "ln2.bias"]);
      auto u = affine64(spiked(a2, l, "mlp.up"), N, W, mlp, v[h + "mlp.up.weight"], &v[h + "mlp.up.bias"]);
      for (double& e : u) e = 0.5 * e * (1.0 + std::erf(e / std::sqrt(2.0)));
      const auto d = affine64(spiked(u, l, "mlp.down"), N, mlp, W, v[h + "mlp.down.weight"], &v[h + "mlp.down.bias"]);
      for (std::size_t e = 0; e < x.size(); ++e) x[e] += d[e] * keep(p, seed, step, std::uint64_t(3 + 3 * l), e);
    }
    const auto xf = layer_norm64(x, N, W, v["ln_f.gain"], v["ln_f.bias"]);
    logits = affine64(spiked(xf, -1, "head"), N, W, V, c.tied_head ? v["wte"] : v["head.weight"], nullptr);
    double loss = 0;
    for (std::int64_t n = 0; n < N; ++n) {
      double mx = -1e300, z = 0;
      for (std::int64_t j = 0; j < V; ++j) mx = std::max(mx, logits[std::size_t(n * V + j)]);
      for (std::int64_t j = 0; j < V; ++j) z += std::exp(logits[std::size_t(n * V + j)] - mx);
      loss += std::log(z) + mx - logits[std::size_t(n * V + targets[std::size_t(n)])];
    }
    return loss / double(N);
  }
};

GptConfig tiny(bool tied) {
  GptConfig c;
  c.vocab = 7;
  c.context = 5;
  c.layers = 2;
  c.heads = 2;
  c.width = 8;
  c.mlp = 12;
  c.tied_head = tied;
  return c;
}

// Sets every parameter to a random value well away from GPT-2's small initialisation, so
// that every path of the backward carries a sizeable gradient: weights in +-0.6, biases
// in +-0.3, LayerNorm gains in [0.5, 1.5].
void randomize(Gpt& m, std::uint64_t salt) {
  std::uint64_t s = salt * 1000;
  for (Param* p : m.params()) {
    const bool gain = p->name.ends_with(".gain");
    const bool bias = p->name.ends_with(".bias");
    for (std::size_t i = 0; i < p->value.data.size(); ++i) {
      const double u = uniform(s, i);
      p->value.data[i] = float(gain ? 0.5 + u : bias ? 0.6 * (u - 0.5) : 1.2 * (u - 0.5));
    }
    ++s;
  }
}

Values values_of(Gpt& m) {
  Values v;
  for (Param* p : m.params()) v[p->name] = std::vector<double>(p->value.data.begin(), p->value.data.end());
  return v;
}

std::vector<std::int32_t> random_tokens(std::int64_t n, std::int64_t vocab, std::uint64_t stream) {
  std::vector<std::int32_t> t(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < t.size(); ++i) t[i] = std::int32_t(uniform(stream, i) * double(vocab));
  return t;
}

StepContext context(const Recipe& r, int threads = 1) {
  StepContext ctx;
  ctx.recipe = &r;
  ctx.seed = 11;
  ctx.exec.threads = threads;
  return ctx;
}

double norm(const std::vector<double>& v) {
  double s = 0;
  for (double e : v) s += e * e;
  return std::sqrt(s);
}

// Checks every parameter's gradient of the model against central differences of the
// float64 reference loss; returns the parameters checked.
int check_gradients(bool tied, float dropout = 0, const ActivationSpike& spike = {}) {
  GptConfig c = tiny(tied);
  c.dropout = dropout;
  c.spike = spike;
  Gpt m(c, 3);
  randomize(m, tied ? 1 : 2);
  const std::int64_t B = 2, T = 5;
  Reference ref{c, c.mlp, random_tokens(B * T, c.vocab, 50), random_tokens(B * T, c.vocab, 51), B, T, {}};
  const Recipe r = named_recipe("fp32");
  StepContext ctx = context(r);
  ctx.step = 4;
  ref.seed = ctx.seed;
  ref.step = ctx.step;
  const double loss = m.step(ref.tokens.data(), ref.targets.data(), B, T, ctx, true);
  Values v = values_of(m);
  const double loss64 = ref.loss(v);
  INFO("tied " << tied << " dropout " << dropout << " spike " << c.text());
  CHECK(std::fabs(loss - loss64) <= 1e-5 * loss64);
  // Logits against the reference's.
  std::vector<double> dl(ref.logits.size());
  for (std::size_t i = 0; i < dl.size(); ++i) dl[i] = double(m.logits().data[i]) - ref.logits[i];
  CHECK(norm(dl) <= 1e-5 * norm(ref.logits));
  int checked = 0;
  for (Param* p : m.params()) {
    std::vector<double>& w = v[p->name];
    std::vector<double> fd(w.size()), err(w.size());
    const double h = 1e-5;
    for (std::size_t i = 0; i < w.size(); ++i) {
      const double w0 = w[i];
      w[i] = w0 + h;
      const double lp = ref.loss(v);
      w[i] = w0 - h;
      const double lm = ref.loss(v);
      w[i] = w0;
      fd[i] = (lp - lm) / (2 * h);
      err[i] = double(p->grad.data[i]) - fd[i];
    }
    INFO(p->name << " |fd| " << norm(fd) << " |error| " << norm(err));
    REQUIRE(p->grad.data.size() == w.size());
    CHECK(norm(fd) > 1e-4);  // every parameter matters to the loss here
    CHECK(norm(err) <= 1e-4 * norm(fd));
    ++checked;
  }
  return checked;
}

}  // namespace

TEST_CASE("GPT loss and every gradient against a float64 forward and its finite differences", "[transformer]") {
  // wte, wpe, 12 per block, the final LayerNorm's 2, and the head's weight when untied.
  CHECK(check_gradients(true) == 2 + 2 * 12 + 2);
  CHECK(check_gradients(false) == 2 + 2 * 12 + 2 + 1);
}

TEST_CASE("GPT dropout: every gradient through the documented masks; none when not training", "[transformer]") {
  CHECK(check_gradients(true, 0.25f) == 2 + 2 * 12 + 2);
  // The masks drop about a quarter of the elements, and evaluation drops none.
  GptConfig c = tiny(true);
  c.dropout = 0.25f;
  Gpt m(c, 3), plain(tiny(true), 3);
  randomize(m, 1);
  randomize(plain, 1);
  const std::vector<std::int32_t> tok = random_tokens(10, c.vocab, 60), tgt = random_tokens(10, c.vocab, 61);
  const Recipe r = named_recipe("fp32");
  StepContext ctx = context(r);
  const double train0 = m.step(tok.data(), tgt.data(), 2, 5, ctx, false);
  ctx.step = 1;
  const double train1 = m.step(tok.data(), tgt.data(), 2, 5, ctx, false);
  ctx.training = false;
  const double eval = m.step(tok.data(), tgt.data(), 2, 5, ctx, false);
  const double without = plain.step(tok.data(), tgt.data(), 2, 5, ctx, false);
  CHECK(train0 != eval);
  CHECK(train0 != train1);  // a new mask every step
  CHECK(eval == without);
  std::int64_t dropped = 0, n = 100000;
  for (std::int64_t i = 0; i < n; ++i) dropped += keep(0.25, 11, 1, 0, std::uint64_t(i)) == 0;
  CHECK(std::fabs(double(dropped) / double(n) - 0.25) < 0.01);
}

TEST_CASE("GPT activation spike: every gradient through spiked GEMM inputs; bit-identical outside its steps",
          "[transformer]") {
  // The step of check_gradients is 4: each of these spikes covers it.
  CHECK(check_gradients(true, 0, {"h-1.*", 4, 1, 3.0}) == 2 + 2 * 12 + 2);
  CHECK(check_gradients(false, 0.25f, {"*.mlp.*", 2, 3, 2.5}) == 2 + 2 * 12 + 2 + 1);
  CHECK(check_gradients(true, 0, {"head", 0, 5, 0.5}) == 2 + 2 * 12 + 2);
  CHECK(check_gradients(false, 0, {"h0.attn.proj", 4, 1, 7.0}) == 2 + 2 * 12 + 2 + 1);

  // One training step of a model with spike `s` at step `step`: the loss, every gradient
  // and the fprop / wgrad activation operands' amax of h0.mlp.down.
  struct Result {
    double loss;
    std::vector<std::vector<float>> grads;
    double fprop_amax, wgrad_amax;
  };
  const Recipe r = named_recipe("fp8-hybrid-delayed");
  const auto run = [&](const ActivationSpike& s, std::uint64_t step, bool training) {
    GptConfig c = tiny(true);
    c.spike = s;
    Gpt m(c, 3);
    randomize(m, 5);
    const std::vector<std::int32_t> tok = random_tokens(10, c.vocab, 70), tgt = random_tokens(10, c.vocab, 71);
    StepContext ctx = context(r);
    ctx.step = step;
    ctx.training = training;
    Result out{m.step(tok.data(), tgt.data(), 2, 5, ctx, true), {}, 0, 0};
    for (Param* p : m.params()) out.grads.push_back(p->grad.data);
    const auto names = m.gemm_names();
    const auto cores = m.gemm_cores();
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i] == "h0.mlp.down") {
        out.fprop_amax = cores[i]->states[0][0].stats.amax;
        out.wgrad_amax = cores[i]->states[2][1].stats.amax;
      }
    return out;
  };
  const ActivationSpike spike{"h0.mlp.down", 5, 2, 16.0};
  int compared = 0;
  for (std::uint64_t step : {4, 5, 6, 7})
    for (bool training : {true, false}) {
      const Result none = run({}, step, training), off = run({"*", 5, 0, 16.0}, step, training),
                   spiked = run(spike, step, training);
      const bool active = training && (step == 5 || step == 6);
      INFO("step " << step << " training " << training);
      CHECK(off.loss == none.loss);
      CHECK(off.grads == none.grads);
      CHECK((spiked.loss == none.loss) == !active);
      CHECK((spiked.grads == none.grads) == !active);
      if (training) {
        // The operands of the spiked layer, and only its input, are 16 times larger (exactly).
        CHECK(spiked.fprop_amax == (active ? 16 : 1) * none.fprop_amax);
        CHECK(spiked.wgrad_amax == (active ? 16 : 1) * none.wgrad_amax);
        CHECK(none.fprop_amax > 0);
      }
      ++compared;
    }
  CHECK(compared == 8);
  ActivationSpike s = spike;
  GptConfig c = tiny(true);
  const std::string plain = c.text();
  c.spike.layers = "h0.*";  // no steps: no spike, and the line of a model without one
  CHECK(c.text() == plain);
  c.spike = s;
  CHECK(c.text() == plain + " spike=h0.mlp.down:first=5:steps=2:factor=16");
}

TEST_CASE("GPT activation spike in a language-model run: from its step on, and a checkpoint of another spike is "
          "refused",
          "[transformer]") {
  TokenSplit data;
  data.vocab = 7;
  for (int i = 0; i < 200; ++i) data.train.push_back(std::int32_t(i * 3 % 7));
  for (int i = 0; i < 40; ++i) data.val.push_back(std::int32_t(i * 3 % 7));
  LmConfig plain;
  plain.recipe = named_recipe("fp8-hybrid-delayed");
  plain.model = tiny(true);
  plain.iterations = 6;
  plain.eval_every = 3;
  plain.eval_batches = 1;
  plain.batch = 2;
  plain.warmup = 0;
  plain.exec.threads = 1;
  LmConfig spiked = plain;
  spiked.model.spike = {"h-1.mlp.down", 4, 1, 16.0};
  CHECK(plain.fingerprint().find("spike") == std::string::npos);
  CHECK(spiked.fingerprint().find("spike=h-1.mlp.down:first=4:steps=1:factor=16") != std::string::npos);
  LmRun a(plain, data), b(spiked, data);
  a.train_until_eval();
  b.train_until_eval();
  const std::string path = test_files::temp_path("fp8sim-spike-", "plain.ckpt");
  a.save(path);
  LmRun other(spiked, data);
  CHECK_THROWS_AS(other.load(path), DataError);
  CHECK(other.iterations_done() == 0);
  while (!a.done()) a.train_until_eval();
  while (!b.done()) b.train_until_eval();
  REQUIRE(a.step_loss.size() == 6);
  REQUIRE(b.step_loss.size() == 6);
  for (int t = 0; t < 4; ++t) CHECK(a.step_loss[std::size_t(t)] == b.step_loss[std::size_t(t)]);
  CHECK(a.step_loss[4] != b.step_loss[4]);
  CHECK(a.step_loss[5] != b.step_loss[5]);  // the weights and histories carry it on
}

TEST_CASE("GPT attention is causal and its softmax and the loss stay finite at huge scores", "[transformer]") {
  const GptConfig c = tiny(false);
  Gpt m(c, 3);
  randomize(m, 3);
  const Recipe r = named_recipe("fp32");
  StepContext ctx = context(r);
  std::vector<std::int32_t> tok = random_tokens(10, c.vocab, 70), tgt = random_tokens(10, c.vocab, 71);
  m.step(tok.data(), tgt.data(), 2, 5, ctx, false);
  const std::vector<float> before = m.logits().data;
  // A different token at position 3 of sequence 0 changes no logit of positions 0..2, nor
  // any of sequence 1.
  tok[3] = (tok[3] + 1) % std::int32_t(c.vocab);
  m.step(tok.data(), tgt.data(), 2, 5, ctx, false);
  const std::vector<float>& after = m.logits().data;
  const std::size_t V = std::size_t(c.vocab);
  for (std::size_t n = 0; n < 10; ++n) {
    bool same = true;
    for (std::size_t j = 0; j < V; ++j) same = same && before[n * V + j] == after[n * V + j];
    INFO("row " << n);
    CHECK(same == (n < 3 || n >= 5));
  }

  // Scores near 1e4 (the query and key weights scaled up) and logits near 1e3: exp
  // without the maximum subtracted would overflow float32 and float64.
  for (Param* p : m.params()) {
    if (p->name == "h0.attn.qkv.weight")
      for (std::size_t i = 0; i < std::size_t(2 * c.width * c.width); ++i) p->value.data[i] *= 150.0f;
    if (p->name == "ln_f.gain")
      for (float& g : p->value.data) g *= 300.0f;
  }
  const double loss = m.step(tok.data(), tgt.data(), 2, 5, ctx, true);
  Reference ref{c, c.mlp, tok, tgt, 2, 5, {}};
  Values v = values_of(m);
  const double loss64 = ref.loss(v);
  INFO("max |score| " << ref.max_score << " loss " << loss << " float64 " << loss64);
  CHECK(ref.max_score > 1e3);
  CHECK(std::isfinite(loss));
  CHECK(std::fabs(loss - loss64) <= 1e-3 * loss64);
  bool finite = true;
  for (Param* p : m.params())
    for (float g : p->grad.data) finite = finite && std::isfinite(g);
  CHECK(finite);
}

TEST_CASE("GPT initialisation: N(0, 0.02), residual projections 0.02 / sqrt(2 layers), biases 0, gains 1",
          "[transformer]") {
  GptConfig c;
  c.vocab = 65;
  c.context = 64;
  c.tied_head = false;  // c: 4 layers, 4 heads, 128 wide, mlp 512
  Gpt m(c, 5), same(c, 5), other(c, 6);
  const double proj = 0.02 / std::sqrt(8.0);
  const auto ps = m.params(), ps_same = same.params(), ps_other = other.params();
  int weights = 0, residual = 0, flat = 0;
  for (std::size_t k = 0; k < ps.size(); ++k) {
    const Param& p = *ps[k];
    INFO(p.name);
    CHECK(p.value.data == ps_same[k]->value.data);
    const bool bias = p.name.ends_with(".bias"), gain = p.name.ends_with(".gain");
    if (bias || gain) {
      bool all = true;
      for (float e : p.value.data) all = all && e == (gain ? 1.0f : 0.0f);
      CHECK(all);
      CHECK_FALSE(p.decay);
      ++flat;
      continue;
    }
    CHECK(p.decay);
    CHECK(p.value.data != ps_other[k]->value.data);
    const bool res = p.name.ends_with("attn.proj.weight") || p.name.ends_with("mlp.down.weight");
    const double sd = res ? proj : 0.02, n = double(p.value.size());
    double s1 = 0, s2 = 0, within = 0;
    for (float e : p.value.data) {
      s1 += e;
      s2 += double(e) * e;
      within += std::fabs(e) <= sd;
    }
    const double mean = s1 / n, std = std::sqrt(s2 / n - mean * mean);
    CHECK(std::fabs(mean) < 5 * sd / std::sqrt(n));
    CHECK(std::fabs(std / sd - 1) < 6 / std::sqrt(2 * n));
    CHECK(std::fabs(within / n - 0.6827) < 5 * 0.466 / std::sqrt(n));  // a normal, not a uniform (0.577)
    ++weights;
    residual += res;
  }
  CHECK(weights == 2 + 4 * 4 + 1);
  CHECK(residual == 2 * 4);
  CHECK(flat == 4 * 8 + 2);
  const std::int64_t W = 128, L = 4, F = 512, V = 65, C = 64;
  const std::int64_t block = 4 * W + 3 * W * W + 3 * W + W * W + W + 2 * W * F + F + W;
  CHECK(m.parameter_count() == 2 * V * W + C * W + L * block + 2 * W);
}

namespace {

// A model big enough that the attention products of a step split over threads.
GptConfig small(bool attention_recipe) {
  GptConfig c;
  c.vocab = 11;
  c.context = 8;
  c.layers = 2;
  c.heads = 4;
  c.width = 16;
  c.dropout = 0.1f;
  c.attention_recipe = attention_recipe;
  return c;
}

// Everything two training steps leave: both losses, every gradient, every operand state's
// delayed scale and statistics.
struct Outcome {
  std::vector<double> loss;
  std::vector<std::vector<float>> grads;
  std::vector<float> scales;
  std::vector<double> amax;
  std::vector<std::int64_t> counts;
};

Outcome two_steps(const GptConfig& c, const Recipe& r, int threads) {
  Gpt m(c, 9);
  const std::int64_t B = 3, T = 8;
  const std::vector<std::int32_t> tok = random_tokens(B * T, c.vocab, 80), tgt = random_tokens(B * T, c.vocab, 81);
  StepContext ctx = context(r, threads);
  Outcome o;
  for (std::uint64_t s = 0; s < 2; ++s) {
    ctx.step = s;
    o.loss.push_back(m.step(tok.data(), tgt.data(), B, T, ctx, true));
  }
  for (Param* p : m.params()) o.grads.push_back(p->grad.data);
  for (GemmCore* g : m.gemm_cores())
    for (auto& role : g->states)
      for (const OperandState& st : role) {
        o.scales.push_back(st.scale);
        o.amax.push_back(st.stats.amax);
        o.counts.push_back(st.stats.uses);
        o.counts.push_back(st.stats.flushed);
        o.counts.push_back(st.recorded);
      }
  return o;
}

// Uses of quantization statistics of every operand of `g`.
std::int64_t uses(const GemmCore& g) {
  std::int64_t u = 0;
  for (const auto& role : g.states)
    for (const OperandState& st : role) u += st.stats.uses;
  return u;
}

// The uses of every GEMM layer after one training step, by name.
std::map<std::string, std::int64_t> uses_by_layer(const GptConfig& c, const Recipe& r, double* loss = nullptr,
                                                  std::vector<std::vector<float>>* grads = nullptr) {
  Gpt m(c, 9);
  const std::vector<std::int32_t> tok = random_tokens(24, c.vocab, 80), tgt = random_tokens(24, c.vocab, 81);
  StepContext ctx = context(r);
  const double l = m.step(tok.data(), tgt.data(), 3, 8, ctx, true);
  if (loss) *loss = l;
  if (grads)
    for (Param* p : m.params()) grads->push_back(p->grad.data);
  std::map<std::string, std::int64_t> out;
  const auto names = m.gemm_names();
  const auto cores = m.gemm_cores();
  REQUIRE(names.size() == cores.size());
  for (std::size_t i = 0; i < cores.size(); ++i) out[names[i]] = uses(*cores[i]);
  return out;
}

Recipe with_override(Recipe r, std::vector<std::string> patterns) {
  const Recipe fp32 = named_recipe("fp32");
  for (const std::string& p : patterns) {
    LayerOverride o;
    o.pattern = p;
    o.recipe = "fp32";
    for (int k = 0; k < kRoles; ++k) o.roles[k] = fp32.roles[k];
    r.layers.push_back(o);
  }
  return r;
}

}  // namespace

TEST_CASE("GPT steps are bit-identical on 1 and 2 threads, in float32 and under FP8 recipes", "[transformer]") {
  int compared = 0;
  for (const char* name : {"fp32", "fp8-hybrid-delayed", "mxfp8", "fp8-hybrid-current", "nvfp4"})
    for (bool attention : {false, true}) {
      const Recipe r = named_recipe(name);
      const Outcome one = two_steps(small(attention), r, 1), two = two_steps(small(attention), r, 2);
      INFO(name << " attention_recipe " << attention);
      CHECK(one.loss == two.loss);
      CHECK(one.grads == two.grads);
      CHECK(one.scales == two.scales);
      CHECK(one.counts == two.counts);
      bool amax = one.amax.size() == two.amax.size();
      for (std::size_t i = 0; amax && i < one.amax.size(); ++i)
        amax = one.amax[i] == two.amax[i] || (std::isnan(one.amax[i]) && std::isnan(two.amax[i]));
      CHECK(amax);
      CHECK(std::isfinite(one.loss[1]));
      ++compared;
    }
  CHECK(compared == 10);
}

TEST_CASE("GPT per-layer precision: overrides apply by name and by the alias from the end", "[transformer]") {
  const GptConfig c = small(true);
  const Recipe fp8 = named_recipe("fp8-hybrid-current");
  const std::vector<std::string> all_names = Gpt(c, 9).gemm_names();
  REQUIRE(all_names == std::vector<std::string>{"h0.attn.qkv", "h0.attn.scores", "h0.attn.mix", "h0.attn.proj",
                                                "h0.mlp.up", "h0.mlp.down", "h1.attn.qkv", "h1.attn.scores",
                                                "h1.attn.mix", "h1.attn.proj", "h1.mlp.up", "h1.mlp.down", "head"});
  const auto base = uses_by_layer(c, fp8);
  for (const auto& [name, u] : base) {
    INFO(name);
    CHECK(u > 0);  // every GEMM layer quantized its operands
  }
  struct Case {
    std::vector<std::string> patterns;
    std::vector<std::string> kept;  // layers in float32 under the override
  };
  const std::vector<Case> cases = {
      {{"head"}, {"head"}},
      {{"h-1.*"}, {"h1.attn.qkv", "h1.attn.scores", "h1.attn.mix", "h1.attn.proj", "h1.mlp.up", "h1.mlp.down"}},
      {{"h-2.mlp.*", "head"}, {"h0.mlp.up", "h0.mlp.down", "head"}},
      {{"h0.attn.scores", "h-1.attn.mix"}, {"h0.attn.scores", "h1.attn.mix"}},
  };
  for (const Case& k : cases) {
    const auto got = uses_by_layer(c, with_override(fp8, k.patterns));
    for (const std::string& n : all_names) {
      const bool kept = std::find(k.kept.begin(), k.kept.end(), n) != k.kept.end();
      INFO(k.patterns.front() << ": " << n);
      CHECK(got.at(n) == (kept ? 0 : base.at(n)));
    }
  }
  // Every layer overridden: the numbers of the fp32 recipe, bit for bit.
  double l_all = 0, l_fp32 = 0;
  std::vector<std::vector<float>> g_all, g_fp32;
  uses_by_layer(c, with_override(fp8, {"*"}), &l_all, &g_all);
  uses_by_layer(c, named_recipe("fp32"), &l_fp32, &g_fp32);
  double l_fp8 = 0;
  uses_by_layer(c, fp8, &l_fp8);
  CHECK(l_all == l_fp32);
  CHECK(g_all == g_fp32);
  CHECK(l_fp8 != l_fp32);
}

TEST_CASE("GPT attention products under the recipe: statistics per layer, one delayed update per step",
          "[transformer]") {
  // fp32 roles: the products are the same float32 GEMMs either way.
  double l_on = 0, l_off = 0;
  std::vector<std::vector<float>> g_on, g_off;
  const Recipe fp32 = named_recipe("fp32");
  uses_by_layer(small(true), fp32, &l_on, &g_on);
  uses_by_layer(small(false), fp32, &l_off, &g_off);
  CHECK(l_on == l_off);
  CHECK(g_on == g_off);

  // Under an FP8 recipe: each of the 3 x 4 batch-head matrices of every role quantizes
  // both operands; without attention_recipe the products gather nothing.
  const Recipe fp8 = named_recipe("fp8-hybrid-current");
  double q_on = 0, q_off = 0;
  const auto on = uses_by_layer(small(true), fp8, &q_on), off = uses_by_layer(small(false), fp8, &q_off);
  for (const char* n : {"h0.attn.scores", "h0.attn.mix", "h1.attn.scores", "h1.attn.mix"}) {
    INFO(n);
    CHECK(on.at(n) == 3 * 2 * 12);
    CHECK(off.count(n) == 0);  // not a GEMM layer of the model without attention_recipe
  }
  CHECK(on.size() == off.size() + 4);
  CHECK(on.at("h0.attn.qkv") == off.at("h0.attn.qkv"));
  CHECK(q_on != q_off);

  // Delayed scaling: one amax pushed per step for the whole batched product, and no
  // update in evaluation.
  const Recipe delayed = named_recipe("fp8-hybrid-delayed");
  Gpt m(small(true), 9);
  const std::vector<std::int32_t> tok = random_tokens(24, 11, 80), tgt = random_tokens(24, 11, 81);
  StepContext ctx = context(delayed, 2);
  GemmCore* scores = m.gemm_cores()[1];
  REQUIRE(scores->names.front() == "h0.attn.scores");
  for (std::uint64_t s = 0; s < 2; ++s) {
    ctx.step = s;
    m.step(tok.data(), tgt.data(), 3, 8, ctx, true);
    for (const auto& role : scores->states)
      for (const OperandState& st : role) CHECK(st.recorded == std::int64_t(s + 1));
  }
  const float scale = scores->states[0][0].scale;
  CHECK(scale != 1.0f);
  // The scale is that of the largest amax of the history (max over steps of the largest
  // amax over the 12 matrices).
  const std::vector<float>& history = scores->states[0][0].history;
  CHECK(scale == amax_scale(delayed.roles[0].a.scaling, 448.0, std::max(history[0], history[1])));
  ctx.training = false;
  m.step(tok.data(), tgt.data(), 3, 8, ctx, false);
  CHECK(scores->states[0][0].recorded == 2);
  CHECK(scores->states[0][0].scale == scale);
}

TEST_CASE("GPT configuration and inputs: impossible ones are refused with a message", "[transformer]") {
  const auto refused = [](auto change, const std::string& what) {
    GptConfig c = tiny(true);
    change(c);
    try {
      c.check();
    } catch (const std::invalid_argument& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(what) != std::string::npos);
      return true;
    }
    return false;
  };
  CHECK(refused([](GptConfig& c) { c.vocab = 1; }, "vocab"));
  CHECK(refused([](GptConfig& c) { c.context = 0; }, "context"));
  CHECK(refused([](GptConfig& c) { c.layers = 0; }, "layers"));
  CHECK(refused([](GptConfig& c) { c.layers = 64; }, "layers"));
  CHECK(refused([](GptConfig& c) { c.heads = 0; }, "heads"));
  CHECK(refused([](GptConfig& c) { c.width = 0; }, "width"));
  CHECK(refused([](GptConfig& c) { c.width = 9; }, "multiple of heads"));
  CHECK(refused([](GptConfig& c) { c.mlp = -1; }, "mlp"));
  CHECK(refused([](GptConfig& c) { c.dropout = 1.0f; }, "dropout"));
  CHECK(refused([](GptConfig& c) { c.dropout = -0.1f; }, "dropout"));
  CHECK(refused([](GptConfig& c) { c.dropout = NAN; }, "dropout"));
  const auto spike = [](const std::string& layers, std::int64_t first, std::int64_t steps, double factor) {
    return [=](GptConfig& c) { c.spike = {layers, first, steps, factor}; };
  };
  CHECK(refused(spike("h0.*", -1, 1, 16), "spike.first"));
  CHECK(refused(spike("h0.*", 0, -1, 16), "spike.steps"));
  CHECK(refused(spike("h0.*", 0, 1, 0), "spike.factor"));
  CHECK(refused(spike("h0.*", 0, 1, -2), "spike.factor"));
  CHECK(refused(spike("h0.*", 0, 1, NAN), "spike.factor"));
  CHECK(refused(spike("h0.*", 0, 1, INFINITY), "spike.factor"));
  CHECK(refused(spike("", 0, 1, 16), "spike.layers"));
  CHECK(refused(spike("h0.mlp up", 0, 1, 16), "spike.layers"));
  CHECK(refused(spike("h2.*", 0, 1, 16), "matches no Linear GEMM layer"));   // 2 blocks: h0, h1
  CHECK(refused(spike("h0.attn.scores", 0, 1, 16), "matches no Linear GEMM layer"));
  CHECK_FALSE(refused(spike("h-2.attn.qkv", 0, 1, 16), ""));
  CHECK_FALSE(refused(spike("head", 1000, 1, 1e-3), ""));
  CHECK_FALSE(refused(spike("not a pattern!", 0, 0, 16), ""));  // no steps: no spike, nothing to match
  CHECK_FALSE(refused([](GptConfig&) {}, ""));
  CHECK_THROWS_AS(Gpt(GptConfig{}, 1), std::invalid_argument);  // vocab 0

  GptConfig c = tiny(true);
  c.mlp = 0;
  CHECK(c.text() == "vocab=7 context=5 layers=2 heads=2 width=8 mlp=32 tied_head=1 dropout=0 attention_recipe=0");
  Gpt m(c, 1);
  const Recipe r = named_recipe("fp32");
  StepContext ctx = context(r);
  std::vector<std::int32_t> tok(12, 1), tgt(12, 2);
  CHECK_NOTHROW(m.step(tok.data(), tgt.data(), 2, 5, ctx, true));
  CHECK_THROWS_WITH(m.step(tok.data(), tgt.data(), 2, 6, ctx, true), Catch::Contains("sequence length 6"));
  CHECK_THROWS_WITH(m.step(tok.data(), tgt.data(), 2, 0, ctx, true), Catch::Contains("sequence length 0"));
  CHECK_THROWS_WITH(m.step(tok.data(), tgt.data(), 0, 5, ctx, true), Catch::Contains("batch"));
  tok[7] = 7;
  CHECK_THROWS_WITH(m.step(tok.data(), tgt.data(), 2, 5, ctx, true), Catch::Contains("token id 7 at 7"));
  tok[7] = -1;
  CHECK_THROWS_WITH(m.step(tok.data(), tgt.data(), 2, 5, ctx, true), Catch::Contains("token id -1"));
  tok[7] = 0;
  tgt[9] = 9;
  CHECK_THROWS_WITH(m.step(tok.data(), tgt.data(), 2, 5, ctx, true), Catch::Contains("target id 9 at 9"));
  tgt[9] = 0;
  ctx.recipe = nullptr;
  CHECK_THROWS_WITH(m.step(tok.data(), tgt.data(), 2, 5, ctx, true), Catch::Contains("recipe"));
}

TEST_CASE("GPT at the edges: one token, sequences shorter than the context", "[transformer]") {
  const GptConfig c = tiny(false);
  const Recipe r = named_recipe("fp32");
  int checked = 0;
  for (std::int64_t T : {1, 3})
    for (std::int64_t B : {1, 2}) {
      Gpt m(c, 2);
      randomize(m, 4);
      const std::vector<std::int32_t> tok = random_tokens(B * T, c.vocab, 90), tgt = random_tokens(B * T, c.vocab, 91);
      StepContext ctx = context(r);
      const double loss = m.step(tok.data(), tgt.data(), B, T, ctx, true);
      Reference ref{c, c.mlp, tok, tgt, B, T, {}};
      Values v = values_of(m);
      const double loss64 = ref.loss(v);
      INFO("T " << T << " batch " << B);
      CHECK(std::fabs(loss - loss64) <= 1e-5 * loss64);
      const Param* wpe = m.params()[1];
      REQUIRE(wpe->name == "wpe");
      bool unused_zero = true, used_nonzero = true;
      for (std::int64_t t = 0; t < c.context; ++t) {
        double s = 0;
        for (std::int64_t k = 0; k < c.width; ++k) s += std::fabs(wpe->grad.data[std::size_t(t * c.width + k)]);
        if (t < T) used_nonzero = used_nonzero && s > 0;
        else unused_zero = unused_zero && s == 0;
      }
      CHECK(unused_zero);
      CHECK(used_nonzero);
      ++checked;
    }
  CHECK(checked == 4);
}
