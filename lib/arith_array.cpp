// fp8emu: elementwise arithmetic on arrays of codes (arith_array.hpp): the argument
// checks, the broadcast layout, and the threaded loop over the scalar operations of
// arith.hpp.
#include "fp8emu/arith_array.hpp"

#include <omp.h>

#include <algorithm>
#include <bit>
#include <stdexcept>
#include <string>

#include "fp8emu/arith.hpp"
#include "fp8emu/explain.hpp"

namespace fp8emu {
namespace {

std::string shape_text(std::span<const std::size_t> shape) {
  if (shape.empty()) return "()";
  std::string s;
  for (std::size_t d = 0; d < shape.size(); ++d) s += (d ? "x" : "") + std::to_string(shape[d]);
  return s;
}

// The number of elements of `shape`; throws when it does not fit in size_t.
std::size_t element_count(std::span<const std::size_t> shape) {
  std::size_t n = 1;
  for (std::size_t d : shape)
    if (__builtin_mul_overflow(n, d, &n))
      throw std::invalid_argument("the shape " + shape_text(shape) + " has too many elements");
  return n;
}

constexpr char kOperandName[3] = {'a', 'b', 'c'};

// The strides of operand k over `shape`, checked: its own, or the C-order ones.
template <class C>
std::vector<std::size_t> checked_strides(const CodeOperand<C>& x, int k,
                                         std::span<const std::size_t> shape, std::size_t n) {
  const std::string name = std::string("operand ") + kOperandName[k];
  if (x.strides.empty()) {
    if (x.codes.size() != n)
      throw std::invalid_argument(name + " has " + std::to_string(x.codes.size()) +
                                  " codes but the result " + shape_text(shape) + " has " +
                                  std::to_string(n) + " elements (and no strides are given)");
    return broadcast_strides(shape, shape);
  }
  if (x.strides.size() != shape.size())
    throw std::invalid_argument(name + " has " + std::to_string(x.strides.size()) +
                                " strides for a result of " + std::to_string(shape.size()) +
                                " dimensions");
  if (n == 0) return x.strides;
  // The last element it reads must lie in its span.
  std::size_t last = 0;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    std::size_t step = 0;
    if (__builtin_mul_overflow(shape[d] - 1, x.strides[d], &step) ||
        __builtin_add_overflow(last, step, &last))
      last = ~std::size_t{0};
  }
  if (last >= x.codes.size())
    throw std::invalid_argument(name + ": its strides reach element " +
                                (last == ~std::size_t{0} ? std::string("beyond size_t")
                                                         : std::to_string(last)) +
                                " of its " + std::to_string(x.codes.size()) + " codes");
  return x.strides;
}

// Throws std::out_of_range for the first code of operand k wider than `f`.
template <class C>
void check_codes(const Format& f, std::span<const C> codes, int k) {
  const int bits = total_bits(f);
  if (bits >= int(8 * sizeof(C))) return;
  const std::uint32_t limit = std::uint32_t{1} << bits;
  for (std::size_t i = 0; i < codes.size(); ++i)
    if (codes[i] >= limit)
      throw std::out_of_range("the code " + hex_code(codes[i], std::bit_width(std::uint32_t(codes[i]))) +
                              " at index " + std::to_string(i) + " of operand " +
                              kOperandName[k] + " does not fit in the " + std::to_string(bits) +
                              " bits of " + format_name(f));
}

// The scalar operation `op` on the codes of element i (x[k] is operand k's code).
template <ArithOp op>
std::uint32_t apply(const Format& f, const std::uint32_t* x, const ConvertOptions& c,
                    std::uint32_t r) {
  if constexpr (op == ArithOp::add) return add(f, x[0], x[1], c, r);
  if constexpr (op == ArithOp::sub) return sub(f, x[0], x[1], c, r);
  if constexpr (op == ArithOp::mul) return mul(f, x[0], x[1], c, r);
  if constexpr (op == ArithOp::div) return div(f, x[0], x[1], c, r);
  if constexpr (op == ArithOp::fma) return fma(f, x[0], x[1], x[2], c, r);
  if constexpr (op == ArithOp::sqrt) return sqrt(f, x[0], c, r);
}

template <class C>
void arith_impl(ArithOp op, const Format& f, std::span<const std::size_t> shape,
                std::span<const CodeOperand<C>> operands, std::span<C> out,
                const ArrayOptions& o) {
  // 1. Arguments: the format, the options, the sizes and layouts; then every code.
  if (auto err = check(f)) throw std::invalid_argument("invalid format: " + *err);
  if (total_bits(f) > int(8 * sizeof(C)))
    throw std::invalid_argument("codes of " + format_name(f) + " need " +
                                std::to_string(total_bits(f)) + " bits; the code arrays have " +
                                std::to_string(8 * sizeof(C)));
  if (o.scale != 1.0f)
    throw std::invalid_argument("arithmetic on codes takes no scale (ArrayOptions::scale must be 1)");
  if (o.exec.chunk == 0) throw std::invalid_argument("the chunk size must be at least 1");
  validate(o.convert);
  const int count = operand_count(op);
  if (int(operands.size()) != count)
    throw std::invalid_argument(std::string(to_string(op)) + " takes " + std::to_string(count) +
                                " operands, got " + std::to_string(operands.size()));
  const std::size_t n = element_count(shape);
  if (out.size() != n)
    throw std::invalid_argument("the output has " + std::to_string(out.size()) +
                                " codes but the result " + shape_text(shape) + " has " +
                                std::to_string(n) + " elements");
  std::vector<std::size_t> strides[3];
  const C* data[3] = {nullptr, nullptr, nullptr};
  for (int k = 0; k < count; ++k) {
    strides[k] = checked_strides(operands[std::size_t(k)], k, shape, n);
    data[k] = operands[std::size_t(k)].codes.data();
  }
  for (int k = 0; k < count; ++k) check_codes(f, operands[std::size_t(k)].codes, k);
  if (n == 0) return;

  // 2. Chunks of the result in C order, each on one thread: the multi-index and the
  //    operands' offsets of its first element, then one step of an odometer per element.
  const std::size_t nd = shape.size();
  const bool sr = is_stochastic(o.convert.rounding);
  const RandomKey key = random_key(o.seed, o.stream);
  with_option<ArithOp>(op, [&](auto op_constant) {
    constexpr ArithOp kOp = decltype(op_constant)::value;
    const auto range = [&](std::size_t b, std::size_t e) {
      std::vector<std::size_t> idx(nd, 0);
      std::size_t off[3] = {0, 0, 0};
      for (std::size_t d = nd, rest = b; d-- > 0;) {
        idx[d] = rest % shape[d];
        rest /= shape[d];
        for (int k = 0; k < count; ++k) off[k] += idx[d] * strides[k][d];
      }
      std::uint32_t x[3] = {0, 0, 0};
      for (std::size_t i = b; i < e; ++i) {
        for (int k = 0; k < count; ++k) x[k] = data[k][off[k]];
        const std::uint32_t r = sr ? random_bits(key, o.first_index + i) : 0;
        out[i] = C(apply<kOp>(f, x, o.convert, r));
        for (std::size_t d = nd; d-- > 0;) {
          for (int k = 0; k < count; ++k) off[k] += strides[k][d];
          if (++idx[d] < shape[d]) break;
          for (int k = 0; k < count; ++k) off[k] -= strides[k][d] * shape[d];
          idx[d] = 0;
        }
      }
    };
    const std::size_t chunk = o.exec.chunk;
    const std::size_t chunks = n / chunk + (n % chunk != 0);
    int threads = o.exec.threads > 0 ? o.exec.threads : omp_get_max_threads();
    if (n < o.exec.parallel_threshold) threads = 1;
    if (threads <= 1 || chunks <= 1) {
      range(0, n);
      return;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (std::ptrdiff_t c = 0; c < std::ptrdiff_t(chunks); ++c) {
      const std::size_t b = std::size_t(c) * chunk;
      range(b, std::min(n, b + chunk));
    }
  });
}

}  // namespace

std::vector<std::size_t> broadcast_shape(std::span<const std::vector<std::size_t>> shapes) {
  std::size_t nd = 0;
  for (const auto& s : shapes) nd = std::max(nd, s.size());
  std::vector<std::size_t> r(nd, 1);
  for (std::size_t k = 0; k < shapes.size(); ++k) {
    const auto& s = shapes[k];
    for (std::size_t j = 0; j < s.size(); ++j) {
      std::size_t& d = r[nd - s.size() + j];
      if (s[j] == d || s[j] == 1) continue;
      if (d != 1) {
        std::string all;
        for (std::size_t q = 0; q < shapes.size(); ++q)
          all += (q ? (q + 1 == shapes.size() ? " and " : ", ") : "") + shape_text(shapes[q]);
        throw std::invalid_argument("shapes " + all + " do not broadcast");
      }
      d = s[j];
    }
  }
  return r;
}

std::vector<std::size_t> broadcast_strides(std::span<const std::size_t> shape,
                                           std::span<const std::size_t> result) {
  if (shape.size() > result.size())
    throw std::invalid_argument("shape " + shape_text(shape) + " has more dimensions than " +
                                shape_text(result));
  std::vector<std::size_t> st(result.size(), 0);
  std::size_t step = 1;
  for (std::size_t j = shape.size(); j-- > 0;) {
    const std::size_t d = result.size() - shape.size() + j;
    if (shape[j] == result[d]) {
      st[d] = result[d] == 1 ? 0 : step;
    } else if (shape[j] != 1) {
      throw std::invalid_argument("shape " + shape_text(shape) + " does not broadcast to " +
                                  shape_text(result));
    }
    step *= shape[j];
  }
  return st;
}

void arith(ArithOp op, const Format& f, std::span<const std::size_t> shape,
           std::span<const CodeOperand<std::uint8_t>> operands, std::span<std::uint8_t> out,
           const ArrayOptions& o) {
  arith_impl(op, f, shape, operands, out, o);
}
void arith(ArithOp op, const Format& f, std::span<const std::size_t> shape,
           std::span<const CodeOperand<std::uint16_t>> operands, std::span<std::uint16_t> out,
           const ArrayOptions& o) {
  arith_impl(op, f, shape, operands, out, o);
}
void arith(ArithOp op, const Format& f, std::span<const std::size_t> shape,
           std::span<const CodeOperand<std::uint32_t>> operands, std::span<std::uint32_t> out,
           const ArrayOptions& o) {
  arith_impl(op, f, shape, operands, out, o);
}

}  // namespace fp8emu
