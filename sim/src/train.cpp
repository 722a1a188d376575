// Models, optimizers, training runs and checkpoints (see include/fp8sim/train.hpp).
#include "fp8sim/train.hpp"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <tuple>
#include <type_traits>

#include "fp8emu/array.hpp"
#include "fp8emu/file.hpp"
#include "fp8emu/random.hpp"
#include "fp8sim/checkpoint.hpp"

namespace fp8sim {
namespace {

// Random streams of the simulator (the GEMMs use small stream numbers, see GemmCore).
constexpr std::uint64_t kInitStream = 1ull << 62;
constexpr std::uint64_t kShuffleStream = 1ull << 61;
constexpr std::uint64_t kStoreStream = 1ull << 63;

// A uniform float in [-1, 1) from 32 random bits (24 of them used).
float uniform_pm1(std::uint32_t bits) { return float(std::int32_t(bits >> 8) - (1 << 23)) * 0x1p-23f; }

void init_uniform(Param& p, float bound, std::uint64_t seed, std::uint64_t stream) {
  const fp8emu::RandomKey k = fp8emu::random_key(seed, kInitStream + stream);
  for (std::size_t i = 0; i < p.value.data.size(); ++i) p.value.data[i] = bound * uniform_pm1(fp8emu::random_bits(k, i));
}

}  // namespace

void store(const Storage& s, std::span<float> v, std::uint64_t seed, std::uint64_t stream) {
  if (s.exact() || v.empty()) return;
  fp8emu::ArrayOptions o;
  o.convert = {s.rounding, fp8emu::Saturation::finite};
  o.convert.stochastic_bits = fp8emu::default_stochastic_bits_for(s.rounding);
  o.seed = seed;
  o.stream = stream;
  o.exec.threads = 1;
  if (s.scaled) {
    // amax_scale gives 1 for a NaN or infinite amax.
    o.scale = amax_scale(Scaling{}, fp8emu::max_finite(s.format), fp8emu::amax(v, o.exec));
  }
  fp8emu::fake_quantize(s.format, v, v, o);
}

void store_initial(std::span<Param* const> params, const Recipe& r, std::uint64_t seed) {
  std::uint64_t i = 0;
  for (Param* p : params) store(r.master, p->value.data, seed, kStoreStream + i++);
}

void collect_stats(std::span<GemmCore* const> cores, std::vector<QuantStats>& pending, QuantStats& total,
                   std::int64_t step, int log_every, std::vector<StatsRow>& rows) {
  for (std::size_t l = 0; l < cores.size(); ++l)
    for (int r = 0; r < kRoles; ++r)
      for (int o = 0; o < 2; ++o) {
        QuantStats& q = cores[l]->states[r][o].stats;
        pending[(l * kRoles + std::size_t(r)) * 2 + std::size_t(o)].merge(q);
        total.merge(q);
        q = QuantStats{};
      }
  if (step % log_every == 0)
    for (std::size_t i = 0; i < pending.size(); ++i) {
      if (pending[i].uses) rows.push_back({step, int(i / (2 * kRoles)), int(i / 2 % kRoles), int(i % 2), pending[i]});
      pending[i] = QuantStats{};
    }
}

// ---------------------------------------------------------------------------
// Model.
// ---------------------------------------------------------------------------

Model::Model(std::vector<std::unique_ptr<Layer>> list, std::vector<std::int64_t> input, std::uint64_t seed)
    : layers(std::move(list)), input_(std::move(input)) {
  acts_.resize(layers.size() + 1);
  std::uint64_t stream = 0;
  for (auto& l : layers) {
    std::vector<Param*> ps = l->params();
    if (ps.size() == 2 && l->gemm_core()) {  // weight (out x fan_in) and bias
      const float bound = 1.0f / std::sqrt(float(ps[0]->value.dim(1)));
      init_uniform(*ps[0], bound, seed, stream++);
      init_uniform(*ps[1], bound, seed, stream++);
    }
  }
}

const Tensor& Model::forward(const Tensor& x, StepContext& ctx) {
  acts_[0] = x;
  if (input_.size() > 1) {
    acts_[0].shape = {x.dim(0)};
    acts_[0].shape.insert(acts_[0].shape.end(), input_.begin(), input_.end());
  }
  for (std::size_t i = 0; i < layers.size(); ++i) layers[i]->forward(acts_[i], acts_[i + 1], ctx);
  return acts_.back();
}

void Model::backward(const Tensor& dlogits, StepContext& ctx) {
  const Tensor* g = &dlogits;
  for (std::size_t i = layers.size(); i-- > 0;) {
    Tensor* dx = i == 0 ? nullptr : (g == &grad_a_ ? &grad_b_ : &grad_a_);
    layers[i]->backward(acts_[i], acts_[i + 1], *g, dx, ctx);
    if (dx) g = dx;
  }
}

std::vector<Param*> Model::params() {
  std::vector<Param*> out;
  for (auto& l : layers)
    for (Param* p : l->params()) out.push_back(p);
  return out;
}

std::vector<GemmCore*> Model::gemm_cores() {
  std::vector<GemmCore*> out;
  for (auto& l : layers)
    if (GemmCore* c = l->gemm_core()) out.push_back(c);
  return out;
}

std::string Model::description() const {
  std::string s;
  for (auto& l : layers) s += (s.empty() ? "" : ", ") + l->name();
  return s;
}

// ---------------------------------------------------------------------------
// Run.
// ---------------------------------------------------------------------------

std::string RunConfig::fingerprint() const {
  std::ostringstream s;
  s << "model=" << model << "\nseed=" << seed << "\nbatch=" << batch << "\noptimizer="
    << (optimizer.kind == OptimizerKind::adamw ? "adamw" : "sgd") << " lr=" << optimizer.lr
    << " beta1=" << optimizer.beta1 << " beta2=" << optimizer.beta2 << " eps=" << optimizer.eps
    << " momentum=" << optimizer.momentum << " wd=" << optimizer.weight_decay << "\nlog_every=" << log_every << "\nstats_every=" << stats_every
    << "\ntrain_limit=" << train_limit << "\ntest_limit=" << test_limit << "\n"
    << recipe_text(recipe);
  return s.str();
}

Run::Run(RunConfig config, Model model, const Dataset& train, const Dataset& test)
    : config_(std::move(config)), train_(&train), test_(&test), model_(std::move(model)) {
  if (config_.batch < 1) throw std::invalid_argument("batch must be >= 1");
  if (config_.log_every < 1) throw std::invalid_argument("log-every must be >= 1");
  if (config_.stats_every < 0) throw std::invalid_argument("stats-every must be >= 0");
  check_recipe(config_.recipe);
  ctx_.recipe = &config_.recipe;
  ctx_.seed = config_.seed;
  ctx_.exec = config_.exec;
  store_initial(model_.params(), config_.recipe, config_.seed);
  pending_.resize(model_.gemm_cores().size() * kRoles * 2);
}

std::int64_t Run::steps_per_epoch() const {
  const std::int64_t n = config_.train_limit ? std::min(config_.train_limit, train_->count) : train_->count;
  return n / config_.batch;
}

void Run::train_epoch(const std::function<void(std::int64_t)>& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::int64_t n = config_.train_limit ? std::min(config_.train_limit, train_->count) : train_->count;
  const std::int64_t F = train_->features(), B = config_.batch, steps = steps_per_epoch();
  // Fisher-Yates with the bits of (seed, shuffle stream + epoch, i).
  std::vector<std::int64_t> perm(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) perm[std::size_t(i)] = i;
  const fp8emu::RandomKey key = fp8emu::random_key(config_.seed, kShuffleStream + std::uint64_t(epochs_done_));
  for (std::int64_t i = n - 1; i > 0; --i)
    std::swap(perm[std::size_t(i)], perm[fp8emu::random_bits(key, std::uint64_t(i)) % std::uint64_t(i + 1)]);

  Tensor x;
  x.reshape({B, F});
  std::vector<std::uint8_t> y(static_cast<std::size_t>(B));
  double loss_sum = 0;
  auto cores = model_.gemm_cores();
  for (std::int64_t s = 0; s < steps; ++s) {
    for (std::int64_t b = 0; b < B; ++b) {
      const std::int64_t e = perm[std::size_t(s * B + b)];
      std::memcpy(x.data.data() + b * F, train_->x.data() + e * F, std::size_t(F) * sizeof(float));
      y[std::size_t(b)] = train_->y[std::size_t(e)];
    }
    const double loss = train_step(x, y.data());
    step_loss.push_back(loss);
    loss_sum += loss;
    collect_stats(cores, pending_, total, step_, config_.log_every, stats_rows);
    if (progress) progress(s + 1);
  }
  EpochRow row;
  row.epoch = epochs_done_ + 1;
  row.train_loss = steps ? loss_sum / double(steps) : 0.0;
  std::tie(row.test_loss, row.test_accuracy) = evaluate();
  row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  epoch_rows.push_back(row);
  ++epochs_done_;
}

double Run::train_step(const Tensor& x, const std::uint8_t* y) {
  ctx_.step = std::uint64_t(step_);
  ctx_.training = true;
  ctx_.stats = config_.stats_every > 0 && step_ % config_.stats_every == 0;
  const Tensor& logits = model_.forward(x, ctx_);
  const double loss = softmax_cross_entropy(logits, y, &dlogits_);
  model_.backward(dlogits_, ctx_);
  optimizer_update(model_.params(), config_.optimizer, config_.recipe, config_.seed, step_);
  ++step_;
  return loss;
}

std::pair<double, double> Run::evaluate() {
  const std::int64_t n = config_.test_limit ? std::min(config_.test_limit, test_->count) : test_->count;
  const std::int64_t F = test_->features(), chunk = 1000;
  Tensor x;
  double loss = 0;
  std::int64_t correct = 0;
  ctx_.training = false;
  for (std::int64_t b0 = 0; b0 < n; b0 += chunk) {
    const std::int64_t m = std::min(chunk, n - b0);
    x.reshape({m, F});
    std::memcpy(x.data.data(), test_->x.data() + b0 * F, std::size_t(m * F) * sizeof(float));
    const Tensor& logits = model_.forward(x, ctx_);
    std::int64_t c = 0;
    loss += softmax_cross_entropy(logits, test_->y.data() + b0, nullptr, &c) * double(m);
    correct += c;
  }
  ctx_.training = true;
  return {n ? loss / double(n) : 0.0, n ? double(correct) / double(n) : 0.0};
}

std::string Run::divergence() const {
  for (std::size_t s = 0; s < step_loss.size(); ++s)
    if (!std::isfinite(step_loss[s])) return "non-finite loss at step " + std::to_string(s + 1);
  const auto text = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.4g", v);
    return std::string(b);
  };
  for (const EpochRow& e : epoch_rows) {
    if (!std::isfinite(e.test_loss)) return "non-finite test loss after epoch " + std::to_string(e.epoch);
    if (e.train_loss > kDivergenceFactor * epoch_rows.front().train_loss)
      return "epoch " + std::to_string(e.epoch) + " training loss " + text(e.train_loss) + " above " +
             text(kDivergenceFactor) + " times epoch 1's " + text(epoch_rows.front().train_loss);
  }
  return "";
}

