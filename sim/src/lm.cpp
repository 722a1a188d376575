// Training a language model on a token stream (see include/fp8sim/lm.hpp).
#include "fp8sim/lm.hpp"

#include <zlib.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <type_traits>
#include <limits>
#include <numbers>
#include <sstream>
#include <stdexcept>

#include "fp8emu/quantize_matrix.hpp"
#include "fp8emu/random.hpp"
#include "fp8sim/checkpoint.hpp"

namespace fp8sim {
namespace {

// The random stream of the training batches (step s: stream kBatchStream + s), disjoint
// from the other streams of the simulator: the GEMMs' (small numbers, see GemmCore), the
// model's (below 2^60, transformer.cpp), 2^61 + epoch (Run's shuffling), 2^62
// (initialisation of a Model) and 2^63 and up (storage rounding).
constexpr std::uint64_t kBatchStream = 3ull << 60;

// Limits that keep every count of a run far from overflow.
constexpr std::int64_t kMaxBatch = std::int64_t(1) << 24;

std::string number(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

// Throws std::invalid_argument "NAME must be WHAT" unless ok.
void require(bool ok, const char* name, const char* what) {
  if (!ok) throw std::invalid_argument(std::string(name) + " must be " + what);
}

bool finite_at_least(float v, float lo) { return std::isfinite(v) && v >= lo; }

bool power_of_two(std::int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

// Checks the configuration and the data; takes the vocabulary from the data when the model
// leaves it at 0. `comm_size`: the size of the run's communicator.
LmConfig checked(LmConfig c, const TokenSplit& d, int comm_size) {
  require(c.iterations >= 1 && c.iterations <= kMaxCheckpointSteps, "iterations", "in [1, 2^40]");
  require(c.batch >= 1 && c.batch <= kMaxBatch, "batch", "in [1, 2^24]");
  require(std::isfinite(c.lr) && c.lr > 0, "lr", "finite and > 0");
  require(finite_at_least(c.min_lr, 0) && c.min_lr <= c.lr, "min-lr", "in [0, lr]");
  require(c.warmup >= 0, "warmup", ">= 0");
  require(finite_at_least(c.beta1, 0) && c.beta1 < 1, "beta1", "in [0, 1)");
  require(finite_at_least(c.beta2, 0) && c.beta2 < 1, "beta2", "in [0, 1)");
  require(std::isfinite(c.eps) && c.eps > 0, "eps", "finite and > 0");
  require(finite_at_least(c.weight_decay, 0), "weight-decay", "finite and >= 0");
  require(finite_at_least(c.grad_clip, 0), "grad-clip", "finite and >= 0 (0: no clipping)");
  require(c.eval_every >= 1, "eval-every", ">= 1");
  require(c.eval_batches >= 1 && c.eval_batches <= kMaxBatch / c.batch, "eval-batches",
          "in [1, 2^24 / batch] (at most 2^24 evaluation windows)");
  require(c.log_every >= 1, "log-every", ">= 1");
  require(c.stats_every >= 0, "stats-every", ">= 0 (0: no statistics)");
  require(c.micro_batches >= 1 && c.batch % c.micro_batches == 0, "micro-batches", ">= 1 and divide batch");
  // The random streams of a micro-batch are those of step s M + m (GemmCore::stream and the
  // model's streams hold 2^40 steps and more).
  require(c.iterations <= kMaxCheckpointSteps / c.micro_batches, "iterations x micro-batches", "at most 2^40");
  require(c.ranks >= 1 && c.micro_batches % c.ranks == 0, "ranks", ">= 1 and divide micro-batches");
  require(c.ranks == 1 || power_of_two(c.micro_batches / c.ranks), "micro-batches / ranks",
          "a power of two when ranks > 1 (each rank's micro-batches are then one subtree of the fixed "
          "summation order)");
  if (comm_size > 1 && c.ranks != comm_size)
    throw std::invalid_argument("ranks (" + std::to_string(c.ranks) + ") must equal the communicator's size (" +
                                std::to_string(comm_size) + ") in a job of several processes");
  if (c.model.vocab == 0) c.model.vocab = d.vocab;
  c.model.check();
  // Gpt::step refuses more than 2^20 attention matrices (batch x heads) per product.
  require(c.model.heads <= (std::int64_t(1) << 20) / c.batch, "batch x model heads", "at most 2^20");
  check_recipe(c.recipe);
  const std::int64_t window = c.model.context + 1;
  auto check_split = [&](const std::vector<std::int32_t>& t, const char* what) {
    if (std::int64_t(t.size()) < window)
      throw DataError(std::string("the ") + what + " tokens (" + std::to_string(t.size()) +
                      ") are fewer than one window of context + 1 = " + std::to_string(window) + " tokens");
    for (std::size_t i = 0; i < t.size(); ++i)
      if (t[i] < 0 || t[i] >= c.model.vocab)
        throw DataError(std::string("the ") + what + " token " + std::to_string(i) + " is " + std::to_string(t[i]) +
                        ", outside the vocabulary [0, " + std::to_string(c.model.vocab) + ")");
  };
  check_split(d.train, "training");
  check_split(d.val, "validation");
  return c;
}

std::uint32_t crc_of(std::uint32_t crc, const std::vector<std::int32_t>& t) {
  return std::uint32_t(
      ::crc32_z(crc, reinterpret_cast<const unsigned char*>(t.data()), t.size() * sizeof(std::int32_t)));
}

}  // namespace

std::string LmConfig::fingerprint() const {
  std::ostringstream s;
  s << "lm\nmodel=" << model.text() << "\nseed=" << seed << "\niterations=" << iterations << "\nbatch=" << batch
    << "\nschedule lr=" << number(lr) << " min_lr=" << number(min_lr) << " warmup=" << warmup
    << "\nadamw beta1=" << number(beta1) << " beta2=" << number(beta2) << " eps=" << number(eps)
    << " wd=" << number(weight_decay) << "\ngrad_clip=" << number(grad_clip) << "\neval_every=" << eval_every
    << " eval_batches=" << eval_batches << "\nlog_every=" << log_every << "\nstats_every=" << stats_every << "\n";
  // Written only for data-parallel runs, so that other runs keep their fingerprints.
  if (micro_batches != 1 || ranks != 1) s << "micro_batches=" << micro_batches << " ranks=" << ranks << "\n";
  s << recipe_text(recipe);
  return s.str();
}

double LmConfig::learning_rate(std::int64_t step) const {
  // nanoGPT train.py get_lr with lr_decay_iters = iterations.
  if (step < warmup) return double(lr) * double(step + 1) / double(warmup + 1);
  if (step >= iterations) return double(min_lr);
  const double ratio = double(step - warmup) / double(iterations - warmup);
  const double coeff = 0.5 * (1.0 + std::cos(std::numbers::pi * ratio));
  return double(min_lr) + coeff * (double(lr) - double(min_lr));
}

LmRun::LmRun(LmConfig config, const TokenSplit& data, Communicator& comm)
    : config_(checked(std::move(config), data, comm.size())),
      data_(&data),
      comm_(&comm),
      model_(config_.model, config_.seed) {
  ctx_.seed = config_.seed;
  ctx_.exec = config_.exec;
  store_initial(model_.params(), config_.recipe, config_.seed);
  pending_.resize(model_.gemm_cores().size() * kRoles * 2);
  // Evenly spaced over the validation tokens, from the first window to the last.
  const std::int64_t n = std::int64_t(data.val.size()) - config_.model.context;  // possible starts
  const std::int64_t w = config_.eval_batches * config_.batch;
  val_starts_.resize(std::size_t(w));
  // Window i starts at floor(i (n - 1) / (w - 1)), as q i + floor(r i / (w - 1)) with
  // n - 1 = q (w - 1) + r, so no product exceeds 2^48.
  const std::int64_t q = w == 1 ? 0 : (n - 1) / (w - 1), r = w == 1 ? 0 : (n - 1) % (w - 1);
  for (std::int64_t i = 0; i < w; ++i) val_starts_[std::size_t(i)] = q * i + (w == 1 ? 0 : r * i / (w - 1));
  data_crc_ = crc_of(crc_of(std::uint32_t(::crc32_z(0, nullptr, 0)), data.train), data.val);
}

void LmRun::set_execution(const fp8emu::Execution& e) {
  config_.exec = ctx_.exec = e;
}

std::int64_t LmRun::iterations_done() const { return step_; }
bool LmRun::done() const { return step_ >= config_.iterations; }
Gpt& LmRun::model() { return model_; }

std::vector<std::int64_t> LmRun::batch_starts(std::int64_t step) const {
  // Uniform over the n possible starts: 64 random bits modulo n (a bias below n / 2^64).
  const std::uint64_t n = data_->train.size() - std::uint64_t(config_.model.context);
  const fp8emu::RandomKey k = fp8emu::random_key(config_.seed, kBatchStream + std::uint64_t(step));
  std::vector<std::int64_t> out(std::size_t(config_.batch));
  for (std::int64_t b = 0; b < config_.batch; ++b) {
    const std::uint64_t r = std::uint64_t(fp8emu::random_bits(k, std::uint64_t(2 * b))) << 32 |
                            fp8emu::random_bits(k, std::uint64_t(2 * b + 1));
    out[std::size_t(b)] = std::int64_t(r % n);
  }
  return out;
}

void LmRun::fill(const std::vector<std::int32_t>& tokens, const std::int64_t* starts, std::int64_t count) {
  const std::int64_t T = config_.model.context, B = count;
  tokens_.resize(std::size_t(B * T));
  targets_.resize(std::size_t(B * T));
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < T; ++t) {
      tokens_[std::size_t(b * T + t)] = tokens[std::size_t(starts[b] + t)];
      targets_[std::size_t(b * T + t)] = tokens[std::size_t(starts[b] + t + 1)];
    }
}

void LmRun::train_step() {
  ctx_.recipe = &config_.recipe;  // set here, not once: a moved run has a new config_
  ctx_.training = true;
  ctx_.stats = config_.stats_every > 0 && step_ % config_.stats_every == 0;
  double loss;
  if (config_.micro_batches == 1 && config_.ranks == 1 && !force_micro_) {
    const std::vector<std::int64_t> starts = batch_starts(step_);
    fill(data_->train, starts.data(), config_.batch);
    ctx_.step = std::uint64_t(step_);
    loss = model_.step(tokens_.data(), targets_.data(), config_.batch, config_.model.context, ctx_, true);
    comm_stats.push_back(CommStats{});
  } else {
    loss = micro_batch_step();
  }
  step_loss.push_back(loss);

  // The global gradient norm: float64 squares, parameters and elements in order.
  const std::vector<Param*> params = model_.params();
  double sum = 0;
  for (const Param* p : params)
    for (float g : p->grad.data) sum += double(g) * double(g);
  const double norm = std::sqrt(sum);
  grad_norm.push_back(norm);
  if (std::isfinite(norm)) {
    if (config_.grad_clip > 0 && norm > double(config_.grad_clip)) {
      const float c = float(double(config_.grad_clip) / norm);
      for (Param* p : params)
        for (float& g : p->grad.data) g *= c;
      ++clipped;
    }
    OptimizerConfig o;
    o.kind = OptimizerKind::adamw;
    o.lr = float(config_.learning_rate(step_));
    o.beta1 = config_.beta1, o.beta2 = config_.beta2, o.eps = config_.eps;
    o.weight_decay = config_.weight_decay;
    optimizer_update(params, o, config_.recipe, config_.seed, step_);
  } else {
    // No update: the weights and moments stay as they were (divergence() reports the step).
    for (Param* p : params) {
      p->m1.resize(p->value.data.size(), 0.0f);
      p->m2.resize(p->value.data.size(), 0.0f);
    }
  }
  ++step_;
  collect_stats(model_.gemm_cores(), pending_, total, step_, config_.log_every, stats_rows);
}

// ---------------------------------------------------------------------------
// Data-parallel steps (docs/simulator.md, "Data-parallel training").
// ---------------------------------------------------------------------------

namespace {

static_assert(std::is_trivially_copyable_v<QuantStats>);

// The operand slots of the model in checkpoint order: (core, role, operand a / b).
std::vector<OperandState*> slots_of(const std::vector<GemmCore*>& cores) {
  std::vector<OperandState*> out;
  for (GemmCore* c : cores)
    for (int r = 0; r < kRoles; ++r)
      for (int o = 0; o < 2; ++o) out.push_back(&c->states[r][o]);
  return out;
}

// Every rank's `mine` (trivially copyable values, the same count on every rank) in rank
// order; with one rank, `mine` itself.
template <class T>
std::vector<T> gather(Communicator& comm, const std::vector<T>& mine) {
  if (comm.size() == 1) return mine;
  std::vector<T> all(mine.size() * std::size_t(comm.size()));
  comm.allgather(std::as_bytes(std::span<const T>(mine)), std::as_writable_bytes(std::span<T>(all)));
  return all;
}

}  // namespace

double LmRun::micro_batch_step() {
  const std::int64_t M = config_.micro_batches, R = config_.ranks, per = M / R, Bm = config_.batch / M;
  const bool real = comm_->size() > 1;
  const std::int64_t first = real ? comm_->rank() * per : 0, last = real ? first + per : M;
  const std::vector<std::int64_t> starts = batch_starts(step_);
  const std::vector<GemmCore*> cores = model_.gemm_cores();
  const std::vector<OperandState*> slots = slots_of(cores);
  const std::vector<Param*> params = model_.params();
  std::vector<QuantStats> mb_stats;  // per local micro-batch, per slot
  std::vector<double> losses;
  std::vector<std::vector<float>> partial;  // per rank computed here: its micro-batches' tree sum
  std::vector<float> flat;
  TreeSum tree;
  ctx_.defer_amax = true;
  for (std::int64_t j = first; j < last; ++j) {
    // Random streams of the global micro-batch index, whichever rank computes it.
    ctx_.step = std::uint64_t(step_ * M + j);
    fill(data_->train, starts.data() + j * Bm, Bm);
    losses.push_back(model_.step(tokens_.data(), targets_.data(), Bm, config_.model.context, ctx_, true));
    if (ctx_.stats)
      for (OperandState* st : slots) {
        mb_stats.push_back(st->stats);
        st->stats = QuantStats{};
      }
    flat.clear();
    for (const Param* p : params) flat.insert(flat.end(), p->grad.data.begin(), p->grad.data.end());
    tree.push(flat);
    if ((j + 1) % per == 0) partial.push_back(tree.take());
  }
  ctx_.defer_amax = false;

  // Delayed scaling: one push per slot of the largest amax of every micro-batch of every
  // rank (-1: no quantization recorded one).
  std::vector<double> amax;
  for (const OperandState* st : slots) amax.push_back(st->step_amax);
  comm_->allreduce_max(amax);
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const GemmCore& c = *cores[i / (2 * kRoles)];
    const RoleSpec& role = config_.recipe.role(Role(i / 2 % kRoles), c.names);
    const OperandSpec& spec = i % 2 ? role.b : role.a;
    slots[i]->step_amax = amax[i];
    push_step_amax(spec.scaling, fp8emu::max_finite(spec.format), *slots[i]);
  }
  // Statistics: every micro-batch's, merged in micro-batch order.
  if (ctx_.stats) {
    const std::vector<QuantStats> all = gather(*comm_, mb_stats);
    for (std::size_t j = 0; j < std::size_t(M); ++j)
      for (std::size_t i = 0; i < slots.size(); ++i) slots[i]->stats.merge(all[j * slots.size() + i]);
  }
  reduce_gradients(partial);
  // The batch loss: the mean of the micro-batch losses, summed in micro-batch order.
  const std::vector<double> all_losses = gather(*comm_, losses);
  double sum = 0;
  for (double l : all_losses) sum += l;
  return sum / double(M);
}

void LmRun::reduce_gradients(std::vector<std::vector<float>>& partial) {
  const std::int64_t M = config_.micro_batches, R = config_.ranks, per = M / R;
  const std::vector<Param*> params = model_.params();
  const GradComm& gc = config_.recipe.comm;
  const bool lossy = gc.format != CommFormat::fp32 && R > 1;
  const bool scaled = lossy && gc.scaling == CommScaling::automatic;
  CommStats cs;
  cs.mu = scaled ? comm_mu : 1.0;
  std::vector<float> sum;
  if (!lossy) {
    // float32: the rank sums are complete subtrees of the micro-batch tree.
    if (R == 1) {
      sum = std::move(partial[0]);
    } else {
      std::vector<float> all = partial.size() == 1 ? gather(*comm_, partial[0]) : std::vector<float>{};
      TreeSum top;
      const std::size_t n = partial[0].size();
      for (std::int64_t r = 0; r < R; ++r)
        top.push(partial.size() == 1 ? std::span<const float>(all.data() + std::size_t(r) * n, n)
                                     : std::span<const float>(partial[std::size_t(r)]),
                 per);
      sum = top.take();
    }
    for (float& g : sum) g /= float(M);
  } else {
    // Per tensor: the amax over every rank, and the scale shared by the ranks (the minimum
    // of the ranks' scales), in one all-reduce of [amax..., -scale...].
    const fp8emu::Format f = gc.code_format();
    const double fmax = fp8emu::max_finite(f);
    const std::size_t P = params.size();
    std::vector<double> red(2 * P, -INFINITY);
    for (const std::vector<float>& y : partial) {
      std::size_t at = 0;
      for (std::size_t t = 0; t < P; ++t) {
        float a = 0;
        bool nan = false;
        const std::size_t n = params[t]->grad.data.size();
        for (std::size_t i = 0; i < n; ++i) {
          nan |= std::isnan(y[at + i]);
          a = std::max(a, std::fabs(y[at + i]));
        }
        at += n;
        const double amax = nan ? std::numeric_limits<double>::quiet_NaN() : double(a);  // NaN wins
        if (!std::isnan(red[t])) red[t] = std::isnan(amax) ? amax : std::max(red[t], amax);
        red[P + t] = std::max(red[P + t], -double(fp8emu::auto_scale(fmax, a)));
      }
    }
    comm_->allreduce_max(red);
    bool finite = true;
    for (std::size_t t = 0; t < P; ++t) finite &= std::isfinite(red[t]);
    std::vector<float> c(P, 1.0f);
    if (scaled)
      for (std::size_t t = 0; t < P; ++t)  // finite, so that a zero times c stays zero
        c[t] = float(std::min(comm_mu * -red[P + t], double(std::numeric_limits<float>::max())));
    if (!finite) {
      // A non-finite gradient on any rank: the step has no gradient (its update is skipped).
      sum.assign(partial[0].size(), std::numeric_limits<float>::quiet_NaN());
    } else {
      for (std::vector<float>& y : partial) {
        std::size_t at = 0;
        for (std::size_t t = 0; t < P; ++t)
          for (std::size_t i = 0, n = params[t]->grad.data.size(); i < n; ++i, ++at) y[at] *= c[t];
      }
      if (partial.size() == 1) {
        ring_allreduce(*comm_, f, partial[0], cs);
        std::vector<std::int64_t> counts = {cs.quantized, cs.underflow, cs.overflow};
        comm_->allreduce_sum(counts);
        cs.quantized = counts[0], cs.underflow = counts[1], cs.overflow = counts[2];
        sum = std::move(partial[0]);
      } else {
        sum = ring_allreduce_simulated(f, partial, cs);
      }
      std::size_t at = 0;
      for (std::size_t t = 0; t < P; ++t) {
        const double d = double(c[t]) * double(M);
        for (std::size_t i = 0, n = params[t]->grad.data.size(); i < n; ++i, ++at) sum[at] = float(double(sum[at]) / d);
      }
      if (scaled) comm_mu = next_mu(comm_mu, cs);
    }
  }
  comm_stats.push_back(cs);
  std::size_t at = 0;
  for (Param* p : params) {
    std::copy(sum.begin() + std::ptrdiff_t(at), sum.begin() + std::ptrdiff_t(at + p->grad.data.size()),
              p->grad.data.begin());
    at += p->grad.data.size();
  }
}

void LmRun::train_until_eval(const std::function<void(std::int64_t)>& progress) {
  if (done()) return;
  const auto t0 = std::chrono::steady_clock::now();
  const std::int64_t first = step_, left = config_.eval_every - step_ % config_.eval_every;
  const std::int64_t end = left >= config_.iterations - step_ ? config_.iterations : step_ + left;
  while (step_ < end) {
    train_step();
    if (progress) progress(step_);
  }
  EvalRow row;
  row.iteration = step_;
  double sum = 0;
  for (std::int64_t s = first; s < step_; ++s) sum += step_loss[std::size_t(s)];
  row.train_loss = sum / double(step_ - first);
  row.val_loss = evaluate();
  row.seconds = (eval_rows.empty() ? 0.0 : eval_rows.back().seconds) +
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  eval_rows.push_back(row);
}

double LmRun::evaluate() {
  ctx_.recipe = &config_.recipe;
  ctx_.step = std::uint64_t(step_);
  ctx_.training = false;
  double sum = 0;
  for (std::int64_t e = 0; e < config_.eval_batches; ++e) {
    fill(data_->val, val_starts_.data() + e * config_.batch, config_.batch);
    sum += model_.step(tokens_.data(), targets_.data(), config_.batch, config_.model.context, ctx_, false);
  }
  ctx_.training = true;
  return sum / double(config_.eval_batches);
}

std::string LmRun::divergence() const {
  for (std::size_t s = 0; s < step_loss.size(); ++s) {
    if (!std::isfinite(step_loss[s])) return "non-finite loss at step " + std::to_string(s + 1);
    if (!std::isfinite(grad_norm[s]))
      return "non-finite gradient norm at step " + std::to_string(s + 1) + " (its update was skipped)";
  }
  for (const EvalRow& e : eval_rows)
    if (!std::isfinite(e.val_loss)) return "non-finite validation loss at iteration " + std::to_string(e.iteration);
  return "";
}

// ---------------------------------------------------------------------------
// Checkpoints (the file and its validation: checkpoint.cpp).
// ---------------------------------------------------------------------------

std::string LmRun::checkpoint_fingerprint() const {
  char crc[11];
  std::snprintf(crc, sizeof crc, "0x%08X", data_crc_);
  return config_.fingerprint() + "tokens train=" + std::to_string(data_->train.size()) +
         " val=" + std::to_string(data_->val.size()) + " crc32=" + crc + "\n";
}

CheckpointLayout LmRun::checkpoint_layout() {
  CheckpointLayout l;
  l.fingerprint = checkpoint_fingerprint();
  for (Param* p : model_.params()) l.param_sizes.push_back(p->value.data.size());
  l.second_moment = true;
  for (GemmCore* c : model_.gemm_cores())
    for (int r = 0; r < kRoles; ++r)
      for (int o = 0; o < 2; ++o) {
        const RoleSpec& role = config_.recipe.role(Role(r), c->names);
        const Scaling& sc = o ? role.b.scaling : role.a.scaling;
        l.history.push_back(sc.kind == ScalingKind::delayed ? sc.history : 0);
      }
  l.lm = true;
  l.iterations = config_.iterations;
  l.eval_every = config_.eval_every;
  return l;
}

void LmRun::save(const std::string& path) const {
  Gpt& m = const_cast<Gpt&>(model_);
  CheckpointState s;
  s.step = step_;
  capture_model_state(m.params(), m.gemm_cores(), s);
  s.step_loss = step_loss;
  s.stats_rows = stats_rows;
  s.total = total;
  s.pending = pending_;
  s.lm = true;
  s.grad_norm = grad_norm;
  s.clipped = clipped;
  s.eval_rows = eval_rows;
  s.comm_stats = comm_stats;
  s.comm_mu = comm_mu;
  write_checkpoint_file(path, encode_checkpoint(checkpoint_fingerprint(), s));
}

void LmRun::load(const std::string& path) {
  const std::vector<std::uint8_t> buf = read_checkpoint_file(path);
  // Validated whole before any of it replaces the run's state.
  CheckpointState s = decode_checkpoint(buf, checkpoint_layout(), path);
  restore_model_state(s, model_.params(), model_.gemm_cores());
  step_loss = std::move(s.step_loss);
  grad_norm = std::move(s.grad_norm);
  clipped = s.clipped;
  stats_rows = std::move(s.stats_rows);
  eval_rows = std::move(s.eval_rows);
  comm_stats = std::move(s.comm_stats);
  comm_mu = s.comm_mu;
  total = s.total;
  pending_ = std::move(s.pending);
  step_ = s.step;
}

}  // namespace fp8sim
