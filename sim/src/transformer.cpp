// The GPT model (see include/fp8sim/transformer.hpp).
#include "fp8sim/transformer.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "fp8emu/random.hpp"

namespace fp8sim {
namespace {

// Random streams of the model, disjoint from the GEMM layers' (below 2^56 for fewer than
// 2^45 steps, and twice that for their operands) and from train.cpp's (2^61 and up).
//  - attention products under a recipe: 2^56 + x with x < 2^55 (their operands use
//    2 stream + slot, in [2^57, 2^58));
//  - dropout masks: 2^58 + (step << 8) + site;
//  - initialisation: 2^59 + the parameter's index in params().
constexpr std::uint64_t kAttentionStream = 1ull << 56;
constexpr std::uint64_t kDropoutStream = 1ull << 58;
constexpr std::uint64_t kGptInitStream = 1ull << 59;

// The largest depth: GemmCore ids stay below 256 (GemmCore::stream gives each 8 bits).
constexpr std::int64_t kMaxLayers = 63;
// Batch x heads matrices per attention product (20 bits of its random stream).
constexpr std::int64_t kMaxAttentionMatrices = std::int64_t(1) << 20;

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

void init_normal(Param& p, double std, std::uint64_t seed, std::uint64_t index) {
  const fp8emu::RandomKey k = fp8emu::random_key(seed, kGptInitStream + index);
  for (std::size_t i = 0; i < p.value.data.size(); ++i)
    p.value.data[i] = float(std * fp8emu::random_normal(k, i));
}

void fill(Param& p, float v) { std::fill(p.value.data.begin(), p.value.data.end(), v); }

// Inverted dropout with probability p: element i is dropped when its random bits are below
// p 2^32, kept ones are multiplied by 1 / (1 - p).
struct Dropout {
  fp8emu::RandomKey key{};
  std::uint32_t threshold = 0;
  float keep_scale = 1.0f;
  bool on = false;
  float factor(std::uint64_t i) const { return fp8emu::random_bits(key, i) < threshold ? 0.0f : keep_scale; }
};

Dropout dropout(const GptConfig& c, const StepContext& ctx, std::uint64_t site) {
  Dropout d;
  d.on = ctx.training && c.dropout > 0;
  if (!d.on) return d;
  d.key = fp8emu::random_key(ctx.seed, kDropoutStream + (ctx.step << 8) + site);
  d.threshold = std::uint32_t(std::min(double(c.dropout) * 0x1p32, 4294967295.0));
  d.keep_scale = float(1.0 / (1.0 - double(c.dropout)));
  return d;
}

void apply_dropout(const Dropout& d, float* v, std::int64_t n) {
  if (!d.on) return;
  for (std::int64_t i = 0; i < n; ++i) v[i] *= d.factor(std::uint64_t(i));
}

// out = a + b (the residual connections), element by element in float32.
void add(const Tensor& a, const Tensor& b, Tensor& out) {
  for (std::size_t e = 0; e < a.data.size(); ++e) out.data[e] = a.data[e] + b.data[e];
}

int thread_count(const fp8emu::Execution& e) { return e.threads > 0 ? e.threads : omp_get_max_threads(); }

std::string number(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

// The name of block i's GEMM layer `what` ("attn.qkv", ...) in a model of `layers` blocks,
// then its alias from the end.
std::vector<std::string> block_layer_names(std::int64_t i, std::int64_t layers, const std::string& what) {
  return {"h" + std::to_string(i) + "." + what, "h-" + std::to_string(layers - i) + "." + what};
}

bool any_matches(const std::string& pattern, const std::vector<std::string>& names) {
  for (const std::string& n : names)
    if (layer_matches(pattern, n)) return true;
  return false;
}

// The Linear GEMM layers of each block (the ones a spike can reach).
constexpr const char* kLinearLayers[] = {"attn.qkv", "attn.proj", "mlp.up", "mlp.down"};

}  // namespace

std::string GptConfig::text() const {
  return "vocab=" + std::to_string(vocab) + " context=" + std::to_string(context) + " layers=" +
         std::to_string(layers) + " heads=" + std::to_string(heads) + " width=" + std::to_string(width) +
         " mlp=" + std::to_string(mlp ? mlp : 4 * width) + " tied_head=" + (tied_head ? "1" : "0") +
         " dropout=" + number(dropout) + " attention_recipe=" + (attention_recipe ? "1" : "0") +
         (spike.on() ? " spike=" + spike.layers + ":first=" + std::to_string(spike.first) +
                           ":steps=" + std::to_string(spike.steps) + ":factor=" + number(spike.factor)
                     : "");
}

bool ActivationSpike::active(const StepContext& ctx) const {
  return ctx.training && steps > 0 && ctx.step >= std::uint64_t(first) &&
         ctx.step - std::uint64_t(first) < std::uint64_t(steps);
}

void GptConfig::check() const {
  require(vocab >= 2, "model: vocab must be >= 2 (got " + std::to_string(vocab) + ")");
  require(context >= 1, "model: context must be >= 1 (got " + std::to_string(context) + ")");
  require(layers >= 1 && layers <= kMaxLayers, "model: layers must be in [1, " + std::to_string(kMaxLayers) +
                                                   "] (got " + std::to_string(layers) + ")");
  require(heads >= 1, "model: heads must be >= 1 (got " + std::to_string(heads) + ")");
  require(width >= 1, "model: width must be >= 1 (got " + std::to_string(width) + ")");
  require(width % heads == 0, "model: width (" + std::to_string(width) + ") must be a multiple of heads (" +
                                  std::to_string(heads) + ")");
  require(mlp >= 0, "model: mlp must be >= 0 (0: 4 width; got " + std::to_string(mlp) + ")");
  require(dropout >= 0.0f && dropout < 1.0f, "model: dropout must be in [0, 1) (got " + number(dropout) + ")");
  require(spike.first >= 0, "model: spike.first must be >= 0 (got " + std::to_string(spike.first) + ")");
  require(spike.steps >= 0, "model: spike.steps must be >= 0 (0: no spike; got " + std::to_string(spike.steps) + ")");
  require(std::isfinite(spike.factor) && spike.factor > 0,
          "model: spike.factor must be finite and > 0 (got " + number(spike.factor) + ")");
  if (!spike.on()) return;
  require(valid_layer_pattern(spike.layers), "model: spike.layers '" + spike.layers +
                                                 "' is not a layer pattern (1 to 64 of A-Z a-z 0-9 . _ - *)");
  bool any = any_matches(spike.layers, {"head"});
  for (std::int64_t i = 0; i < layers && !any; ++i)
    for (const char* what : kLinearLayers) any = any || any_matches(spike.layers, block_layer_names(i, layers, what));
  require(any, "model: spike.layers '" + spike.layers +
                   "' matches no Linear GEMM layer (hI.attn.qkv, hI.attn.proj, hI.mlp.up, hI.mlp.down, their "
                   "aliases h-J.*, head)");
}

// ---------------------------------------------------------------------------
// The model's state.
// ---------------------------------------------------------------------------

namespace {

// One attention product (Q K^T or P V) as a layer of the recipe: its operand states and
// names (its weight and bias are empty and unused).
GemmCore product_core(int id, const std::string& name, const std::string& alias) {
  GemmCore c(id, 0, 0);
  c.names = {name, alias};
  c.has_bias = false;
  return c;
}

struct Block {
  Block(const GptConfig& c, std::int64_t i, std::int64_t mlp)
      : ln1(c.width),
        ln2(c.width),
        qkv(int(4 * i), c.width, 3 * c.width),
        proj(int(4 * i + 1), c.width, c.width),
        up(int(4 * i + 2), c.width, mlp),
        down(int(4 * i + 3), mlp, c.width),
        scores(product_core(int(4 * c.layers + 1 + 2 * i), "", "")),
        mix(product_core(int(4 * c.layers + 2 + 2 * i), "", "")) {
    const std::string h = "h" + std::to_string(i);
    const auto name = [&](GemmCore& g, const std::string& what) {
      g.names = block_layer_names(i, c.layers, what);
      g.weight.name = h + "." + what + ".weight";
      g.bias.name = h + "." + what + ".bias";
    };
    name(qkv, "attn.qkv");
    name(proj, "attn.proj");
    name(up, "mlp.up");
    name(down, "mlp.down");
    name(scores, "attn.scores");
    name(mix, "attn.mix");
    ln1.gain.name = h + ".ln1.gain";
    ln1.bias.name = h + ".ln1.bias";
    ln2.gain.name = h + ".ln2.gain";
    ln2.bias.name = h + ".ln2.bias";
  }
  LayerNorm ln1, ln2;
  GemmCore qkv, proj, up, down;
  GemmCore scores, mix;  // Q K^T and P V: operand states only
  // Activations of the last forward (rows = batch x T).
  Tensor a1;       // ln1(x)
  Tensor q;        // qkv(a1): rows of [Q | K | V]
  Tensor p;        // softmax probabilities (batch, heads, T, T), zero above the diagonal
  Tensor pd;       // p after dropout (empty without dropout)
  Tensor y;        // heads concatenated (rows x width)
  Tensor xm;       // x + dropout(proj(y))
  Tensor a2;       // ln2(xm)
  Tensor u, g;     // up(a2), gelu(u)
  const Tensor& probs() const { return pd.data.empty() ? p : pd; }
};

// Temporary per-matrix operand states of one batched attention product.
struct ProductStates {
  std::vector<OperandState> s;  // [matrix][slot]
};

}  // namespace

struct Gpt::Impl {
  GptConfig c;
  std::int64_t mlp = 0;
  Param wte, wpe;
  std::vector<std::unique_ptr<Block>> blocks;
  LayerNorm lnf;
  GemmCore head;
  std::int64_t B = 0, T = 0;
  // Activations: xs[i] is the input of block i, xs[layers] the final LayerNorm's input.
  std::vector<Tensor> xs;
  Tensor xf, logits;
  // Backward buffers.
  Tensor dlogits, dx, dxm, dh, dmid, dq, dp, dvt;
  Tensor t0, t1;
  std::vector<GemmWorkspace> ws;
  // The activation spike of this step: the factor of each Linear layer (by GemmCore id; 1:
  // not spiked) and the spiked inputs, kept for the backward.
  std::vector<double> spike_factor;
  std::vector<Tensor> spiked;

