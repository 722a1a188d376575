// fp8emu: a step-by-step account of one conversion, for teaching and debugging.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fp8emu/convert.hpp"
#include "fp8emu/format.hpp"
#include "fp8emu/json.hpp"

namespace fp8emu {

/// Describes the fields and value of one code.
struct CodeFields {
  std::uint32_t code = 0;
  ValueClass value_class = ValueClass::zero;
  bool negative = false;
  std::uint32_t exponent_field = 0;
  std::uint32_t mantissa_field = 0;
  double value = 0;  ///< Exact value (NaN and inf included).
};

/// Counts how many of the 2^bits random values of a stochastic rounding move a value up
/// (away from zero, to the neighbour of larger magnitude) instead of truncating it.
struct StochasticOdds {
  std::uint64_t up = 0;  ///< How many random values R in [0, 2^bits) round up.
  int bits = 0;          ///< N, the number of random bits.
};

/// Describes how one input was converted.
struct Explanation {
  Format format;
  ConvertOptions options;
  double input = 0;
  EncodeStatus status;
  CodeFields result;
  std::optional<CodeFields> below;  ///< Largest finite value <= input, when one exists.
  std::optional<CodeFields> above;  ///< Smallest finite value >= input, when one exists.
  double ulp = 0;                   ///< Gap between the input's neighbours (0 if non-finite).
  double error = 0;                 ///< result - input, when both are finite.
  std::uint32_t random = 0;         ///< The random value R of a stochastic rounding.
  /// For a stochastic rounding of a finite input that is not exact: how many of the random
  /// values round up (a probability of up / 2^bits). Empty otherwise.
  std::optional<StochasticOdds> odds;
};

/// Returns the fields of `code` in `f`; throws std::out_of_range for a code too wide.
CodeFields fields(const Format& f, std::uint32_t code);

/// Returns the conversion of `x` to `f` under `o`, with its neighbours and error.
Explanation explain(const Format& f, double x, const ConvertOptions& o,
                    std::uint32_t random_bits = 0);

/// Returns the code's bits with spaces between sign, exponent and mantissa ("0 1000 101").
std::string field_bits(const Format& f, std::uint32_t code);

/// Returns `code` in hexadecimal with one digit per 4 bits of a `bits`-bit code ("0x7E").
std::string hex_code(std::uint64_t code, int bits);

/// Returns the shortest decimal that reads back as `x` ("inf", "-nan" for specials).
std::string shortest(double x);
/// Returns the shortest decimal text that reads back as the float `x`.
std::string shortest(float x);

namespace detail {
/// Returns what shortest(x) returns, computed with snprintf and strtod / strtof only:
/// the fewest significant digits that read back as x (the nearest such on a tie), spelled
/// as printf's %f or %e would, whichever is shorter (%f on a tie), as C++17
/// std::to_chars(first, last, x) does. It exists for standard libraries without
/// floating-point std::to_chars (libc++ 13, as in emscripten 3.1.6), where shortest()
/// uses it, so that text there is the same, character for character.
std::string shortest_portable(double x);
/// The float counterpart of shortest_portable(double): digits that read back as a float.
std::string shortest_portable(float x);
}  // namespace detail

/// Returns the name of class `c` (zero, subnormal, normal, inf, nan).
std::string_view class_name(ValueClass c);

/// Returns what the conversion did, as the status line of to_text() says it: "exact",
/// "inexact", overflow and underflow, or what became of an input the format has no
/// counterpart for (a NaN without a NaN code, a dropped sign, a negative value -> NaN).
std::string status_text(const Explanation& e);

/// Returns a multi-line, human-readable account of `e`.
std::string to_text(const Explanation& e);

/// Returns the number `text` as `fp8emu explain` reads it: a decimal or hexadecimal float
/// ("3.3", "-1e-3", "0x1.8p-7", "inf", "nan"), the whole text, rounded to the nearest double
/// (overflow gives inf). Throws std::invalid_argument with the message the tool prints.
double parse_value(std::string_view text);

/// Returns a note when `f` is the IEEE-like variant eXmY of a catalog format eXmYfn (the OCP
/// format papers mean), such as e4m3 (max 240, with infinities) beside e4m3fn (max 448);
/// otherwise "".
std::string variant_note(const Format& f);

/// Returns `e` as JSON: the same facts as to_text(), every number as the text to_text()
/// prints (a string), and the text itself as member "text" (the browser explorer shows
/// these, and `fp8emu explain --json` prints them).
json::Value to_json(const Explanation& e);

/// Returns the account of one code that `fp8emu explain FORMAT --code CODE` prints: the
/// format, the code with its fields and class, and its value.
std::string code_text(const Format& f, std::uint32_t code);

/// Returns one code of `f` as JSON: code, hex, bits, class, sign, exponent and mantissa
/// fields, value (as shortest() writes it), and the text `fp8emu explain --code` prints.
json::Value code_json(const Format& f, std::uint32_t code);

/// Returns the properties of `f` that `fp8emu formats` lists, as JSON (values as text).
json::Value format_json(const Format& f);

/// Describes the positive finite values of a format in one binade [2^exponent, 2^(exponent+1)).
struct Binade {
  int exponent = 0;
  std::uint32_t first = 0;  ///< The magnitude code of the binade's smallest value.
  std::uint64_t count = 0;  ///< How many values of the format lie in the binade.
  double spacing = 0;       ///< The gap between neighbouring values there.
  bool subnormal = false;   ///< The values there are subnormal.
};

/// Returns every binade that holds a positive finite value of `f`, lowest first.
std::vector<Binade> binades(const Format& f);

}  // namespace fp8emu
