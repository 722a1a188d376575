// fp8emu explorer: the library's scalar code as the browser page calls it
// (web/explorer/explorer.js, through explorer_bind.cpp compiled to WebAssembly).
//
// Every function takes the page's inputs as text or numbers and returns JSON text: the
// library's own JSON (fp8emu::to_json and friends, explain.hpp), or {"error": MESSAGE} with
// the message the command-line tool prints for the same mistake. No number is computed
// here: it is all fp8emu's code, the same that `fp8emu explain` runs. The same file is
// compiled natively for the test that checks the WebAssembly build against it
// (tests/web/), bit for bit.
#pragma once

#include <string>

namespace fp8emu::explorer {

/// Returns the project version.
std::string version();

/// Returns {"rounding": [{name, description, stochastic, default_bits}], "saturation":
/// [{name, description}], "nan": [...]}: the library's option tables in their order (the
/// first entry is the default).
std::string option_tables();

/// Returns [{name, bits, source}] of every catalog format, in the catalog's order.
std::string catalog();

/// Returns the properties of the format spelled `spelling` (fp8emu::format_json).
std::string format(const std::string& spelling);

/// Returns `fp8emu explain FORMAT VALUE --rounding R --saturation S --nan N [--daz] [--ftz]
/// [--sr-bits B --random X]` as JSON (fp8emu::to_json). `sr_bits` and `random` count only
/// for a stochastic rounding.
std::string explain(const std::string& spelling, const std::string& value,
                    const std::string& rounding, const std::string& saturation,
                    const std::string& nan, bool daz, bool ftz, int sr_bits, double random);

/// Returns explain() under every rounding mode, in the table's order: [to_json, ...]; the
/// stochastic modes use `sr_bits` and `random`.
std::string explain_all(const std::string& spelling, const std::string& value,
                        const std::string& saturation, const std::string& nan, bool daz,
                        bool ftz, int sr_bits, double random);

/// Returns `fp8emu explain FORMAT --code CODE` as JSON (fp8emu::code_json).
std::string code(const std::string& spelling, double code);

/// Returns the codes first .. first + count - 1 (clipped to the format; count at most
/// 65536) as [code_json, ...], for the table of every code, page by page.
std::string codes(const std::string& spelling, double first, double count);

/// Returns the binades of the format's positive finite values: [{exponent, count, spacing,
/// subnormal}] (fp8emu::binades), for the number line and its density.
std::string binades(const std::string& spelling);

}  // namespace fp8emu::explorer
