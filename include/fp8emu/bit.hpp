// fp8emu: bit_cast for standard libraries that lack std::bit_cast.
//
// The library is also compiled with libc++ 13 (emscripten 3.1.6, for WebAssembly), whose
// <bit> has no std::bit_cast (C++20, P0476R2); its compiler, like GCC >= 11, has the
// builtin that std::bit_cast is made of. Elsewhere this is std::bit_cast itself.
#pragma once

#include <type_traits>
#include <version>

#if defined(__cpp_lib_bit_cast)
#include <bit>
#endif

namespace fp8emu::detail {

/// Returns the object representation of `from` as a `To` (std::bit_cast's contract).
template <class To, class From>
  requires(sizeof(To) == sizeof(From) && std::is_trivially_copyable_v<To> &&
           std::is_trivially_copyable_v<From>)
constexpr To bit_cast(const From& from) noexcept {
#if defined(__cpp_lib_bit_cast)
  return std::bit_cast<To>(from);
#else
  return __builtin_bit_cast(To, from);
#endif
}

}  // namespace fp8emu::detail
