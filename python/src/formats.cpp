// fp8emu Python bindings: bind_formats (bindings.hpp): the Format class and the catalog,
// explain and fields, the option name lists, the SIMD target functions and the random
// bits of stochastic rounding (docs/python.md, "Formats").
#include <pybind11/stl.h>

#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <string>

#include "bindings.hpp"
#include "fp8emu/explain.hpp"
#include "fp8emu/random.hpp"

namespace fp8emu::python {
namespace {

// Returns the catalog entry of `f`, if it is one (the first, as format_name finds it).
const CatalogEntry* catalog_entry(const Format& f) {
  for (const auto& e : catalog())
    if (e.format == f) return &e;
  return nullptr;
}

// Returns the names and descriptions of option enum E, in its table's order.
template <Option E>
py::dict option_dict() {
  py::dict d;
  for (const auto& e : enum_names<E>())
    d[py::str(std::string(e.name))] = py::str(std::string(e.description));
  return d;
}

// Returns `c` as a Python int, or None.
py::object optional_code(std::optional<std::uint32_t> c) {
  return c ? py::object(py::int_(*c)) : py::object(py::none());
}

// Returns every value of `f` (at most 16 bits), indexed by code.
py::array_t<double> format_values(const Format& f) {
  const int b = total_bits(f);
  if (b > 16)
    throw py::value_error("values() lists formats of at most 16 bits; " + format_name(f) + " has " +
                          std::to_string(b));
  const std::size_t n = std::size_t{1} << b;
  py::array_t<double> out(static_cast<py::ssize_t>(n));
  double* p = out.mutable_data();
  for (std::size_t c = 0; c < n; ++c) p[c] = decode(f, std::uint32_t(c));
  return out;
}

std::string fields_repr(const CodeFields& c) {
  return "CodeFields(code=" + std::to_string(c.code) + ", class='" +
         std::string(class_name(c.value_class)) + "', value=" + shortest(c.value) + ")";
}

}  // namespace

void bind_formats(py::module_& m) {
  // --- Format -------------------------------------------------------------------------
  py::class_<Format> fmt(m, "Format", R"(A binary floating-point format.

Format(spelling): a catalog name ("e4m3fn", see formats()), a P3109 name
binary{K}p{P}{s|u}{e|f}, or e{E}m{M}[:bias=B][:policy=P][:unsigned]; ValueError for any
other spelling. Formats compare equal when they have the same fields, whatever their
spelling.)");
  fmt.def(py::init([](const py::object& spelling) { return to_format(spelling); }),
          py::arg("spelling"))
      .def_property_readonly(
          "name", [](const Format& f) { return format_name(f); },
          "The catalog name, or the generic spelling e{E}m{M}:bias=B:policy=P.")
      .def_property_readonly(
          "bits", [](const Format& f) { return total_bits(f); }, "Bits of a code.")
      .def_property_readonly("exponent_bits", [](const Format& f) { return f.exponent_bits; })
      .def_property_readonly("mantissa_bits", [](const Format& f) { return f.mantissa_bits; })
      .def_property_readonly("bias", [](const Format& f) { return f.bias; })
      .def_property_readonly(
          "policy", [](const Format& f) { return std::string(policy_name(f.policy)); },
          "Which codes are infinities and NaNs: ieee, fn, fnuz, finite, "
          "p3109-extended, p3109-finite or e8m0.")
      .def_property_readonly("signed", [](const Format& f) { return f.is_signed; })
      .def_property_readonly(
          "max", [](const Format& f) { return max_finite(f); }, "The largest finite value.")
      .def_property_readonly("min_normal", [](const Format& f) { return min_normal(f); })
      .def_property_readonly(
          "min_positive", [](const Format& f) { return min_positive(f); },
          "The smallest positive value (a subnormal where the format has them).")
      .def_property_readonly(
          "epsilon", [](const Format& f) { return epsilon(f); },
          "The gap between 1 and the next larger value.")
      .def_property_readonly("emin", [](const Format& f) { return emin(f); })
      .def_property_readonly("emax", [](const Format& f) { return emax(f); })
      .def_property_readonly("has_inf", [](const Format& f) { return has_inf(f); })
      .def_property_readonly("has_nan", [](const Format& f) { return has_nan(f); })
      .def_property_readonly("has_negative_zero",
                             [](const Format& f) { return has_negative_zero(f); })
      .def_property_readonly("has_subnormals", [](const Format& f) { return has_subnormals(f); })
      .def_property_readonly(
          "finite_codes", [](const Format& f) { return finite_code_count(f); },
          "The number of codes of finite values (both zeros counted).")
      .def_property_readonly(
          "nan_code", [](const Format& f) { return optional_code(nan_code(f)); },
          "The canonical NaN code (None without NaN).")
      .def_property_readonly(
          "inf_code", [](const Format& f) { return optional_code(positive_inf_code(f)); },
          "The code of +inf (None without infinities).")
      .def_property_readonly(
          "negative_inf_code", [](const Format& f) { return optional_code(negative_inf_code(f)); },
          "The code of -inf (None without it).")
      .def_property_readonly(
          "fits_float32", [](const Format& f) { return fits_float(f); },
          "True when every value is exactly a float32.")
      .def_property_readonly(
          "code_dtype", [](const Format& f) { return code_dtype(f); },
          "The NumPy dtype of codes: uint8 up to 8 bits, uint16 up to 16, "
          "uint32 beyond.")
      .def_property_readonly(
          "source",
          [](const Format& f) -> py::object {
            const CatalogEntry* e = catalog_entry(f);
            return e ? py::object(py::str(std::string(e->source))) : py::object(py::none());
          },
          "Where a catalog format is defined (None for other formats).")
      .def("values", &format_values,
           "Returns the value of every code (float64, indexed by code; formats of at most 16 "
           "bits).")
      .def("__eq__",
           [](const Format& a, const py::object& b) {
             return py::isinstance<Format>(b) && a == b.cast<Format>();
           })
      .def("__ne__",
           [](const Format& a, const py::object& b) {
             return !(py::isinstance<Format>(b) && a == b.cast<Format>());
           })
      .def("__hash__",
           [](const Format& f) {
             return py::hash(py::make_tuple(f.is_signed, f.exponent_bits, f.mantissa_bits, f.bias,
                                            int(f.policy)));
           })
      .def("__str__", [](const Format& f) { return format_name(f); })
      .def("__repr__", [](const Format& f) { return "fp8emu.Format('" + format_name(f) + "')"; })
      .def(py::pickle([](const Format& f) { return format_name(f); },
                      [](const std::string& s) { return parse_format(s); }));

  m.def(
      "formats",
      [] {
        py::list l;
        for (const auto& e : catalog()) l.append(py::cast(e.format));
        return l;
      },
      "Returns the catalog: every named format, in the order `fp8emu formats` lists them.");

  // --- fields and explain --------------------------------------------------------------
  py::class_<CodeFields>(m, "CodeFields", "The fields and value of one code (fields()).")
      .def_readonly("code", &CodeFields::code)
      .def_property_readonly(
          "value_class", [](const CodeFields& c) { return std::string(class_name(c.value_class)); },
          "zero, subnormal, normal, inf or nan.")
      .def_readonly("negative", &CodeFields::negative)
      .def_readonly("exponent_field", &CodeFields::exponent_field)
      .def_readonly("mantissa_field", &CodeFields::mantissa_field)
      .def_readonly("value", &CodeFields::value, "The exact value (NaN and inf included).")
      .def("__repr__", &fields_repr);

  m.def(
      "fields",
      [](const py::object& f, std::uint64_t code) {
        const Format fm = to_format(f);
        if (code > 0xFFFFFFFFull)
          throw py::index_error("code " + std::to_string(code) + " does not fit in 32 bits");
        return fields(fm, std::uint32_t(code));
      },
      py::arg("fmt"), py::arg("code"),
      "Returns the fields of `code` in `fmt` (IndexError for a code wider than the format).");

  py::class_<Explanation>(m, "Explanation",
                          "One conversion step by step (explain()); str() is the account "
                          "`fp8emu explain` prints.")
      .def_readonly("format", &Explanation::format)
      .def_readonly("input", &Explanation::input)
      .def_property_readonly("code", [](const Explanation& e) { return e.result.code; })
      .def_property_readonly("value", [](const Explanation& e) { return e.result.value; })
      .def_readonly("result", &Explanation::result)
      .def_readonly("below", &Explanation::below,
                    "The largest finite value <= input (None if none).")
      .def_readonly("above", &Explanation::above,
                    "The smallest finite value >= input (None if none).")
      .def_readonly("ulp", &Explanation::ulp,
                    "The gap between the input's neighbours (0 if non-finite).")
      .def_readonly("error", &Explanation::error, "result - input, when both are finite.")
      .def_property_readonly(
          "rounding",
          [](const Explanation& e) { return std::string(to_string(e.options.rounding)); })
      .def_property_readonly(
          "saturation",
          [](const Explanation& e) { return std::string(to_string(e.options.saturation)); })
      .def_property_readonly("inexact", [](const Explanation& e) { return e.status.inexact; })
      .def_property_readonly("overflow", [](const Explanation& e) { return e.status.overflow; })
      .def_property_readonly("underflow", [](const Explanation& e) { return e.status.underflow; })
      .def_property_readonly("flushed", [](const Explanation& e) { return e.status.flushed; })
      .def_property_readonly(
          "status", [](const Explanation& e) { return status_text(e); },
          "What the conversion did, as the status line says it.")
      .def("__str__", [](const Explanation& e) { return to_text(e); })
      .def("__repr__", [](const Explanation& e) {
        return "Explanation(" + format_name(e.format) + ", " + shortest(e.input) + " -> " +
               hex_code(e.result.code, total_bits(e.format)) + ")";
      });

  m.def(
      "explain",
      [](const py::object& f, double x, std::uint64_t random, const std::string& rounding,
         const std::string& saturation, const std::string& nan, bool daz, bool ftz,
         std::optional<int> sr_bits) {
        const Format fm = to_format(f);
        const ConvertOptions o = convert_options({rounding, saturation, nan, daz, ftz, sr_bits});
        if (random != 0) {
          if (!is_stochastic(o.rounding))
            throw py::value_error(
                "random: only stochastic roundings (sr-a, sr-b, sr-c) take random bits, not '" +
                rounding + "'");
          if (random >> o.stochastic_bits)
            throw py::value_error("random: expected 0 <= random < 2^" +
                                  std::to_string(o.stochastic_bits) + ", got " +
                                  std::to_string(random));
        }
        return explain(fm, x, o, std::uint32_t(random));
      },
      py::arg("fmt"), py::arg("x"), py::kw_only(), py::arg("random") = 0,
      py::arg("rounding") = "rne", py::arg("saturation") = "finite", py::arg("nan") = "canonical",
      py::arg("daz") = false, py::arg("ftz") = false, py::arg("sr_bits") = py::none(),
      "Returns the conversion of x (a Python float) to fmt, with its neighbours and error; "
      "random is the value R of the sr_bits random bits of a stochastic rounding.");

  // --- option names -----------------------------------------------------------------------
  m.def("roundings", &option_dict<Rounding>,
        "Returns the rounding names (keyword rounding) -> description.");
  m.def("saturations", &option_dict<Saturation>,
        "Returns the saturation names (keyword saturation) -> description.");
  m.def("nan_modes", &option_dict<NanEncoding>,
        "Returns the NaN modes (keyword nan) -> description.");

  // --- SIMD targets ------------------------------------------------------------------------
  m.def(
      "simd_target", [] { return std::string(simd_target()); },
      "Returns the SIMD target the array and GEMM fast paths use ('none': the scalar reference).");
  m.def(
      "set_simd_target", [](const std::string& name) { set_simd_target(name); }, py::arg("name"),
      "Makes later calls use target name ('none': no SIMD kernels; '': the automatic choice). "
      "ValueError for a target not compiled in or that this CPU cannot run.");
  m.def(
      "simd_targets",
      [] {
        py::list l;
        for (std::string_view t : simd_targets()) l.append(std::string(t));
        return l;
      },
      "Returns the SIMD targets compiled in, best first.");
  m.def(
      "simd_target_runs", [](const std::string& name) { return simd_target_runs(name); },
      py::arg("name"), "Returns True when this CPU can run target name.");
  m.def(
      "simd_calls", [](const std::string& name) { return simd_calls(name); }, py::arg("name"),
      "Returns how many array and GEMM calls ran kernels of target name in this process.");
  m.def(
      "simd_summary", [] { return simd_summary(); },
      "Returns the line the programs print for --version: the target in use and those compiled "
      "in.");

  // --- random bits --------------------------------------------------------------------------
  m.def(
      "random_bits",
      [](std::uint64_t seed, std::uint64_t stream, const py::object& index) {
        py::array a = py::module_::import("numpy").attr("asarray")(index).cast<py::array>();
        const char kind = a.dtype().kind();
        if (kind != 'u' && kind != 'i')
          throw py::type_error("random_bits: the index array must hold integers, not " +
                               dtype_name(a));
        if (kind == 'i' && a.size() > 0 && py::bool_(a.attr("min")().attr("__lt__")(0)))
          throw py::value_error("random_bits: indices must be >= 0");
        const auto idx = c_contiguous(a.attr("astype")("uint64").cast<py::array>())
                             .cast<py::array_t<std::uint64_t>>();
        py::array_t<std::uint32_t> out(shape_of(idx));
        const std::uint64_t* in = idx.data();
        std::uint32_t* o = out.mutable_data();
        const py::ssize_t n = idx.size();
        const RandomKey key = random_key(seed, stream);
        {
          py::gil_scoped_release release;
          for (py::ssize_t i = 0; i < n; ++i) o[i] = random_bits(key, in[i]);
        }
        return out;
      },
      py::arg("seed"), py::arg("stream"), py::arg("index"),
      "Returns the 32 random bits (uint32) stochastic rounding gives element `index` of stream "
      "(seed, stream), for every index of the array (the shape kept).");
}

}  // namespace fp8emu::python