  Impl(const GptConfig& config)
      : c(config),
        mlp(config.mlp ? config.mlp : 4 * config.width),
        lnf(config.width),
        head(int(4 * config.layers), config.width, config.vocab) {
    wte.name = "wte";
    wte.value.reshape({c.vocab, c.width});
    wpe.name = "wpe";
    wpe.value.reshape({c.context, c.width});
    for (std::int64_t i = 0; i < c.layers; ++i) blocks.push_back(std::make_unique<Block>(c, i, mlp));
    lnf.gain.name = "ln_f.gain";
    lnf.bias.name = "ln_f.bias";
    head.names = {"head"};
    head.has_bias = false;
    head.weight.name = "head.weight";
    if (c.tied_head) {
      head.shared_weight = &wte;
      head.weight.value.reshape({0});
    }
  }

  std::vector<Param*> params() {
    std::vector<Param*> out{&wte, &wpe};
    for (auto& b : blocks)
      for (Param* p : {&b->ln1.gain, &b->ln1.bias, &b->qkv.weight, &b->qkv.bias, &b->proj.weight, &b->proj.bias,
                       &b->ln2.gain, &b->ln2.bias, &b->up.weight, &b->up.bias, &b->down.weight, &b->down.bias})
        out.push_back(p);
    out.push_back(&lnf.gain);
    out.push_back(&lnf.bias);
    if (!c.tied_head) out.push_back(&head.weight);
    return out;
  }