void optimizer_update(std::span<Param* const> params, const OptimizerConfig& o, const Recipe& r,
                      std::uint64_t seed, std::int64_t step) {
  const double t = double(step + 1);
  const float c1 = float(1.0 - std::pow(double(o.beta1), t)), c2 = float(1.0 - std::pow(double(o.beta2), t));
  std::uint64_t pi = 0;
  for (Param* p : params) {
    const std::size_t n = p->value.data.size();
    float* w = p->value.data.data();
    const float* g = p->grad.data.data();
    p->m1.resize(n, 0.0f);
    const float wd = p->decay ? o.weight_decay : 0.0f;
    const std::uint64_t stream = kStoreStream + (std::uint64_t(step + 1) << 16) + pi * 4;
    if (o.kind == OptimizerKind::adamw) {
      p->m2.resize(n, 0.0f);
      for (std::size_t i = 0; i < n; ++i) {
        p->m1[i] = o.beta1 * p->m1[i] + (1.0f - o.beta1) * g[i];
        p->m2[i] = o.beta2 * p->m2[i] + (1.0f - o.beta2) * g[i] * g[i];
      }
      store(r.moment1, p->m1, seed, stream + 1);
      store(r.moment2, p->m2, seed, stream + 2);
      for (std::size_t i = 0; i < n; ++i) {
        const float mhat = p->m1[i] / c1, vhat = p->m2[i] / c2;
        w[i] = w[i] - o.lr * wd * w[i] - o.lr * mhat / (std::sqrt(vhat) + o.eps);
      }
    } else {
      for (std::size_t i = 0; i < n; ++i) p->m1[i] = o.momentum * p->m1[i] + g[i] + wd * w[i];
      store(r.moment1, p->m1, seed, stream + 1);
      for (std::size_t i = 0; i < n; ++i) w[i] -= o.lr * p->m1[i];
    }
    store(r.master, p->value.data, seed, stream);
    ++pi;
  }
}

