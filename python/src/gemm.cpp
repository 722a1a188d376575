// fp8emu Python bindings: bind_gemm (bindings.hpp): gemm and gemm_path, with the
// operands and accumulation specs of `fp8emu gemm`, and the accumulation presets.
//
// An operand is a QuantizedMatrix (its codes and scales as they are), a 2-D code array of
// its format (C- or Fortran-ordered arrays are used in place, as a row- or column-major
// CodeMatrix; others are copied), or a 2-D float array quantized by the library's
// quantize_operand, the step `fp8emu gemm` takes for float operands (the scale spelled as
// --a-scale spells it: a number, "auto", "block:RxC", "mx", "nvfp4").
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "fp8emu/gemm.hpp"
#include "fp8emu/quantize_matrix.hpp"

namespace fp8emu::python {
namespace {

// Returns true when `a` holds elements of NumPy type `name` in native byte order.
bool has_dtype(const py::array& a, const char* name) {
  return py::bool_(a.dtype().attr("__eq__")(py::dtype(name)));
}

std::string type_name(py::handle h) { return py::str(py::type::of(h).attr("__name__")); }

// One operand of gemm: what the caller gave, read with the GIL held (prepare), then its
// codes and scales as gemm takes them (finish, without the GIL: floats are quantized there).
struct GemmInput {
  std::string name;           // "a" or "b"
  py::object keep;            // the array or QuantizedMatrix the codes live in
  const QuantizedMatrix* given = nullptr;
  CodeMatrix m;
  Scales scales;
  // Float inputs.
  bool is_float = false;
  FloatOperand x;
  Format f = formats::e4m3fn{};
  OperandScale scale;
  QuantizedMatrix q;
  // Block scales given as an array.
  py::object scale_array;
  std::vector<float> float_scales;

  std::int64_t rows() const { return is_float ? x.rows : m.rows; }
  std::int64_t cols() const { return is_float ? x.cols : m.cols; }

