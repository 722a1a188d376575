// fp8emu Python bindings: the helpers every binding file shares (bindings.hpp).
#include "bindings.hpp"

#include "fp8emu/gemm.hpp"

namespace fp8emu::python {

Format to_format(py::handle h) {
  if (py::isinstance<Format>(h)) return h.cast<Format>();
  if (py::isinstance<py::str>(h)) return parse_format(h.cast<std::string>());
  throw py::type_error("a format is a fp8emu.Format or its name (such as 'e4m3fn'), not " +
                       std::string(py::str(py::type::of(h).attr("__name__"))));
}

ConvertOptions convert_options(const ConvertKeywords& k) {
  ConvertOptions o;
  o.rounding = option_arg<Rounding>(k.rounding, "rounding");
  o.saturation = option_arg<Saturation>(k.saturation, "saturation");
  o.nan = option_arg<NanEncoding>(k.nan, "nan");
  o.flush_inputs = k.daz;
  o.flush_outputs = k.ftz;
  if (k.sr_bits) {
    if (!is_stochastic(o.rounding))
      throw py::value_error("sr_bits: only stochastic roundings (" + std::string("sr-a, sr-b, sr-c") +
                            ") take random bits, not '" + k.rounding + "'");
    o.stochastic_bits = *k.sr_bits;
  } else {
    o.stochastic_bits = default_stochastic_bits_for(o.rounding);
  }
  try {
    validate(o);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(std::string("sr_bits: ") + e.what());
  }
  return o;
}

Execution execution(int threads) {
  if (threads < 0 || threads > 1024)
    throw py::value_error("threads: expected 0 (all) or 1..1024, got " + std::to_string(threads));
  Execution e;
  e.threads = threads;
  return e;
}

py::dtype code_dtype(const Format& f) {
  switch (code_bytes(f)) {
    case 1: return py::dtype::of<std::uint8_t>();
    case 2: return py::dtype::of<std::uint16_t>();
    default: return py::dtype::of<std::uint32_t>();
  }
}

py::array c_contiguous(const py::array& a) {
  if (a.flags() & py::array::c_style) return a;
  return py::module_::import("numpy").attr("ascontiguousarray")(a).cast<py::array>();
}

std::vector<py::ssize_t> shape_of(const py::array& a) {
  return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

std::string dtype_name(const py::array& a) { return py::str(a.dtype().attr("name")); }

py::array new_array(const py::dtype& dtype, const std::vector<py::ssize_t>& shape) {
  return py::array(dtype, shape);
}

}  // namespace fp8emu::python
