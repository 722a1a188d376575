// A decoder-only transformer language model as in GPT-2 (Radford et al. 2019): token and
// learned position embeddings, N pre-LayerNorm blocks of causal multi-head
// self-attention and a GELU MLP, residual connections, a final LayerNorm and a
// language-model head (tied to the token embedding or not), optional dropout.
//
// Every Linear GEMM (attention QKV and output projection, MLP up and down, the head) in
// all three roles goes through recipe_gemm under the recipe's role for that layer
// (Recipe::role with the layer's names, so per-layer overrides apply). The two batched
// products of attention (Q K^T and P V, per batch and head) run in float32 unless
// GptConfig::attention_recipe puts them under the recipe too. Softmax subtracts the row
// maximum under the causal mask. Element-wise work is float32 with float64 statistics,
// in a fixed order, so results never depend on the thread count.
// tests/sim/test_transformer.cpp checks every backward pass against float64 finite
// differences.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fp8sim/layers.hpp"
#include "fp8sim/recipe.hpp"

namespace fp8sim {

/// An injected activation spike, a fault to test scaling recipes against: in the training
/// steps first .. first + steps - 1 (StepContext::step; never in evaluation), the input
/// of every Linear GEMM layer whose name or alias matches `layers` (a recipe layer pattern:
/// "h0.mlp.down", "h-1.*", "head"; the attention products are never spiked) is multiplied
/// by `factor` before the layer sees it, as if the layer before had produced values
/// `factor` times larger: every role of the layer (fprop, and wgrad's activation operand)
/// sees the spiked input, and the input's gradient is `factor` dL/d(factor x). steps 0 (the
/// default) is no spike: the model computes exactly what it computes without the field.
struct ActivationSpike {
  std::string layers;        ///< Layer pattern (checked when steps > 0).
  std::int64_t first = 0;    ///< First spiked step (0-based), >= 0.
  std::int64_t steps = 0;    ///< Spiked steps (0: no spike), >= 0.
  double factor = 16;        ///< Finite and > 0.
  bool on() const { return steps > 0; }
  /// Whether the spike applies in the step of `ctx` (training, first <= step < first + steps).
  bool active(const StepContext& ctx) const;
};

/// The sizes and options of a GPT model. Defaults: nanoGPT's CPU configuration for
/// character-level Shakespeare (4 layers, 4 heads, 128 wide, context 64).
struct GptConfig {
  std::int64_t vocab = 0;    ///< Tokens 0 .. vocab - 1 (>= 2).
  std::int64_t context = 64; ///< Longest sequence (position embeddings).
  std::int64_t layers = 4, heads = 4, width = 128;  ///< width % heads == 0.
  std::int64_t mlp = 0;      ///< MLP hidden width (0: 4 width).
  bool tied_head = true;     ///< The head's weight is the token embedding.
  float dropout = 0.0f;      ///< On attention probabilities, and after the attention and MLP output projections and the embeddings; [0, 1).
  bool attention_recipe = false;  ///< Q K^T and P V under the recipe (fprop / dgrad / wgrad roles).
  ActivationSpike spike;          ///< An injected activation spike (default none).
  /// One line naming every field (part of a run's fingerprint); the spike's only when on,
  /// so the line of a model without a spike is what it was before the field existed.
  std::string text() const;
  /// Throws std::invalid_argument naming the field for an impossible configuration.
  void check() const;
};

/// The names of the model's GEMM layers, as recipe layer patterns match them: "h0.attn.qkv",
/// "h0.attn.proj", "h0.attn.scores" (Q K^T) and "h0.attn.mix" (P V) with attention_recipe,
/// "h0.mlp.up", "h0.mlp.down", ..., "head". Each block also answers to its index from the end
/// ("h-1.mlp.up" is the last block's), so a pattern can name the last blocks whatever
/// the depth.

class Gpt {
 public:
  /// Builds the model (config.check() first) with GPT-2's initialisation drawn from (seed,
  /// stream, index): weights ~ N(0, 0.02) by Box-Muller (docs/simulator.md), the residual
  /// output projections N(0, 0.02 / sqrt(2 layers)), biases 0, LayerNorm gains 1. Copies
  /// of a Gpt share one model.
  Gpt(GptConfig config, std::uint64_t seed);
  const GptConfig& config() const { return config_; }

  /// Runs the model on `batch` sequences of `T` <= context tokens (row-major, batch x T) and
  /// returns the mean cross-entropy in nats of predicting targets[b, t] at every position.
  /// With `grad`, also back-propagates: every Param::grad is set (overwritten).
  /// Token or target ids outside [0, vocab), T outside [1, context], batch < 1, batch x heads
  /// above 2^20 and a context without a recipe throw std::invalid_argument.
  double step(const std::int32_t* tokens, const std::int32_t* targets, std::int64_t batch, std::int64_t T,
              StepContext& ctx, bool grad);

  /// The logits of the last step: (batch T) x vocab, row b T + t for sequence b, position t.
  const Tensor& logits() const;

  /// Every trainable parameter, in a fixed order (the checkpoint's).
  std::vector<Param*> params();
  /// Every GEMM layer with operand states (quantization statistics and delayed-scaling
  /// histories), in a fixed order; gemm_names()[i] is its name. Per block: qkv, then with
  /// attention_recipe scores and mix, then proj, up, down; the head last.
  std::vector<GemmCore*> gemm_cores();
  std::vector<std::string> gemm_names() const;
  /// One line: layers, heads, width, context, vocab, parameter count.
  std::string description() const;
  std::int64_t parameter_count();

 private:
  struct Impl;
  GptConfig config_;
  std::shared_ptr<Impl> impl_;
};

}  // namespace fp8sim
