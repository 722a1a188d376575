// fp8emu Python bindings: bind_arith (bindings.hpp): add, sub, mul, div, fma and sqrt on
// arrays of codes, with NumPy broadcasting, through fp8emu::arith (arith_array.hpp).
//
// Operands are arrays (or anything np.asarray takes) of exactly the format's code dtype
// (fmt.code_dtype: what quantize returns and what these functions return), else
// TypeError; C-contiguous ones are read in place, others copied. The result has the
// broadcast shape, in C order; element i of it takes the random bits of index
// first_index + i. A code wider than the format is a ValueError with the library's
// message (which names the operand and the index in its C-order copy).
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <pybind11/stl.h>

#include "bindings.hpp"
#include "fp8emu/arith_array.hpp"

namespace fp8emu::python {
namespace {

constexpr const char* kOperandNames[3] = {"a", "b", "c"};

// Returns operand `h` of `fn` as a C-contiguous array of the codes of `f`; TypeError for
// any other dtype.
py::array code_operand(const py::handle& h, const Format& f, const char* fn, int k) {
  const py::array a = py::isinstance<py::array>(h)
                          ? py::reinterpret_borrow<py::array>(h)
                          : py::module_::import("numpy").attr("asarray")(h).cast<py::array>();
  const py::dtype want = code_dtype(f);
  if (!a.dtype().equal(want))
    throw py::type_error(std::string(fn) + ": operand " + kOperandNames[k] + " has dtype " +
                         std::string(py::str(a.dtype())) + "; codes of " + format_name(f) + " are " +
                         std::string(py::str(want.attr("name"))) + " (fmt.code_dtype)");
  return c_contiguous(a);
}

template <class C>
void run(ArithOp op, const Format& f, const std::vector<std::size_t>& shape,
         const std::vector<py::array>& xs, py::array& out, const ArrayOptions& o) {
  std::vector<CodeOperand<C>> ops;
  for (const py::array& x : xs) {
    std::vector<std::size_t> s(x.shape(), x.shape() + x.ndim());
    ops.push_back({std::span<const C>(static_cast<const C*>(x.data()), std::size_t(x.size())),
                   broadcast_strides(s, shape)});
  }
  const std::span<C> dst(static_cast<C*>(out.mutable_data()), std::size_t(out.size()));
  std::string error;
  {
    py::gil_scoped_release release;
    try {
      arith(op, f, shape, std::span<const CodeOperand<C>>(ops), dst, o);
    } catch (const std::out_of_range& e) {
      error = e.what();  // a code wider than the format: a bad value, not an index
    }
  }
  if (!error.empty()) throw py::value_error(error);
}

py::array elementwise(ArithOp op, const std::vector<py::object>& operands, const py::object& fmt,
                      const ConvertKeywords& k, std::uint64_t seed, std::uint64_t stream,
                      std::uint64_t first_index, int threads) {
  const std::string fn(to_string(op));
  const Format f = to_format(fmt);
  ArrayOptions o;
  o.convert = convert_options(k);
  o.seed = seed;
  o.stream = stream;
  o.first_index = first_index;
  o.exec = execution(threads);
  std::vector<py::array> xs;
  std::vector<std::vector<std::size_t>> shapes;
  for (std::size_t i = 0; i < operands.size(); ++i) {
    xs.push_back(code_operand(operands[i], f, fn.c_str(), int(i)));
    shapes.emplace_back(xs.back().shape(), xs.back().shape() + xs.back().ndim());
  }
  const std::vector<std::size_t> shape = broadcast_shape(shapes);  // ValueError if they do not
  py::array out = new_array(code_dtype(f), std::vector<py::ssize_t>(shape.begin(), shape.end()));
  switch (code_dtype(f).itemsize()) {
    case 1: run<std::uint8_t>(op, f, shape, xs, out, o); break;
    case 2: run<std::uint16_t>(op, f, shape, xs, out, o); break;
    default: run<std::uint32_t>(op, f, shape, xs, out, o); break;
  }
  return out;
}

constexpr const char* kKeywordsDoc =
    "Keywords (as fp8emu arith takes them): rounding='rne' (rna, rz, ru, rd, ro, sr-a, sr-b,\n"
    "sr-c), saturation='finite' (propagate, none), nan='canonical' (nvidia), daz=False,\n"
    "ftz=False, sr_bits=None (32 random bits for a stochastic rounding); seed=0, stream=0,\n"
    "first_index=0: element i of the result, in C order, rounds with random_bits(seed,\n"
    "stream, first_index + i); threads=0 (all; results do not depend on it).\n"
    "Operands: arrays of fmt.code_dtype exactly (else TypeError), broadcast as NumPy does;\n"
    "the result is a new array of fmt.code_dtype with the broadcast shape. A code wider\n"
    "than the format, shapes that do not broadcast, a bad format or option: ValueError.";

// Binds `fn` as `name` with the positional arguments `args` and the keyword-only
// conversion, random-stream and thread keywords every operation takes.
template <class Fn, class... Args>
void def_operation(py::module_& m, const char* name, Fn&& fn, const std::string& doc,
                   Args... args) {
  m.def(name, std::forward<Fn>(fn), args..., py::kw_only(), py::arg("rounding") = "rne",
        py::arg("saturation") = "finite", py::arg("nan") = "canonical", py::arg("daz") = false,
        py::arg("ftz") = false, py::arg("sr_bits") = py::none(), py::arg("seed") = 0,
        py::arg("stream") = 0, py::arg("first_index") = 0, py::arg("threads") = 0, doc.c_str());
}

}  // namespace

void bind_arith(py::module_& m) {
  for (ArithOp op : {ArithOp::add, ArithOp::sub, ArithOp::mul, ArithOp::div}) {
    const auto& e = option_entry(op);
    const std::string name(e.name);
    def_operation(
        m, name.c_str(),
        [op](const py::object& a, const py::object& b, const py::object& fmt,
             const std::string& rounding, const std::string& saturation, const std::string& nan,
             bool daz, bool ftz, std::optional<int> sr_bits, std::uint64_t seed,
             std::uint64_t stream, std::uint64_t first_index, int threads) {
          return elementwise(op, {a, b}, fmt, {rounding, saturation, nan, daz, ftz, sr_bits}, seed,
                             stream, first_index, threads);
        },
        name + "(a, b, fmt, **keywords) -> the codes of " + std::string(e.description) +
            " in fmt, each rounded once from the exact result.\n\n" + kKeywordsDoc,
        py::arg("a"), py::arg("b"), py::arg("fmt"));
  }
  def_operation(
      m, "fma",
      [](const py::object& a, const py::object& b, const py::object& c, const py::object& fmt,
         const std::string& rounding, const std::string& saturation, const std::string& nan,
         bool daz, bool ftz, std::optional<int> sr_bits, std::uint64_t seed, std::uint64_t stream,
         std::uint64_t first_index, int threads) {
        return elementwise(ArithOp::fma, {a, b, c}, fmt,
                           {rounding, saturation, nan, daz, ftz, sr_bits}, seed, stream,
                           first_index, threads);
      },
      std::string("fma(a, b, c, fmt, **keywords) -> the codes of a * b + c in fmt, rounded "
                  "once.\n\n") + kKeywordsDoc,
      py::arg("a"), py::arg("b"), py::arg("c"), py::arg("fmt"));
  def_operation(
      m, "sqrt",
      [](const py::object& a, const py::object& fmt, const std::string& rounding,
         const std::string& saturation, const std::string& nan, bool daz, bool ftz,
         std::optional<int> sr_bits, std::uint64_t seed, std::uint64_t stream,
         std::uint64_t first_index, int threads) {
        return elementwise(ArithOp::sqrt, {a}, fmt, {rounding, saturation, nan, daz, ftz, sr_bits},
                           seed, stream, first_index, threads);
      },
      std::string("sqrt(a, fmt, **keywords) -> the codes of the square root of a in fmt, "
                  "rounded once.\n\n") + kKeywordsDoc,
      py::arg("a"), py::arg("fmt"));
}

}  // namespace fp8emu::python
