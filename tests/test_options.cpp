// Tests of the option name tables (options.hpp): names, parsing, the traits of rounding
// modes against the rounding they describe, one default for stochastic bits, and the docs.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "fp8emu/convert.hpp"
#include "fp8emu/gemm.hpp"
#include "fp8emu/options.hpp"

#ifndef FP8EMU_SOURCE_DIR
#error "FP8EMU_SOURCE_DIR (the repository root) is defined by the build"
#endif

using namespace fp8emu;

namespace {

// Checks that every name of E parses back to its value, that names are unique, and that
// an unknown name throws a message that lists every name; returns the number of names.
template <class E>
std::size_t check_table() {
  std::set<std::string_view> seen;
  std::size_t i = 0;
  for (const auto& e : enum_names<E>()) {
    INFO(option_table<E>::what << " " << e.name);
    CHECK(static_cast<std::size_t>(e.value) == i++);
    CHECK(seen.insert(e.name).second);
    CHECK(!e.description.empty());
    CHECK(to_string(e.value) == e.name);
    CHECK(parse<E>(e.name) == e.value);
    CHECK(try_parse<E>(std::string(e.name) + "x") == std::nullopt);
  }
  try {
    parse<E>("no-such-name");
    FAIL("parse accepted an unknown name");
  } catch (const std::invalid_argument& x) {
    const std::string m = x.what();
    CHECK(m.starts_with("unknown " + std::string(option_table<E>::what) + " 'no-such-name'"));
    for (const auto& e : enum_names<E>()) CHECK(m.find(std::string(e.name)) != std::string::npos);
  }
  return i;
}

std::string read_doc(const std::string& name) {
  std::ifstream in(std::string(FP8EMU_SOURCE_DIR) + "/docs/" + name);
  REQUIRE(in);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Returns the section of `doc` that starts with `heading` and ends before the next "## ".
std::string section(const std::string& doc, const std::string& heading) {
  const std::size_t a = doc.find(heading);
  REQUIRE(a != std::string::npos);
  const std::size_t b = doc.find("\n## ", a + heading.size());
  return doc.substr(a, b == std::string::npos ? std::string::npos : b - a);
}

// Checks that every name of E appears in `text` as `name`; returns how many were found.
template <class E>
std::size_t names_in(const std::string& text) {
  std::size_t n = 0;
  for (const auto& e : enum_names<E>()) {
    INFO(option_table<E>::what << " `" << e.name << "` is not in its docs section");
    CHECK(text.find("`" + std::string(e.name) + "`") != std::string::npos);
    n += text.find("`" + std::string(e.name) + "`") != std::string::npos;
  }
  return n;
}

}  // namespace

TEST_CASE("every option table names each value once and parses it back", "[options]") {
  CHECK(check_table<Rounding>() == 9);
  CHECK(check_table<Saturation>() == 3);
  CHECK(check_table<NanEncoding>() == 2);
  CHECK(check_table<SumOrder>() == 3);
  CHECK(check_table<ScaleEncoding>() == 3);
  CHECK(option_names<Saturation>() == "finite, propagate, none");
}

TEST_CASE("with_option passes each run-time value as a compile-time constant", "[options]") {
  std::size_t n = 0;
  for (const auto& e : enum_names<Rounding>()) {
    const Rounding got = with_option(e.value, [](auto r) {
      static_assert(std::is_same_v<typename decltype(r)::value_type, Rounding>);
      return decltype(r)::value;
    });
    CHECK(got == e.value);
    ++n;
  }
  for (const auto& e : enum_names<SumOrder>()) {
    CHECK(with_option(e.value, [](auto o) { return int(decltype(o)::value); }) == int(e.value));
    ++n;
  }
  CHECK(n == 9 + 3);
}

TEST_CASE("the traits of a rounding mode agree with what the mode does", "[options]") {
  // x between two e4m3fn codes, 1 + 1/16 and 1 + 7/64 (ulp 1/8 at 1), of either sign;
  // with N = 4 random bits, R = 0..15. A stochastic mode reaches both neighbours as R
  // varies; a deterministic one gives one code. A mode can round away from zero for a
  // sign when some R gives the larger magnitude for one of the two inputs.
  const formats::e4m3fn f;
  std::size_t cases = 0;
  for (const auto& e : enum_names<Rounding>()) {
    INFO("rounding " << e.name);
    const ConvertOptions o{.rounding = e.value, .stochastic_bits = 4};
    bool away[2] = {false, false};
    bool random_changes = false;
    for (int neg = 0; neg < 2; ++neg)
      for (double v : {1.0625, 1.109375}) {
        const double x = neg ? -v : v;
        const std::uint32_t first = encode(f, x, o, 0);
        for (std::uint32_t r = 0; r < 16; ++r, ++cases) {
          const std::uint32_t c = encode(f, x, o, r);
          random_changes = random_changes || c != first;
          away[neg] = away[neg] || std::fabs(decode(f, c)) > std::fabs(x);
        }
      }
    CHECK(e.stochastic == random_changes);
    CHECK(is_stochastic(e.value) == random_changes);
    const RoundingDirection want = away[0] && away[1] ? RoundingDirection::either
                                   : away[0]          ? RoundingDirection::toward_positive
                                   : away[1]          ? RoundingDirection::toward_negative
                                                      : RoundingDirection::toward_zero;
    // Round-to-odd rounds 1 + 1/16 up to the odd code 1 + 1/8, yet it is a truncation
    // with a sticky last bit: beyond max it stops at max, as toward_zero does.
    CHECK(e.overflow == (e.value == Rounding::to_odd ? RoundingDirection::toward_zero : want));
    if (e.value == Rounding::to_odd) CHECK(want == RoundingDirection::either);
  }
  CHECK(cases == 9 * 2 * 2 * 16);
}

TEST_CASE("one default for stochastic bits in every layer of the library", "[options]") {
  CHECK(default_stochastic_bits_for(Rounding::stochastic_a) == default_stochastic_bits);
  CHECK(default_stochastic_bits_for(Rounding::nearest_even) == 0);
  CHECK(default_stochastic_bits >= 1);
  CHECK(default_stochastic_bits <= 32);
  for (const auto& e : enum_names<Rounding>()) {
    const Accumulation a = parse_accumulation("fp32,rounding=" + std::string(e.name));
    INFO(accumulation_spec(a));
    CHECK(a.convert.stochastic_bits == default_stochastic_bits_for(e.value));
  }
}

TEST_CASE("the docs name every value of every option table", "[options][docs]") {
  const std::string conv = read_doc("conversion.md");
  CHECK(names_in<Rounding>(section(conv, "## Rounding modes (`Rounding`")) == 9);
  CHECK(names_in<Saturation>(section(conv, "## Overflow (`Saturation`")) == 3);
  CHECK(names_in<NanEncoding>(section(conv, "## NaN (`NanEncoding`")) == 2);
  CHECK(names_in<SumOrder>(read_doc("gemm.md")) == 3);
  // The CLI column of the rounding table lists the table's names, in its order.
  const std::string s = section(conv, "## Rounding modes (`Rounding`");
  std::vector<std::string> column;
  std::istringstream lines(s);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("| `")) continue;
    const std::size_t a = line.find("| `", 1), b = line.find('`', a + 3);
    column.push_back(line.substr(a + 3, b - a - 3));
  }
  std::vector<std::string> names;
  for (const auto& e : enum_names<Rounding>()) names.emplace_back(e.name);
  CHECK(column == names);
}