  std::vector<GemmCore*> cores() {
    std::vector<GemmCore*> out;
    for (auto& b : blocks) {
      out.push_back(&b->qkv);
      if (c.attention_recipe) {
        out.push_back(&b->scores);
        out.push_back(&b->mix);
      }
      for (GemmCore* g : {&b->proj, &b->up, &b->down}) out.push_back(g);
    }
    out.push_back(&head);
    return out;
  }

  // ---- the activation spike ----------------------------------------------

  std::vector<GemmCore*> linear_cores() {
    std::vector<GemmCore*> out;
    for (auto& b : blocks)
      for (GemmCore* g : {&b->qkv, &b->proj, &b->up, &b->down}) out.push_back(g);
    out.push_back(&head);
    return out;
  }

  void set_spike(const StepContext& ctx) {
    spike_factor.assign(std::size_t(4 * c.layers + 1), 1.0);
    spiked.resize(spike_factor.size());
    if (!c.spike.active(ctx)) return;
    for (GemmCore* g : linear_cores())
      if (any_matches(c.spike.layers, g->names)) spike_factor[std::size_t(g->id)] = c.spike.factor;
  }

  // The input of Linear layer g in this step: x, or x times the spike's factor (kept for
  // the backward, which must see the same input: input_of).
  const float* spike_input(const GemmCore& g, const Tensor& x) {
    const double f = spike_factor[std::size_t(g.id)];
    if (f == 1.0) return x.data.data();
    Tensor& s = spiked[std::size_t(g.id)];
    s.reshape(x.shape);
    for (std::size_t e = 0; e < x.data.size(); ++e) s.data[e] = float(double(x.data[e]) * f);
    return s.data.data();
  }
  const float* input_of(const GemmCore& g, const Tensor& x) const {
    return spike_factor[std::size_t(g.id)] == 1.0 ? x.data.data() : spiked[std::size_t(g.id)].data.data();
  }
  // The gradient of layer g's unspiked input from that of its spiked input, in place:
  // dL/dx = factor dL/d(factor x).
  void spike_grad(const GemmCore& g, Tensor& dx) const {
    const double f = spike_factor[std::size_t(g.id)];
    if (f == 1.0) return;
    for (float& v : dx.data) v = float(double(v) * f);
  }

