// fp8emu Python bindings: bind_formats (bindings.hpp). Being written.
#include "bindings.hpp"

namespace fp8emu::python {

void bind_formats(py::module_& m) { (void)m; }

}  // namespace fp8emu::python
