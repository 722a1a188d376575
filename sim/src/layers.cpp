// Layers (see include/fp8sim/layers.hpp).
#include "fp8sim/layers.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace fp8sim {
namespace {

void same_shape(Tensor& y, const Tensor& x) {
  if (y.shape != x.shape) y.reshape(x.shape);
}

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

}  // namespace

void Tensor::reshape(std::vector<std::int64_t> s) {
  std::int64_t n = 1;
  for (std::int64_t d : s) n *= d;
  shape = std::move(s);
  data.resize(std::size_t(n));
}

// ---------------------------------------------------------------------------
// GemmCore: the three GEMMs.
// ---------------------------------------------------------------------------

GemmCore::GemmCore(int id, std::int64_t in, std::int64_t out) : in(in), out(out), id(id) {
  weight.name = "w" + std::to_string(id);
  weight.value.reshape({out, in});
  bias.name = "b" + std::to_string(id);
  bias.value.reshape({out});
  bias.decay = false;
}

std::uint64_t GemmCore::stream(const StepContext& ctx, Role r) const {
  return ((ctx.step << 8) + std::uint64_t(id)) * 4 + std::uint64_t(r) + (ctx.training ? 0 : 3);
}

void GemmCore::forward(const float* x, std::int64_t n, float* y, StepContext& ctx) {
  GemmContext g{ctx.seed, stream(ctx, Role::fprop), ctx.training, ctx.training && ctx.stats, ctx.exec, ctx.defer_amax};
  // Y (n x out) = X (n x in) . W^T, W^T viewed as the column-major in x out matrix.
  const MatView a{x, n, in, fp8emu::Layout::row_major, 0};
  const MatView b{weight_param().value.data.data(), in, out, fp8emu::Layout::col_major, 0};
  recipe_gemm(ctx.recipe->role(Role::fprop, names), a, b, y, out, false, states[0][0], states[0][1], g, ctx.ws);
  if (!has_bias) return;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < out; ++j) y[i * out + j] += bias.value.data[std::size_t(j)];
}

void GemmCore::backward(const float* x, const float* dy, std::int64_t n, float* dx, StepContext& ctx) {
  Param& w = weight_param();
  w.grad.reshape(w.value.shape);
  // dW (out x in) = dY^T (out x n, dY column-major) . X (n x in).
  {
    GemmContext g{ctx.seed, stream(ctx, Role::wgrad), ctx.training, ctx.training && ctx.stats, ctx.exec, ctx.defer_amax};
    const MatView a{dy, out, n, fp8emu::Layout::col_major, 0};
    const MatView b{x, n, in, fp8emu::Layout::row_major, 0};
    recipe_gemm(ctx.recipe->role(Role::wgrad, names), a, b, w.grad.data.data(), in, false, states[2][0],
                states[2][1], g, ctx.ws);
  }
  if (has_bias) {
    // Column sums in float64, rows in order (row by row, for the cache).
    bias.grad.reshape(bias.value.shape);
    std::vector<double> s(std::size_t(out), 0.0);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < out; ++j) s[std::size_t(j)] += dy[i * out + j];
    for (std::int64_t j = 0; j < out; ++j) bias.grad.data[std::size_t(j)] = float(s[std::size_t(j)]);
  }
  if (dx) {
    // dX (n x in) = dY (n x out) . W (out x in).
    GemmContext g{ctx.seed, stream(ctx, Role::dgrad), ctx.training, ctx.training && ctx.stats, ctx.exec, ctx.defer_amax};
    const MatView a{dy, n, out, fp8emu::Layout::row_major, 0};
    const MatView b{w.value.data.data(), out, in, fp8emu::Layout::row_major, 0};
    recipe_gemm(ctx.recipe->role(Role::dgrad, names), a, b, dx, in, false, states[1][0], states[1][1], g, ctx.ws);
  }
}

// ---------------------------------------------------------------------------
// Linear and Conv2d.
// ---------------------------------------------------------------------------

std::string Linear::name() const {
  return "linear" + std::to_string(core.id) + " " + std::to_string(core.in) + "->" + std::to_string(core.out);
}