  // ---- attention ---------------------------------------------------------

  // The role of one attention product: the recipe's for the layer with attention_recipe,
  // else float32 (RoleSpec's defaults: float32 operands unscaled, float32 accumulation).
  RoleSpec product_role(const GemmCore& core, Role r, const StepContext& ctx) const {
    return c.attention_recipe ? ctx.recipe->role(r, core.names) : RoleSpec{};
  }

  // The random stream of matrix `m` of an attention product in role r.
  std::uint64_t product_stream(const GemmCore& core, Role r, const StepContext& ctx, std::int64_t m) const {
    const std::uint64_t slot = std::uint64_t(r) + (ctx.training ? 0 : 3);
    const std::uint64_t which = std::uint64_t(core.id - 4 * c.layers - 1);  // 2 layer + (0 scores, 1 mix)
    return kAttentionStream + ((((ctx.step * 8 + slot) << 7) + which) << 20) + std::uint64_t(m);
  }

  // Runs the B x heads GEMMs of one attention product in role r: gemm(m, role, states,
  // context, workspace) computes matrix m. Each matrix is quantized on its own with the
  // layer's delayed scale; afterwards the statistics of all matrices are merged into the
  // layer's states in matrix order, and delayed scaling pushes the largest amax of the
  // step once, as for one tensor.
  template <class F>
  void batched(GemmCore& core, Role r, const StepContext& ctx, std::int64_t count, ProductStates& tmp, F gemm) {
    const RoleSpec role = product_role(core, r, ctx);
    const bool delayed_a = role.a.scaling.kind == ScalingKind::delayed;
    const bool delayed_b = role.b.scaling.kind == ScalingKind::delayed;
    const bool stats = ctx.training && (ctx.stats || delayed_a || delayed_b);
    tmp.s.assign(std::size_t(2 * count), OperandState{});
    for (std::int64_t m = 0; m < count; ++m)
      for (int slot = 0; slot < 2; ++slot) tmp.s[std::size_t(2 * m + slot)].scale = core.states[int(r)][slot].scale;
    const int nt = std::max(1, std::min<int>(thread_count(ctx.exec), int(count)));
    if (ws.size() < std::size_t(nt)) ws.resize(std::size_t(nt));
#pragma omp parallel for num_threads(nt) schedule(static)
    for (std::int64_t m = 0; m < count; ++m) {
      GemmContext g{ctx.seed, product_stream(core, r, ctx, m), false, stats, ctx.exec};
      g.exec.threads = 1;
      gemm(m, role, tmp.s[std::size_t(2 * m)], tmp.s[std::size_t(2 * m + 1)], g, ws[std::size_t(omp_get_thread_num())]);
    }
    for (int slot = 0; slot < 2; ++slot) {
      QuantStats all;
      for (std::int64_t m = 0; m < count; ++m) all.merge(tmp.s[std::size_t(2 * m + slot)].stats);
      OperandState& st = core.states[int(r)][slot];
      if (ctx.training && ctx.stats) st.stats.merge(all);
      const OperandSpec& spec = slot == 0 ? role.a : role.b;
      if (ctx.training && spec.scaling.kind == ScalingKind::delayed && all.uses > 0)
        record_amax(spec.scaling, fp8emu::max_finite(spec.format), st, all.amax, ctx.defer_amax);
    }
  }

