// fp8emu: elementwise arithmetic on arrays of codes (add, sub, mul, div, fma, sqrt), with
// NumPy broadcasting and threads.
//
// Element i of the result (i its index in C order) is the scalar operation of arith.hpp on
// the operands' codes laid over position i, rounded once under `o.convert`, with
//   random_bits(random_key(o.seed, o.stream), o.first_index + i)
// as its random bits in a stochastic rounding (random.hpp), as the array conversions of
// array.hpp number theirs. Each element depends only on its operands and its index, so
// results never depend on the thread count. Operands are laid over the result by strides,
// one per dimension of the result; a stride of 0 repeats an operand along a dimension, as
// NumPy broadcasting does ("Broadcasting", NumPy user guide). docs/arithmetic.md.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "fp8emu/array.hpp"
#include "fp8emu/format.hpp"
#include "fp8emu/options.hpp"

namespace fp8emu {

/// Names the elementwise operations on codes (names and operand counts: option_table<ArithOp>).
enum class ArithOp : std::uint8_t { add, sub, mul, div, fma, sqrt };

/// Describes one elementwise operation: its name, a one-line description, its operand count.
struct ArithOpEntry {
  ArithOp value;
  std::string_view name;         ///< As the command line and the Python package spell it.
  std::string_view description;  ///< One line, for help texts.
  int operands;                  ///< How many code operands it reads (a, b, c in order).
};

template <>
struct option_table<ArithOp> {
  static constexpr std::string_view what = "operation";
  static constexpr std::array<ArithOpEntry, 6> entries = {{
      {ArithOp::add, "add", "a + b", 2},
      {ArithOp::sub, "sub", "a - b", 2},
      {ArithOp::mul, "mul", "a * b", 2},
      {ArithOp::div, "div", "a / b", 2},
      {ArithOp::fma, "fma", "a * b + c, rounded once", 3},
      {ArithOp::sqrt, "sqrt", "the square root of a", 1},
  }};
};

/// Returns how many code operands `op` reads.
constexpr int operand_count(ArithOp op) { return option_entry(op).operands; }

/// Lays one operand of an elementwise call over the result: its codes, and for every
/// dimension of the result the distance in elements between neighbours along it (0
/// repeats the operand along that dimension).
template <class C>
struct CodeOperand {
  std::span<const C> codes;
  std::vector<std::size_t> strides;  ///< One per dimension of the result; empty: the
                                     ///< result's own C-order layout.
};

/// Returns the shape NumPy broadcasting gives operands of `shapes` (dimensions aligned at
/// the right; each pair equal or one of them 1). Throws std::invalid_argument "shapes 2x3
/// and 4 do not broadcast".
std::vector<std::size_t> broadcast_shape(std::span<const std::vector<std::size_t>> shapes);

/// Returns the strides that lay a C-contiguous operand of `shape` over a result of shape
/// `result` by broadcasting (0 along the dimensions it lacks or has as 1). Throws
/// std::invalid_argument when `shape` does not broadcast to `result`.
std::vector<std::size_t> broadcast_strides(std::span<const std::size_t> shape,
                                           std::span<const std::size_t> result);

/// Computes `op` elementwise over a result of `shape` (empty: one element) into `out`, in
/// C order, from operand_count(op) operands of codes of `f`. o.scale must be 1 (codes carry
/// no scale); o.exec.simd is not read (every element is the scalar operation). Throws
/// std::invalid_argument for the wrong number of operands, strides that do not match the
/// shape or reach past an operand's codes, an output of another size, a code type too
/// narrow for `f`, another scale or bad stochastic bits; std::out_of_range for a code wider
/// than `f` anywhere in an operand's span, naming the operand and the index in its span.
/// Nothing is written to `out` when it throws.
void arith(ArithOp op, const Format& f, std::span<const std::size_t> shape,
           std::span<const CodeOperand<std::uint8_t>> operands, std::span<std::uint8_t> out,
           const ArrayOptions& o = {});
void arith(ArithOp op, const Format& f, std::span<const std::size_t> shape,
           std::span<const CodeOperand<std::uint16_t>> operands, std::span<std::uint16_t> out,
           const ArrayOptions& o = {});
void arith(ArithOp op, const Format& f, std::span<const std::size_t> shape,
           std::span<const CodeOperand<std::uint32_t>> operands, std::span<std::uint32_t> out,
           const ArrayOptions& o = {});

}  // namespace fp8emu
