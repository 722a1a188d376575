// fp8emu Python bindings: bind_recipe (bindings.hpp). Being written.
#include "bindings.hpp"

namespace fp8emu::python {

void bind_recipe(py::module_& m) { (void)m; }

}  // namespace fp8emu::python
