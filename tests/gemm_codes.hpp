// A matrix of codes with its own storage, for the GEMM tests (test_gemm.cpp,
// test_gemm_accum.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include "fp8emu/convert.hpp"
#include "fp8emu/gemm.hpp"

namespace test {

/// A matrix of codes with its storage.
struct Codes {
  fp8emu::Format f;
  std::int64_t rows, cols;
  fp8emu::Layout layout = fp8emu::Layout::row_major;
  std::vector<std::uint8_t> u8;
  std::vector<std::uint16_t> u16;
  std::vector<std::uint32_t> u32;

  Codes(fp8emu::Format fmt, std::int64_t r, std::int64_t c,
        fp8emu::Layout l = fp8emu::Layout::row_major)
      : f(fmt), rows(r), cols(c), layout(l) {
    const std::size_t n = std::size_t(r * c);
    if (fp8emu::code_bytes(f) == 1) u8.resize(n);
    else if (fp8emu::code_bytes(f) == 2) u16.resize(n);
    else u32.resize(n);
  }
  std::size_t idx(std::int64_t r, std::int64_t c) const {
    return std::size_t(layout == fp8emu::Layout::row_major ? r * cols + c : c * rows + r);
  }
  void set(std::int64_t r, std::int64_t c, std::uint32_t code) {
    if (!u8.empty()) u8[idx(r, c)] = std::uint8_t(code);
    else if (!u16.empty()) u16[idx(r, c)] = std::uint16_t(code);
    else u32[idx(r, c)] = code;
  }
  void set_value(std::int64_t r, std::int64_t c, double v) { set(r, c, fp8emu::encode(f, v)); }
  std::uint32_t at(std::int64_t r, std::int64_t c) const {
    if (!u8.empty()) return u8[idx(r, c)];
    if (!u16.empty()) return u16[idx(r, c)];
    return u32[idx(r, c)];
  }
  fp8emu::CodeMatrix view() const {
    const void* d = !u8.empty() ? (const void*)u8.data() : !u16.empty() ? (const void*)u16.data()
                                                                        : (const void*)u32.data();
    return {f, d, rows, cols, layout, 0};
  }
};

}  // namespace test
