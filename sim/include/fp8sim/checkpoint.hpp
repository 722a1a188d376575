// The checkpoint file of a training run, and its validation.
//
// Layout, in the machine's byte order (little-endian on x86-64 and AArch64):
//   "FP8SIMCK", uint32 version (2), uint64 length of the whole file,
//   the run's fingerprint (uint64 length, text), int64 step, int32 epochs done,
//   per parameter: value, first moment, second moment (each a uint64 count, then floats),
//   per operand slot (GEMM, role, operand a/b): amax history (count, floats), int64 amax
//   values recorded, float scale,
//   step losses (count, doubles), statistics rows, epoch rows, the run's total statistics,
//   the statistics pending since the last row (each field by field),
//   for a language-model run (LmRun, version 4) then: gradient norms (count, doubles),
//   int64 steps clipped, evaluation rows (count, then per row int64 iteration, doubles
//   training loss, validation loss, seconds), the gradient communication of every step
//   (count, then per step int64 values quantized, underflows, overflows, double mu), and
//   the double mu of the next step,
//   uint32 CRC-32 (zlib's crc32) of every byte before it.
// Version 2 is the file of a Run, version 4 that of an LmRun (version 3, before
// data-parallel training, had no communication fields); each reads only its own.
// decode_checkpoint refuses anything that is not exactly such a file from this run: a
// wrong magic, version or length, a checksum mismatch, another run's fingerprint, and
// every field outside what training can produce (sizes that do not match the model,
// counts, epochs and steps that do not agree, amax histories of the wrong length or with
// a counter outside [0, step], scales that are not finite and positive, statistics with
// impossible counts; for a language-model run also epochs other than 0, a step past the
// run's iterations or off an evaluation point, gradient norms other than one per step or
// negative, a clipped count outside [0, step], evaluation rows other than one per
// evaluation point up to the step, communication rows other than one per step or with
// impossible counts, a mu outside [kMuMin, kMuMax]). The message names the file and the
// field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "fp8sim/lm.hpp"
#include "fp8sim/train.hpp"

namespace fp8sim {

/// The format version written and read for a Run.
inline constexpr std::uint32_t kCheckpointVersion = 2;
/// The format version written and read for an LmRun.
inline constexpr std::uint32_t kLmCheckpointVersion = 4;
/// The largest number of epochs a checkpoint may record.
inline constexpr int kMaxCheckpointEpochs = 1 << 20;
/// The largest step count a checkpoint may record.
inline constexpr std::int64_t kMaxCheckpointSteps = std::int64_t(1) << 40;

/// What a checkpoint must match: the run's settings and its model.
struct CheckpointLayout {
  std::string fingerprint;               ///< RunConfig::fingerprint() of the run.
  std::vector<std::size_t> param_sizes;  ///< Elements of each parameter, in Model::params() order.
  bool second_moment = true;             ///< AdamW keeps a second moment, SGD does not.
  /// Per operand slot (GEMM, role, operand a then b): the amax history length of delayed
  /// scaling, 0 for every other scaling. Its size is 6 per GEMM.
  std::vector<int> history;
  std::int64_t steps_per_epoch = 0;
  /// A language-model run (version 4; steps_per_epoch unused): evaluations fall every
  /// `eval_every` iterations and at `iterations`.
  bool lm = false;
  std::int64_t iterations = 0, eval_every = 1;
};

/// One parameter's saved state (moments empty before the first optimizer step).
struct ParamState {
  std::vector<float> value, m1, m2;
};

/// One operand slot's saved state (OperandState without its per-step statistics).
struct SlotState {
  std::vector<float> history;
  std::int64_t recorded = 0;
  float scale = 1.0f;
};

/// Everything a checkpoint holds.
struct CheckpointState {
  std::int64_t step = 0;
  int epochs_done = 0;
  std::vector<ParamState> params;
  std::vector<SlotState> slots;
  std::vector<double> step_loss;
  std::vector<StatsRow> stats_rows;
  std::vector<EpochRow> epoch_rows;
  QuantStats total;
  std::vector<QuantStats> pending;  ///< One per operand slot.
  // A language-model run's section (written when lm is true, as version 4).
  bool lm = false;
  std::vector<double> grad_norm;
  std::int64_t clipped = 0;
  std::vector<EvalRow> eval_rows;
  std::vector<CommStats> comm_stats;  ///< One per step.
  double comm_mu = 1;
};

// Reading and writing the file (train.cpp: the codec above does no file access and builds
// alone, as the fuzz target builds it).
/// Returns the bytes of the checkpoint file `path`; throws DataError "PATH: reason" when it
/// cannot be read.
std::vector<std::uint8_t> read_checkpoint_file(const std::string& path);

/// Writes `bytes` to `path` with fp8emu::write_file; throws DataError.
void write_checkpoint_file(const std::string& path, std::span<const std::uint8_t> bytes);

/// Appends the model's state to `s`: every parameter (value and moments) and every operand
/// slot of every GEMM core (amax history, count, scale), in order (train.cpp).
void capture_model_state(std::span<Param* const> params, std::span<GemmCore* const> cores, CheckpointState& s);

/// Moves the parameters and operand slots of a decoded, validated `s` into the model, in
/// the order capture_model_state wrote them (train.cpp).
void restore_model_state(CheckpointState& s, std::span<Param* const> params, std::span<GemmCore* const> cores);

/// Returns the bytes of a checkpoint of `s` for a run with this fingerprint.
std::vector<std::uint8_t> encode_checkpoint(const std::string& fingerprint,
                                            const CheckpointState& s);

/// Decodes and validates a checkpoint against `layout`; throws DataError "NAME: reason".
CheckpointState decode_checkpoint(std::span<const std::uint8_t> bytes,
                                  const CheckpointLayout& layout, const std::string& name);

}  // namespace fp8sim