// ---------------------------------------------------------------------------
// Checkpoints (the file and its validation: checkpoint.cpp).
// ---------------------------------------------------------------------------

std::vector<std::uint8_t> read_checkpoint_file(const std::string& path) {
  std::vector<std::uint8_t> buf;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw DataError(path + ": cannot open the checkpoint: " + std::strerror(errno));
  std::uint8_t chunk[1 << 16];
  std::size_t got;
  while ((got = std::fread(chunk, 1, sizeof chunk, f)) > 0) buf.insert(buf.end(), chunk, chunk + got);
  const bool err = std::ferror(f);
  std::fclose(f);
  if (err) throw DataError(path + ": read error");
  return buf;
}

void write_checkpoint_file(const std::string& path, std::span<const std::uint8_t> bytes) {
  try {
    fp8emu::write_file(path, bytes);
  } catch (const fp8emu::FileError& e) {
    throw DataError(std::string("cannot write the checkpoint: ") + e.what());
  }
}

void capture_model_state(std::span<Param* const> params, std::span<GemmCore* const> cores, CheckpointState& s) {
  for (Param* p : params) s.params.push_back({p->value.data, p->m1, p->m2});
  for (GemmCore* c : cores)
    for (int r = 0; r < kRoles; ++r)
      for (int o = 0; o < 2; ++o) {
        const OperandState& st = c->states[r][o];
        s.slots.push_back({st.history, st.recorded, st.scale});
      }
}

