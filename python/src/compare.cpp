// fp8emu Python bindings: bind_compare (bindings.hpp). Being written.
#include "bindings.hpp"

namespace fp8emu::python {

void bind_compare(py::module_& m) { (void)m; }

}  // namespace fp8emu::python