  void attention_forward(Block& bk, const StepContext& ctx, std::int64_t layer) {
    const std::int64_t W = c.width, H = c.heads, hd = W / H, BH = B * H, TT = T * T;
    const float scale = float(1.0 / std::sqrt(double(hd)));
    bk.p.reshape({B, H, T, T});
    bk.y.reshape({B * T, W});
    const Dropout drop = dropout(c, ctx, std::uint64_t(1 + 3 * layer));
    if (drop.on)
      bk.pd.reshape({B, H, T, T});
    else
      bk.pd = Tensor{};
    const float* q = bk.q.data.data();
    ProductStates tmp;
    // S = Q K^T, then the scaled, masked, stable softmax (in place).
    batched(bk.scores, Role::fprop, ctx, BH, tmp,
            [&](std::int64_t m, const RoleSpec& role, OperandState& sa, OperandState& sb, const GemmContext& g,
                GemmWorkspace& w) {
              const std::int64_t b = m / H, h = m % H;
              const float* base = q + b * T * 3 * W + h * hd;
              float* s = bk.p.data.data() + m * TT;
              recipe_gemm(role, {base, T, hd, fp8emu::Layout::row_major, 3 * W},
                          {base + W, hd, T, fp8emu::Layout::col_major, 3 * W}, s, T, false, sa, sb, g, w);
              for (std::int64_t i = 0; i < T; ++i) {
                float* row = s + i * T;
                float mx = -INFINITY;
                for (std::int64_t j = 0; j <= i; ++j) mx = std::max(mx, row[j] * scale);
                double sum = 0;
                for (std::int64_t j = 0; j <= i; ++j) {
                  const double e = std::exp(double(row[j] * scale) - double(mx));
                  row[j] = float(e);
                  sum += e;
                }
                for (std::int64_t j = 0; j <= i; ++j) row[j] = float(double(row[j]) / sum);
                for (std::int64_t j = i + 1; j < T; ++j) row[j] = 0.0f;
              }
              if (drop.on) {
                float* d = bk.pd.data.data() + m * TT;
                for (std::int64_t e = 0; e < TT; ++e) d[e] = s[e] * drop.factor(std::uint64_t(m * TT + e));
              }
            });
    // Y = P V, into the head's columns of y.
    const float* pr = bk.probs().data.data();
    batched(bk.mix, Role::fprop, ctx, BH, tmp,
            [&](std::int64_t m, const RoleSpec& role, OperandState& sa, OperandState& sb, const GemmContext& g,
                GemmWorkspace& w) {
              const std::int64_t b = m / H, h = m % H;
              const float* v = q + b * T * 3 * W + 2 * W + h * hd;
              recipe_gemm(role, {pr + m * TT, T, T, fp8emu::Layout::row_major, 0},
                          {v, T, hd, fp8emu::Layout::row_major, 3 * W}, bk.y.data.data() + b * T * W + h * hd, W,
                          false, sa, sb, g, w);
            });
  }

