// Runs requests for the explorer's entry points (web/explorer_api.hpp) natively and prints
// their results, for comparison with the same requests run in the WebAssembly module
// (explorer_dump.js). One request per line of standard input, fields separated by tabs:
//   catalog | options | format F | binades F | code F C | codes F FIRST COUNT
//   explain F X ROUNDING SATURATION NAN DAZ FTZ BITS R | explain_all F X SATURATION NAN DAZ FTZ BITS R
// (DAZ and FTZ are 0 or 1). For each request one line: the length of the result and two
// 32-bit FNV-1a hashes of its bytes (offset bases 2166136261 and 0x01000193), in hex; with
// --full, the result itself followed by a line "%%".
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "explorer_api.hpp"

namespace {

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out(1);
  for (char c : line) {
    if (c == '\t')
      out.emplace_back();
    else
      out.back() += c;
  }
  return out;
}

double number(const std::string& s) { return std::strtod(s.c_str(), nullptr); }

std::string run(const std::vector<std::string>& a) {
  namespace x = fp8emu::explorer;
  const std::string& fn = a[0];
  const auto n = a.size();
  if (fn == "catalog" && n == 1) return x::catalog();
  if (fn == "options" && n == 1) return x::option_tables();
  if (fn == "format" && n == 2) return x::format(a[1]);
  if (fn == "binades" && n == 2) return x::binades(a[1]);
  if (fn == "code" && n == 3) return x::code(a[1], number(a[2]));
  if (fn == "codes" && n == 4) return x::codes(a[1], number(a[2]), number(a[3]));
  if (fn == "explain" && n == 10)
    return x::explain(a[1], a[2], a[3], a[4], a[5], a[6] == "1", a[7] == "1",
                      int(number(a[8])), number(a[9]));
  if (fn == "explain_all" && n == 9)
    return x::explain_all(a[1], a[2], a[3], a[4], a[5] == "1", a[6] == "1", int(number(a[7])),
                          number(a[8]));
  std::cerr << "explorer_dump: bad request '" << fn << "' with " << n << " fields\n";
  std::exit(2);
}

std::string digest(const std::string& s) {
  std::uint32_t a = 2166136261u, b = 0x01000193u;
  for (unsigned char c : s) {
    a = (a ^ c) * 16777619u;
    b = (b ^ c) * 16777619u;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, "%zu %08x%08x\n", s.size(), unsigned(a), unsigned(b));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  const bool full = argc > 1 && std::string(argv[1]) == "--full";
  std::string line;
  while (std::getline(std::cin, line)) {
    const std::string r = run(split(line));
    std::cout << (full ? r + "%%\n" : digest(r));
  }
  return std::cout.good() ? 0 : 1;
}
