// quantize_matrix against the definitions of its scalings, written out here: block amax
// by a plain loop, Transformer Engine's scale in float32, the OCP MX exponent from frexp,
// NVIDIA's MX exponent by search, NVFP4's float32 rule; every code against the scalar
// reference encode_scaled with the random bits of its index in the codes' order. Also
// fp8emu::amax against a plain loop at every thread count, and the scales in the form
// fp8emu::gemm takes.
#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "fp8emu/quantize_matrix.hpp"
#include "rng.hpp"
#include "sweep.hpp"

using namespace fp8emu;

namespace {

// A rows x cols matrix (logical, row-major here) whose rows span 2^-20 .. 2^20, with a
// zero block and negative values.
std::vector<float> test_matrix(std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<float> m(std::size_t(rows * cols));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) {
      const double mag = std::ldexp(1.0, int((r * 7 + c / 16) % 41) - 20);
      m[std::size_t(r * cols + c)] = (r < 2 && c < 32) ? 0.0f : float(u(g) * mag);
    }
  return m;
}

// Transformer Engine's scale in float32: (fmax / amax) / 2^margin, 1 for amax 0.
float te_scale(double fmax, double amax, int margin) {
  if (amax == 0) return 1.0f;
  float s = float(fmax) / float(amax);
  for (int i = 0; i < margin; ++i) s = s / 2.0f;
  return s;
}

// OCP MX v1.0: floor(log2 amax) - emax, clamped; -127 for amax 0.
int ocp_exponent(double amax, double fmax) {
  if (amax == 0) return -127;
  int ea, ef;
  std::frexp(amax, &ea);
  std::frexp(fmax, &ef);
  return std::clamp((ea - 1) - (ef - 1), -127, 127);
}

// NVIDIA: the smallest e with amax <= fmax 2^e, clamped; -127 for amax 0.
int ceil_exponent(double amax, double fmax) {
  if (amax == 0) return -127;
  int e = -140;
  while (std::ldexp(fmax, e) < amax) ++e;
  return std::clamp(e, -127, 127);
}

struct Case {
  const char* name;
  Format format;
  MatrixScaling scaling;
  Operand operand = Operand::a;
  std::int64_t br = 0, bc = 0;
  float scale = 0.0f;
  int margin = 0;
  MxRule mx = MxRule::floor;
};

std::uint32_t code_at(const QuantizedMatrix& q, std::int64_t i) {
  switch (code_bytes(q.format)) {
    case 1:
      return reinterpret_cast<const std::uint8_t*>(q.storage.data())[i];
    case 2:
      return reinterpret_cast<const std::uint16_t*>(q.storage.data())[i];
    default:
      return q.storage[std::size_t(i)];
  }
}

}  // namespace

TEST_CASE("amax: max |x| at every thread count, NaN wins", "[quantize_matrix]") {
  Sweep sweep("amax sizes x threads");
  std::uint64_t expected = 0;
  for (const std::size_t n : {0u, 1u, 7u, 100u, 5000u, 70000u}) {
    std::vector<float> x = test_matrix(1, std::int64_t(n), n);
    if (n > 3) x[n / 2] = -std::ldexp(1.0f, 30);
    double want = 0;
    for (const float v : x) want = std::max(want, double(std::fabs(v)));
    for (const int t : {1, 2, 4}) {
      Execution e;
      e.threads = t;
      e.parallel_threshold = 16;
      e.chunk = 64;
      const float got = amax(x, e);
      sweep.add(1, got != want, {"n " + std::to_string(n) + " threads " + std::to_string(t)});
      ++expected;
      if (n > 3) {
        std::vector<float> y = x;
        y[n - 1] = std::numeric_limits<float>::quiet_NaN();
        sweep.add(1, !std::isnan(amax(y, e)), {"NaN lost, n " + std::to_string(n)});
        y[n - 1] = -std::numeric_limits<float>::infinity();
        sweep.add(1, amax(y, e) != std::numeric_limits<float>::infinity(), {"inf lost"});
        expected += 2;
      }
    }
  }
  sweep.finish(expected);
}

