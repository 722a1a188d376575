// Runs a test once per SIMD target (Highway's dot_test.cc pattern): every target compiled
// in that this CPU runs, selected with set_simd_target, and checked to be the one whose
// kernels ran (simd_calls); a compiled target this CPU cannot run is refused by
// set_simd_target and reported as skipped.
#pragma once

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "fp8emu/array.hpp"

namespace test {

/// Selects a SIMD target for its lifetime, then returns to the automatic choice.
struct UseSimdTarget {
  explicit UseSimdTarget(std::string_view t) { fp8emu::set_simd_target(t); }
  ~UseSimdTarget() { fp8emu::set_simd_target(""); }
  UseSimdTarget(const UseSimdTarget&) = delete;
  UseSimdTarget& operator=(const UseSimdTarget&) = delete;
};

/// Returns the prefix of a sweep's name for target `t` ("[avx2] ").
inline std::string simd_label(std::string_view t) { return "[" + std::string(t) + "] "; }

/// Says whether a SIMD target is compiled in; where none is (a build for another
/// architecture, where every call takes the scalar reference), warns that a test of the
/// kernels has nothing to run.
inline bool simd_compiled_in() {
  if (!fp8emu::simd_targets().empty()) return true;
  WARN("no SIMD target is compiled in: the kernel tests have nothing to run");
  return false;
}

/// Calls body(target) for every target this CPU runs, requires that the calls body makes
/// ran that target's kernels and no other's, and returns how many targets ran (none, with
/// a warning, where no target is compiled in: these are tests of the kernels).
template <class Body>
int for_each_simd_target(Body&& body) {
  const std::vector<std::string_view> all = fp8emu::simd_targets();
  int ran = 0;
  for (std::string_view t : all) {
    if (!fp8emu::simd_target_runs(t)) {
      CHECK_THROWS_WITH(fp8emu::set_simd_target(t),
                        Catch::Contains("this CPU cannot run it"));
      WARN("SIMD target " << t << " is compiled in but skipped: this CPU cannot run it");
      continue;
    }
    std::map<std::string_view, std::uint64_t> before;
    for (std::string_view u : all) before[u] = fp8emu::simd_calls(u);
    {
      UseSimdTarget use(t);
      REQUIRE(fp8emu::simd_target() == t);
      INFO("SIMD target " << t);
      body(t);
    }
    INFO("SIMD target " << t);
    for (std::string_view u : all)
      if (u == t) CHECK(fp8emu::simd_calls(u) > before[u]);
      else CHECK(fp8emu::simd_calls(u) == before[u]);
    ++ran;
  }
  if (all.empty()) WARN("no SIMD target is compiled in: the kernel tests have nothing to run");
  return ran;
}

}  // namespace test