void Linear::forward(const Tensor& x, Tensor& y, StepContext& ctx) {
  require(x.shape.size() == 2 && x.dim(1) == core.in, name() + ": input must be (n, " + std::to_string(core.in) + ")");
  y.reshape({x.dim(0), core.out});
  core.forward(x.data.data(), x.dim(0), y.data.data(), ctx);
}

void Linear::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx, StepContext& ctx) {
  if (dx) dx->reshape(x.shape);
  core.backward(x.data.data(), dy.data.data(), x.dim(0), dx ? dx->data.data() : nullptr, ctx);
}

Conv2d::Conv2d(int id, std::int64_t channels, std::int64_t out, int kernel, int stride, int padding)
    : core(id, channels * kernel * kernel, out), channels(channels), kernel(kernel), stride(stride), padding(padding) {}

std::string Conv2d::name() const {
  return "conv" + std::to_string(core.id) + " " + std::to_string(channels) + "->" + std::to_string(core.out) + " k" +
         std::to_string(kernel);
}

namespace {

struct ConvGeometry {
  std::int64_t n, c, h, w, ho, wo, k, s, p;
  std::int64_t patch() const { return c * k * k; }
  std::int64_t pixels() const { return n * ho * wo; }
};

ConvGeometry geometry(const Tensor& x, std::int64_t channels, int k, int s, int p, const std::string& name) {
  require(x.shape.size() == 4 && x.dim(1) == channels, name + ": input must be (n, " + std::to_string(channels) + ", h, w)");
  ConvGeometry g{x.dim(0), x.dim(1), x.dim(2), x.dim(3), 0, 0, k, s, p};
  g.ho = (g.h + 2 * p - k) / s + 1;
  g.wo = (g.w + 2 * p - k) / s + 1;
  require(g.ho > 0 && g.wo > 0, name + ": input smaller than the kernel");
  return g;
}

// Calls f(row, col, source index or -1 for padding) for every im2col element: row = output
// pixel (n, oy, ox), col = (channel, ky, kx).
template <class F>
void for_each_patch(const ConvGeometry& g, F f) {
  for (std::int64_t b = 0; b < g.n; ++b)
    for (std::int64_t oy = 0; oy < g.ho; ++oy)
      for (std::int64_t ox = 0; ox < g.wo; ++ox) {
        const std::int64_t row = (b * g.ho + oy) * g.wo + ox;
        std::int64_t col = 0;
        for (std::int64_t ch = 0; ch < g.c; ++ch)
          for (std::int64_t ky = 0; ky < g.k; ++ky)
            for (std::int64_t kx = 0; kx < g.k; ++kx, ++col) {
              const std::int64_t iy = oy * g.s + ky - g.p, ix = ox * g.s + kx - g.p;
              const bool inside = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w;
              f(row, col, inside ? ((b * g.c + ch) * g.h + iy) * g.w + ix : -1);
            }
      }
}

}  // namespace

void Conv2d::forward(const Tensor& x, Tensor& y, StepContext& ctx) {
  const ConvGeometry g = geometry(x, channels, kernel, stride, padding, name());
  const std::int64_t P = g.patch(), O = core.out;
  cols_.resize(std::size_t(g.pixels() * P));
  for_each_patch(g, [&](std::int64_t r, std::int64_t c, std::int64_t src) {
    cols_[std::size_t(r * P + c)] = src < 0 ? 0.0f : x.data[std::size_t(src)];
  });
  rows_out_.resize(std::size_t(g.pixels() * O));
  core.forward(cols_.data(), g.pixels(), rows_out_.data(), ctx);
  y.reshape({g.n, O, g.ho, g.wo});
  const std::int64_t hw = g.ho * g.wo;
  for (std::int64_t b = 0; b < g.n; ++b)
    for (std::int64_t q = 0; q < hw; ++q)
      for (std::int64_t o = 0; o < O; ++o)
        y.data[std::size_t((b * O + o) * hw + q)] = rows_out_[std::size_t((b * hw + q) * O + o)];
}