TEST_CASE("auto_scale: Transformer Engine's float32 scale", "[quantize_matrix]") {
  Sweep sweep("auto_scale against (fmax / amax) / 2^margin in float32");
  std::mt19937_64 g(14);
  std::uniform_real_distribution<double> u(-60.0, 60.0);
  std::int64_t above = 0;
  constexpr int kCases = 30000;
  for (int i = 0; i < kCases; ++i) {
    const float amax_f = float(std::exp2(u(g)));
    const double fmax = i % 3 == 0 ? 448.0 : i % 3 == 1 ? 57344.0 : 6.0;
    const int margin = i % 4;
    const float want = te_scale(fmax, amax_f, margin);
    const float got = auto_scale(fmax, amax_f, margin);
    // amax s may exceed fmax, by at most half an ulp of s.
    const bool over =
        double(amax_f) * double(got) > fmax * (1 + std::ldexp(1.0, -24)) / std::ldexp(1.0, margin);
    above += double(amax_f) * double(got) > fmax / std::ldexp(1.0, margin);
    sweep.add(1, got != want || over,
              {"amax " + std::to_string(amax_f) + " fmax " + std::to_string(fmax) + ": expected " +
               std::to_string(want) + ", got " + std::to_string(got)});
  }
  sweep.finish(kCases);
  CHECK(above > 0);  // the rule is not "the largest s with amax s <= fmax"
  CHECK(auto_scale(448, 0) == 1.0f);
  CHECK(auto_scale(448, std::numeric_limits<double>::infinity()) == 1.0f);
  CHECK(auto_scale(448, std::numeric_limits<double>::quiet_NaN()) == 1.0f);
  CHECK(auto_scale(448, 1e-300) == 1.0f);  // the scale would overflow float
  CHECK(auto_scale(448, 3, 0, true) == 128.0f);
  CHECK(auto_scale(448, 1, 1) == 224.0f);
  CHECK(mx_exponent(formats::e4m3fn{}, 511, MxRule::floor) == 0);
  CHECK(mx_exponent(formats::e4m3fn{}, 511, MxRule::ceil) == 1);
  CHECK(mx_exponent(formats::e4m3fn{}, std::numeric_limits<double>::infinity()) == 127);
  CHECK(mx_rule_name(MxRule::ceil) == "ceil");
  CHECK(matrix_scaling_name(MatrixScaling::nvfp4) == "nvfp4");
}

TEST_CASE("mx_exponent: floor from frexp, ceil by search", "[quantize_matrix]") {
  // Floor: the exponent of amax less that of fmax (OCP MX v1.0, 6.3), from frexp. Ceil:
  // the least e with fmax 2^e >= amax, by search from below. Both clamped to -127 .. 127.
  // The amax values: every 4099th positive finite float, the neighbours of fmax 2^k, and
  // double subnormals.
  std::vector<double> amax;
  for (std::uint32_t b = 1; b < 0x7F800000u; b += 4099) amax.push_back(std::bit_cast<float>(b));
  const Format fs[] = {formats::e4m3fn{}, formats::e5m2{}, formats::e2m1fn{}, formats::float16{}};
  for (const Format& f : fs)
    for (int k = -160; k <= 140; ++k) {
      const double v = std::ldexp(max_finite(f), k);
      for (double d : {std::nextafter(v, 0.0), v, std::nextafter(v, 1e300)}) amax.push_back(d);
    }
  for (double d : {1e-310, 4.9e-324, 2.2e-308}) amax.push_back(d);
  Sweep sweep("mx_exponent floor and ceil x 4 formats");
  std::uint64_t bad = 0;
  std::vector<std::string> msgs;
  for (const Format& f : fs) {
    const double fmax = max_finite(f);
    for (double a : amax) {
      int ea, ef;
      std::frexp(a, &ea);
      std::frexp(fmax, &ef);
      const int floor = std::clamp(ea - ef, -127, 127);
      int e = ea - ef - 2;  // fmax 2^e < 2^(ea - 2) < a
      const bool from_below = std::ldexp(fmax, e) < a;
      while (std::ldexp(fmax, e) < a) ++e;
      const int ceil = std::clamp(e, -127, 127);
      const int got_floor = mx_exponent(f, a, MxRule::floor), got_ceil = mx_exponent(f, a, MxRule::ceil);
      if ((!from_below || got_floor != floor || got_ceil != ceil) && ++bad <= 3)
        msgs.push_back(format_name(f) + " amax " + std::to_string(a) + ": floor " + std::to_string(got_floor) +
                       " want " + std::to_string(floor) + ", ceil " + std::to_string(got_ceil) + " want " +
                       std::to_string(ceil));
    }
  }
  sweep.add(std::size(fs) * amax.size(), bad, msgs);
  sweep.finish(std::size(fs) * amax.size());
  CHECK(amax.size() == 0x7F800000u / 4099 + 1 + 4 * 301 * 3 + 3);
}

