// fp8emu explorer: the entry points of the browser page (see explorer_api.hpp).
#include "explorer_api.hpp"

#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>
#include <stdexcept>

#include "fp8emu/convert.hpp"
#include "fp8emu/explain.hpp"
#include "fp8emu/format.hpp"
#include "fp8emu/json.hpp"

namespace fp8emu::explorer {
namespace {

using fp8emu::json::Value;

// Returns body()'s JSON, or {"error": ...} when it throws.
std::string guarded(const std::function<Value()>& body) {
  try {
    return body().dump();
  } catch (const std::exception& e) {
    return Value::object().set("error", std::string(e.what())).dump();
  }
}

// The options of one conversion, checked as `fp8emu explain` checks its command line.
fp8emu::ConvertOptions options(const std::string& rounding, const std::string& saturation,
                               const std::string& nan, bool daz, bool ftz, int sr_bits) {
  fp8emu::ConvertOptions o;
  o.rounding = fp8emu::parse<fp8emu::Rounding>(rounding);
  o.saturation = fp8emu::parse<fp8emu::Saturation>(saturation);
  o.nan = fp8emu::parse<fp8emu::NanEncoding>(nan);
  o.flush_inputs = daz;
  o.flush_outputs = ftz;
  o.stochastic_bits = fp8emu::is_stochastic(o.rounding) ? sr_bits : 0;
  fp8emu::validate(o);
  return o;
}

std::uint32_t random_value(const fp8emu::ConvertOptions& o, double random) {
  if (!fp8emu::is_stochastic(o.rounding)) return 0;
  const double max = std::ldexp(1.0, o.stochastic_bits) - 1;
  if (!(random >= 0 && random <= max && random == std::floor(random)))
    throw std::invalid_argument("invalid random value '" + fp8emu::shortest(random) +
                                "' (expected 0.." + fp8emu::shortest(max) + ")");
  return std::uint32_t(random);
}

template <fp8emu::Option E>
Value option_list() {
  Value list = Value::array();
  for (const auto& e : fp8emu::enum_names<E>())
    list.push(Value::object().set("name", e.name).set("description", e.description));
  return list;
}

}  // namespace

std::string option_tables() {
  return guarded([] {
    Value rounding = Value::array();
    for (const auto& e : fp8emu::enum_names<fp8emu::Rounding>())
      rounding.push(Value::object()
                        .set("name", e.name)
                        .set("description", e.description)
                        .set("stochastic", fp8emu::is_stochastic(e.value))
                        .set("default_bits", fp8emu::default_stochastic_bits_for(e.value)));
    return Value::object()
        .set("rounding", rounding)
        .set("saturation", option_list<fp8emu::Saturation>())
        .set("nan", option_list<fp8emu::NanEncoding>());
  });
}

std::string catalog() {
  return guarded([] {
    Value list = Value::array();
    for (const auto& e : fp8emu::catalog())
      list.push(Value::object()
                    .set("name", e.name)
                    .set("bits", fp8emu::total_bits(e.format))
                    .set("source", e.source));
    return list;
  });
}

std::string format(const std::string& spelling) {
  return guarded([&] { return fp8emu::format_json(fp8emu::parse_format(spelling)); });
}

std::string explain(const std::string& spelling, const std::string& value,
                    const std::string& rounding, const std::string& saturation,
                    const std::string& nan, bool daz, bool ftz, int sr_bits, double random) {
  return guarded([&] {
    const fp8emu::Format f = fp8emu::parse_format(spelling);
    const fp8emu::ConvertOptions o = options(rounding, saturation, nan, daz, ftz, sr_bits);
    const std::uint32_t r = random_value(o, random);
    return fp8emu::to_json(fp8emu::explain(f, fp8emu::parse_value(value), o, r));
  });
}

std::string explain_all(const std::string& spelling, const std::string& value,
                        const std::string& saturation, const std::string& nan, bool daz,
                        bool ftz, int sr_bits, double random) {
  return guarded([&] {
    const fp8emu::Format f = fp8emu::parse_format(spelling);
    const double x = fp8emu::parse_value(value);
    Value list = Value::array();
    for (const auto& e : fp8emu::enum_names<fp8emu::Rounding>()) {
      const fp8emu::ConvertOptions o =
          options(std::string(e.name), saturation, nan, daz, ftz, sr_bits);
      list.push(fp8emu::to_json(fp8emu::explain(f, x, o, random_value(o, random))));
    }
    return list;
  });
}

std::string code(const std::string& spelling, double code) {
  return guarded([&] {
    const fp8emu::Format f = fp8emu::parse_format(spelling);
    const double max = std::ldexp(1.0, fp8emu::total_bits(f)) - 1;
    if (!(code >= 0 && code <= max && code == std::floor(code)))
      throw std::invalid_argument("invalid code '" + fp8emu::shortest(code) + "' (expected 0.." +
                                  fp8emu::shortest(max) + ")");
    return fp8emu::code_json(f, std::uint32_t(code));
  });
}

std::string codes(const std::string& spelling, double first, double count) {
  return guarded([&] {
    const fp8emu::Format f = fp8emu::parse_format(spelling);
    const double end = std::ldexp(1.0, fp8emu::total_bits(f));
    if (!(first >= 0 && first == std::floor(first) && count >= 0 && count <= 65536))
      throw std::invalid_argument("codes: first must be a code and count 0..65536");
    Value list = Value::array();
    for (double c = first; c < end && c < first + count; ++c)
      list.push(fp8emu::code_json(f, std::uint32_t(c)));
    return list;
  });
}

std::string binades(const std::string& spelling) {
  return guarded([&] {
    Value list = Value::array();
    for (const auto& b : fp8emu::binades(fp8emu::parse_format(spelling)))
      list.push(Value::object()
                    .set("exponent", b.exponent)
                    .set("count", b.count)
                    .set("spacing", fp8emu::shortest(b.spacing))
                    .set("subnormal", b.subnormal));
    return list;
  });
}

std::string version() { return FP8EMU_VERSION; }

}  // namespace fp8emu::explorer