void Conv2d::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx, StepContext& ctx) {
  const ConvGeometry g = geometry(x, channels, kernel, stride, padding, name());
  const std::int64_t P = g.patch(), O = core.out, hw = g.ho * g.wo;
  // cols_ still holds the im2col rows of x from forward (the same x).
  drows_.resize(std::size_t(g.pixels() * O));
  for (std::int64_t b = 0; b < g.n; ++b)
    for (std::int64_t q = 0; q < hw; ++q)
      for (std::int64_t o = 0; o < O; ++o)
        drows_[std::size_t((b * hw + q) * O + o)] = dy.data[std::size_t((b * O + o) * hw + q)];
  if (dx) dcols_.resize(std::size_t(g.pixels() * P));
  core.backward(cols_.data(), drows_.data(), g.pixels(), dx ? dcols_.data() : nullptr, ctx);
  if (dx) {
    dx->reshape(x.shape);
    std::fill(dx->data.begin(), dx->data.end(), 0.0f);
    for_each_patch(g, [&](std::int64_t r, std::int64_t c, std::int64_t src) {
      if (src >= 0) dx->data[std::size_t(src)] += dcols_[std::size_t(r * P + c)];
    });
  }
}

// ---------------------------------------------------------------------------
// Element-wise layers.
// ---------------------------------------------------------------------------

void ReLU::forward(const Tensor& x, Tensor& y, StepContext&) {
  same_shape(y, x);
  for (std::size_t i = 0; i < x.data.size(); ++i) y.data[i] = x.data[i] > 0 ? x.data[i] : 0.0f;
}

void ReLU::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx, StepContext&) {
  if (!dx) return;
  same_shape(*dx, x);
  for (std::size_t i = 0; i < x.data.size(); ++i) dx->data[i] = x.data[i] > 0 ? dy.data[i] : 0.0f;
}

