// libFuzzer target for the .npy reader: any byte string either parses into an array
// whose data size matches its shape, or throws npy::Error; nothing else may happen.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "fp8emu/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const fp8emu::npy::Array a = fp8emu::npy::parse({data, size});
    if (a.data.size() != a.size() * fp8emu::npy::item_size(a.dtype)) std::abort();
    // What parses must serialize and parse again to the same array.
    const fp8emu::npy::Array b = fp8emu::npy::parse(fp8emu::npy::serialize(a));
    if (b.shape != a.shape || b.dtype != a.dtype || b.data != a.data) std::abort();
  } catch (const fp8emu::npy::Error&) {
  }
  return 0;
}