  // dy: gradient of y (rows x width); writes dq (rows x 3 width).
  void attention_backward(Block& bk, const Tensor& dy, const StepContext& ctx, std::int64_t layer) {
    const std::int64_t W = c.width, H = c.heads, hd = W / H, BH = B * H, TT = T * T;
    const double scale = 1.0 / std::sqrt(double(hd));
    const Dropout drop = dropout(c, ctx, std::uint64_t(1 + 3 * layer));
    dq.reshape({B * T, 3 * W});
    dp.reshape({B, H, T, T});
    dvt.reshape({BH, hd, T});
    const float* q = bk.q.data.data();
    const float* pr = bk.probs().data.data();
    ProductStates tmp;
    // dP = dY V^T (dgrad of mix).
    batched(bk.mix, Role::dgrad, ctx, BH, tmp,
            [&](std::int64_t m, const RoleSpec& role, OperandState& sa, OperandState& sb, const GemmContext& g,
                GemmWorkspace& w) {
              const std::int64_t b = m / H, h = m % H;
              const float* v = q + b * T * 3 * W + 2 * W + h * hd;
              recipe_gemm(role, {dy.data.data() + b * T * W + h * hd, T, hd, fp8emu::Layout::row_major, W},
                          {v, hd, T, fp8emu::Layout::col_major, 3 * W}, dp.data.data() + m * TT, T, false, sa, sb, g,
                          w);
            });
    // dV^T = dY^T P (wgrad of mix), then transposed into dq's V columns.
    batched(bk.mix, Role::wgrad, ctx, BH, tmp,
            [&](std::int64_t m, const RoleSpec& role, OperandState& sa, OperandState& sb, const GemmContext& g,
                GemmWorkspace& w) {
              const std::int64_t b = m / H, h = m % H;
              float* t = dvt.data.data() + m * hd * T;
              recipe_gemm(role, {dy.data.data() + b * T * W + h * hd, hd, T, fp8emu::Layout::col_major, W},
                          {pr + m * TT, T, T, fp8emu::Layout::row_major, 0}, t, T, false, sa, sb, g, w);
              float* dv = dq.data.data() + b * T * 3 * W + 2 * W + h * hd;
              for (std::int64_t i = 0; i < T; ++i)
                for (std::int64_t k = 0; k < hd; ++k) dv[i * 3 * W + k] = t[k * T + i];
              // Through dropout and the softmax (in place in dp): dS = scale P (dP - sum_j P dP),
              // zero above the diagonal.
              const float* p = bk.p.data.data() + m * TT;
              float* d = dp.data.data() + m * TT;
              for (std::int64_t i = 0; i < T; ++i) {
                float* row = d + i * T;
                const float* prow = p + i * T;
                if (drop.on)
                  for (std::int64_t j = 0; j <= i; ++j) row[j] *= drop.factor(std::uint64_t(m * TT + i * T + j));
                double dot = 0;
                for (std::int64_t j = 0; j <= i; ++j) dot += double(prow[j]) * double(row[j]);
                for (std::int64_t j = 0; j <= i; ++j) row[j] = float(scale * double(prow[j]) * (double(row[j]) - dot));
                for (std::int64_t j = i + 1; j < T; ++j) row[j] = 0.0f;
              }
            });
    // dQ = dS K (dgrad of scores).
    batched(bk.scores, Role::dgrad, ctx, BH, tmp,
            [&](std::int64_t m, const RoleSpec& role, OperandState& sa, OperandState& sb, const GemmContext& g,
                GemmWorkspace& w) {
              const std::int64_t b = m / H, h = m % H;
              const std::int64_t off = b * T * 3 * W + h * hd;
              recipe_gemm(role, {dp.data.data() + m * TT, T, T, fp8emu::Layout::row_major, 0},
                          {q + off + W, T, hd, fp8emu::Layout::row_major, 3 * W}, dq.data.data() + off, 3 * W, false,
                          sa, sb, g, w);
            });
    // dK = dS^T Q (wgrad of scores).
    batched(bk.scores, Role::wgrad, ctx, BH, tmp,
            [&](std::int64_t m, const RoleSpec& role, OperandState& sa, OperandState& sb, const GemmContext& g,
                GemmWorkspace& w) {
              const std::int64_t b = m / H, h = m % H;
              const std::int64_t off = b * T * 3 * W + h * hd;
              recipe_gemm(role, {dp.data.data() + m * TT, T, T, fp8emu::Layout::col_major, 0},
                          {q + off, T, hd, fp8emu::Layout::row_major, 3 * W}, dq.data.data() + off + W, 3 * W, false,
                          sa, sb, g, w);
            });
  }

  // ---- the whole model ---------------------------------------------------

