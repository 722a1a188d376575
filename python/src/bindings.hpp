// fp8emu Python bindings: what every binding file shares. Each file binds one part of the
// library (bind_formats, bind_convert, ...) into the extension module fp8emu._fp8emu;
// module.cpp calls them in order. Conventions, the same in every function (docs/python.md):
//  - a format is a Format object or any spelling parse_format accepts ("e4m3fn");
//  - options are the command line's names ("rne", "finite", "canonical"), parsed by the
//    library's option tables, keyword-only, with the C++ defaults;
//  - errors are the library's exceptions: std::invalid_argument and std::domain_error reach
//    Python as ValueError, std::out_of_range as IndexError, wrong types as TypeError;
//  - the GIL is released around every kernel, which runs on the library's OpenMP threads
//    (`threads`, 0: all).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fp8emu/array.hpp"
#include "fp8emu/convert.hpp"
#include "fp8emu/format.hpp"
#include "fp8emu/options.hpp"

namespace fp8emu::python {

namespace py = pybind11;

/// Returns the format `h` names: a Format object, or a spelling parse_format accepts.
/// Throws TypeError (py::type_error) for anything else, ValueError for a bad spelling.
Format to_format(py::handle h);

/// Returns the value of option enum E named `name`, as the command line spells it; throws
/// ValueError "KEYWORD: unknown rounding 'x' (one of rne, rna, ...)".
template <Option E>
E option_arg(std::string_view name, std::string_view keyword) {
  try {
    return parse<E>(name);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(std::string(keyword) + ": " + e.what());
  }
}

/// The conversion keywords of quantize, fake_quantize, the arithmetic and the GEMM
/// quantization: rounding, saturation, nan, daz, ftz and sr_bits (None: 32 random bits
/// for a stochastic rounding, none otherwise).
struct ConvertKeywords {
  std::string rounding = "rne";
  std::string saturation = "finite";
  std::string nan = "canonical";
  bool daz = false, ftz = false;
  std::optional<int> sr_bits;
};

/// Returns the ConvertOptions of `k`, validated (fp8emu::validate); ValueError on bad input.
ConvertOptions convert_options(const ConvertKeywords& k);

/// Returns the Execution of `threads` (0: all of OpenMP's; 1 to 1024 otherwise, else
/// ValueError).
Execution execution(int threads);

/// Returns the NumPy dtype of the codes of `f`: uint8 up to 8 bits, uint16 up to 16,
/// uint32 beyond (fp8emu::code_bytes).
py::dtype code_dtype(const Format& f);

/// Returns `a` as a C-contiguous array of its own dtype: `a` itself when it is one (no
/// copy), else a contiguous copy.
py::array c_contiguous(const py::array& a);

/// Returns the shape of `a` as a vector.
std::vector<py::ssize_t> shape_of(const py::array& a);

/// Returns NumPy's name of the dtype of `a` ("float32").
std::string dtype_name(const py::array& a);

/// Returns a new uninitialised C-contiguous array of `dtype` and `shape`.
py::array new_array(const py::dtype& dtype, const std::vector<py::ssize_t>& shape);

// The parts of the module, in the order module.cpp binds them.
void bind_formats(py::module_& m);  ///< Format, formats(), explain, fields, option names.
void bind_convert(py::module_& m);  ///< quantize, dequantize, fake_quantize, amax, quantize_matrix.
void bind_arith(py::module_& m);    ///< add, sub, mul, div, fma, sqrt on code arrays.
void bind_gemm(py::module_& m);     ///< gemm, accumulation presets and specs.
void bind_compare(py::module_& m);  ///< compare and its report.
void bind_recipe(py::module_& m);   ///< The simulator's recipes and recipe GEMMs (fp8emu.torch).

}  // namespace fp8emu::python
