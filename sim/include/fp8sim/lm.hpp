// Training a language model (fp8sim/transformer.hpp) on a token stream: batches of
// random windows drawn from (seed, stream, step, index), AdamW (decoupled weight decay)
// with linear warmup and cosine decay to a floor, gradient clipping by the global norm
// (the norm of every step is kept), master weights and moments in the recipe's storage
// precisions, per-layer quantization statistics, evaluation on the validation tokens,
// and checkpoints that make an interrupted run end with exactly the numbers of an
// uninterrupted one. Results do not depend on the thread count. Data-parallel training
// (LmConfig::micro_batches and ranks, the recipe key `comm`, a Communicator of several
// ranks or all of them simulated here) gives every rank the same results
// (docs/simulator.md, "Data-parallel training").
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "fp8sim/allreduce.hpp"
#include "fp8sim/comm.hpp"
#include "fp8sim/dataset.hpp"
#include "fp8sim/recipe.hpp"
#include "fp8sim/train.hpp"
#include "fp8sim/transformer.hpp"

namespace fp8sim {

/// Tokens of a text, split once into training and validation parts; vocab is the number of
/// distinct token ids (ids 0 .. vocab - 1). Readers of particular texts are in experiments/.
struct TokenSplit {
  std::vector<std::int32_t> train, val;
  std::int64_t vocab = 0;
};

/// Everything that decides a language-model run's numbers.
struct LmConfig {
  Recipe recipe;
  GptConfig model;            ///< vocab is taken from the data when 0.
  std::uint64_t seed = 1;
  std::int64_t iterations = 2000;
  std::int64_t batch = 12;    ///< Sequences of model.context tokens per step.
  float lr = 1e-3f, min_lr = 1e-4f;      ///< Peak and floor of the cosine schedule.
  std::int64_t warmup = 100;  ///< Linear warmup steps (0: none).
  float beta1 = 0.9f, beta2 = 0.99f, eps = 1e-8f, weight_decay = 0.1f;  ///< AdamW (nanoGPT's)
  float grad_clip = 1.0f;     ///< Global-norm clipping threshold (0: none).
  std::int64_t eval_every = 250;    ///< Iterations between evaluations (and at the end).
  std::int64_t eval_batches = 20;   ///< Batches of validation windows per evaluation (fixed windows).
  int log_every = 10;         ///< Steps per row of quantization statistics.
  int stats_every = 1;        ///< Gather statistics on every Nth step (0: never).
  /// Data-parallel training (docs/simulator.md, "Data-parallel training"): each step's
  /// batch is split into micro_batches (M) of batch / M consecutive sequences, and rank r
  /// of `ranks` (R) computes micro-batches [r M / R, (r + 1) M / R). M divides batch, R
  /// divides M, and M / R is a power of two unless R = 1. The step's gradient is the mean
  /// of the micro-batch gradients, summed in a fixed order (float32: the same bits for
  /// every R) or through the recipe's lossy ring (`comm`). M = R = 1: one batch, as before.
  std::int64_t micro_batches = 1;
  std::int64_t ranks = 1;
  fp8emu::Execution exec{};
  /// Identifies everything that decides the numbers (not threads or paths).
  std::string fingerprint() const;
  /// Returns the learning rate of step `step` (0-based), as nanoGPT's get_lr: lr (step + 1) /
  /// (warmup + 1) during the warmup, then cosine decay from lr to min_lr at `iterations`.
  double learning_rate(std::int64_t step) const;
};

/// One evaluation.
struct EvalRow {
  std::int64_t iteration = 0;
  double train_loss = 0;  ///< Mean batch loss since the previous evaluation (nats per token).
  double val_loss = 0;    ///< Mean over the evaluation windows (nats per token).
  double seconds = 0;     ///< Wall time of the run so far (not part of any comparison).
};

struct CheckpointLayout;  // fp8sim/checkpoint.hpp

/// One language-model training run, resumable at evaluation boundaries.
class LmRun {
 public:
  /// Throws std::invalid_argument / RecipeError for a bad configuration, DataError for data
  /// too short for one window or holding a token outside the vocabulary. `data` and `comm`
  /// must outlive the run. With a communicator of size S > 1 this process is rank
  /// comm.rank() of a data-parallel job and config.ranks must be S (else
  /// std::invalid_argument); with size 1 all config.ranks ranks are simulated here. Every
  /// rank constructs its run with the same config and data; every public result is then
  /// the same on every rank and equal to the simulation's.
  LmRun(LmConfig config, const TokenSplit& data, Communicator& comm = local_communicator());
  /// A copy would share the model's state (Gpt holds it by pointer); runs move.
  LmRun(const LmRun&) = delete;
  LmRun& operator=(const LmRun&) = delete;
  LmRun(LmRun&&) = default;
  LmRun& operator=(LmRun&&) = default;
  const LmConfig& config() const { return config_; }
  void set_execution(const fp8emu::Execution& e);
  std::int64_t iterations_done() const;
  bool done() const;
  /// Trains up to the next evaluation point (or the end) and evaluates there;
  /// `progress(iterations done)` is called after each step. Does nothing once done().
  void train_until_eval(const std::function<void(std::int64_t)>& progress = {});
  /// Returns the mean validation loss (nats per token) of the current model.
  double evaluate();
  /// Says why the run diverged, or "": the first step with a non-finite loss or gradient
  /// norm (a step whose norm is not finite changes no weight or moment), or a non-finite
  /// validation loss.
  std::string divergence() const;