  double step(const std::int32_t* tokens, const std::int32_t* targets, std::int64_t batch, std::int64_t len,
              StepContext& ctx, bool grad) {
    require(ctx.recipe != nullptr, "model: the step context has no recipe");
    require(batch >= 1, "model: batch must be >= 1 (got " + std::to_string(batch) + ")");
    require(len >= 1 && len <= c.context, "model: sequence length " + std::to_string(len) + " not in [1, context " +
                                              std::to_string(c.context) + "]");
    require(batch * c.heads <= kMaxAttentionMatrices,
            "model: batch x heads must be <= " + std::to_string(kMaxAttentionMatrices));
    require(tokens != nullptr && targets != nullptr, "model: tokens and targets are required");
    const std::int64_t N = batch * len, W = c.width, V = c.vocab;
    for (std::int64_t i = 0; i < N; ++i) {
      require(tokens[i] >= 0 && tokens[i] < V, "model: token id " + std::to_string(tokens[i]) + " at " +
                                                   std::to_string(i) + " outside [0, vocab " + std::to_string(V) + ")");
      require(targets[i] >= 0 && targets[i] < V, "model: target id " + std::to_string(targets[i]) + " at " +
                                                     std::to_string(i) + " outside [0, vocab " + std::to_string(V) +
                                                     ")");
    }
    B = batch;
    T = len;
    xs.resize(std::size_t(c.layers + 1));
    set_spike(ctx);

    // Embeddings.
    Tensor& x0 = xs[0];
    x0.reshape({N, W});
    for (std::int64_t n = 0; n < N; ++n) {
      const float* te = wte.value.data.data() + std::int64_t(tokens[n]) * W;
      const float* pe = wpe.value.data.data() + (n % T) * W;
      float* o = x0.data.data() + n * W;
      for (std::int64_t k = 0; k < W; ++k) o[k] = te[k] + pe[k];
    }
    apply_dropout(dropout(c, ctx, 0), x0.data.data(), N * W);

    // Blocks.
    GELU gelu;
    for (std::int64_t i = 0; i < c.layers; ++i) {
      Block& bk = *blocks[std::size_t(i)];
      const Tensor& x = xs[std::size_t(i)];
      bk.ln1.forward(x, bk.a1, ctx);
      bk.q.reshape({N, 3 * W});
      bk.qkv.forward(spike_input(bk.qkv, bk.a1), N, bk.q.data.data(), ctx);
      attention_forward(bk, ctx, i);
      t0.reshape({N, W});
      bk.proj.forward(spike_input(bk.proj, bk.y), N, t0.data.data(), ctx);
      apply_dropout(dropout(c, ctx, std::uint64_t(2 + 3 * i)), t0.data.data(), N * W);
      bk.xm.reshape({N, W});
      add(x, t0, bk.xm);
      bk.ln2.forward(bk.xm, bk.a2, ctx);
      bk.u.reshape({N, mlp});
      bk.up.forward(spike_input(bk.up, bk.a2), N, bk.u.data.data(), ctx);
      gelu.forward(bk.u, bk.g, ctx);
      bk.down.forward(spike_input(bk.down, bk.g), N, t0.data.data(), ctx);
      apply_dropout(dropout(c, ctx, std::uint64_t(3 + 3 * i)), t0.data.data(), N * W);
      Tensor& xo = xs[std::size_t(i + 1)];
      xo.reshape({N, W});
      add(bk.xm, t0, xo);
    }

    // Final LayerNorm, head, loss.
    lnf.forward(xs.back(), xf, ctx);
    logits.reshape({N, V});
    head.forward(spike_input(head, xf), N, logits.data.data(), ctx);
    if (grad) dlogits.reshape({N, V});
    double loss = 0;
    std::vector<double> e(static_cast<std::size_t>(V));
    for (std::int64_t n = 0; n < N; ++n) {
      const float* z = logits.data.data() + n * V;
      float zmax = z[0];
      for (std::int64_t j = 1; j < V; ++j) zmax = std::max(zmax, z[j]);
      double sum = 0;
      for (std::int64_t j = 0; j < V; ++j) sum += e[std::size_t(j)] = std::exp(double(z[j]) - double(zmax));
      const std::int64_t y = targets[n];
      // -log softmax_y = log sum - (z_y - zmax).
      loss += std::log(sum) - (double(z[y]) - double(zmax));
      if (grad)
        for (std::int64_t j = 0; j < V; ++j)
          dlogits.data[std::size_t(n * V + j)] = float((e[std::size_t(j)] / sum - (j == y ? 1.0 : 0.0)) / double(N));
    }
    loss /= double(N);
    if (!grad) return loss;

    // Backward. The head writes the weight gradient first (wte's, when tied).
    dh.reshape({N, W});
    head.backward(input_of(head, xf), dlogits.data.data(), N, dh.data.data(), ctx);
    spike_grad(head, dh);
    lnf.backward(xs.back(), xf, dh, &dx, ctx);
    for (std::int64_t i = c.layers; i-- > 0;) {
      Block& bk = *blocks[std::size_t(i)];
      const Tensor& x = xs[std::size_t(i)];
      // dx holds the gradient of the block's output. MLP branch.
      t0 = dx;
      apply_dropout(dropout(c, ctx, std::uint64_t(3 + 3 * i)), t0.data.data(), N * W);
      t1.reshape({N, mlp});
      bk.down.backward(input_of(bk.down, bk.g), t0.data.data(), N, t1.data.data(), ctx);
      spike_grad(bk.down, t1);
      gelu.backward(bk.u, bk.g, t1, &dmid, ctx);
      t1.reshape({N, W});
      bk.up.backward(input_of(bk.up, bk.a2), dmid.data.data(), N, t1.data.data(), ctx);
      spike_grad(bk.up, t1);
      bk.ln2.backward(bk.xm, bk.a2, t1, &dxm, ctx);
      for (std::int64_t e2 = 0; e2 < N * W; ++e2) dxm.data[std::size_t(e2)] += dx.data[std::size_t(e2)];
      // Attention branch.
      t0 = dxm;
      apply_dropout(dropout(c, ctx, std::uint64_t(2 + 3 * i)), t0.data.data(), N * W);
      dh.reshape({N, W});
      bk.proj.backward(input_of(bk.proj, bk.y), t0.data.data(), N, dh.data.data(), ctx);
      spike_grad(bk.proj, dh);
      attention_backward(bk, dh, ctx, i);
      t1.reshape({N, W});
      bk.qkv.backward(input_of(bk.qkv, bk.a1), dq.data.data(), N, t1.data.data(), ctx);
      spike_grad(bk.qkv, t1);
      bk.ln1.backward(x, bk.a1, t1, &dx, ctx);
      for (std::int64_t e2 = 0; e2 < N * W; ++e2) dx.data[std::size_t(e2)] += dxm.data[std::size_t(e2)];
    }
    // Embeddings: dropout, then scatter-adds in float64, rows in order.
    apply_dropout(dropout(c, ctx, 0), dx.data.data(), N * W);
    std::vector<double> dte(std::size_t(V * W), 0.0), dpe(std::size_t(c.context * W), 0.0);
    if (c.tied_head)
      for (std::size_t k = 0; k < dte.size(); ++k) dte[k] = wte.grad.data[k];
    for (std::int64_t n = 0; n < N; ++n) {
      const float* g = dx.data.data() + n * W;
      double* te = dte.data() + std::int64_t(tokens[n]) * W;
      double* pe = dpe.data() + (n % T) * W;
      for (std::int64_t k = 0; k < W; ++k) {
        te[k] += g[k];
        pe[k] += g[k];
      }
    }
    wte.grad.reshape(wte.value.shape);
    wpe.grad.reshape(wpe.value.shape);
    for (std::size_t k = 0; k < dte.size(); ++k) wte.grad.data[k] = float(dte[k]);
    for (std::size_t k = 0; k < dpe.size(); ++k) wpe.grad.data[k] = float(dpe[k]);
    return loss;
  }
};

// ---------------------------------------------------------------------------
// Gpt.
// ---------------------------------------------------------------------------

Gpt::Gpt(GptConfig config, std::uint64_t seed) : config_(std::move(config)) {
  config_.check();
  impl_ = std::make_shared<Impl>(config_);
  Impl& m = *impl_;
  // GPT-2 (nanoGPT model.py _init_weights): every weight N(0, 0.02), the residual output
  // projections N(0, 0.02 / sqrt(2 layers)), biases 0, LayerNorm gains 1 and biases 0.
  const double proj_std = 0.02 / std::sqrt(2.0 * double(config_.layers));
  std::uint64_t index = 0;
  for (Param* p : m.params()) {
    const bool residual = p->name.ends_with("attn.proj.weight") || p->name.ends_with("mlp.down.weight");
    const bool gain = p->name.ends_with(".gain");
    const bool weight = p->name == "wte" || p->name == "wpe" || p->name.ends_with(".weight");
    if (weight)
      init_normal(*p, residual ? proj_std : 0.02, seed, index);
    else
      fill(*p, gain ? 1.0f : 0.0f);
    p->decay = weight;
    ++index;
  }
}

double Gpt::step(const std::int32_t* tokens, const std::int32_t* targets, std::int64_t batch, std::int64_t T,
                 StepContext& ctx, bool grad) {
  return impl_->step(tokens, targets, batch, T, ctx, grad);
}

const Tensor& Gpt::logits() const { return impl_->logits; }

std::vector<Param*> Gpt::params() { return impl_->params(); }

std::vector<GemmCore*> Gpt::gemm_cores() { return impl_->cores(); }

std::vector<std::string> Gpt::gemm_names() const {
  std::vector<std::string> out;
  for (GemmCore* g : impl_->cores()) out.push_back(g->names.front());
  return out;
}

std::int64_t Gpt::parameter_count() {
  std::int64_t n = 0;
  for (Param* p : params()) n += p->value.size();
  return n;
}

std::string Gpt::description() const {
  const GptConfig& c = config_;
  std::int64_t n = 0;
  for (Param* p : impl_->params()) n += p->value.size();
  char b[64];
  std::snprintf(b, sizeof b, "%.3f M parameters", double(n) * 1e-6);
  return "GPT: " + std::to_string(c.layers) + " layers, " + std::to_string(c.heads) + " heads, " +
         std::to_string(c.width) + " wide, mlp " + std::to_string(impl_->mlp) + ", context " +
         std::to_string(c.context) + ", vocab " + std::to_string(c.vocab) + (c.tied_head ? ", tied head" : "") +
         ", " + b;
}

}  // namespace fp8sim
