// fp8emu Python bindings: bind_convert (bindings.hpp). Being written.
#include "bindings.hpp"

namespace fp8emu::python {

void bind_convert(py::module_& m) { (void)m; }

}  // namespace fp8emu::python