TEST_CASE("quantize_matrix: codes and scales by each scaling's definition", "[quantize_matrix]") {
  constexpr std::int64_t R = 37, C = 70;  // no block divides them
  const std::vector<float> logical = test_matrix(R, C, 3);
  const Case cases[] = {
      {"none e4m3fn", formats::e4m3fn{}, MatrixScaling::none},
      {"tensor given e5m2", formats::e5m2{}, MatrixScaling::tensor, Operand::a, 0, 0, 0.375f},
      {"tensor auto e4m3fn margin 1", formats::e4m3fn{}, MatrixScaling::tensor, Operand::a, 0, 0,
       0.0f, 1},
      {"row e4m3fn", formats::e4m3fn{}, MatrixScaling::row},
      {"column e5m2", formats::e5m2{}, MatrixScaling::column},
      {"block 3x5 e4m3fn", formats::e4m3fn{}, MatrixScaling::block, Operand::a, 3, 5},
      {"block 1x0 float16", formats::float16{}, MatrixScaling::block, Operand::a, 1, 0},
      {"mx A floor e4m3fn", formats::e4m3fn{}, MatrixScaling::mx, Operand::a},
      {"mx B ceil e5m2", formats::e5m2{}, MatrixScaling::mx, Operand::b, 0, 0, 0.0f, 0,
       MxRule::ceil},
      {"nvfp4 A", formats::e2m1fn{}, MatrixScaling::nvfp4, Operand::a},
      {"nvfp4 B", formats::e2m1fn{}, MatrixScaling::nvfp4, Operand::b},
  };
  const Rounding roundings[] = {Rounding::nearest_even, Rounding::stochastic_a};
  const Layout layouts[] = {Layout::row_major, Layout::col_major};
  Sweep sweep("quantize_matrix codes and scales");
  std::uint64_t expected = 0;
  for (const Case& k : cases)
    for (const Rounding rnd : roundings)
      for (const Layout in_layout : layouts)
        for (const Layout out_layout : layouts)
          for (const std::int64_t pad : {0, 3}) {
            // The view: the logical matrix stored in in_layout with leading dimension + pad.
            const bool irm = in_layout == Layout::row_major;
            const std::int64_t ld = (irm ? C : R) + pad;
            std::vector<float> store(std::size_t((irm ? R : C) * ld), 1e30f);
            for (std::int64_t r = 0; r < R; ++r)
              for (std::int64_t c = 0; c < C; ++c)
                store[std::size_t(irm ? r * ld + c : c * ld + r)] = logical[std::size_t(r * C + c)];
            MatrixQuantizeOptions o;
            o.scaling = k.scaling;
            o.operand = k.operand;
            o.block_rows = k.br;
            o.block_cols = k.bc;
            o.scale = k.scale;
            o.margin = k.margin;
            o.mx_rule = k.mx;
            o.out_layout = out_layout;
            o.array.convert.rounding = rnd;
            o.array.convert.stochastic_bits = 8;
            o.array.seed = 5;
            o.array.stream = 9;
            o.array.exec.parallel_threshold = 64;
            const QuantizedMatrix q =
                quantize_matrix({store.data(), R, C, in_layout, pad ? ld : 0}, k.format, o);

            // The reference: block shape, block amax, scale and code by definition.
            const double fmax = max_finite(k.format);
            std::int64_t br = k.br, bc = k.bc;
            const bool along_cols = k.operand == Operand::a;
            if (k.scaling == MatrixScaling::none || k.scaling == MatrixScaling::tensor)
              br = R, bc = C;
            if (k.scaling == MatrixScaling::row) br = 1, bc = C;
            if (k.scaling == MatrixScaling::column) br = R, bc = 1;
            if (k.scaling == MatrixScaling::mx) br = along_cols ? 1 : 32, bc = along_cols ? 32 : 1;
            if (k.scaling == MatrixScaling::nvfp4)
              br = along_cols ? 1 : 16, bc = along_cols ? 16 : 1;
            if (br == 0) br = R;
            if (bc == 0) bc = C;
            const std::int64_t gr = (R + br - 1) / br, gc = (C + bc - 1) / bc;
            std::vector<double> bamax(std::size_t(gr * gc), 0.0);
            double tamax = 0;
            for (std::int64_t r = 0; r < R; ++r)
              for (std::int64_t c = 0; c < C; ++c) {
                const double a = std::fabs(logical[std::size_t(r * C + c)]);
                double& m = bamax[std::size_t(r / br * gc + c / bc)];
                m = std::max(m, a);
                tamax = std::max(tamax, a);
              }
            const float enc = tamax > 0 ? std::min(float(448.0 * fmax) / float(tamax),
                                                   std::numeric_limits<float>::max())
                                        : 1.0f;
            std::vector<float> quant(bamax.size());
            std::int64_t bad_scales = 0;
            std::vector<std::string> msgs;
            for (std::size_t b = 0; b < bamax.size(); ++b) {
              const double a = bamax[b];
              float s = 1.0f, value = 1.0f;
              std::uint32_t code = 0;
              switch (k.scaling) {
                case MatrixScaling::none:
                  break;
                case MatrixScaling::tensor:
                  s = k.scale != 0 ? k.scale : te_scale(fmax, a, k.margin);
                  break;
                case MatrixScaling::mx: {
                  const int e =
                      k.mx == MxRule::floor ? ocp_exponent(a, fmax) : ceil_exponent(a, fmax);
                  s = std::ldexp(1.0f, -e);
                  code = std::uint32_t(e + 127);
                  break;
                }
                case MatrixScaling::nvfp4: {
                  const float v = std::min(float(a) * (enc * (1.0f / float(fmax))),
                                           std::numeric_limits<float>::max());
                  code = encode(formats::e4m3fn{}, v);
                  const float d = float(decode(formats::e4m3fn{}, code));
                  s = d == 0
                          ? 1.0f
                          : std::min(1.0f / (d * (1.0f / enc)), std::numeric_limits<float>::max());
                  break;
                }
                default:
                  s = te_scale(fmax, a, 0);
                  value = 1.0f / s;
                  break;
              }
              quant[b] = s;
              // The scales gemm gets, row-major over the logical grid.
              bool ok = true;
              if (k.scaling == MatrixScaling::mx || k.scaling == MatrixScaling::nvfp4)
                ok = q.code_scales.size() == bamax.size() && q.code_scales[b] == code;
              else if (k.scaling != MatrixScaling::none && k.scaling != MatrixScaling::tensor)
                ok = q.float_scales.size() == bamax.size() && q.float_scales[b] == value;
              if (!ok) {
                ++bad_scales;
                if (msgs.size() < 4)
                  msgs.push_back(std::string(k.name) + ": scale of block " + std::to_string(b));
              }
            }
            const Scales sc = q.scales();
            const float want_tensor = k.scaling == MatrixScaling::nvfp4    ? 1.0f / enc
                                      : k.scaling == MatrixScaling::tensor ? 1.0f / quant[0]
                                                                           : 1.0f;
            bad_scales += sc.tensor != want_tensor;
            bad_scales += q.amax != tamax;
            if (k.scaling != MatrixScaling::none && k.scaling != MatrixScaling::tensor) {
              bad_scales += sc.data == nullptr;
              bad_scales +=
                  sc.encoding != (k.scaling == MatrixScaling::mx      ? ScaleEncoding::e8m0
                                  : k.scaling == MatrixScaling::nvfp4 ? ScaleEncoding::e4m3
                                                                      : ScaleEncoding::float32);
            }
            sweep.add(0, bad_scales, msgs);

            // Every code: encode_scaled with its block's scale and the random bits of its
            // index in out_layout order.
            const bool orm = out_layout == Layout::row_major;
            std::int64_t bad = 0;
            msgs.clear();
            for (std::int64_t r = 0; r < R; ++r)
              for (std::int64_t c = 0; c < C; ++c) {
                const std::int64_t i = orm ? r * C + c : c * R + r;
                const float x = logical[std::size_t(r * C + c)];
                const std::uint32_t bits =
                    is_stochastic(rnd) ? random_bits(random_key(5, 9), std::uint64_t(i)) : 0;
                const std::uint32_t want =
                    encode_scaled(k.format, double(x), quant[std::size_t(r / br * gc + c / bc)],
                                  o.array.convert, bits);
                const std::uint32_t got = code_at(q, i);
                if (want != got) {
                  ++bad;
                  if (msgs.size() < 4)
                    msgs.push_back(std::string(k.name) + " (" + std::to_string(r) + ", " +
                                   std::to_string(c) + "): expected " +
                                   hex_code(want, total_bits(k.format)) + ", got " +
                                   hex_code(got, total_bits(k.format)));
                }
              }
            sweep.add(std::uint64_t(R * C), std::uint64_t(bad), msgs);
            expected += std::uint64_t(R * C);
            CHECK(q.matrix().layout == out_layout);
          }
  sweep.finish(expected);
  CHECK(expected == 11 * 2 * 2 * 2 * 2 * std::uint64_t(R * C));
}