namespace {

// GELU's formulas, as written: the value x Phi(x) and the slope Phi(x) + x phi(x) with
// Phi(x) = erfc(-x / sqrt 2) / 2 in float64, rounded once to float.
constexpr double kInvSqrt2Pi = 0.3989422804014327;

float gelu_formula_value(double v) { return float(0.5 * v * std::erfc(-v / std::sqrt(2.0))); }

double gelu_formula_slope(double v) {
  // d/dx x Phi(x) = Phi(x) + x phi(x).
  return 0.5 * std::erfc(-v / std::sqrt(2.0)) + v * kInvSqrt2Pi * std::exp(-0.5 * v * v);
}

// Phi(x) and Phi(x) + x phi(x) on [-6, 6) as Taylor polynomials of degree 8 about the
// centres of intervals of width 1/16, in t = x - centre (|t| <= 1/32), with coefficients
// from the derivatives of phi (phi^(j) = (-1)^j He_j phi, He the probabilists' Hermite
// polynomials) in long double. Measured over every float in [-6, 6), each polynomial is
// within 4.5e-16 of the float64 formula (glibc's erfc and exp); kGeluBound allows 1e-15.
struct GeluTable {
  static constexpr int kDegree = 8, kPerUnit = 16;
  static constexpr double kLo = -6.0, kHi = 6.0;
  static constexpr int kIntervals = int((kHi - kLo) * kPerUnit);
  static constexpr int kStride = kDegree + 1;
  double phi[kIntervals * kStride], slope[kIntervals * kStride];
  GeluTable() {
    for (int i = 0; i < kIntervals; ++i) {
      const long double c = (long double)kLo + ((long double)i + 0.5L) / kPerUnit;
      const long double d = std::exp(-0.5L * c * c) * 0.398942280401432677939946059934381868L;  // phi(c)
      long double he[kDegree + 2] = {1.0L, c};
      for (int j = 1; j <= kDegree; ++j) he[j + 1] = c * he[j] - (long double)j * he[j - 1];
      const auto dphi = [&](int j) { return (j % 2 ? -he[j] : he[j]) * d; };  // phi^(j)(c)
      long double factorial = 1.0L;
      for (int k = 0; k <= kDegree; ++k) {
        if (k > 0) factorial *= k;
        // Phi^(k), and (x phi)^(k) = x phi^(k) + k phi^(k-1).
        const long double pk = k == 0 ? 0.5L * std::erfc(-c / std::sqrt(2.0L)) : dphi(k - 1);
        const long double xk = c * dphi(k) + (k > 0 ? (long double)k * dphi(k - 1) : 0.0L);
        phi[i * kStride + k] = double(pk / factorial);
        slope[i * kStride + k] = double((pk + xk) / factorial);
      }
    }
  }
  // Returns the polynomial of `c` at v in [kLo, kHi); v outside is moved inside (the
  // result is then not used). No branches: the layer's loop vectorizes.
  static double eval(const double* c, double v) {
    const double v1 = v > kLo ? v : kLo;                                  // NaN: kLo
    const double vc = v1 < kHi - 0x1p-30 ? v1 : kHi - 0x1p-30;            // above every float below kHi
    const int i = int((vc - kLo) * kPerUnit);
    const double t = vc - (kLo + (double(i) + 0.5) / kPerUnit);
    const int j = i * kStride;
    double r = c[j + kDegree];
    for (int k = kDegree - 1; k >= 0; --k) r = r * t + c[j + k];
    return r;
  }
  static bool covers(double v) { return (v >= kLo) & (v < kHi); }  // false for NaN
};

constexpr double kGeluBound = 1e-15;

const GeluTable& gelu_table() {
  static const GeluTable t;
  return t;
}

// float(d) where d is known to lie within b of the float64 value r: true when every double
// in [r - b, r + b] rounds to the same float (rounding is monotonic), with slack for the
// roundings of r itself and of r +- b.
[[gnu::always_inline]] inline bool round_unique(double r, double b, float& out) {
  const double slack = b + std::fabs(r) * 0x1p-48;
  const float lo = float(r - slack), hi = float(r + slack);
  out = lo;
  return (lo == hi) & (std::signbit(lo) == std::signbit(hi));
}

// gelu_fast_value and gelu_fast_gradient with the table given.
[[gnu::always_inline]] inline bool fast_value(const GeluTable& tb, float x, float& y) {
  const double v = x;
  // 0.5 erfc is exact in float64, so the formula's value is v P rounded once, with P
  // within kGeluBound of the polynomial p: the product lies within |v| kGeluBound of v p.
  const double p = GeluTable::eval(tb.phi, v);
  return round_unique(v * p, std::fabs(v) * kGeluBound, y) & GeluTable::covers(v);
}

[[gnu::always_inline]] inline bool fast_gradient(const GeluTable& tb, float x, float dy, float& dx) {
  const double v = x;
  const double s = GeluTable::eval(tb.slope, v);
  // The formula's slope has the sign of s only when |s| exceeds the bound (a zero product
  // takes the slope's sign).
  return round_unique(double(dy) * s, std::fabs(double(dy)) * kGeluBound, dx) & GeluTable::covers(v) &
         (std::fabs(s) > kGeluBound);
}

// The polynomial results of n elements and whether each is proven. The loop vectorizes
// (gathers from the table on AVX2); a copy is compiled for AVX2 and one for the baseline,
// the CPU picks one at load time. Each lane does fast_value's operations in its order, so
// the copies give the same results.
[[gnu::target_clones("avx2", "default")]] void gelu_values(const GeluTable& tb, const float* __restrict x,
                                                          float* __restrict y, std::int32_t* __restrict ok,
                                                          std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) ok[i] = fast_value(tb, x[i], y[i]);
}

[[gnu::target_clones("avx2", "default")]] void gelu_gradients(const GeluTable& tb, const float* __restrict x,
                                                             const float* __restrict dy, float* __restrict dx,
                                                             std::int32_t* __restrict ok, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) ok[i] = fast_gradient(tb, x[i], dy[i], dx[i]);
}

}  // namespace

namespace detail {

bool gelu_fast_value(float x, float& y) { return fast_value(gelu_table(), x, y); }

bool gelu_fast_gradient(float x, float dy, float& dx) { return fast_gradient(gelu_table(), x, dy, dx); }

float gelu_formula(float x) { return gelu_formula_value(x); }

float gelu_formula_gradient(float x, float dy) { return float(double(dy) * gelu_formula_slope(x)); }

}  // namespace detail

// The layer's loops: the polynomial result of every element without branches (so that the
// loop vectorizes), then the formula where the polynomials could not prove it.
namespace {

// GELU's threads: each element is computed on its own, so the threads split the elements
// of a large tensor and the results do not depend on them.
int gelu_threads(const StepContext& ctx, std::int64_t n) {
  if (n < (std::int64_t(1) << 16)) return 1;
  return ctx.exec.threads > 0 ? ctx.exec.threads : omp_get_max_threads();
}

}  // namespace

