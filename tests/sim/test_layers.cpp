// Every layer's backward pass against central finite differences of an independent
// float64 forward written here (naive loops that share no code with sim/src/layers.cpp),
// and every forward pass against that float64 forward. The layers run under the fp32
// recipe, so their only rounding is float32's; the tolerance allows for it.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <functional>
#include <vector>

#include "fp8emu/random.hpp"
#include "fp8sim/layers.hpp"

using namespace fp8sim;

namespace {

std::vector<double> random_vector(std::size_t n, std::uint64_t stream, double lo = -1, double hi = 1) {
  std::vector<double> v(n);
  const fp8emu::RandomKey k = fp8emu::random_key(42, stream);
  for (std::size_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * double(fp8emu::random_bits(k, i)) * 0x1p-32;
  return v;
}

Tensor to_tensor(const std::vector<double>& v, std::vector<std::int64_t> shape) {
  Tensor t;
  t.reshape(std::move(shape));
  for (std::size_t i = 0; i < v.size(); ++i) t.data[i] = float(v[i]);
  return t;
}

std::vector<double> as_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// The float64 reference forwards.
using Forward = std::function<std::vector<double>(const std::vector<double>& x, const std::vector<double>& w)>;

std::vector<double> linear64(const std::vector<double>& x, const std::vector<double>& w, std::int64_t n,
                             std::int64_t in, std::int64_t out) {
  // w holds the weight (out x in) then the bias (out).
  std::vector<double> y(std::size_t(n * out));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t o = 0; o < out; ++o) {
      double s = w[std::size_t(out * in + o)];
      for (std::int64_t k = 0; k < in; ++k) s += x[std::size_t(i * in + k)] * w[std::size_t(o * in + k)];
      y[std::size_t(i * out + o)] = s;
    }
  return y;
}

std::vector<double> conv64(const std::vector<double>& x, const std::vector<double>& w, std::int64_t n, std::int64_t c,
                           std::int64_t h, std::int64_t wd, std::int64_t out, int k, int stride, int pad) {
  const std::int64_t ho = (h + 2 * pad - k) / stride + 1, wo = (wd + 2 * pad - k) / stride + 1;
  std::vector<double> y(std::size_t(n * out * ho * wo));
  for (std::int64_t b = 0; b < n; ++b)
    for (std::int64_t o = 0; o < out; ++o)
      for (std::int64_t oy = 0; oy < ho; ++oy)
        for (std::int64_t ox = 0; ox < wo; ++ox) {
          double s = w[std::size_t(out * c * k * k + o)];
          for (std::int64_t ch = 0; ch < c; ++ch)
            for (int ky = 0; ky < k; ++ky)
              for (int kx = 0; kx < k; ++kx) {
                const std::int64_t iy = oy * stride + ky - pad, ix = ox * stride + kx - pad;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                s += x[std::size_t(((b * c + ch) * h + iy) * wd + ix)] *
                     w[std::size_t(((o * c + ch) * k + ky) * k + kx)];
              }
          y[std::size_t(((b * out + o) * ho + oy) * wo + ox)] = s;
        }
  return y;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Checks the analytic gradient `g` of L(v) = <upstream, f(v)> against central differences,
// componentwise within tol relative to the gradient's largest magnitude. Returns the count.
int check_gradient(const std::string& what, const std::vector<double>& v, const std::vector<double>& g,
                   const std::function<std::vector<double>(const std::vector<double>&)>& f,
                   const std::vector<double>& upstream, double h = 1e-4, double tol = 2e-3) {
  double gmax = 0;
  for (double x : g) gmax = std::max(gmax, std::fabs(x));
  REQUIRE(g.size() == v.size());
  int checked = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::vector<double> p = v, m = v;
    p[i] += h;
    m[i] -= h;
    const double fd = (dot(upstream, f(p)) - dot(upstream, f(m))) / (2 * h);
    INFO(what << " element " << i << ": analytic " << g[i] << ", finite difference " << fd);
    CHECK(std::fabs(g[i] - fd) <= tol * std::max(gmax, 1e-3));
    ++checked;
  }
  return checked;
}

void check_forward(const std::string& what, const Tensor& y, const std::vector<double>& y64, double tol = 1e-5) {
  REQUIRE(std::size_t(y.size()) == y64.size());
  double ymax = 0;
  for (double v : y64) ymax = std::max(ymax, std::fabs(v));
  for (std::size_t i = 0; i < y64.size(); ++i) {
    INFO(what << " forward element " << i);
    CHECK(std::fabs(double(y.data[i]) - y64[i]) <= tol * std::max(ymax, 1.0));
  }
}

StepContext fp32_context(const Recipe& r) {
  StepContext ctx;
  ctx.recipe = &r;
  ctx.exec.threads = 1;
  return ctx;
}

std::vector<double> params_of(GemmCore& c) {
  std::vector<double> w = as_double(c.weight.value.data);
  for (float b : c.bias.value.data) w.push_back(b);
  return w;
}

void set_params(GemmCore& c, const std::vector<double>& w) {
  for (std::size_t i = 0; i < c.weight.value.data.size(); ++i) c.weight.value.data[i] = float(w[i]);
  for (std::size_t i = 0; i < c.bias.value.data.size(); ++i)
    c.bias.value.data[i] = float(w[c.weight.value.data.size() + i]);
}

}  // namespace

