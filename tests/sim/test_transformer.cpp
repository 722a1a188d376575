// The GPT model (fp8sim/transformer.hpp): its loss against an independent float64 forward
// written here (naive loops sharing no code with sim/src/transformer.cpp or layers.cpp),
// every parameter's gradient against central differences of that float64 loss, the causal
// mask, softmax stability, dropout, initialisation, thread-count independence, per-layer
// precision by name and alias, and the attention products under the recipe.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "fp8emu/random.hpp"
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
      y[std::size_t(r * d + i)] = (x[std::size_t(r * d + i)] - m) / std::sqrt(v + 1e-5) * g[std::size_t(i)] + b[std::size_t(i)];
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

struct Reference {
  GptConfig c;
  std::int64_t mlp;
  std::vector<std::int32_t> tokens, targets;
  std::int64_t B, T;
  std::vector<double> logits;  // of the last call

  double loss(Values& v) {
    const std::int64_t W = c.width, H = c.heads, hd = W / H, N = B * T, V = c.vocab;
    std::vector<double> x(std::size_t(N * W));
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t k = 0; k < W; ++k)
        x[std::size_t(n * W + k)] = v["wte"][std::size_t(tokens[std::size_t(n)] * W + k)] + v["wpe"][std::size_t((n % T) * W + k)];
    for (std::int64_t l = 0; l < c.layers; ++l) {
      const std::string h = "h" + std::to_string(l) + ".";
      const auto a = layer_norm64(x, N, W, v[h + "ln1.gain"], v[h + "ln1.bias"]);
      const auto qkv = affine64(a, N, W, 3 * W, v[h + "attn.qkv.weight"], &v[h + "attn.qkv.bias"]);
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
            }
            double z = 0;
            for (double& e : s) z += e = std::exp(e - mx);
            for (std::int64_t j = 0; j <= i; ++j)
              for (std::int64_t k = 0; k < hd; ++k)
                y[std::size_t((b * T + i) * W + hh * hd + k)] +=
                    s[std::size_t(j)] / z * qkv[std::size_t((b * T + j) * 3 * W + 2 * W + hh * hd + k)];
          }
      const auto o = affine64(y, N, W, W, v[h + "attn.proj.weight"], &v[h + "attn.proj.bias"]);
      for (std::size_t e = 0; e < x.size(); ++e) x[e] += o[e];
      const auto a2 = layer_norm64(x, N, W, v[h + "ln2.gain"], v[h + "ln2.bias"]);
      auto u = affine64(a2, N, W, mlp, v[h + "mlp.up.weight"], &v[h + "mlp.up.bias"]);
      for (double& e : u) e = 0.5 * e * (1.0 + std::erf(e / std::sqrt(2.0)));
      const auto d = affine64(u, N, mlp, W, v[h + "mlp.down.weight"], &v[h + "mlp.down.bias"]);
      for (std::size_t e = 0; e < x.size(); ++e) x[e] += d[e];
    }
    const auto xf = layer_norm64(x, N, W, v["ln_f.gain"], v["ln_f.bias"]);
    logits = affine64(xf, N, W, V, c.tied_head ? v["wte"] : v["head.weight"], nullptr);
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
int check_gradients(bool tied) {
  const GptConfig c = tiny(tied);
  Gpt m(c, 3);
  randomize(m, tied ? 1 : 2);
  const std::int64_t B = 2, T = 5;
  Reference ref{c, c.mlp, random_tokens(B * T, c.vocab, 50), random_tokens(B * T, c.vocab, 51), B, T, {}};
  const Recipe r = named_recipe("fp32");
  StepContext ctx = context(r);
  const double loss = m.step(ref.tokens.data(), ref.targets.data(), B, T, ctx, true);
  Values v = values_of(m);
  const double loss64 = ref.loss(v);
  INFO("tied " << tied);
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
