// Layers of the training simulator, with hand-written forward and backward passes. Every
// matrix multiply (Linear, and Conv2d through im2col) goes through recipe_gemm: forward
// (fprop), input gradient (dgrad) and weight gradient (wgrad), each under the recipe's
// role. Element-wise layers compute in float32 (LayerNorm and softmax statistics in
// float64) in a fixed order (GELU, whose elements are independent, splits large tensors
// among the threads), so results never depend on the thread count.
// tests/sim/test_layers.cpp checks every backward pass against float64 finite
// differences of an independent float64 forward.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fp8sim/qgemm.hpp"
#include "fp8sim/recipe.hpp"

namespace fp8sim {

/// A dense float32 array with a shape (row-major).
struct Tensor {
  std::vector<std::int64_t> shape;
  std::vector<float> data;
  std::int64_t size() const { return std::int64_t(data.size()); }
  std::int64_t dim(int i) const { return shape[std::size_t(i)]; }
  /// Sets the shape and sizes the data (contents unspecified after a size change).
  void reshape(std::vector<std::int64_t> s);
};

/// A trainable parameter: master value, gradient, optimizer moments.
struct Param {
  std::string name;
  Tensor value, grad;
  std::vector<float> m1, m2;  ///< Optimizer state (sized by the optimizer).
  bool decay = true;          ///< Weight decay applies (weights yes; biases, norms no).
};

/// What a layer call needs: the recipe, the step (for random streams), whether it trains.
struct StepContext {
  const Recipe* recipe = nullptr;
  std::uint64_t seed = 0, step = 0;
  bool training = true;  ///< false: no delayed-scaling updates, no statistics.
  bool stats = true;     ///< Gather quantization statistics (training only).
  /// Delayed scaling records the step's amax instead of pushing it (GemmContext::defer_amax).
  bool defer_amax = false;
  fp8emu::Execution exec{};
  GemmWorkspace ws;
};

/// A layer: y = f(x); backward gives dx (when asked) and accumulates parameter gradients.
class Layer {
 public:
  virtual ~Layer() = default;
  virtual std::string name() const = 0;
  virtual void forward(const Tensor& x, Tensor& y, StepContext& ctx) = 0;
  /// Given x, y = forward(x) and dL/dy, sets the parameter gradients and, when dx is not
  /// null, dL/dx.
  virtual void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, StepContext& ctx) = 0;
  virtual std::vector<Param*> params() { return {}; }
  /// The layer's GEMMs (Linear, Conv2d), or null.
  virtual class GemmCore* gemm_core() { return nullptr; }
};

/// The three GEMMs of a fully connected map on rows: Y (n x out) = X (n x in) W^T + b.
class GemmCore {
 public:
  GemmCore(int id, std::int64_t in, std::int64_t out);
  Param weight, bias;
  OperandState states[kRoles][2];  ///< [role][0 = operand a, 1 = operand b]
  void forward(const float* x, std::int64_t n, float* y, StepContext& ctx);
  /// dW = dY^T X, db = column sums of dY, dX = dY W (when dx is not null).
  void backward(const float* x, const float* dy, std::int64_t n, float* dx, StepContext& ctx);
  std::int64_t in, out;
  int id;
  /// The layer's names for per-layer precision (Recipe::role): its name, then aliases;
  /// empty: the recipe's own roles.
  std::vector<std::string> names;
  /// When set, the layer's weight is this parameter (its value is read, its grad written)
  /// and `weight` is unused: a weight shared with another layer (a tied embedding).
  Param* shared_weight = nullptr;
  /// false: no bias (forward adds none, backward leaves bias.grad alone).
  bool has_bias = true;
  Param& weight_param() { return shared_weight ? *shared_weight : weight; }

 private:
  std::uint64_t stream(const StepContext& ctx, Role r) const;
};

