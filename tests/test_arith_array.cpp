// The elementwise arithmetic on code arrays (arith_array.hpp) against the scalar
// operations of arith.hpp, element for element: every operation, uint8 / uint16 / uint32
// codes, deterministic and stochastic rounding, one and two threads, broadcast and strided
// operands; the broadcast helpers; and the checks of bad arguments.
#include <algorithm>
#include <string>
#include <vector>

#include "fp8emu/arith.hpp"
#include "fp8emu/arith_array.hpp"
#include "rng.hpp"
#include "sweep.hpp"

using namespace fp8emu;

namespace {

std::uint32_t scalar(ArithOp op, const Format& f, std::uint32_t a, std::uint32_t b,
                     std::uint32_t c, const ConvertOptions& o, std::uint32_t r) {
  switch (op) {
    case ArithOp::add: return add(f, a, b, o, r);
    case ArithOp::sub: return sub(f, a, b, o, r);
    case ArithOp::mul: return mul(f, a, b, o, r);
    case ArithOp::div: return div(f, a, b, o, r);
    case ArithOp::fma: return fma(f, a, b, c, o, r);
    case ArithOp::sqrt: return sqrt(f, a, o, r);
  }
  return 0;
}

// The random bits element i of a call under `o` reads (0 in a deterministic mode).
std::uint32_t bits_of(const ArrayOptions& o, std::uint64_t i) {
  return is_stochastic(o.convert.rounding) ? random_bits(random_key(o.seed, o.stream), o.first_index + i)
                                           : 0;
}

// Operands of n elements: every pair (or code) of an 8-bit format, random codes otherwise.
template <class C>
std::vector<std::vector<C>> operands_for(const Format& f, ArithOp op, std::size_t n) {
  std::vector<std::vector<C>> x(3, std::vector<C>(n));
  const int bits = total_bits(f);
  SplitMix64 rng(std::uint64_t(op) + 101);
  const std::uint64_t mask = bits == 64 ? ~0ull : (1ull << bits) - 1;
  for (std::size_t i = 0; i < n; ++i) {
    for (auto& v : x) v[i] = C(rng.next() & mask);
    if (bits == 8 && op != ArithOp::fma) {  // exhaustive: n = 2^16 pairs, or 2^8 codes
      x[0][i] = C(op == ArithOp::sqrt ? i : i >> 8);
      x[1][i] = C(i & 0xFF);
    }
  }
  return x;
}

template <class C>
void check_against_scalar(const Format& f, std::size_t n_binary, Sweep& sw, std::uint64_t& expect) {
  for (const auto& entry : enum_names<ArithOp>()) {
    const ArithOp op = entry.value;
    const std::size_t n = total_bits(f) == 8 && op == ArithOp::sqrt ? 256 : n_binary;
    const auto x = operands_for<C>(f, op, n);
    std::vector<CodeOperand<C>> ops;
    for (int k = 0; k < entry.operands; ++k) ops.push_back({x[std::size_t(k)], {}});
    const std::vector<std::size_t> shape = {n};
    for (const ConvertOptions& c :
         {ConvertOptions{}, ConvertOptions{.rounding = Rounding::stochastic_a, .stochastic_bits = 8},
          ConvertOptions{.rounding = Rounding::toward_negative, .saturation = Saturation::none,
                         .flush_inputs = true, .flush_outputs = true}}) {
      std::vector<C> y1(n), y2(n);
      ArrayOptions o{.convert = c, .seed = 9, .stream = 4, .first_index = 1000};
      o.exec = {.threads = 1};
      arith(op, f, shape, std::span<const CodeOperand<C>>(ops), std::span<C>(y1), o);
      o.exec = {.threads = 2, .parallel_threshold = 0, .chunk = 257};
      arith(op, f, shape, std::span<const CodeOperand<C>>(ops), std::span<C>(y2), o);
      std::uint64_t bad = 0;
      std::vector<std::string> msgs;
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint32_t want = scalar(op, f, x[0][i], x[1][i], x[2][i], c, bits_of(o, i));
        if (y1[i] != want || y2[i] != want) {
          ++bad;
          if (msgs.size() < 4)
            msgs.push_back(format_name(f) + " " + std::string(entry.name) + " " +
                           std::string(to_string(c.rounding)) + " element " + std::to_string(i) +
                           ": expected " + hex_code(want, total_bits(f)) + ", got " +
                           hex_code(y1[i], total_bits(f)) + " (1 thread), " +
                           hex_code(y2[i], total_bits(f)) + " (2 threads)");
        }
      }
      sw.add(n, bad, msgs);
      expect += n;
    }
  }
}

}  // namespace

