// fp8emu Python bindings: bind_convert (bindings.hpp): quantize, dequantize,
// fake_quantize, amax and auto_scale on NumPy arrays through the library's array functions
// (array.hpp), and quantize_matrix with its QuantizedMatrix, the GEMM operand
// (quantize_matrix.hpp). docs/python.md, "Conversions" and "Block, MX and NVFP4 scaling".
//
// A QuantizedMatrix object holds the C++ fp8emu::QuantizedMatrix itself: other binding
// files take one with py::isinstance<QuantizedMatrix>(h) and h.cast<const
// QuantizedMatrix&>().
#include <pybind11/stl.h>

#include <cmath>
#include <cstring>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "bindings.hpp"
#include "fp8emu/explain.hpp"
#include "fp8emu/gemm.hpp"
#include "fp8emu/quantize_matrix.hpp"

namespace fp8emu::python {
namespace {

py::module_ numpy() { return py::module_::import("numpy"); }

// Returns `x` as a NumPy array (np.asarray: arrays as they are, Python numbers and lists
// as NumPy makes them).
py::array as_array(const py::handle& x) { return numpy().attr("asarray")(x).cast<py::array>(); }

// Returns true when `a` holds elements of NumPy type `name` in native byte order.
bool has_dtype(const py::array& a, const char* name) {
  return py::bool_(a.dtype().attr("__eq__")(py::dtype(name)));
}

// The element types the array functions read.
enum class Input { float32, float64, float16, bfloat16 };

// Returns the input type of `x` for quantize; TypeError for any other dtype.
Input input_type(const py::array& x, bool bfloat16, const char* fn) {
  if (bfloat16) {
    if (has_dtype(x, "uint16")) return Input::bfloat16;
    throw py::type_error(std::string(fn) + ": bfloat16=True takes bfloat16 bits as uint16, not " +
                         dtype_name(x));
  }
  if (has_dtype(x, "float32")) return Input::float32;
  if (has_dtype(x, "float64")) return Input::float64;
  if (has_dtype(x, "float16")) return Input::float16;
  throw py::type_error(std::string(fn) +
                       " takes float32, float64 or float16 arrays (or bfloat16 bits as "
                       "uint16 with bfloat16=True), not " +
                       dtype_name(x) + (has_dtype(x, "uint16") ? "" : " (convert with astype)"));
}

// Returns `x` as a C-contiguous float32 array; TypeError for any other dtype.
py::array float32_input(const py::handle& h, const char* fn) {
  const py::array x = as_array(h);
  if (!has_dtype(x, "float32"))
    throw py::type_error(std::string(fn) + " takes float32 arrays, not " + dtype_name(x) +
                         " (convert with astype)");
  return c_contiguous(x);
}

std::string shape_text(const std::vector<py::ssize_t>& s) {
  std::string t = "(";
  for (std::size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + (s.size() == 1 ? ",)" : ")");
}

// Returns the output array: a new one of `dtype` and `shape`, or `out` when it is a
// writeable C-contiguous array of exactly that dtype and shape (else TypeError or
// ValueError).
py::array output(const py::object& out, const py::dtype& dtype,
                 const std::vector<py::ssize_t>& shape) {
  if (out.is_none()) return new_array(dtype, shape);
  if (!py::isinstance<py::array>(out))
    throw py::type_error("out: expected a NumPy array, not " +
                         std::string(py::str(py::type::of(out).attr("__name__"))));
  py::array a = out.cast<py::array>();
  if (!py::bool_(a.dtype().attr("__eq__")(dtype)))
    throw py::type_error("out: expected dtype " + std::string(py::str(dtype.attr("name"))) +
                         ", not " + dtype_name(a));
  if (shape_of(a) != shape)
    throw py::value_error("out: shape " + shape_text(shape_of(a)) + " differs from the input's " +
                          shape_text(shape));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error("out: expected a C-contiguous array");
  if (!a.writeable()) throw py::value_error("out: the array is read-only");
  return a;
}

// Calls fn(Code{}) with the code type of `f` (uint8, uint16 or uint32).
template <class Fn>
decltype(auto) with_code_type(const Format& f, Fn&& fn) {
  switch (code_bytes(f)) {
    case 1:
      return fn(std::uint8_t{});
    case 2:
      return fn(std::uint16_t{});
    default:
      return fn(std::uint32_t{});
  }
}

// The keywords of the random stream and the threads, with the conversion keywords.
struct StreamKeywords {
  std::uint64_t seed = 0, stream = 0, first_index = 0;
  int threads = 0;
};

ArrayOptions array_options(const ConvertKeywords& k, const StreamKeywords& s) {
  ArrayOptions o;
  o.convert = convert_options(k);
  o.seed = s.seed;
  o.stream = s.stream;
  o.first_index = s.first_index;
  o.exec = execution(s.threads);
  return o;
}

// Reads scale=: a number (rounded to float32) or "auto"; returns true for "auto".
bool scale_arg(const py::object& scale, ArrayOptions& o) {
  if (py::isinstance<py::str>(scale)) {
    const std::string s = scale.cast<std::string>();
    if (s != "auto") throw py::value_error("scale: expected a number or 'auto', got '" + s + "'");
    return true;
  }
  if (!py::isinstance<py::float_>(scale) && !py::isinstance<py::int_>(scale) &&
      !py::hasattr(scale, "__float__"))
    throw py::type_error("scale: expected a number or 'auto', not " +
                         std::string(py::str(py::type::of(scale).attr("__name__"))));
  o.scale = float(scale.cast<double>());
  return false;
}

// Returns the scale of scale="auto" for largest magnitude `amax` in `f`, as `fp8emu
// quantize --scale auto` computes it: auto_scale(max finite, amax), 1 for amax 0; an
// input with NaN or infinity has no such scale (ValueError).
float automatic_scale(const Format& f, double amax) {
  if (std::isnan(amax)) throw py::value_error("scale='auto': the input contains NaN");
  if (std::isinf(amax)) throw py::value_error("scale='auto': the input contains an infinity");
  return auto_scale(max_finite(f), amax);
}

// Runs the array quantize of `in` (n elements of type t) into codes `out`.
template <class Code>
ArrayStats run_quantize(const Format& f, Input t, const void* in, Code* out, std::size_t n,
                        const ArrayOptions& o) {
  const std::span<Code> codes(out, n);
  switch (t) {
    case Input::float32:
      return quantize(f, std::span<const float>(static_cast<const float*>(in), n), codes, o);
    case Input::float64:
      return quantize(f, std::span<const double>(static_cast<const double*>(in), n), codes, o);
    case Input::float16:
      return quantize_float16_bits(
          f, std::span<const std::uint16_t>(static_cast<const std::uint16_t*>(in), n), codes, o);
    default:
      return quantize_bfloat16_bits(
          f, std::span<const std::uint16_t>(static_cast<const std::uint16_t*>(in), n), codes, o);
  }
}

py::dict stats_dict(const ArrayStats& st, float scale) {
  py::dict d;
  d["amax"] = st.amax;
  d["scale"] = double(scale);
  d["simd_elements"] = st.simd_elements;
  return d;
}

py::object quantize_py(const py::object& xin, const py::object& fmt, const py::object& scale,
                       bool bfloat16, const py::object& out, bool return_stats,
                       const std::string& rounding, const std::string& saturation,
                       const std::string& nan, bool daz, bool ftz, std::optional<int> sr_bits,
                       std::uint64_t seed, std::uint64_t stream, std::uint64_t first_index,
                       int threads) {
  const Format f = to_format(fmt);
  const py::array x0 = as_array(xin);
  const Input t = input_type(x0, bfloat16, "quantize");
  ArrayOptions o = array_options({rounding, saturation, nan, daz, ftz, sr_bits},
                                 {seed, stream, first_index, threads});
  const bool automatic = scale_arg(scale, o);
  const py::array x = c_contiguous(x0);
  py::array result = output(out, code_dtype(f), shape_of(x));
  const void* in = x.data();
  void* codes = result.mutable_data();
  const auto n = std::size_t(x.size());
  const ArrayStats st = with_code_type(f, [&](auto code) {
    using Code = decltype(code);
    Code* c = static_cast<Code*>(codes);
    ArrayStats s;
    double amax = 0;
    {
      py::gil_scoped_release release;
      if (automatic) {
        if (t == Input::float32) {
          amax = fp8emu::amax(std::span<const float>(static_cast<const float*>(in), n), o.exec);
        } else {
          // The amax of the other input types comes from a pass of the array function
          // (as the command line finds it), into codes that are then overwritten.
          ArrayOptions probe = o;
          probe.convert = {};
          std::vector<Code> scratch(n);
          amax = run_quantize(f, t, in, scratch.data(), n, probe).amax;
        }
      }
    }
    if (automatic) o.scale = automatic_scale(f, amax);
    {
      py::gil_scoped_release release;
      s = run_quantize(f, t, in, c, n, o);
    }
    return s;
  });
  if (return_stats) return py::make_tuple(result, stats_dict(st, o.scale));
  return result;
}

py::object fake_quantize_py(const py::object& xin, const py::object& fmt, const py::object& scale,
                            const py::object& out, bool return_stats, const std::string& rounding,
                            const std::string& saturation, const std::string& nan, bool daz,
                            bool ftz, std::optional<int> sr_bits, std::uint64_t seed,
                            std::uint64_t stream, std::uint64_t first_index, int threads) {
  const Format f = to_format(fmt);
  const py::array x = float32_input(xin, "fake_quantize");
  ArrayOptions o = array_options({rounding, saturation, nan, daz, ftz, sr_bits},
                                 {seed, stream, first_index, threads});
  const bool automatic = scale_arg(scale, o);
  py::array result = output(out, py::dtype("float32"), shape_of(x));
  const auto n = std::size_t(x.size());
  const std::span<const float> in(static_cast<const float*>(x.data()), n);
  const std::span<float> values(static_cast<float*>(result.mutable_data()), n);
  if (automatic) {
    double a;
    {
      py::gil_scoped_release release;
      a = fp8emu::amax(in, o.exec);
    }
    o.scale = automatic_scale(f, a);
  }
  ArrayStats st;
  {
    py::gil_scoped_release release;
    st = fake_quantize(f, in, values, o);
  }
  if (return_stats) return py::make_tuple(result, stats_dict(st, o.scale));
  return result;
}

py::array dequantize_py(const py::object& cin, const py::object& fmt, double scale,
                        const py::object& dtype, const py::object& out, int threads) {
  const Format f = to_format(fmt);
  const py::array c0 = as_array(cin);
  if (!has_dtype(c0, "uint8") && !has_dtype(c0, "uint16") && !has_dtype(c0, "uint32"))
    throw py::type_error("dequantize takes codes as uint8, uint16 or uint32 arrays, not " +
                         dtype_name(c0));
  const std::string type = py::str(py::dtype::from_args(dtype).attr("name"));
  if (type != "float32" && type != "float64")
    throw py::value_error("dtype: expected float32 or float64, not " + type);
  ArrayOptions o;
  o.scale = float(scale);
  o.exec = execution(threads);
  const py::array c = c_contiguous(c0);
  py::array result = output(out, py::dtype(type), shape_of(c));
  const auto n = std::size_t(c.size());
  const void* in = c.data();
  void* values = result.mutable_data();
  const int width = int(c.itemsize());
  {
    py::gil_scoped_release release;
    auto run = [&](auto* v) {
      using T = std::remove_pointer_t<decltype(v)>;
      const std::span<T> dst(v, n);
      if (width == 1)
        dequantize(f, std::span<const std::uint8_t>(static_cast<const std::uint8_t*>(in), n), dst,
                   o);
      else if (width == 2)
        dequantize(f, std::span<const std::uint16_t>(static_cast<const std::uint16_t*>(in), n), dst,
                   o);
      else
        dequantize(f, std::span<const std::uint32_t>(static_cast<const std::uint32_t*>(in), n), dst,
                   o);
    };
    if (type == "float32")
      run(static_cast<float*>(values));
    else
      run(static_cast<double*>(values));
  }
  return result;
}

// --- quantize_matrix ----------------------------------------------------------------------

constexpr MatrixScaling kScalings[] = {
    MatrixScaling::none,  MatrixScaling::tensor, MatrixScaling::row,  MatrixScaling::column,
    MatrixScaling::block, MatrixScaling::mx,     MatrixScaling::nvfp4};
constexpr MxRule kMxRules[] = {MxRule::floor, MxRule::ceil};

// Returns the value of `values` that `name_of` names `name`; ValueError naming the others.
template <class E, std::size_t N, class NameOf>
E named(const E (&values)[N], NameOf name_of, const std::string& name, const char* keyword) {
  std::string all;
  for (E v : values) {
    if (name_of(v) == name) return v;
    all += (all.empty() ? "" : ", ") + std::string(name_of(v));
  }
  throw py::value_error(std::string(keyword) + ": unknown value '" + name + "' (one of " + all +
                        ")");
}

std::string_view operand_name(Operand o) { return o == Operand::a ? "a" : "b"; }
std::string_view layout_name(Layout l) { return l == Layout::row_major ? "row" : "col"; }

// Returns the grid of `scales` blocks of br x bc (0: the whole dimension) over rows x cols.
std::pair<py::ssize_t, py::ssize_t> grid(std::int64_t rows, std::int64_t cols, std::int64_t br,
                                         std::int64_t bc) {
  const std::int64_t ebr = br ? br : std::max<std::int64_t>(rows, 1);
  const std::int64_t ebc = bc ? bc : std::max<std::int64_t>(cols, 1);
  return {py::ssize_t((rows + ebr - 1) / ebr), py::ssize_t((cols + ebc - 1) / ebc)};
}

// Returns a copy of `v` as a rows x cols array (1-D when the sizes do not match).
template <class T>
py::array grid_array(const std::vector<T>& v, std::pair<py::ssize_t, py::ssize_t> g) {
  std::vector<py::ssize_t> shape{g.first, g.second};
  if (std::size_t(g.first * g.second) != v.size()) shape = {py::ssize_t(v.size())};
  py::array_t<T> a(shape);
  if (!v.empty()) std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(T));
  return a;
}

// Returns the codes of `q` as a read-only rows x cols array over its storage (Fortran
// order for column-major codes), kept alive by `self`.
py::array codes_view(const QuantizedMatrix& q, const py::object& self) {
  const py::dtype dt = code_dtype(q.format);
  const auto b = py::ssize_t(code_bytes(q.format));
  const std::vector<py::ssize_t> shape{py::ssize_t(q.rows), py::ssize_t(q.cols)};
  const std::vector<py::ssize_t> strides =
      q.layout == Layout::row_major ? std::vector<py::ssize_t>{py::ssize_t(q.cols) * b, b}
                                    : std::vector<py::ssize_t>{b, py::ssize_t(q.rows) * b};
  py::array a(dt, shape, strides, q.storage.data(), self);
  py::setattr(a.attr("flags"), "writeable", py::bool_(false));
  return a;
}

QuantizedMatrix quantize_matrix_py(const py::object& xin, const py::object& fmt,
                                   const std::string& scaling, const std::string& operand,
                                   double scale, double inverse, const py::object& block,
                                   int margin, bool pow2, const std::string& mx_rule,
                                   const std::string& layout, const std::string& rounding,
                                   const std::string& saturation, const std::string& nan, bool daz,
                                   bool ftz, std::optional<int> sr_bits, std::uint64_t seed,
                                   std::uint64_t stream, std::uint64_t first_index, int threads) {
  const Format f = to_format(fmt);
  py::array x = as_array(xin);
  if (!has_dtype(x, "float32"))
    throw py::type_error("quantize_matrix takes float32 arrays, not " + dtype_name(x) +
                         " (convert with astype)");
  if (x.ndim() != 2)
    throw py::value_error("quantize_matrix takes a 2-D array, not one of " +
                          std::to_string(x.ndim()) + " dimensions");
  MatrixQuantizeOptions o;
  o.scaling = named(kScalings, matrix_scaling_name, scaling, "scaling");
  o.operand = named({Operand::a, Operand::b}, operand_name, operand, "operand");
  o.mx_rule = named(kMxRules, mx_rule_name, mx_rule, "mx_rule");
  o.out_layout = named({Layout::row_major, Layout::col_major}, layout_name, layout, "layout");
  o.scale = float(scale);
  o.inverse = float(inverse);
  if (!block.is_none()) {
    const auto b = block.cast<std::tuple<std::int64_t, std::int64_t>>();
    o.block_rows = std::get<0>(b);
    o.block_cols = std::get<1>(b);
  }
  o.margin = margin;
  o.pow2 = pow2;
  o.array = array_options({rounding, saturation, nan, daz, ftz, sr_bits},
                          {seed, stream, first_index, threads});
  // C order is a row-major matrix and Fortran order a column-major one, both read in
  // place; any other strides are copied to C order.
  FloatMatrix m;
  m.rows = x.shape(0);
  m.cols = x.shape(1);
  if (!(x.flags() & py::array::c_style) && (x.flags() & py::array::f_style)) {
    m.layout = Layout::col_major;
  } else {
    x = c_contiguous(x);
  }
  m.data = static_cast<const float*>(x.data());
  QuantizedMatrix q;
  {
    py::gil_scoped_release release;
    quantize_matrix(m, f, o, q);
  }
  return q;
}

#define FP8EMU_CONVERT_KEYWORDS                                                                \
  py::arg("rounding") = "rne", py::arg("saturation") = "finite", py::arg("nan") = "canonical", \
  py::arg("daz") = false, py::arg("ftz") = false, py::arg("sr_bits") = py::none(),             \
  py::arg("seed") = 0, py::arg("stream") = 0, py::arg("first_index") = 0, py::arg("threads") = 0

}  // namespace

void bind_convert(py::module_& m) {
  m.def("quantize", &quantize_py, py::arg("x"), py::arg("fmt"), py::kw_only(),
        py::arg("scale") = 1.0, py::arg("bfloat16") = false, py::arg("out") = py::none(),
        py::arg("return_stats") = false, FP8EMU_CONVERT_KEYWORDS,
        R"(Rounds every element of x times scale to fmt, once from the exact product; returns the
codes (fmt.code_dtype, x's shape), or (codes, stats) with return_stats.

x: float32, float64 or float16 (any shape), or bfloat16 bits as uint16 with bfloat16=True.
scale: a number (rounded to float32, finite and > 0) or "auto" (the largest magnitude of
x maps to fmt.max, as `fp8emu quantize --scale auto`; 1 for an all-zero x; ValueError
when x holds NaN or an infinity). out: a C-contiguous writeable array of fmt.code_dtype
and x's shape to write into. stats: dict(amax=max |x| (NaN if any NaN), scale=the scale
used, simd_elements=elements the SIMD kernels produced). Element i of a stochastic
rounding takes random_bits(seed, stream, first_index + i), i in C order.)");

  m.def("dequantize", &dequantize_py, py::arg("codes"), py::arg("fmt"), py::kw_only(),
        py::arg("scale") = 1.0, py::arg("dtype") = "float32", py::arg("out") = py::none(),
        py::arg("threads") = 0,
        R"(Decodes codes (uint8, uint16 or uint32, any shape) of fmt to value / scale, rounded once
to dtype (float32 or float64). IndexError for a code wider than fmt; ValueError for
float32 output of a format whose values do not fit in float32.)");

  m.def("fake_quantize", &fake_quantize_py, py::arg("x"), py::arg("fmt"), py::kw_only(),
        py::arg("scale") = 1.0, py::arg("out") = py::none(), py::arg("return_stats") = false,
        FP8EMU_CONVERT_KEYWORDS,
        R"(Rounds float32 values to fmt and back: decode(quantize(x)) / scale, the division rounded
once to float32. out may be x itself (in place). Keywords as quantize.)");

  m.def(
      "amax",
      [](const py::object& xin, int threads) {
        const py::array x = float32_input(xin, "amax");
        const Execution e = execution(threads);
        const std::span<const float> in(static_cast<const float*>(x.data()), std::size_t(x.size()));
        py::gil_scoped_release release;
        return double(fp8emu::amax(in, e));
      },
      py::arg("x"), py::kw_only(), py::arg("threads") = 0,
      "Returns max |x| of a float32 array (0 when empty; NaN when an element is NaN), threaded.");

  m.def("auto_scale", &auto_scale, py::arg("fmax"), py::arg("amax"), py::kw_only(),
        py::arg("margin") = 0, py::arg("pow2") = false,
        R"(Returns Transformer Engine's scale (fmax / amax) / 2^margin rounded to float32 (down to a
power of two with pow2); 1 when amax is 0, NaN or infinite, or the scale is not finite.)");