/// y = x W^T + b for x of shape (n, in).
class Linear : public Layer {
 public:
  Linear(int id, std::int64_t in, std::int64_t out) : core(id, in, out) {}
  std::string name() const override;
  void forward(const Tensor& x, Tensor& y, StepContext& ctx) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, StepContext& ctx) override;
  std::vector<Param*> params() override { return {&core.weight, &core.bias}; }
  GemmCore* gemm_core() override { return &core; }
  GemmCore core;
};

/// 2-D convolution (n, c, h, w) -> (n, out, h', w') with a square kernel, stride and
/// zero padding, by im2col: rows of c k k patch values, one GEMM with the (out, c k k)
/// weight.
class Conv2d : public Layer {
 public:
  Conv2d(int id, std::int64_t channels, std::int64_t out, int kernel, int stride, int padding);
  std::string name() const override;
  void forward(const Tensor& x, Tensor& y, StepContext& ctx) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, StepContext& ctx) override;
  std::vector<Param*> params() override { return {&core.weight, &core.bias}; }
  GemmCore* gemm_core() override { return &core; }
  GemmCore core;
  std::int64_t channels;
  int kernel, stride, padding;

 private:
  std::vector<float> cols_, rows_out_, drows_, dcols_;
};

class ReLU : public Layer {
 public:
  std::string name() const override { return "relu"; }
  void forward(const Tensor& x, Tensor& y, StepContext& ctx) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, StepContext& ctx) override;
};

/// GELU with the exact Gaussian CDF: x Phi(x) (Hendrycks and Gimpel 2016). Each output is
/// the float64 formula rounded once to float (detail::gelu_formula and
/// detail::gelu_formula_gradient), computed from piecewise polynomials where an error bound
/// proves the rounded result equal to the formula's.
class GELU : public Layer {
 public:
  std::string name() const override { return "gelu"; }
  void forward(const Tensor& x, Tensor& y, StepContext& ctx) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, StepContext& ctx) override;
};

namespace detail {
/// Returns 0.5 x erfc(-x / sqrt 2) in float64, rounded to float: GELU's value.
float gelu_formula(float x);
/// Returns dy (Phi(x) + x phi(x)) in float64, rounded to float: GELU's input gradient.
float gelu_formula_gradient(float x, float dy);
/// Sets y to gelu_formula(x) from the polynomials and returns true, or returns false where
/// they cannot prove the rounded result (outside [-6, 6), NaN, a rounding too close to call).
bool gelu_fast_value(float x, float& y);
/// As gelu_fast_value for gelu_formula_gradient(x, dy).
bool gelu_fast_gradient(float x, float dy, float& dx);
}  // namespace detail

/// Layer normalisation over the last dimension with gain and bias (Ba et al. 2016).
class LayerNorm : public Layer {
 public:
  LayerNorm(std::int64_t features, float eps = 1e-5f);
  std::string name() const override;
  void forward(const Tensor& x, Tensor& y, StepContext& ctx) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, StepContext& ctx) override;
  std::vector<Param*> params() override { return {&gain, &bias}; }
  Param gain, bias;
  float eps;

 private:
  std::vector<double> mean_, rstd_;
};

/// Max-pooling over k x k windows with stride k of (n, c, h, w); ties go to the first.
class MaxPool2d : public Layer {
 public:
  explicit MaxPool2d(int k) : k(k) {}
  std::string name() const override;
  void forward(const Tensor& x, Tensor& y, StepContext& ctx) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, StepContext& ctx) override;
  int k;

 private:
  std::vector<std::int64_t> argmax_;
};

/// (n, ...) -> (n, product of the rest).
class Flatten : public Layer {
 public:
  std::string name() const override { return "flatten"; }
  void forward(const Tensor& x, Tensor& y, StepContext& ctx) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, StepContext& ctx) override;
};

/// Mean softmax cross-entropy of logits (n, classes) against labels; the gradient is
/// (softmax - onehot) / n. Returns the loss; counts correct argmax predictions.
double softmax_cross_entropy(const Tensor& logits, const std::uint8_t* labels, Tensor* dlogits,
                             std::int64_t* correct = nullptr);

}  // namespace fp8sim
