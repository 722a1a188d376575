// A counter for exhaustive sweeps: counts every case, keeps the first mismatches with
// their details, and prints "sweep NAME: N cases, M mismatches" (collected by the test
// command into its summary).
#pragma once

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "fp8emu/explain.hpp"

struct Sweep {
  std::string name;
  std::uint64_t cases = 0, mismatches = 0;
  std::vector<std::string> first;
  std::mutex mu;

  explicit Sweep(std::string n) : name(std::move(n)) {}

  // Records a batch (thread-safe).
  void add(std::uint64_t n, std::uint64_t bad, const std::vector<std::string>& msgs = {}) {
    std::lock_guard<std::mutex> lock(mu);
    cases += n;
    mismatches += bad;
    for (const auto& m : msgs)
      if (first.size() < 12) first.push_back(m);
  }

  // Prints the summary line and asserts: no mismatch and exactly `expected` cases.
  void finish(std::uint64_t expected) {
    std::printf("sweep %s: %llu cases, %llu mismatches\n", name.c_str(),
                (unsigned long long)cases, (unsigned long long)mismatches);
    std::fflush(stdout);
    for (const auto& m : first) UNSCOPED_INFO(m);
    CHECK(mismatches == 0);
    CHECK(cases == expected);
  }
};

// "format e4m3fn rne/finite input 0x3C00: expected 0x38, got 0x39".
inline std::string mismatch(const std::string& fmt, fp8emu::Rounding r, fp8emu::Saturation s,
                            const std::string& input, std::uint32_t expected, std::uint32_t got,
                            int bits) {
  return "format " + fmt + " " + std::string(fp8emu::to_string(r)) + "/" +
         std::string(fp8emu::to_string(s)) + " input " + input + ": expected " +
         fp8emu::hex_code(expected, bits) + ", got " + fp8emu::hex_code(got, bits);
}

// Every deterministic rounding mode and every overflow mode.
constexpr fp8emu::Rounding kDeterministic[] = {
    fp8emu::Rounding::nearest_even,    fp8emu::Rounding::nearest_away,
    fp8emu::Rounding::toward_zero,     fp8emu::Rounding::toward_positive,
    fp8emu::Rounding::toward_negative, fp8emu::Rounding::to_odd};
constexpr fp8emu::Saturation kSaturations[] = {
    fp8emu::Saturation::finite, fp8emu::Saturation::propagate, fp8emu::Saturation::none};

// Scales an iteration count down in unoptimised builds (as Highway's AdjustedReps).
inline std::uint64_t adjusted(std::uint64_t n) {
#ifdef NDEBUG
  return n;
#else
  return n / 16 + 1;
#endif
}
