// fp8emu: a small JSON writer for the reports of every program (fp8emu compare, the
// studies' summaries).
//
// A Value is null, a boolean, a number, a string, an array or an object (members in the
// order they were set). JSON (RFC 8259) has no NaN or infinity: a non-finite number is
// written as the string shortest() gives it ("nan", "-nan", "inf", "-inf"), so a
// reader sees which one it was; null stays for a value that is absent.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fp8emu::json {

/// Holds one JSON value; scalars are kept as their JSON text.
class Value {
 public:
  /// Makes null.
  Value() = default;
  Value(std::nullptr_t) {}
  /// Makes true or false.
  Value(bool b) : text_(b ? "true" : "false") {}
  /// Makes an integer.
  template <std::integral T>
    requires(!std::same_as<T, bool>)
  Value(T v) : text_(std::to_string(v)) {}
  /// Makes the number `v`, written in its shortest round-trip form.
  Value(double v);
  /// Makes a string.
  Value(std::string_view s);
  Value(const char* s) : Value(std::string_view(s)) {}
  Value(const std::string& s) : Value(std::string_view(s)) {}

  /// Returns the number `v` with `digits` significant digits (as printf's %.{digits}g).
  static Value number(double v, int digits);
  /// Returns an empty array.
  static Value array();
  /// Returns an empty object.
  static Value object();

  /// Appends `v` to an array; returns *this.
  Value& push(Value v);
  /// Adds member `key` to an object; throws std::logic_error if it is already there.
  Value& set(std::string_view key, Value v);

  /// Returns the JSON text and a final newline: objects with one member per line
  /// (indented by 2); arrays of scalars on one line; an array of objects with one item per
  /// line, an item of scalars on its line.
  std::string dump() const;

 private:
  enum class Kind : std::uint8_t { scalar, array, object };
  void write(std::string& out, int indent, bool item) const;
  Kind kind_ = Kind::scalar;
  std::string text_ = "null";
  std::vector<std::pair<std::string, Value>> members_;  ///< Array items have empty keys.
};

/// Returns `s` as a JSON string literal, with quotes and escapes.
std::string quote(std::string_view s);

}  // namespace fp8emu::json