TEST_CASE("Linear forward, input and weight gradients against float64 finite differences") {
  const Recipe r = named_recipe("fp32");
  StepContext ctx = fp32_context(r);
  const std::int64_t n = 5, in = 7, out = 4;
  Linear layer(0, in, out);
  const std::vector<double> x = random_vector(std::size_t(n * in), 1), w = random_vector(std::size_t(out * in + out), 2);
  set_params(layer.core, w);
  const Tensor xt = to_tensor(x, {n, in});
  Tensor y, dx;
  layer.forward(xt, y, ctx);
  const std::vector<double> wq = params_of(layer.core), xq = as_double(xt.data);
  check_forward("linear", y, linear64(xq, wq, n, in, out));
  const std::vector<double> up = random_vector(std::size_t(n * out), 3);
  layer.backward(xt, y, to_tensor(up, {n, out}), &dx, ctx);
  std::vector<double> gw = as_double(layer.core.weight.grad.data);
  for (float b : layer.core.bias.grad.data) gw.push_back(b);
  int count = check_gradient("linear dx", xq, as_double(dx.data), [&](const auto& v) { return linear64(v, wq, n, in, out); }, up);
  count += check_gradient("linear dW, db", wq, gw, [&](const auto& v) { return linear64(xq, v, n, in, out); }, up);
  REQUIRE(count == n * in + out * in + out);
}

TEST_CASE("Conv2d (im2col) forward and gradients against float64 finite differences") {
  const Recipe r = named_recipe("fp32");
  StepContext ctx = fp32_context(r);
  for (const auto& [stride, pad] : {std::pair{1, 1}, std::pair{2, 0}}) {
    const std::int64_t n = 2, c = 2, h = 5, wd = 6, out = 3;
    const int k = 3;
    Conv2d layer(0, c, out, k, stride, pad);
    const std::vector<double> x = random_vector(std::size_t(n * c * h * wd), 4);
    const std::vector<double> w = random_vector(std::size_t(out * c * k * k + out), 5);
    set_params(layer.core, w);
    const Tensor xt = to_tensor(x, {n, c, h, wd});
    Tensor y, dx;
    layer.forward(xt, y, ctx);
    const std::vector<double> wq = params_of(layer.core), xq = as_double(xt.data);
    const auto f = [&](const std::vector<double>& xv, const std::vector<double>& wv) {
      return conv64(xv, wv, n, c, h, wd, out, k, stride, pad);
    };
    check_forward("conv", y, f(xq, wq));
    const std::vector<double> up = random_vector(std::size_t(y.size()), 6);
    layer.backward(xt, y, to_tensor(up, y.shape), &dx, ctx);
    std::vector<double> gw = as_double(layer.core.weight.grad.data);
    for (float b : layer.core.bias.grad.data) gw.push_back(b);
    int count = check_gradient("conv dx", xq, as_double(dx.data), [&](const auto& v) { return f(v, wq); }, up);
    count += check_gradient("conv dW, db", wq, gw, [&](const auto& v) { return f(xq, v); }, up);
    REQUIRE(count == int(x.size() + w.size()));
  }
}

