// fp8emu Python bindings: bind_gemm (bindings.hpp). Being written.
#include "bindings.hpp"

namespace fp8emu::python {

void bind_gemm(py::module_& m) { (void)m; }

}  // namespace fp8emu::python
