// Prints, for each of a few deterministic sets of floats and doubles (shortest_inputs.hpp),
// its size and an FNV-1a hash of the texts shortest() gives, one line a set, so that a
// build whose standard library has no floating-point std::to_chars (emscripten's libc++,
// where shortest() is detail::shortest_portable) can be compared with the native one
// (shortest_wasm_test.sh). The first line says which shortest() this build has.
//   shortest_hash [--portable] [--dump]
// --portable hashes detail::shortest_portable instead; --dump prints every value's bits
// and text instead of the hashes, to find where two builds differ.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <version>

#include "fp8emu/explain.hpp"
#include "shortest_inputs.hpp"

namespace {

bool portable = false, dump = false;

template <class T>
std::string text(T x) {
  return portable ? fp8emu::detail::shortest_portable(x) : fp8emu::shortest(x);
}

template <class T>
void print(const char* name, const std::vector<T>& v) {
  std::uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a, 64 bits
  for (T x : v) {
    const std::string s = text(x) + "\n";
    if (dump) {
      std::uint64_t b = 0;
      std::memcpy(&b, &x, sizeof x);
      std::printf("%s %016llx %s", name, static_cast<unsigned long long>(b), s.c_str());
    }
    for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
  }
  if (!dump)
    std::printf("%s %zu %016llx\n", name, v.size(), static_cast<unsigned long long>(h));
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--portable") == 0) {
      portable = true;
    } else if (std::strcmp(argv[i], "--dump") == 0) {
      dump = true;
    } else {
      std::fprintf(stderr, "usage: shortest_hash [--portable] [--dump]\n");
      return 2;
    }
  }
  namespace in = shortest_inputs;
#if defined(__cpp_lib_to_chars) && __cpp_lib_to_chars >= 201611L
  std::printf("standard library: floating-point std::to_chars\n");
#else
  std::printf("standard library: no floating-point std::to_chars\n");
#endif
  print("float-bfloat16", in::bfloat16_floats());
  print("float-float16", in::float16_floats());
  print("float-stride", in::float32_stride(65521));
  print("float-powers", in::powers<float>(3));
  print("float-extremes", in::extremes<float>(3, 1024));
  print("float-whole", in::whole_numbers<float>(3, 200, 0x540C));
  print("double-random-bits", in::double_random_bits(0x540D, 200000));
  print("double-random-moderate", in::double_random_moderate(0x540E, 100000));
  print("double-powers", in::powers<double>(2));
  print("double-extremes", in::extremes<double>(3, 1024));
  print("double-whole", in::whole_numbers<double>(3, 2000, 0x540F));
  return 0;
}