TEST_CASE("arith arrays: every operation equals the scalar one, 1 and 2 threads", "[arith][arith-array]") {
  Sweep sw("arith arrays against scalar operations");
  std::uint64_t expect = 0;
  check_against_scalar<std::uint8_t>(parse_format("e4m3fn"), 1 << 16, sw, expect);
  check_against_scalar<std::uint8_t>(parse_format("e5m2"), 1 << 16, sw, expect);
  check_against_scalar<std::uint16_t>(parse_format("bfloat16"), 5000, sw, expect);
  check_against_scalar<std::uint32_t>(parse_format("float32"), 5000, sw, expect);
  // Per 8-bit format: 5 ops x 2^16 + 2^8 (sqrt) elements, in 3 modes; 6 x 5000 otherwise.
  CHECK(expect == 2 * 3 * (5 * 65536 + 256) + 2 * 3 * 6 * 5000);
  sw.finish(expect);
}

TEST_CASE("arith arrays: broadcast and strided operands", "[arith][arith-array]") {
  const Format f = parse_format("e4m3fn");
  SplitMix64 rng(5);
  auto codes = [&](std::size_t n) {
    std::vector<std::uint8_t> v(n);
    for (auto& c : v) c = std::uint8_t(rng.next());
    return v;
  };
  // fma over a result of 3x4x5 from a (3x1x5), b (4x1) and c (a scalar).
  const std::vector<std::size_t> shape = {3, 4, 5};
  const std::vector<std::size_t> sa = {3, 1, 5}, sb = {4, 1}, sc = {};
  CHECK(broadcast_shape(std::vector<std::vector<std::size_t>>{sa, sb, sc}) == shape);
  const auto a = codes(15), b = codes(4), c = codes(1);
  const std::vector<CodeOperand<std::uint8_t>> ops = {
      {a, broadcast_strides(sa, shape)}, {b, broadcast_strides(sb, shape)}, {c, broadcast_strides(sc, shape)}};
  CHECK(ops[0].strides == std::vector<std::size_t>{5, 0, 1});
  CHECK(ops[1].strides == std::vector<std::size_t>{0, 1, 0});
  CHECK(ops[2].strides == std::vector<std::size_t>{0, 0, 0});
  std::uint64_t cases = 0, bad = 0;
  for (int threads : {1, 2}) {
    ArrayOptions o{.convert = {.rounding = Rounding::stochastic_c, .stochastic_bits = 5}, .seed = 3};
    o.exec = {.threads = threads, .parallel_threshold = 0, .chunk = 7};
    std::vector<std::uint8_t> y(60);
    arith(ArithOp::fma, f, shape, std::span<const CodeOperand<std::uint8_t>>(ops), std::span(y), o);
    for (std::size_t i = 0; i < 3; ++i)
      for (std::size_t j = 0; j < 4; ++j)
        for (std::size_t k = 0; k < 5; ++k) {
          const std::size_t e = (i * 4 + j) * 5 + k;
          bad += y[e] != fma(f, a[i * 5 + k], b[j], c[0], o.convert, bits_of(o, e));
          ++cases;
        }
  }
  CHECK(cases == 120);
  CHECK(bad == 0);
  // Column 0 of a 6x3 matrix (stride 3) divided by column 2 of it, in place.
  const auto m = codes(18);
  const std::vector<std::size_t> col = {6};
  const std::vector<CodeOperand<std::uint8_t>> strided = {{m, {3}}, {std::span(m).subspan(2), {3}}};
  std::vector<std::uint8_t> z(6);
  arith(ArithOp::div, f, col, std::span<const CodeOperand<std::uint8_t>>(strided), std::span(z));
  int checked = 0;
  for (std::size_t r = 0; r < 6; ++r, ++checked) CHECK(z[r] == div(f, m[3 * r], m[3 * r + 2]));
  CHECK(checked == 6);
  // An empty result reads nothing; a 0-d one is one element.
  const std::vector<std::size_t> empty = {0, 3}, none = {};
  const std::vector<std::uint8_t> one = {0x38};
  const std::vector<CodeOperand<std::uint8_t>> scalars = {{one, {0, 0}}, {one, {0, 0}}};
  arith(ArithOp::add, f, empty, std::span<const CodeOperand<std::uint8_t>>(scalars), std::span(z).first(0));
  const std::vector<CodeOperand<std::uint8_t>> zero_d = {{one, {}}, {one, {}}};
  arith(ArithOp::add, f, none, std::span<const CodeOperand<std::uint8_t>>(zero_d), std::span(z).first(1));
  CHECK(z[0] == 0x40);
}

