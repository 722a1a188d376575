// fp8emu: the JSON writer (see include/fp8emu/json.hpp).
#include "fp8emu/json.hpp"

#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "fp8emu/explain.hpp"

namespace fp8emu::json {

std::string quote(std::string_view s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (c == '\n') {
      o += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", unsigned(static_cast<unsigned char>(c)));
      o += b;
    } else {
      o += c;
    }
  }
  return o + "\"";
}

Value::Value(double v) : text_(std::isfinite(v) ? shortest(v) : quote(shortest(v))) {}

Value::Value(std::string_view s) : text_(quote(s)) {}

Value Value::number(double v, int digits) {
  if (!std::isfinite(v)) return Value(v);
  char b[64];
  std::snprintf(b, sizeof b, "%.*g", digits, v);
  Value x;
  x.text_ = b;
  return x;
}

Value Value::array() {
  Value x;
  x.kind_ = Kind::array;
  return x;
}

Value Value::object() {
  Value x;
  x.kind_ = Kind::object;
  return x;
}

Value& Value::push(Value v) {
  if (kind_ != Kind::array) throw std::logic_error("json: push on a value that is not an array");
  members_.emplace_back(std::string(), std::move(v));
  return *this;
}

Value& Value::set(std::string_view key, Value v) {
  if (kind_ != Kind::object) throw std::logic_error("json: set on a value that is not an object");
  for (const auto& m : members_)
    if (m.first == key) throw std::logic_error("json: key '" + std::string(key) + "' set twice");
  members_.emplace_back(std::string(key), std::move(v));
  return *this;
}

void Value::write(std::string& out, int indent, bool item) const {
  if (kind_ == Kind::scalar) {
    out += text_;
    return;
  }
  const bool obj = kind_ == Kind::object;
  bool flat = !obj || item;  // arrays of scalars, and such objects in arrays, on one line
  for (const auto& m : members_) flat = flat && m.second.kind_ == Kind::scalar;
  out += obj ? '{' : '[';
  if (members_.empty()) {
    out += obj ? '}' : ']';
    return;
  }
  const std::string pad(std::size_t(indent + 2), ' ');
  for (std::size_t i = 0; i < members_.size(); ++i) {
    out += i ? (flat ? ", " : ",\n") : (flat ? "" : "\n");
    if (!flat) out += pad;
    if (obj) out += quote(members_[i].first) + ": ";
    members_[i].second.write(out, indent + 2, !obj);
  }
  if (!flat) out += "\n" + std::string(std::size_t(indent), ' ');
  out += obj ? '}' : ']';
}

std::string Value::dump() const {
  std::string s;
  write(s, 0, false);
  return s + "\n";
}

}  // namespace fp8emu::json
