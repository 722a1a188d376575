// Tests of the JSON writer (json.hpp): the convention for non-finite numbers, escapes,
// integers, digits, member order and layout.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>

#include "fp8emu/json.hpp"

using fp8emu::json::Value;

TEST_CASE("json: non-finite numbers are strings, absent values null", "[json]") {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Value a = Value::array();
  a.push(1.5).push(inf).push(-inf).push(nan).push(Value()).push(Value::number(inf, 10));
  CHECK(a.dump() == "[1.5, \"inf\", \"-inf\", \"nan\", null, \"inf\"]\n");
  CHECK(Value(0.1).dump() == "0.1\n");  // shortest round trip
  CHECK(Value::number(2.0 / 3.0, 10).dump() == "0.6666666667\n");
  CHECK(Value::number(100.0, 10).dump() == "100\n");
}

TEST_CASE("json: strings, integers, booleans, objects in order", "[json]") {
  CHECK(Value("a\"b\\c\nd\x01").dump() == "\"a\\\"b\\\\c\\nd\\u0001\"\n");
  CHECK(Value(std::uint64_t{18446744073709551615u}).dump() == "18446744073709551615\n");
  CHECK(Value(-3).dump() == "-3\n");
  CHECK(Value(true).dump() == "true\n");
  Value o = Value::object();
  o.set("z", 1).set("a", Value::array().push(Value::object().set("k", "v").set("n", 2)));
  o.set("e", Value::object());
  CHECK(o.dump() ==
        "{\n  \"z\": 1,\n  \"a\": [\n    {\"k\": \"v\", \"n\": 2}\n  ],\n  \"e\": {}\n}\n");
  CHECK_THROWS_AS(o.set("z", 2), std::logic_error);
  CHECK_THROWS_AS(o.push(1), std::logic_error);
  CHECK_THROWS_AS(Value::array().set("k", 1), std::logic_error);
}
