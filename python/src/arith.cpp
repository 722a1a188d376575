// fp8emu Python bindings: bind_arith (bindings.hpp). Being written.
#include "bindings.hpp"

namespace fp8emu::python {

void bind_arith(py::module_& m) { (void)m; }

}  // namespace fp8emu::python