TEST_CASE("arith arrays: broadcast helpers and bad arguments", "[arith][arith-array]") {
  using Shapes = std::vector<std::vector<std::size_t>>;
  CHECK(broadcast_shape(Shapes{{2, 1}, {3}}) == std::vector<std::size_t>{2, 3});
  CHECK(broadcast_shape(Shapes{{}, {}}).empty());
  CHECK(broadcast_shape(Shapes{{0}, {1}}) == std::vector<std::size_t>{0});
  CHECK_THROWS_WITH(broadcast_shape(Shapes{{2, 3}, {4}}), "shapes 2x3 and 4 do not broadcast");
  CHECK_THROWS_WITH(broadcast_strides(std::vector<std::size_t>{3}, std::vector<std::size_t>{2, 4}),
                    "shape 3 does not broadcast to 2x4");

  const Format f = parse_format("e2m3fn");  // 6 bits in uint8 codes
  const std::vector<std::uint8_t> a = {1, 2, 3, 4}, b = {1, 2, 0x40, 4};
  const std::vector<CodeOperand<std::uint8_t>> ab = {{a, {}}, {b, {}}};
  const std::vector<std::size_t> shape = {4};
  std::vector<std::uint8_t> out(4, 0xAA);
  const auto call = [&](ArithOp op, const std::vector<CodeOperand<std::uint8_t>>& x,
                        const ArrayOptions& o = {}) {
    arith(op, f, shape, std::span<const CodeOperand<std::uint8_t>>(x), std::span(out), o);
  };
  CHECK_THROWS_AS(call(ArithOp::add, ab), std::out_of_range);
  CHECK_THROWS_WITH(call(ArithOp::add, ab),
                    "the code 0x40 at index 2 of operand b does not fit in the 6 bits of e2m3fn");
  CHECK(out == std::vector<std::uint8_t>(4, 0xAA));  // nothing written
  CHECK_THROWS_WITH(call(ArithOp::fma, ab), "fma takes 3 operands, got 2");
  const std::vector<CodeOperand<std::uint8_t>> aa = {{a, {}}, {a, {}}};
  CHECK_THROWS_WITH(call(ArithOp::add, aa, ArrayOptions{.scale = 2.0f}),
                    "arithmetic on codes takes no scale (ArrayOptions::scale must be 1)");
  CHECK_THROWS_WITH(call(ArithOp::add, aa, ArrayOptions{.convert = {.rounding = Rounding::stochastic_a}}),
                    "stochastic rounding needs 1 to 32 random bits, got 0");
  const std::vector<CodeOperand<std::uint8_t>> past = {{a, {2}}, {a, {}}};
  CHECK_THROWS_WITH(call(ArithOp::add, past), "operand a: its strides reach element 6 of its 4 codes");
  const std::vector<CodeOperand<std::uint8_t>> dims = {{a, {1, 1}}, {a, {}}};
  CHECK_THROWS_WITH(call(ArithOp::add, dims), "operand a has 2 strides for a result of 1 dimensions");
  const std::vector<CodeOperand<std::uint8_t>> small = {{std::span(a).first(3), {}}, {a, {}}};
  CHECK_THROWS_WITH(call(ArithOp::add, small),
                    "operand a has 3 codes but the result 4 has 4 elements (and no strides are given)");
  std::vector<std::uint8_t> out3(3);
  CHECK_THROWS_WITH(arith(ArithOp::add, f, shape, std::span<const CodeOperand<std::uint8_t>>(aa),
                          std::span(out3)),
                    "the output has 3 codes but the result 4 has 4 elements");
  const std::vector<CodeOperand<std::uint8_t>> wide = {{a, {}}, {a, {}}};
  CHECK_THROWS_WITH(arith(ArithOp::add, parse_format("bfloat16"), shape,
                          std::span<const CodeOperand<std::uint8_t>>(wide), std::span(out)),
                    "codes of bfloat16 need 16 bits; the code arrays have 8");
  CHECK(to_string(ArithOp::fma) == "fma");
  CHECK(parse<ArithOp>("sqrt") == ArithOp::sqrt);
  CHECK(operand_count(ArithOp::sqrt) == 1);
  CHECK_THROWS_WITH(parse<ArithOp>("pow"), "unknown operation 'pow' (one of add, sub, mul, div, fma, sqrt)");
}
