// fp8emu: name tables of option enums (rounding, saturation, NaN encoding, sum order,
// scale encoding), read by the command-line tools, the recipe parser, the help texts and
// the docs.
//
// Each option enum E has one table, `option_table<E>`: an array of entries with (at
// least) the members `value`, `name` (as the command line spells it) and `description`
// (one line), in the enum's order, with the noun that names the option (`what`). Every
// name, parse and list of accepted names is derived from that table; an entry may carry
// more data (the traits of a rounding mode, convert.hpp).
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace fp8emu {

/// Describes one value of an option enum: its name and a one-line description.
template <class E>
struct OptionName {
  E value;
  std::string_view name;
  std::string_view description;
};

/// Holds the table of option enum E; specialised next to each enum (convert.hpp, gemm.hpp)
/// with `static constexpr std::string_view what` and `static constexpr std::array entries`.
template <class E>
struct option_table;

/// Satisfied by the enums that have a name table.
template <class E>
concept Option = requires {
  option_table<E>::entries;
  option_table<E>::what;
};

namespace detail {

/// Returns true when the entries of E's table are in the enum's order (entry i has value i),
/// so that an entry is found by indexing.
template <Option E>
constexpr bool option_table_in_order() {
  std::size_t i = 0;
  for (const auto& e : option_table<E>::entries)
    if (static_cast<std::size_t>(e.value) != i++) return false;
  return true;
}

}  // namespace detail

/// Returns the entries of E's table, in the enum's order.
template <Option E>
constexpr const auto& enum_names() {
  static_assert(detail::option_table_in_order<E>(), "an option table lists its enum in order");
  return option_table<E>::entries;
}

/// Returns the table entry of `v`.
template <Option E>
constexpr const auto& option_entry(E v) {
  return enum_names<E>()[static_cast<std::size_t>(v)];
}

/// Returns the name of `v` as the command line spells it ("rne", "finite", ...).
template <Option E>
constexpr std::string_view to_string(E v) {
  return option_entry(v).name;
}

/// Returns the value named `s`, or nothing.
template <Option E>
constexpr std::optional<E> try_parse(std::string_view s) {
  for (const auto& e : enum_names<E>())
    if (e.name == s) return e.value;
  return std::nullopt;
}

/// Returns the accepted names of E joined by `sep` ("rne, rna, rz, ...").
template <Option E>
std::string option_names(std::string_view sep = ", ") {
  std::string s;
  for (const auto& e : enum_names<E>()) {
    if (!s.empty()) s += sep;
    s += e.name;
  }
  return s;
}

/// Returns the value named `s`; throws std::invalid_argument "unknown rounding 'up' (one
/// of rne, rna, ...)" for any other name.
template <Option E>
E parse(std::string_view s) {
  if (auto v = try_parse<E>(s)) return *v;
  throw std::invalid_argument("unknown " + std::string(option_table<E>::what) + " '" +
                              std::string(s) + "' (one of " + option_names<E>() + ")");
}

/// Calls fn(std::integral_constant<E, v>{}) for the run-time value `v` and returns its
/// result: one dispatch per call (outside the loops of a kernel), generated from E's
/// table, so a new entry needs no new case. `fn` returns the same type for every value.
template <Option E, class Fn, std::size_t I = 0>
decltype(auto) with_option(E v, Fn&& fn) {
  constexpr E value = option_table<E>::entries[I].value;
  if constexpr (I + 1 == option_table<E>::entries.size()) {
    return std::forward<Fn>(fn)(std::integral_constant<E, value>{});
  } else {
    if (v == value) return std::forward<Fn>(fn)(std::integral_constant<E, value>{});
    return with_option<E, Fn, I + 1>(v, std::forward<Fn>(fn));
  }
}

}  // namespace fp8emu
