// fp8emu explorer: explorer_api.hpp's functions as the WebAssembly module's exports, under
// the names the page calls (Module.explain, Module.explainAll, ...).
#include <emscripten/bind.h>

#include "explorer_api.hpp"

EMSCRIPTEN_BINDINGS(fp8emu_explorer) {
  using namespace fp8emu::explorer;
  emscripten::function("version", &version);
  emscripten::function("options", &option_tables);
  emscripten::function("catalog", &catalog);
  emscripten::function("format", &format);
  emscripten::function("explain", &explain);
  emscripten::function("explainAll", &explain_all);
  emscripten::function("code", &code);
  emscripten::function("codes", &codes);
  emscripten::function("binades", &binades);
}