  void finish(const Execution& exec) {
    if (!is_float) return;
    quantize_operand(x, f, scale, name + "_scale", q, exec);
    m = q.matrix();
    scales = q.scales();
  }
};

// Returns the (rows, cols) of an `X_block` argument: two integers in 1..2^30.
std::pair<std::int64_t, std::int64_t> block_arg(const py::handle& h, const std::string& what) {
  const std::string rule = what + ": expected (rows, cols), two integers in 1.." + std::to_string(1 << 30);
  if (!py::isinstance<py::tuple>(h) && !py::isinstance<py::list>(h)) throw py::type_error(rule);
  const py::sequence s = py::reinterpret_borrow<py::sequence>(h);
  if (s.size() != 2) throw py::value_error(rule);
  std::int64_t v[2];
  for (int i = 0; i < 2; ++i) {
    const py::handle e = s[std::size_t(i)];
    if (!py::isinstance<py::int_>(e) || py::isinstance<py::bool_>(e)) throw py::type_error(rule);
    const auto n = e.cast<long long>();
    if (n < 1 || n > (1 << 30)) throw py::value_error(rule + ", got " + std::to_string(n));
    v[i] = n;
  }
  return {v[0], v[1]};
}

// Reads operand `name` of gemm with the GIL held: x (a QuantizedMatrix or a 2-D array),
// its format, its scale (None, a number, a spec string, or an array of block scales of
// code inputs), the block shape of such an array and the encoding of uint8 scale codes.
void prepare(GemmInput& in, const std::string& name, const py::object& x, const py::object& fmt,
             const py::object& scale, const py::object& block, const std::string& scale_codes) {
  in.name = name;
  in.keep = x;
  const std::string sname = name + "_scale", bname = name + "_block", cname = name + "_scale_codes";
  const auto encoding = try_parse<ScaleEncoding>(scale_codes);
  if (!encoding || *encoding == ScaleEncoding::float32)
    throw py::value_error(cname + " must be e8m0 or e4m3, not '" + scale_codes + "'");
  const bool scale_array = py::isinstance<py::array>(scale);
  if (!block.is_none() && !scale_array)
    throw py::value_error(bname + " applies to " + sname + " given as an array of block scales (of code inputs)");
  if (*encoding != ScaleEncoding::e8m0 && !(scale_array && has_dtype(scale.cast<py::array>(), "uint8")))
    throw py::value_error(cname + " applies to " + sname + " given as an array of uint8 scale codes");

  // 1. A QuantizedMatrix: its codes and scales as they are.
  if (py::isinstance<QuantizedMatrix>(x)) {
    in.given = &x.cast<const QuantizedMatrix&>();
    if (!scale.is_none())
      throw py::value_error(sname + ": a QuantizedMatrix carries its scales; " + sname + " applies to arrays");
    if (!fmt.is_none() && to_format(fmt) != in.given->format)
      throw py::value_error(name + ": the QuantizedMatrix holds codes of " + format_name(in.given->format) +
                            ", not " + format_name(to_format(fmt)));
    in.m = in.given->matrix();
    in.scales = in.given->scales();
    return;
  }
  if (!py::isinstance<py::array>(x))
    throw py::type_error(name + ": expected a QuantizedMatrix or a 2-D NumPy array, not " + type_name(x));
  py::array arr = x.cast<py::array>();
  if (arr.ndim() != 2)
    throw py::value_error(name + ": expected a 2-D array, got " + std::to_string(arr.ndim()) + " dimensions");

  // 2. The scale: a spec as --a-scale spells it (a number as its shortest decimal).
  if (py::isinstance<py::str>(scale)) {
    in.scale = parse_operand_scale(scale.cast<std::string>(), name == "a" ? Operand::a : Operand::b, sname);
  } else if ((py::isinstance<py::float_>(scale) || py::isinstance<py::int_>(scale)) &&
             !py::isinstance<py::bool_>(scale)) {
    in.scale = parse_operand_scale(std::string(py::repr(py::float_(scale))),
                                   name == "a" ? Operand::a : Operand::b, sname);
  } else if (!scale.is_none() && !scale_array) {
    throw py::type_error(sname + ": expected None, a number, 'auto', 'block:RxC', 'mx', 'nvfp4' or an "
                         "array of block scales, not " + type_name(scale));
  }
  in.f = fmt.is_none() ? default_operand_format(in.scale) : to_format(fmt);
  const bool blocked = in.scale.scaling != MatrixScaling::none && in.scale.scaling != MatrixScaling::tensor;
  const bool is_auto = in.scale.scaling == MatrixScaling::tensor && in.scale.scale == 0.0f;
  const std::int64_t rows = arr.shape(0), cols = arr.shape(1);

  // 3. Float values: quantized in finish.
  const char* ftype = has_dtype(arr, "float32")   ? "float32"
                      : has_dtype(arr, "float64") ? "float64"
                      : has_dtype(arr, "float16") ? "float16"
                                                  : nullptr;
  if (ftype) {
    if (scale_array)
      throw py::value_error(sname + ": an array of block scales applies to code inputs; quantize float inputs first");
    arr = c_contiguous(arr);
    in.keep = arr;
    in.is_float = true;
    in.x = FloatOperand{arr.data(),
                        ftype[5] == '3'   ? FloatOperand::Type::float32
                        : ftype[5] == '6' ? FloatOperand::Type::float64
                                          : FloatOperand::Type::float16,
                        rows, cols};
    return;
  }

  // 4. Codes of the format: in place when C- or Fortran-ordered.
  const py::dtype want = code_dtype(in.f);
  if (!py::bool_(arr.dtype().attr("__eq__")(want)))
    throw py::type_error(name + ": codes of " + format_name(in.f) + " are " + std::string(py::str(want.attr("name"))) +
                         "; the array holds " + dtype_name(arr) + " (or give float16, float32 or float64 values)");
  if (blocked || is_auto)
    throw py::value_error(sname + " " + in.scale.spelling + " needs float input (" + name + " holds codes)");
  Layout layout = Layout::row_major;
  if (!(arr.flags() & py::array::c_style)) {
    if (arr.flags() & py::array::f_style)
      layout = Layout::col_major;
    else
      arr = c_contiguous(arr);
  }
  in.keep = arr;
  in.m = CodeMatrix{in.f, arr.data(), rows, cols, layout, 0};
  in.scales.tensor = in.scale.scaling == MatrixScaling::tensor ? in.scale.scale : 1.0f;
  if (!scale_array) return;

  // 5. Block scales of code inputs: float32 (in place), float64 (rounded to float32) or
  //    uint8 codes of X_scale_codes, one per block of X_block, row-major over the grid.
  if (block.is_none()) throw py::value_error(sname + " given as an array needs " + bname + "=(rows, cols)");
  const auto [br, bc] = block_arg(block, bname);
  py::array sc = c_contiguous(scale.cast<py::array>());
  const auto want_n = py::ssize_t((rows + br - 1) / br * ((cols + bc - 1) / bc));
  if (sc.size() != want_n)
    throw py::value_error(sname + ": " + std::to_string(sc.size()) + " scales for " + std::to_string(want_n) +
                          " blocks of " + std::to_string(br) + "x" + std::to_string(bc));
  in.scales.block_rows = br;
  in.scales.block_cols = bc;
  if (has_dtype(sc, "uint8")) {
    in.scales.encoding = *encoding;
  } else if (has_dtype(sc, "float64")) {
    const double* p = static_cast<const double*>(sc.data());
    in.float_scales.assign(p, p + sc.size());
    in.scales.data = in.float_scales.data();
    return;
  } else if (!has_dtype(sc, "float32")) {
    throw py::type_error(sname + ": block scales are float32, float64 or uint8 codes, not " + dtype_name(sc));
  }
  in.scale_array = sc;
  in.scales.data = sc.data();
}

// The arguments of gemm and gemm_path, read with the GIL held.
struct GemmCall {
  GemmInput a, b;
  GemmOptions o;
  std::optional<Format> out_format;
  py::object c;
};

GemmCall read_call(const py::object& a, const py::object& b, const py::object& a_format,
                   const py::object& b_format, const py::object& a_scale, const py::object& b_scale,
                   const py::object& a_block, const py::object& b_block, const std::string& a_scale_codes,
                   const std::string& b_scale_codes, const std::string& accumulate, double alpha,
                   double beta, const py::object& c, const py::object& out_format, int threads) {
  GemmCall g;
  try {
    g.o.accumulation = parse_accumulation(accumulate);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(std::string("accumulate: ") + e.what());
  }
  g.o.exec = execution(threads);
  g.o.alpha = float(alpha);
  g.o.beta = float(beta);
  if (!out_format.is_none()) g.out_format = to_format(out_format);
  prepare(g.a, "a", a, a_format, a_scale, a_block, a_scale_codes);
  prepare(g.b, "b", b, b_format, b_scale, b_block, b_scale_codes);
  g.c = c;
  return g;
}

// Quantizes the float operands (without the GIL) and sets the scales of the call.
void finish(GemmCall& g) {
  for (GemmInput* in : {&g.a, &g.b}) {
    in->finish(g.o.exec);
    if (in->is_float && in->scale.scaling == MatrixScaling::tensor && in->scale.scale == 0.0f &&
        !std::isfinite(in->q.amax))
      throw std::invalid_argument(in->name + "_scale auto: the input contains " +
                                  (std::isnan(in->q.amax) ? "NaN" : "an infinity"));
  }
  g.o.a_scales = g.a.scales;
  g.o.b_scales = g.b.scales;
}

py::object gemm_py(const py::object& a, const py::object& b, const py::object& a_format,
                   const py::object& b_format, const py::object& a_scale, const py::object& b_scale,
                   const py::object& a_block, const py::object& b_block, const std::string& a_scale_codes,
                   const std::string& b_scale_codes, const std::string& accumulate, double alpha,
                   double beta, const py::object& c, const py::object& out_format, int threads) {
  GemmCall g = read_call(a, b, a_format, b_format, a_scale, b_scale, a_block, b_block, a_scale_codes,
                         b_scale_codes, accumulate, alpha, beta, c, out_format, threads);
  const std::int64_t M = g.a.rows(), N = g.b.cols();
  // The result, float32 M x N: C's values when beta != 0 (C is not changed).
  py::array_t<float> out({py::ssize_t(M), py::ssize_t(N)});
  float* d = out.mutable_data();
  if (!c.is_none()) {
    if (!py::isinstance<py::array>(c) || !has_dtype(c.cast<py::array>(), "float32"))
      throw py::type_error("c: expected a float32 array, not " +
                           (py::isinstance<py::array>(c) ? dtype_name(c.cast<py::array>()) : type_name(c)));
    const py::array ca = c_contiguous(c.cast<py::array>());
    if (ca.ndim() != 2 || ca.shape(0) != M || ca.shape(1) != N)
      throw py::value_error("c: expected shape (" + std::to_string(M) + ", " + std::to_string(N) + ")");
    std::copy_n(static_cast<const float*>(ca.data()), M * N, d);
  } else if (g.o.beta != 0.0f) {
    throw py::value_error("beta != 0 needs c (float32, M x N)");
  }
  py::array result = out;
  {
    py::gil_scoped_release release;
    finish(g);
    gemm(g.a.m, g.b.m, d, N, g.o);
  }
  if (g.out_format) {
    result = new_array(code_dtype(*g.out_format), {py::ssize_t(M), py::ssize_t(N)});
    const std::span<const float> v(d, std::size_t(M * N));
    void* p = result.mutable_data();
    const std::size_t n = v.size();
    const Format f = *g.out_format;
    ArrayOptions ao;
    ao.exec = g.o.exec;
    py::gil_scoped_release release;
    switch (code_bytes(f)) {
      case 1: quantize(f, v, std::span<std::uint8_t>(static_cast<std::uint8_t*>(p), n), ao); break;
      case 2: quantize(f, v, std::span<std::uint16_t>(static_cast<std::uint16_t*>(p), n), ao); break;
      default: quantize(f, v, std::span<std::uint32_t>(static_cast<std::uint32_t*>(p), n), ao); break;
    }
  }
  return result;
}

std::string gemm_path_py(const py::object& a, const py::object& b, const py::object& a_format,
                         const py::object& b_format, const py::object& a_scale, const py::object& b_scale,
                         const py::object& a_block, const py::object& b_block, const std::string& a_scale_codes,
                         const std::string& b_scale_codes, const std::string& accumulate, double alpha,
                         double beta, const py::object& c, const py::object& out_format, int threads) {
  GemmCall g = read_call(a, b, a_format, b_format, a_scale, b_scale, a_block, b_block, a_scale_codes,
                         b_scale_codes, accumulate, alpha, beta, c, out_format, threads);
  {
    py::gil_scoped_release release;
    finish(g);
  }
  return std::string(gemm_fast_path(g.a.m, g.b.m, g.o));
}

}  // namespace

void bind_gemm(py::module_& m) {
  using namespace py::literals;
  m.def("gemm", &gemm_py, "a"_a, "b"_a, py::kw_only(), "a_format"_a = py::none(), "b_format"_a = py::none(),
        "a_scale"_a = py::none(), "b_scale"_a = py::none(), "a_block"_a = py::none(), "b_block"_a = py::none(),
        "a_scale_codes"_a = "e8m0", "b_scale_codes"_a = "e8m0", "accumulate"_a = "fp32", "alpha"_a = 1.0,
        "beta"_a = 0.0, "c"_a = py::none(), "out_format"_a = py::none(), "threads"_a = 0,
        R"(Returns alpha * A B (+ beta * C) as fp8emu::gemm computes it: float32 M x N, or
codes of out_format (nearest-even, saturating).

a, b: QuantizedMatrix (codes and scales as they are), 2-D code arrays of a_format /
b_format (C- or Fortran-ordered arrays used in place, others copied), or 2-D float16,
float32 or float64 arrays, quantized as `fp8emu gemm` quantizes them (nearest-even,
saturating) with the scale a_scale / b_scale: None, a number X (x / X is quantized, X
dequantizes), "auto", "block:RxC", "mx" (blocks of 32 along K), "nvfp4" (16 along K,
default format e2m1fn). For code arrays: a number, or an array of block scales (float32,
float64, or uint8 codes of a_scale_codes "e8m0" / "e4m3") with a_block=(rows, cols).
Formats default to e4m3fn (e2m1fn with "nvfp4").
accumulate: an accumulation spec as `fp8emu gemm --accumulate` takes it (PRESET[,key=value...]).
c: float32 M x N, read when beta != 0 (not changed). threads: 0 = all.)");
  m.def("gemm_path", &gemm_path_py, "a"_a, "b"_a, py::kw_only(), "a_format"_a = py::none(),
        "b_format"_a = py::none(), "a_scale"_a = py::none(), "b_scale"_a = py::none(), "a_block"_a = py::none(),
        "b_block"_a = py::none(), "a_scale_codes"_a = "e8m0", "b_scale_codes"_a = "e8m0", "accumulate"_a = "fp32",
        "alpha"_a = 1.0, "beta"_a = 0.0, "c"_a = py::none(), "out_format"_a = py::none(), "threads"_a = 0,
        "Returns the name of the code path gemm takes for these arguments (\"reference\", \"float32\", "
        "\"accumulator\", ...; docs/gemm.md, \"Which calls are fast\").");
  m.def(
      "accumulation_presets",
      [] {
        py::list names;
        for (const std::string_view p : accumulation_presets()) names.append(std::string(p));
        return names;
      },
      "Returns the names of the accumulation presets, in a stable order.");
  m.def(
      "accumulation_spec",
      [](const std::string& spec) {
        try {
          return accumulation_spec(parse_accumulation(spec));
        } catch (const std::invalid_argument& e) {
          throw py::value_error(std::string("accumulate: ") + e.what());
        }
      },
      "spec"_a, "Returns the canonical form of an accumulation spec (PRESET[,key=value...]).");
}

}  // namespace fp8emu::python