TEST_CASE("quantize_matrix: the result feeds gemm directly", "[quantize_matrix]") {
  // A (M x K) with MX scales and B (K x N) with 32 x 4 block scales: gemm with the
  // result's matrix() and scales() gives the float32 sum of the dequantized products.
  constexpr std::int64_t M = 5, K = 96, N = 7;
  const std::vector<float> a = test_matrix(M, K, 1), b = test_matrix(K, N, 2);
  MatrixQuantizeOptions oa, ob;
  oa.scaling = MatrixScaling::mx;
  ob.scaling = MatrixScaling::block;
  ob.operand = Operand::b;
  ob.block_rows = 32;
  ob.block_cols = 4;
  ob.out_layout = Layout::col_major;
  const QuantizedMatrix qa = quantize_matrix({a.data(), M, K}, formats::e4m3fn{}, oa);
  const QuantizedMatrix qb = quantize_matrix({b.data(), K, N}, formats::e4m3fn{}, ob);
  GemmOptions g;
  g.a_scales = qa.scales();
  g.b_scales = qb.scales();
  std::vector<float> c(std::size_t(M * N));
  gemm(qa.matrix(), qb.matrix(), c.data(), N, g);
  std::int64_t far = 0;
  for (std::int64_t i = 0; i < M; ++i)
    for (std::int64_t j = 0; j < N; ++j) {
      double want = 0, mag = 0;
      for (std::int64_t k = 0; k < K; ++k) {
        const double va = decode(formats::e4m3fn{}, code_at(qa, i * K + k)) /
                          double(qa.quant_scales[std::size_t(i * (K / 32) + k / 32)]);
        const double vb = decode(formats::e4m3fn{}, code_at(qb, j * K + k)) /
                          double(qb.quant_scales[std::size_t(j / 4 * (K / 32) + k / 32)]);
        want += va * vb;
        mag += std::fabs(va * vb);
      }
      far += std::fabs(double(c[std::size_t(i * N + j)]) - want) > 1e-5 * mag;
    }
  CHECK(far == 0);
}

