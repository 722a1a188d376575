// Tests of detail::shortest_portable (explain.hpp), the shortest() of standard libraries
// without floating-point std::to_chars: the same text as this library's std::to_chars for
// every float of every 16-bit pattern and every float16, a structured superset of the
// float32 patterns, a stride through all of them, and a few million doubles; the sets are
// in shortest_inputs.hpp. The examples' texts are what libstdc++ 12's to_chars prints.
#include <catch2/catch.hpp>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "fp8emu/explain.hpp"
#include "shortest_inputs.hpp"
#include "sweep.hpp"

using fp8emu::detail::shortest_portable;

namespace {

template <class T>
std::string to_chars_text(T x) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, r.ptr);
}

std::string bits_of(float x) {
  std::uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return fp8emu::hex_code(b, 32);
}
std::string bits_of(double x) {
  std::uint64_t b;
  std::memcpy(&b, &x, sizeof b);
  return fp8emu::hex_code(b, 64);
}

// Compares every value of a set, after checking that the set has `expected` values.
template <class T>
void compare(Sweep& sweep, const char* name, const std::vector<T>& v, std::uint64_t expected) {
  INFO(name);
  CHECK(v.size() == expected);
  std::uint64_t bad = 0;
  std::vector<std::string> msgs;
  for (T x : v) {
    const std::string want = to_chars_text(x), got = shortest_portable(x);
    if (got == want) continue;
    if (++bad <= 12)
      msgs.push_back(std::string(name) + " " + bits_of(x) + ": to_chars " + want + ", got " + got);
  }
  sweep.add(v.size(), bad, msgs);
}

}  // namespace

TEST_CASE("shortest: the portable text of examples, as libstdc++'s to_chars", "[shortest]") {
  using L = std::numeric_limits<double>;
  using F = std::numeric_limits<float>;
  const std::pair<double, const char*> doubles[] = {
      {1e-7, "1e-07"},
      {3e5, "3e+05"},
      {0.1, "0.1"},
      {100, "100"},
      {1.5, "1.5"},
      {-0.0, "-0"},
      {0.0, "0"},
      {1e22, "1e+22"},
      {1e23, "1e+23"},
      {std::ldexp(1.0, 60), "1152921504606846976"},  // fixed: the exact whole number
      {std::ldexp(1.0, 71), "2361183241434822606848"},
      {std::ldexp(1.0, 72), "4.722366482869645e+21"},
      {1.2345678901234568e+20, "123456789012345683968"},
      {L::denorm_min(), "5e-324"},
      {L::max(), "1.7976931348623157e+308"},
      {L::min(), "2.2250738585072014e-308"},
      {L::infinity(), "inf"},
      {-L::infinity(), "-inf"},
      {L::quiet_NaN(), "nan"},
      {-L::quiet_NaN(), "-nan"},
  };
  for (const auto& [x, text] : doubles) {
    CHECK(shortest_portable(x) == text);
    CHECK(fp8emu::shortest(x) == text);
  }
  const std::pair<float, const char*> floats[] = {
      {std::ldexp(1.0f, 42), "4398046511104"},
      {std::ldexp(1.0f, 43), "8.796093e+12"},
      {3e10f, "3e+10"},
      {1e-7f, "1e-07"},
      {0.1f, "0.1"},
      {-0.0f, "-0"},
      {F::denorm_min(), "1e-45"},
      {F::max(), "3.4028235e+38"},
      {F::min(), "1.1754944e-38"},
      {-F::quiet_NaN(), "-nan"},
  };
  for (const auto& [x, text] : floats) {
    CHECK(shortest_portable(x) == text);
    CHECK(fp8emu::shortest(x) == text);
  }
  // strtod and strtof set errno on the texts of subnormals; to_chars leaves errno alone.
  errno = 0;
  CHECK(shortest_portable(L::denorm_min()) == "5e-324");
  CHECK(shortest_portable(F::denorm_min() * 3) == "4e-45");
  CHECK(errno == 0);
}

TEST_CASE("shortest: portable float text equals to_chars", "[shortest]") {
  namespace in = shortest_inputs;
  Sweep sweep("shortest_portable(float) vs std::to_chars");
  const std::uint64_t stride = 4099, strided = ((std::uint64_t{1} << 32) + stride - 1) / stride;
  compare(sweep, "bfloat16", in::bfloat16_floats(), 65536);
  compare(sweep, "float16", in::float16_floats(), 65536);
  compare(sweep, "structured", in::float32_structured(0x5407), 256 * 256 * 4);
  compare(sweep, "stride", in::float32_stride(stride), strided);
  // 2^-149 .. 2^127, both signs, and 1e-45 .. 1e38, each with 3 neighbours either side.
  compare(sweep, "powers", in::powers<float>(3), (277 * 2 + 84) * 7);
  // 12 values and their 3 neighbours, 6 specials and zeros, 2 * 4096 subnormals.
  compare(sweep, "extremes", in::extremes<float>(3, 4096), 12 * 7 + 6 + 2 * 4096);
  // 2^24 .. 2^64 with 3 neighbours; 40 shifts of 1000 random integers.
  compare(sweep, "whole", in::whole_numbers<float>(3, 1000, 0x5408), 41 * 7 + 40 * 1000);
  sweep.finish(65536 * 2 + 256 * 256 * 4 + strided + (277 * 2 + 84) * 7 +
               (12 * 7 + 6 + 2 * 4096) + (41 * 7 + 40 * 1000));
}

TEST_CASE("shortest: portable double text equals to_chars", "[shortest]") {
  namespace in = shortest_inputs;
  Sweep sweep("shortest_portable(double) vs std::to_chars");
  const std::uint64_t random = adjusted(2'000'000), moderate = adjusted(1'000'000);
  compare(sweep, "random bits", in::double_random_bits(0x5409, random), random);
  compare(sweep, "random moderate", in::double_random_moderate(0x540A, moderate), moderate);
  // 2^-1074 .. 2^1023, both signs, and 1e-324 .. 1e308, each with 4 neighbours either side.
  compare(sweep, "powers", in::powers<double>(4), (2098 * 2 + 633) * 9);
  // 12 values and their 4 neighbours, 6 specials and zeros, 2 * 4096 subnormals.
  compare(sweep, "extremes", in::extremes<double>(4, 4096), 12 * 9 + 6 + 2 * 4096);
  // 2^53 .. 2^64 with 4 neighbours; 11 shifts of 20000 random integers.
  compare(sweep, "whole", in::whole_numbers<double>(4, 20000, 0x540B), 12 * 9 + 11 * 20000);
  sweep.finish(random + moderate + (2098 * 2 + 633) * 9 + (12 * 9 + 6 + 2 * 4096) +
               (12 * 9 + 11 * 20000));
}