// The layer: pieces of 1024 elements, the polynomials on all of them, then the formula
// where they proved nothing.
void GELU::forward(const Tensor& x, Tensor& y, StepContext& ctx) {
  same_shape(y, x);
  const GeluTable& tb = gelu_table();
  const std::int64_t n = x.size(), pieces = (n + 1023) / 1024;
  const float* xs = x.data.data();
  float* ys = y.data.data();
#pragma omp parallel for num_threads(gelu_threads(ctx, n)) schedule(static)
  for (std::int64_t q = 0; q < pieces; ++q) {
    const std::int64_t b = q * 1024, len = std::min<std::int64_t>(1024, n - b);
    std::int32_t ok[1024];
    gelu_values(tb, xs + b, ys + b, ok, len);
    for (std::int64_t i = 0; i < len; ++i)
      if (!ok[i]) ys[b + i] = gelu_formula_value(xs[b + i]);
  }
}

void GELU::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx, StepContext& ctx) {
  if (!dx) return;
  same_shape(*dx, x);
  const GeluTable& tb = gelu_table();
  const std::int64_t n = x.size(), pieces = (n + 1023) / 1024;
  const float* xs = x.data.data();
  const float* gs = dy.data.data();
  float* out = dx->data.data();
#pragma omp parallel for num_threads(gelu_threads(ctx, n)) schedule(static)
  for (std::int64_t q = 0; q < pieces; ++q) {
    const std::int64_t b = q * 1024, len = std::min<std::int64_t>(1024, n - b);
    std::int32_t ok[1024];
    gelu_gradients(tb, xs + b, gs + b, out + b, ok, len);
    for (std::int64_t i = 0; i < len; ++i)
      if (!ok[i]) out[b + i] = detail::gelu_formula_gradient(xs[b + i], gs[b + i]);
  }
}

LayerNorm::LayerNorm(std::int64_t features, float eps) : eps(eps) {
  gain.name = "ln_gain";
  gain.value.reshape({features});
  std::fill(gain.value.data.begin(), gain.value.data.end(), 1.0f);
  gain.decay = false;
  bias.name = "ln_bias";
  bias.value.reshape({features});
  bias.decay = false;
}

std::string LayerNorm::name() const { return "layernorm " + std::to_string(gain.value.size()); }

void LayerNorm::forward(const Tensor& x, Tensor& y, StepContext&) {
  const std::int64_t d = gain.value.size();
  require(!x.shape.empty() && x.shape.back() == d, name() + ": the last dimension must be " + std::to_string(d));
  same_shape(y, x);
  const std::int64_t rows = x.size() / d;
  mean_.resize(std::size_t(rows));
  rstd_.resize(std::size_t(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x.data.data() + r * d;
    double m = 0, v = 0;
    for (std::int64_t i = 0; i < d; ++i) m += xr[i];
    m /= double(d);
    for (std::int64_t i = 0; i < d; ++i) v += (xr[i] - m) * (xr[i] - m);
    v /= double(d);
    const double rs = 1.0 / std::sqrt(v + double(eps));
    mean_[std::size_t(r)] = m;
    rstd_[std::size_t(r)] = rs;
    for (std::int64_t i = 0; i < d; ++i)
      y.data[std::size_t(r * d + i)] =
          float((xr[i] - m) * rs * gain.value.data[std::size_t(i)] + bias.value.data[std::size_t(i)]);
  }
}

void LayerNorm::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx, StepContext&) {
  const std::int64_t d = gain.value.size(), rows = x.size() / d;
  gain.grad.reshape(gain.value.shape);
  bias.grad.reshape(bias.value.shape);
  std::vector<double> dg(std::size_t(d), 0.0), db(std::size_t(d), 0.0);
  if (dx) same_shape(*dx, x);
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x.data.data() + r * d;
    const float* gr = dy.data.data() + r * d;
    const double m = mean_[std::size_t(r)], rs = rstd_[std::size_t(r)];
    // With xhat = (x - m) rs and g = dy * gain: dx = rs (g - mean(g) - xhat mean(g xhat)).
    double sg = 0, sgx = 0;
    for (std::int64_t i = 0; i < d; ++i) {
      const double xh = (xr[i] - m) * rs, g = double(gr[i]) * gain.value.data[std::size_t(i)];
      dg[std::size_t(i)] += gr[i] * xh;
      db[std::size_t(i)] += gr[i];
      sg += g;
      sgx += g * xh;
    }
    if (!dx) continue;
    sg /= double(d);
    sgx /= double(d);
    for (std::int64_t i = 0; i < d; ++i) {
      const double xh = (xr[i] - m) * rs, g = double(gr[i]) * gain.value.data[std::size_t(i)];
      dx->data[std::size_t(r * d + i)] = float(rs * (g - sg - xh * sgx));
    }
  }
  for (std::int64_t i = 0; i < d; ++i) {
    gain.grad.data[std::size_t(i)] = float(dg[std::size_t(i)]);
    bias.grad.data[std::size_t(i)] = float(db[std::size_t(i)]);
  }
}