  py::class_<QuantizedMatrix>(m, "QuantizedMatrix",
                              R"(Codes and scales of a matrix, as quantize_matrix returns them and
gemm takes them as an operand.)")
      .def_property_readonly(
          "codes",
          [](const py::object& self) {
            return codes_view(self.cast<const QuantizedMatrix&>(), self);
          },
          "The codes, rows x cols (read-only; Fortran order for layout 'col').")
      .def_readonly("format", &QuantizedMatrix::format)
      .def_property_readonly(
          "shape", [](const QuantizedMatrix& q) { return py::make_tuple(q.rows, q.cols); })
      .def_property_readonly(
          "layout", [](const QuantizedMatrix& q) { return std::string(layout_name(q.layout)); })
      .def_property_readonly(
          "scales",
          [](const QuantizedMatrix& q) -> py::object {
            const auto g = grid(q.rows, q.cols, q.scale_block_rows, q.scale_block_cols);
            if (!q.float_scales.empty()) return grid_array(q.float_scales, g);
            if (!q.code_scales.empty()) return grid_array(q.code_scales, g);
            return py::none();
          },
          "The block scales gemm takes, over the grid of scale_block blocks: float32 "
          "dequantization scales 1 / s, or uint8 scale codes (e8m0, e4m3); None without blocks.")
      .def_property_readonly(
          "scale_encoding",
          [](const QuantizedMatrix& q) { return std::string(to_string(q.encoding)); })
      .def_property_readonly(
          "scale_block",
          [](const QuantizedMatrix& q) {
            return py::make_tuple(q.scale_block_rows, q.scale_block_cols);
          },
          "The block shape of scales (0: the whole dimension).")
      .def_readonly("tensor_scale", &QuantizedMatrix::tensor, "The tensor dequantization scale.")
      .def_readonly("amax", &QuantizedMatrix::amax,
                    "max |x| of the matrix (NaN when an element is NaN).")
      .def_property_readonly(
          "quant_scales",
          [](const QuantizedMatrix& q) {
            const bool packed_rows = q.layout == Layout::row_major;
            const std::int64_t pr = packed_rows ? q.rows : q.cols,
                               pc = packed_rows ? q.cols : q.rows;
            return grid_array(q.quant_scales, q.block_rows == 0 && q.block_cols == 0
                                                  ? std::pair<py::ssize_t, py::ssize_t>{1, 1}
                                                  : grid(pr, pc, q.block_rows, q.block_cols));
          },
          "The quantization scales s (x s was rounded) over the grid of quant_block blocks of "
          "the codes as stored (rows x cols, or cols x rows for layout 'col'); 1 x 1 for none "
          "and tensor.")
      .def_property_readonly(
          "quant_block",
          [](const QuantizedMatrix& q) { return py::make_tuple(q.block_rows, q.block_cols); })
      .def("__repr__", [](const QuantizedMatrix& q) {
        return "QuantizedMatrix(" + format_name(q.format) + ", " + std::to_string(q.rows) + "x" +
               std::to_string(q.cols) + ", scales " + std::string(to_string(q.encoding)) + ")";
      });

  m.def("quantize_matrix", &quantize_matrix_py, py::arg("x"), py::arg("fmt"), py::kw_only(),
        py::arg("scaling") = "none", py::arg("operand") = "a", py::arg("scale") = 0.0,
        py::arg("inverse") = 0.0, py::arg("block") = py::none(), py::arg("margin") = 0,
        py::arg("pow2") = false, py::arg("mx_rule") = "floor", py::arg("layout") = "row",
        FP8EMU_CONVERT_KEYWORDS,
        R"(Quantizes a 2-D float32 matrix with the library's quantize-matrix step; returns a
QuantizedMatrix.

scaling: none, tensor (scale, 0: auto_scale of the amax; inverse: the dequantization
scale, 0: 1 / scale), row, column, block (block=(rows, cols), 0: the whole dimension),
mx (blocks of 32 along K, e8m0 scales by mx_rule floor or ceil), nvfp4 (blocks of 16
along K, e4m3fn scales and a tensor scale). operand: a (K along columns) or b (K along
rows). margin, pow2: auto_scale's. layout: the codes' order, row or col. Element i of
the codes in that order takes random index first_index + i.)");
}

}  // namespace fp8emu::python