TEST_CASE("quantize_matrix: bad input throws", "[quantize_matrix]") {
  const std::vector<float> x(12, 1.0f);
  MatrixQuantizeOptions o;
  o.scaling = MatrixScaling::tensor;
  o.scale = -1.0f;
  CHECK_THROWS_AS(quantize_matrix({x.data(), 3, 4}, formats::e4m3fn{}, o), std::invalid_argument);
  o.scale = std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(quantize_matrix({x.data(), 3, 4}, formats::e4m3fn{}, o), std::invalid_argument);
  o.scale = 0;
  CHECK_THROWS_AS(quantize_matrix({x.data(), 3, 4, Layout::row_major, 3}, formats::e4m3fn{}, o),
                  std::invalid_argument);
  CHECK_THROWS_AS(quantize_matrix({nullptr, 3, 4}, formats::e4m3fn{}, o), std::invalid_argument);
  std::vector<float> y = x;
  y[5] = std::numeric_limits<float>::quiet_NaN();
  o.scaling = MatrixScaling::nvfp4;
  CHECK_THROWS_AS(quantize_matrix({y.data(), 3, 4}, formats::e2m1fn{}, o), std::invalid_argument);
  // MX and block scales of a NaN block are defined: exponent -127, scale 1.
  o.scaling = MatrixScaling::block;
  o.block_rows = 1;
  o.block_cols = 4;
  const QuantizedMatrix q = quantize_matrix({y.data(), 3, 4}, formats::e4m3fn{}, o);
  CHECK(std::isnan(q.amax));
  CHECK(q.float_scales[1] == 1.0f);
  CHECK(q.float_scales[0] == 1.0f / 448.0f);
}