TEST_CASE("element-wise layers, max-pool and flatten against float64 finite differences") {
  const Recipe r = named_recipe("fp32");
  StepContext ctx = fp32_context(r);
  const std::int64_t n = 3, d = 8;
  // Inputs kept away from ReLU's kink (|x| >= 0.05 > h).
  std::vector<double> x = random_vector(std::size_t(n * d), 7);
  for (double& v : x) v = v < 0 ? v - 0.05 : v + 0.05;
  const std::vector<double> up = random_vector(std::size_t(n * d), 8);
  const Tensor xt = to_tensor(x, {n, d});
  const std::vector<double> xq = as_double(xt.data);

  SECTION("ReLU") {
    ReLU l;
    Tensor y, dx;
    l.forward(xt, y, ctx);
    const auto f = [](const std::vector<double>& v) {
      std::vector<double> o(v.size());
      for (std::size_t i = 0; i < v.size(); ++i) o[i] = v[i] > 0 ? v[i] : 0;
      return o;
    };
    check_forward("relu", y, f(xq), 0);
    l.backward(xt, y, to_tensor(up, {n, d}), &dx, ctx);
    REQUIRE(check_gradient("relu", xq, as_double(dx.data), f, up) == n * d);
  }
  SECTION("GELU") {
    GELU l;
    Tensor y, dx;
    l.forward(xt, y, ctx);
    // x Phi(x) with Phi from erf (the layer uses erfc).
    const auto f = [](const std::vector<double>& v) {
      std::vector<double> o(v.size());
      for (std::size_t i = 0; i < v.size(); ++i) o[i] = v[i] * 0.5 * (1 + std::erf(v[i] / std::sqrt(2.0)));
      return o;
    };
    check_forward("gelu", y, f(xq));
    l.backward(xt, y, to_tensor(up, {n, d}), &dx, ctx);
    REQUIRE(check_gradient("gelu", xq, as_double(dx.data), f, up) == n * d);
  }
  SECTION("LayerNorm: input, gain and bias") {
    LayerNorm l(d);
    const std::vector<double> gb = random_vector(std::size_t(2 * d), 9, 0.5, 1.5);
    for (std::int64_t i = 0; i < d; ++i) {
      l.gain.value.data[std::size_t(i)] = float(gb[std::size_t(i)]);
      l.bias.value.data[std::size_t(i)] = float(gb[std::size_t(d + i)] - 1.0);
    }
    std::vector<double> p = as_double(l.gain.value.data);
    for (float b : l.bias.value.data) p.push_back(b);
    const auto f = [&](const std::vector<double>& v, const std::vector<double>& pv) {
      std::vector<double> o(v.size());
      for (std::int64_t row = 0; row < n; ++row) {
        double m = 0, var = 0;
        for (std::int64_t i = 0; i < d; ++i) m += v[std::size_t(row * d + i)] / double(d);
        for (std::int64_t i = 0; i < d; ++i) var += std::pow(v[std::size_t(row * d + i)] - m, 2) / double(d);
        for (std::int64_t i = 0; i < d; ++i)
          o[std::size_t(row * d + i)] = (v[std::size_t(row * d + i)] - m) / std::sqrt(var + 1e-5) * pv[std::size_t(i)] +
                                        pv[std::size_t(d + i)];
      }
      return o;
    };
    Tensor y, dx;
    l.forward(xt, y, ctx);
    check_forward("layernorm", y, f(xq, p));
    l.backward(xt, y, to_tensor(up, {n, d}), &dx, ctx);
    std::vector<double> gp = as_double(l.gain.grad.data);
    for (float b : l.bias.grad.data) gp.push_back(b);
    int count = check_gradient("layernorm dx", xq, as_double(dx.data), [&](const auto& v) { return f(v, p); }, up);
    count += check_gradient("layernorm dgain, dbias", p, gp, [&](const auto& v) { return f(xq, v); }, up);
    REQUIRE(count == n * d + 2 * d);
  }
  SECTION("MaxPool2d (distinct values, so no ties) and Flatten") {
    const std::int64_t c = 2, h = 4, w = 6;
    std::vector<double> xs(std::size_t(n * c * h * w));
    for (std::size_t i = 0; i < xs.size(); ++i) xs[i] = double((i * 37) % xs.size()) / double(xs.size()) - 0.5;
    const Tensor x4 = to_tensor(xs, {n, c, h, w});
    const std::vector<double> x4q = as_double(x4.data);
    const auto f = [&](const std::vector<double>& v) {
      std::vector<double> o(std::size_t(n * c * (h / 2) * (w / 2)));
      for (std::int64_t p = 0; p < n * c; ++p)
        for (std::int64_t oy = 0; oy < h / 2; ++oy)
          for (std::int64_t ox = 0; ox < w / 2; ++ox) {
            double m = -1e300;
            for (int ky = 0; ky < 2; ++ky)
              for (int kx = 0; kx < 2; ++kx) m = std::max(m, v[std::size_t((p * h + 2 * oy + ky) * w + 2 * ox + kx)]);
            o[std::size_t((p * (h / 2) + oy) * (w / 2) + ox)] = m;
          }
      return o;
    };
    MaxPool2d pool(2);
    Flatten flat;
    Tensor y, yf, dyf, dy, dx;
    pool.forward(x4, y, ctx);
    flat.forward(y, yf, ctx);
    REQUIRE(yf.shape == std::vector<std::int64_t>{n, c * (h / 2) * (w / 2)});
    check_forward("maxpool", yf, f(x4q), 0);
    const std::vector<double> upp = random_vector(std::size_t(yf.size()), 10);
    flat.backward(y, yf, to_tensor(upp, yf.shape), &dy, ctx);
    REQUIRE(dy.shape == y.shape);
    pool.backward(x4, y, dy, &dx, ctx);
    REQUIRE(check_gradient("maxpool", x4q, as_double(dx.data), f, upp, 1e-4) == n * c * h * w);
  }
}

