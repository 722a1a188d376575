// fp8emu Python bindings: the extension module fp8emu._fp8emu (python/fp8emu/__init__.py
// re-exports it as the package fp8emu; docs/python.md).
#include "bindings.hpp"

PYBIND11_MODULE(_fp8emu, m) {
  namespace fpy = fp8emu::python;
  m.doc() = "fp8emu: bit-exact emulation of FP8 and other low-precision float formats";
  m.attr("__version__") = FP8EMU_VERSION;
  fpy::bind_formats(m);
  fpy::bind_convert(m);
  fpy::bind_arith(m);
  fpy::bind_gemm(m);
  fpy::bind_compare(m);
  fpy::bind_recipe(m);
}
