// fp8emu CLI: the argument parser and the helpers every command shares (numbers,
// formats, conversion options, scales, code arrays, report text).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "fp8emu/array.hpp"
#include "fp8emu/convert.hpp"
#include "fp8emu/format.hpp"
#include "fp8emu/npy.hpp"
#include "fp8emu/options.hpp"

namespace fp8emu::cli {

/// Reports bad usage or bad input; main prints it and exits with status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Holds the positionals and --options of one command line.
struct Args {
  std::vector<std::string> pos;
  std::map<std::string, std::string> opt;
};

/// Splits arguments into positionals and --options; options in `with_value` take a value
/// (--opt V or --opt=V), those in `flags` take none. Throws UsageError for an unknown
/// option, an option given twice, a missing value or a value given to a flag.
Args parse_args(int argc, char** argv, const std::vector<std::string>& with_value,
                const std::vector<std::string>& flags);

/// Returns the number `s` as fp8emu::parse_value reads it; throws UsageError.
double parse_value(const std::string& s);

/// Returns the number `s` for an option that takes only finite values; `rule` names the
/// accepted values in the message ("a finite number > 0").
double parse_finite(const std::string& s, const std::string& what, const std::string& rule);

/// Returns the integer `s` of option `what`, which must lie in min..max (the message says so).
std::uint64_t parse_unsigned(const std::string& s, const std::string& what, std::uint64_t max,
                             std::uint64_t min = 0);

/// Returns the value of option enum E named `s`; throws UsageError listing the names.
template <Option E>
E option_arg(const std::string& s) {
  try {
    return parse<E>(s);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
}

/// Returns the names of E for a help text, the default marked: "rne (default), rna, rz".
template <Option E>
std::string option_help(E default_value, std::string_view sep = ", ") {
  std::string s;
  for (const auto& e : enum_names<E>()) {
    if (!s.empty()) s += sep;
    s += e.name;
    if (e.value == default_value) s += " (default)";
  }
  return s;
}

/// Returns the names of the stochastic rounding modes: "sr-a, sr-b, sr-c".
std::string stochastic_names();

/// Printed after the help of every command that takes a format, and by formats.
extern const char* const kVariantHelp;

/// Parses a format argument; with `note`, prints variant_note to stderr.
Format format_arg(const std::string& s, bool note = true);

/// Returns the conversion options shared by explain and quantize (--rounding,
/// --saturation, --nan, --daz, --ftz, --sr-bits).
ConvertOptions convert_options(Args& a);

/// Returns the scale `s` of option `opt` (finite > 0 as a float32); `others` lists the
/// other accepted spellings in the message.
float scale_arg(const std::string& s, const std::string& opt, const std::string& others = "");

/// Returns --threads (1..1024), or 0 when it is not given.
int threads_arg(Args& a);

/// Returns fp8emu::auto_scale(limit, amax) (quantize_matrix.hpp: Transformer Engine's
/// rule) for --scale auto; throws UsageError when amax is NaN or infinite.
float auto_scale_arg(double amax, double limit);

/// Says which random bits a conversion used: "seed 9, 8 random bits" or "no random bits".
std::string random_text(const ConvertOptions& c, std::uint64_t seed);

/// Returns the elements of `a` as a span of T.
template <class T>
std::span<const T> view(const npy::Array& a) {
  return {reinterpret_cast<const T*>(a.data.data()), a.size()};
}

/// Returns the elements of the code array `in` (read from `path`) as 32-bit codes: uint8,
/// uint16, or int32 without negative values. Throws UsageError, its message starting with
/// `context` ("--a: ", or ""), naming `command` for another dtype.
std::vector<std::uint32_t> codes_of(const npy::Array& in, const std::string& path,
                                    const std::string& command, const std::string& context = "");

/// Returns codes of a format of `bits` <= 16 bits as a uint8 or uint16 array of `shape`.
npy::Array code_array(const std::vector<std::uint32_t>& codes, int bits,
                      const std::vector<std::size_t>& shape);

}  // namespace fp8emu::cli