void restore_model_state(CheckpointState& s, std::span<Param* const> params, std::span<GemmCore* const> cores) {
  std::size_t i = 0;
  for (Param* p : params) {
    p->value.data = std::move(s.params[i].value);
    p->m1 = std::move(s.params[i].m1);
    p->m2 = std::move(s.params[i].m2);
    ++i;
  }
  i = 0;
  for (GemmCore* c : cores)
    for (int r = 0; r < kRoles; ++r)
      for (int o = 0; o < 2; ++o) {
        OperandState& st = c->states[r][o];
        st.history = std::move(s.slots[i].history);
        st.recorded = s.slots[i].recorded;
        st.scale = s.slots[i].scale;
        ++i;
      }
}

void Run::save(const std::string& path) const {
  CheckpointState s;
  s.step = step_;
  s.epochs_done = epochs_done_;
  capture_model_state(const_cast<Model&>(model_).params(), const_cast<Model&>(model_).gemm_cores(), s);
  s.step_loss = step_loss;
  s.stats_rows = stats_rows;
  s.epoch_rows = epoch_rows;
  s.total = total;
  s.pending = pending_;
  write_checkpoint_file(path, encode_checkpoint(config_.fingerprint(), s));
}

CheckpointLayout Run::checkpoint_layout() {
  CheckpointLayout l;
  l.fingerprint = config_.fingerprint();
  for (Param* p : model_.params()) l.param_sizes.push_back(p->value.data.size());
  l.second_moment = config_.optimizer.kind == OptimizerKind::adamw;
  for (GemmCore* core : model_.gemm_cores())
    for (int r = 0; r < kRoles; ++r)
      for (int o = 0; o < 2; ++o) {
        const RoleSpec& rs = config_.recipe.role(Role(r), core->names);  // with its layer override
        const Scaling& sc = o ? rs.b.scaling : rs.a.scaling;
        l.history.push_back(sc.kind == ScalingKind::delayed ? sc.history : 0);
      }
  l.steps_per_epoch = steps_per_epoch();
  return l;
}

void Run::load(const std::string& path) {
  const std::vector<std::uint8_t> buf = read_checkpoint_file(path);
  // Validated whole before any of it replaces the run's state.
  CheckpointState s = decode_checkpoint(buf, checkpoint_layout(), path);
  restore_model_state(s, model_.params(), model_.gemm_cores());
  step_loss = std::move(s.step_loss);
  stats_rows = std::move(s.stats_rows);
  epoch_rows = std::move(s.epoch_rows);
  total = s.total;
  pending_ = std::move(s.pending);
  step_ = s.step;
  epochs_done_ = s.epochs_done;
}

}  // namespace fp8sim
