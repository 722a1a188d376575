// Models, optimizers and one training run of the simulator: seeded initialisation and
// shuffling (pure functions of (seed, stream, index), fp8emu/random.hpp), SGD with
// momentum and AdamW with master weights and moments stored in the recipe's precisions,
// per-tensor quantization statistics, and checkpoints that make an interrupted run end
// with exactly the numbers of an uninterrupted one.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fp8sim/dataset.hpp"
#include "fp8sim/layers.hpp"
#include "fp8sim/recipe.hpp"

namespace fp8sim {

struct CheckpointLayout;  // fp8sim/checkpoint.hpp

enum class OptimizerKind : std::uint8_t { adamw, sgd };

/// Optimizer hyper-parameters. AdamW: Loshchilov and Hutter 2019 (decoupled decay);
/// SGD: v = momentum v + g + decay w, w -= lr v.
struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::adamw;
  float lr = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;  ///< AdamW
  float momentum = 0.9f;                              ///< SGD
  float weight_decay = 0.0f;
};

/// Rounds `v` to the storage precision `s` in place (float32: unchanged). Stochastic
/// rounding draws its bits from (seed, stream, index).
void store(const Storage& s, std::span<float> v, std::uint64_t seed, std::uint64_t stream);

/// Rounds every parameter's initial value to the recipe's master-weight precision
/// (stochastic rounding: bits from (seed, parameter index)).
void store_initial(std::span<Param* const> params, const Recipe& r, std::uint64_t seed);

/// Applies one optimizer step, the (step + 1)th, to every parameter from its Param::grad:
/// AdamW with bias correction and decoupled weight decay lr wd w, or SGD with momentum;
/// weight decay only where Param::decay. The moments and then the values are rounded to
/// the recipe's moment and master precisions (stochastic rounding: bits from (seed, step,
/// parameter index)). Moments are sized (zeros) on first use.
void optimizer_update(std::span<Param* const> params, const OptimizerConfig& o, const Recipe& r,
                      std::uint64_t seed, std::int64_t step);

/// A sequential network ending in logits, trained with softmax cross-entropy, built from
/// a list of layers.
class Model {
 public:
  /// Takes the layers in order, for examples of shape `input` ({features}, or
  /// {channels, height, width} for images). The weight (out x fan_in) and bias of every
  /// layer with a GEMM are drawn ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) from (seed, stream),
  /// streams 0, 1, ... in layer order.
  Model(std::vector<std::unique_ptr<Layer>> layers, std::vector<std::int64_t> input, std::uint64_t seed);
  /// Returns the logits of a batch x of shape (n, features), reshaped to (n, input...).
  const Tensor& forward(const Tensor& x, StepContext& ctx);
  /// Back-propagates dlogits: every parameter gradient (the input gradient of the first
  /// layer is not computed).
  void backward(const Tensor& dlogits, StepContext& ctx);
  std::vector<Param*> params();
  /// The GEMMs of the network, in layer order.
  std::vector<GemmCore*> gemm_cores();
  std::string description() const;
  std::vector<std::unique_ptr<Layer>> layers;

 private:
  std::vector<std::int64_t> input_;
  std::vector<Tensor> acts_;
  Tensor grad_a_, grad_b_;
};

/// What a training run is.
struct RunConfig {
  Recipe recipe;
  std::string model = "mlp";  ///< The model's name (part of the fingerprint).
  std::uint64_t seed = 1;
  int epochs = 3;
  int batch = 128;            ///< Examples per step; the last partial batch of an epoch is dropped.
  OptimizerConfig optimizer;
  int log_every = 10;         ///< Steps per row of quantization statistics.
  int stats_every = 1;        ///< Gather statistics on every Nth step (0: never); they cost
                              ///< about as much as the quantization itself.
  std::int64_t train_limit = 0, test_limit = 0;  ///< Use only the first N examples (0: all).
  fp8emu::Execution exec{};
  /// Identifies everything that decides the numbers (not threads or paths).
  std::string fingerprint() const;
};

/// One row of quantization statistics: one operand of one GEMM of one layer, merged
/// over `log_every` steps ending at `step`.
struct StatsRow {
  std::int64_t step = 0;
  int layer = 0, role = 0, operand = 0;
  QuantStats stats;
};

/// Moves the statistics of every operand slot of `cores` (GEMM, role, operand a / b;
/// OperandState::stats, cleared) into `pending` (one per slot) and `total`; when `step`
/// is a multiple of `log_every`, appends a StatsRow at `step` for every used slot and
/// clears `pending`.
void collect_stats(std::span<GemmCore* const> cores, std::vector<QuantStats>& pending, QuantStats& total,
                   std::int64_t step, int log_every, std::vector<StatsRow>& rows);

/// The results of one epoch.
struct EpochRow {
  int epoch = 0;
  double train_loss = 0;  ///< Mean of the epoch's batch losses.
  double test_loss = 0, test_accuracy = 0;
  double seconds = 0;     ///< Wall time (not part of any comparison).
};

/// An epoch whose mean training loss exceeds this many times the first epoch's marks its
/// run as diverged (Run::divergence).
inline constexpr double kDivergenceFactor = 10.0;

/// One training run, resumable at epoch boundaries.
class Run {
 public:
  /// Trains `model` (its name is config.model) on `train`, evaluates on `test`.
  Run(RunConfig config, Model model, const Dataset& train, const Dataset& test);
  const RunConfig& config() const { return config_; }
  /// Changes how the run executes (threads); its numbers do not change.
  void set_execution(const fp8emu::Execution& e) { config_.exec = ctx_.exec = e; }
  int epochs_done() const { return epochs_done_; }
  bool done() const { return epochs_done_ >= config_.epochs; }
  std::int64_t steps_per_epoch() const;
  /// Trains one epoch and evaluates; `progress(steps done in this epoch)` is called
  /// after each step.
  void train_epoch(const std::function<void(std::int64_t)>& progress = {});
  /// Trains one step on a batch x (n, features) with labels y; returns the batch loss. Does not
  /// log anything (train_epoch does).
  double train_step(const Tensor& x, const std::uint8_t* y);
  /// Returns (loss, accuracy) of the current model on the test set (fprop quantized).
  std::pair<double, double> evaluate();
  /// Says why the run diverged, or returns an empty string while it has not: a batch or
  /// test loss that is not finite, or an epoch's mean training loss above
  /// kDivergenceFactor times the first epoch's.
  std::string divergence() const;

  std::vector<double> step_loss;  ///< Every training step's batch loss.
  std::vector<StatsRow> stats_rows;
  std::vector<EpochRow> epoch_rows;
  QuantStats total;               ///< Every quantization of the run, merged.

  /// Writes the complete state to `path` (fp8sim/checkpoint.hpp) with fp8emu::write_file;
  /// throws DataError.
  void save(const std::string& path) const;
  /// Restores the state written by save (epochs_done() then says how far it got); throws
  /// DataError naming the file and the reason when it is unreadable, corrupt (checksum),
  /// from a run with another fingerprint, or holds a field this run cannot have, and then
  /// leaves the run as it was.
  void load(const std::string& path);
  /// What a checkpoint of this run must match.
  CheckpointLayout checkpoint_layout();

 private:
  RunConfig config_;
  const Dataset* train_;
  const Dataset* test_;
  Model model_;
  StepContext ctx_;
  std::int64_t step_ = 0;
  int epochs_done_ = 0;
  std::vector<QuantStats> pending_;
  Tensor dlogits_;  ///< Per operand slot since the last stats row.
};

}  // namespace fp8sim