std::string MaxPool2d::name() const { return "maxpool" + std::to_string(k); }

void MaxPool2d::forward(const Tensor& x, Tensor& y, StepContext&) {
  require(x.shape.size() == 4 && x.dim(2) >= k && x.dim(3) >= k, name() + ": input must be (n, c, h, w), h, w >= k");
  const std::int64_t nc = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3), ho = h / k, wo = w / k;
  y.reshape({x.dim(0), x.dim(1), ho, wo});
  argmax_.resize(std::size_t(nc * ho * wo));
  for (std::int64_t p = 0; p < nc; ++p)
    for (std::int64_t oy = 0; oy < ho; ++oy)
      for (std::int64_t ox = 0; ox < wo; ++ox) {
        std::int64_t best = (p * h + oy * k) * w + ox * k;
        for (std::int64_t ky = 0; ky < k; ++ky)
          for (std::int64_t kx = 0; kx < k; ++kx) {
            const std::int64_t i = (p * h + oy * k + ky) * w + ox * k + kx;
            if (x.data[std::size_t(i)] > x.data[std::size_t(best)]) best = i;
          }
        const std::size_t o = std::size_t((p * ho + oy) * wo + ox);
        argmax_[o] = best;
        y.data[o] = x.data[std::size_t(best)];
      }
}

void MaxPool2d::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx, StepContext&) {
  if (!dx) return;
  dx->reshape(x.shape);
  std::fill(dx->data.begin(), dx->data.end(), 0.0f);
  for (std::size_t o = 0; o < argmax_.size(); ++o) dx->data[std::size_t(argmax_[o])] += dy.data[o];
}

void Flatten::forward(const Tensor& x, Tensor& y, StepContext&) {
  y.shape = {x.dim(0), x.dim(0) ? x.size() / x.dim(0) : 0};
  y.data = x.data;
}

void Flatten::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx, StepContext&) {
  if (!dx) return;
  dx->shape = x.shape;
  dx->data = dy.data;
}

double softmax_cross_entropy(const Tensor& logits, const std::uint8_t* labels, Tensor* dlogits,
                             std::int64_t* correct) {
  require(logits.shape.size() == 2, "softmax_cross_entropy: logits must be (n, classes)");
  const std::int64_t n = logits.dim(0), c = logits.dim(1);
  if (dlogits) dlogits->reshape(logits.shape);
  double loss = 0;
  std::int64_t right = 0;
  std::vector<double> e(static_cast<std::size_t>(c));
  for (std::int64_t i = 0; i < n; ++i) {
    const float* z = logits.data.data() + i * c;
    const std::int64_t y = labels[i];
    require(y < c, "softmax_cross_entropy: label out of range");
    std::int64_t arg = 0;
    for (std::int64_t j = 1; j < c; ++j)
      if (z[j] > z[arg]) arg = j;
    right += arg == y;
    const double zmax = z[arg];
    double sum = 0;
    for (std::int64_t j = 0; j < c; ++j) sum += e[std::size_t(j)] = std::exp(double(z[j]) - zmax);
    // -log softmax_y = log sum - (z_y - zmax).
    loss += std::log(sum) - (double(z[y]) - zmax);
    if (dlogits)
      for (std::int64_t j = 0; j < c; ++j)
        dlogits->data[std::size_t(i * c + j)] = float((e[std::size_t(j)] / sum - (j == y ? 1.0 : 0.0)) / double(n));
  }
  if (correct) *correct = right;
  return n ? loss / double(n) : 0.0;
}

}  // namespace fp8sim