TEST_CASE("quantize_operand: the scale spellings of fp8emu gemm, each by its definition",
          "[quantize_matrix]") {
  // 1. The spellings.
  const OperandScale none = parse_operand_scale("", Operand::a, "--a-scale");
  CHECK(none.scaling == MatrixScaling::none);
  const OperandScale x = parse_operand_scale("0x1p-3", Operand::a, "--a-scale");
  CHECK((x.scaling == MatrixScaling::tensor && x.scale == 0.125f));
  const OperandScale au = parse_operand_scale("auto", Operand::b, "--b-scale");
  CHECK((au.scaling == MatrixScaling::tensor && au.scale == 0.0f));
  const OperandScale bl = parse_operand_scale("block:3x0x10", Operand::a, "--a-scale");
  CHECK((bl.scaling == MatrixScaling::block && bl.block_rows == 3 && bl.block_cols == 16));
  const OperandScale mxa = parse_operand_scale("mx", Operand::a, "s"), mxb = parse_operand_scale("mx", Operand::b, "s");
  CHECK((mxa.block_rows == 1 && mxa.block_cols == 32 && mxb.block_rows == 32 && mxb.block_cols == 1));
  const OperandScale nv = parse_operand_scale("nvfp4", Operand::b, "s");
  CHECK((nv.scaling == MatrixScaling::nvfp4 && nv.block_rows == 16 && nv.block_cols == 1));
  CHECK(default_operand_format(nv) == Format(formats::e2m1fn{}));
  CHECK(default_operand_format(mxa) == Format(formats::e4m3fn{}));
  const std::string rule = "expected a number > 0 that is finite as a float32, such as 2, 0.125 or 0x1p-7, or auto, F, block:RxC, mx, nvfp4";
  for (const std::string bad : {"mxfp8", "0", "-1", "1e39", "1e-46", "nan", "inf", "2x"})
    CHECK_THROWS_WITH(parse_operand_scale(bad, Operand::a, "--a-scale", ", F"),
                      "invalid --a-scale '" + bad + "': " + rule);
  CHECK_THROWS_WITH(parse_operand_scale("block:0x4", Operand::a, "w"), "invalid w block: '0' (expected 1..1073741824)");
  CHECK_THROWS_WITH(parse_operand_scale("block:1x", Operand::a, "w"), "invalid w block: '' (expected 1..1073741824)");
  CHECK_THROWS_WITH(parse_operand_scale("block:", Operand::a, "w"), "invalid w block: '' (expected RxC, e.g. 1x128)");

  // 2. None, tensor and auto: element i is encode_scaled(x[i], q) from its own type (float64
  //    and float16 values too), q = 1 / X or auto_scale of the amax.
  const std::int64_t rows = 7, cols = 45;
  const std::vector<float> v = test_matrix(rows, cols, 5);
  std::vector<double> d(v.size());
  std::vector<std::uint16_t> h(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    d[i] = double(v[i]) * (1 + 0x1p-40);  // not a float
    h[i] = std::uint16_t(encode(formats::float16{}, v[i] * 0x1p-4f));
  }
  int checked = 0;
  for (const Format f : {Format(formats::e4m3fn{}), Format(formats::e5m2{}), Format(formats::float16{})}) {
    for (const OperandScale& s : {none, x, au}) {
      for (const FloatOperand::Type t : {FloatOperand::Type::float32, FloatOperand::Type::float64, FloatOperand::Type::float16}) {
        const void* p = t == FloatOperand::Type::float32   ? static_cast<const void*>(v.data())
                        : t == FloatOperand::Type::float64 ? static_cast<const void*>(d.data())
                                                           : static_cast<const void*>(h.data());
        const auto value = [&](std::size_t i) {
          return t == FloatOperand::Type::float32   ? double(v[i])
                 : t == FloatOperand::Type::float64 ? d[i]
                                                    : decode(formats::float16{}, h[i]);
        };
        QuantizedMatrix q;
        quantize_operand({p, t, rows, cols}, f, s, "--a-scale", q);
        double amax = 0;
        for (std::size_t i = 0; i < v.size(); ++i) amax = std::max(amax, std::fabs(value(i)));
        const float qs = s.scaling == MatrixScaling::none ? 1.0f
                         : s.scale != 0                   ? 1.0f / s.scale
                                                          : auto_scale(max_finite(f), amax);
        CHECK(q.amax == amax);
        CHECK(q.tensor == (s.scale != 0 ? s.scale : 1.0f / qs));
        CHECK(q.scales().data == nullptr);
        REQUIRE((q.rows == rows && q.cols == cols && q.layout == Layout::row_major));
        std::size_t bad = 0;
        for (std::size_t i = 0; i < v.size(); ++i) {
          const std::uint32_t want = encode_scaled(f, value(i), qs);
          const std::uint32_t got = code_bytes(f) == 1 ? reinterpret_cast<const std::uint8_t*>(q.storage.data())[i]
                                                       : reinterpret_cast<const std::uint16_t*>(q.storage.data())[i];
          bad += got != want;
        }
        CHECK(bad == 0);
        ++checked;
      }
    }
  }
  CHECK(checked == 27);

  // 3. Block scales: quantize_matrix's, of float32 values (float16 widened exactly).
  std::vector<float> wide(h.size());
  for (std::size_t i = 0; i < h.size(); ++i) wide[i] = float(decode(formats::float16{}, h[i]));
  for (const OperandScale& s : {bl, mxa, nv}) {
    const Format f = default_operand_format(s);
    QuantizedMatrix q;
    quantize_operand({h.data(), FloatOperand::Type::float16, rows, cols}, f, s, "w", q);
    MatrixQuantizeOptions o;
    o.scaling = s.scaling;
    o.block_rows = s.block_rows;
    o.block_cols = s.block_cols;
    const QuantizedMatrix want = quantize_matrix({wide.data(), rows, cols}, f, o);
    CHECK((q.storage == want.storage && q.float_scales == want.float_scales && q.code_scales == want.code_scales &&
           q.tensor == want.tensor && q.scale_block_rows == s.block_rows && q.scale_block_cols == s.block_cols));
  }

  // 4. Bad input, the message naming the spec.
  QuantizedMatrix q;
  CHECK_THROWS_WITH(quantize_operand({d.data(), FloatOperand::Type::float64, rows, cols}, formats::e4m3fn{}, mxa, "--a-scale", q),
                    "--a-scale mx quantizes float32 or float16 values; the input holds float64");
  std::vector<float> nan = v;
  nan[std::size_t(3 * cols + 4)] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(quantize_operand({nan.data(), FloatOperand::Type::float32, rows, cols}, formats::e4m3fn{}, bl, "--a-scale", q),
                    "--a-scale block:3x0x10: element (3, 4) is nan; block scales need finite inputs");
  const OperandScale tiny = parse_operand_scale("1e-40", Operand::a, "--a-scale");
  CHECK_THROWS_WITH(quantize_operand({v.data(), FloatOperand::Type::float32, rows, cols}, formats::e4m3fn{}, tiny, "--a-scale", q),
                    "--a-scale: 1/scale is not a finite float");
  // auto of an input with NaN: scale 1, the amax says so.
  quantize_operand({nan.data(), FloatOperand::Type::float32, rows, cols}, formats::e4m3fn{}, au, "--a-scale", q);
  CHECK((std::isnan(q.amax) && q.tensor == 1.0f));
}