namespace {

std::uint32_t bits_of(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// The same float: equal bits, or both NaN (the sign and payload of a NaN depend on how
// the compiler orders the operands).
bool same_float(float a, float b) { return (std::isnan(a) && std::isnan(b)) || bits_of(a) == bits_of(b); }

float float_of(std::uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// GELU's float64 formulas, written out as the layer documents them.
float gelu_value64(float x) {
  const double v = x;
  return float(0.5 * v * std::erfc(-v / std::sqrt(2.0)));
}

float gelu_gradient64(float x, float dy) {
  const double v = x;
  return float(double(dy) * (0.5 * std::erfc(-v / std::sqrt(2.0)) +
                             v * 0.3989422804014327 * std::exp(-0.5 * v * v)));
}

}  // namespace

TEST_CASE("GELU's polynomial path equals the float64 formula bit for bit") {
  // Every 4099th float bit pattern (both signs, zeros, subnormals, infinities, NaNs), each
  // with an output gradient of assorted magnitude and sign.
  const fp8emu::RandomKey k = fp8emu::random_key(11, 0);
  std::int64_t cases = 0, in_range = 0, fast_value = 0, fast_gradient = 0;
  Tensor x, dy;
  x.reshape({0});
  for (std::uint64_t b = 0; b < (std::uint64_t(1) << 32); b += 4099) {
    const float xv = float_of(std::uint32_t(b));
    const std::uint32_t r = fp8emu::random_bits(k, b);
    // dy = +-m 2^e, e in [-40, 23], or 0 for 1 in 64.
    const float dv = r % 64 == 0 ? 0.0f : std::ldexp(float(r >> 8 | 1) * 0x1p-24f, int(r % 64) - 40) * (r & 256 ? -1 : 1);
    ++cases;
    // In range and not subnormal (half a subnormal is often a midpoint between floats, too
    // close to call).
    in_range += xv >= -6.0f && xv < 6.0f && std::fpclassify(xv) != FP_SUBNORMAL;
    float y = 0, g = 0;
    if (detail::gelu_fast_value(xv, y)) {
      ++fast_value;
      INFO("x " << std::hex << bits_of(xv));
      REQUIRE(same_float(y, gelu_value64(xv)));
    }
    if (detail::gelu_fast_gradient(xv, dv, g)) {
      ++fast_gradient;
      INFO("x " << std::hex << bits_of(xv) << " dy " << bits_of(dv));
      REQUIRE(same_float(g, gelu_gradient64(xv, dv)));
    }
    REQUIRE(same_float(detail::gelu_formula(xv), gelu_value64(xv)));
    REQUIRE(same_float(detail::gelu_formula_gradient(xv, dv), gelu_gradient64(xv, dv)));
    if (cases % 8 == 0) {
      x.data.push_back(xv);
      dy.data.push_back(dv);
    }
  }
  REQUIRE(cases == 1047809);
  // The polynomials cover [-6, 6) (about half the positive and half the negative patterns
  // lie below 6 in magnitude), and prove almost every rounding there.
  REQUIRE(in_range > cases * 48 / 100);
  CHECK(fast_value > in_range * 999 / 1000);
  CHECK(fast_gradient > in_range * 99 / 100);
  // The layer, on a sample of them, on 1 and 2 threads (the tensor is large enough to be
  // split): the formula's results everywhere.
  x.shape = dy.shape = {std::int64_t(x.data.size())};
  for (int threads : {1, 2}) {
    GELU l;
    StepContext ctx;
    ctx.exec.threads = threads;
    Tensor y, dx;
    l.forward(x, y, ctx);
    l.backward(x, y, dy, &dx, ctx);
    for (std::size_t i = 0; i < x.data.size(); ++i) {
      INFO("threads " << threads << " x " << std::hex << bits_of(x.data[i]) << " dy " << bits_of(dy.data[i]));
      REQUIRE(same_float(y.data[i], gelu_value64(x.data[i])));
      REQUIRE(same_float(dx.data[i], gelu_gradient64(x.data[i], dy.data[i])));
    }
  }
  REQUIRE(x.data.size() == 130976);
}

TEST_CASE("softmax cross-entropy value and gradient against float64") {
  const std::int64_t n = 4, c = 10;
  const std::vector<double> z = random_vector(std::size_t(n * c), 11, -3, 3);
  const std::uint8_t labels[n] = {0, 3, 9, 3};
  const auto loss64 = [&](const std::vector<double>& v) {
    double l = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      double s = 0;
      for (std::int64_t j = 0; j < c; ++j) s += std::exp(v[std::size_t(i * c + j)]);
      l += -(v[std::size_t(i * c + labels[i])] - std::log(s));
    }
    return std::vector<double>{l / double(n)};
  };
  const Tensor zt = to_tensor(z, {n, c});
  Tensor dz;
  std::int64_t correct = -1;
  const double loss = softmax_cross_entropy(zt, labels, &dz, &correct);
  const std::vector<double> zq = as_double(zt.data);
  CHECK(loss == Approx(loss64(zq)[0]).epsilon(1e-12));
  std::int64_t expect_correct = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    std::int64_t arg = 0;
    for (std::int64_t j = 1; j < c; ++j)
      if (zq[std::size_t(i * c + j)] > zq[std::size_t(i * c + arg)]) arg = j;
    expect_correct += arg == labels[i];
  }
  CHECK(correct == expect_correct);
  REQUIRE(check_gradient("softmax-ce", zq, as_double(dz.data), loss64, {1.0}, 1e-5, 1e-4) == n * c);
}