  std::vector<double> step_loss;   ///< Every step's batch loss.
  std::vector<double> grad_norm;   ///< Every step's global gradient norm before clipping.
  std::int64_t clipped = 0;        ///< Steps whose gradient was clipped.
  std::vector<StatsRow> stats_rows;  ///< StatsRow::layer indexes model().gemm_names().
  std::vector<EvalRow> eval_rows;
  QuantStats total;
  /// Every step's gradient communication (one per step; all zero counts and mu 1 for
  /// float32 communication or one rank).
  std::vector<CommStats> comm_stats;
  /// The automatic scaling factor mu of the next step's FP8 communication (FP8-LM).
  double comm_mu = 1;
  Gpt& model();
  /// For tests: true runs M = R = 1 through the micro-batch driver too (the same bytes).
  void use_micro_batch_driver(bool on) { force_micro_ = on; }

  /// Writes / restores the complete state (as Run::save / Run::load: same guarantees).
  void save(const std::string& path) const;
  void load(const std::string& path);
  /// What a checkpoint of this run must match.
  CheckpointLayout checkpoint_layout();

  /// The first token of each of the batch windows of step `step` (0-based).
  std::vector<std::int64_t> batch_starts(std::int64_t step) const;
  /// The first token of each evaluation window (eval_batches x batch of them).
  const std::vector<std::int64_t>& validation_starts() const { return val_starts_; }

 private:
  void train_step();
  // The step of M micro-batches over R ranks (M = R = 1 without force_micro_: train_step).
  double micro_batch_step();
  // Replaces every Param::grad by the step's gradient: the mean of the micro-batch
  // gradients whose per-rank partial sums (this process's ranks) are `partial`.
  void reduce_gradients(std::vector<std::vector<float>>& partial);
  // Fills tokens_ and targets_ with the `count` windows of `tokens` starting at starts[0 .. count).
  void fill(const std::vector<std::int32_t>& tokens, const std::int64_t* starts, std::int64_t count);
  std::string checkpoint_fingerprint() const;
  LmConfig config_;
  const TokenSplit* data_;
  Communicator* comm_;
  bool force_micro_ = false;
  Gpt model_;
  StepContext ctx_;
  std::int64_t step_ = 0;
  std::vector<QuantStats> pending_;  ///< Per operand slot since the last stats row.
  std::vector<std::int64_t> val_starts_;
  std::vector<std::int32_t> tokens_, targets_;
  std::uint32_t data_crc_ = 0;  ///< CRC-32 of the tokens (part of a checkpoint's fingerprint).
};

}  // namespace fp8sim
