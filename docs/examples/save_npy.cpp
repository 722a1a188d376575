// Writes .npy files the way docs/validating-kernels.md shows for CUDA C++ host code, and
// reads them back with fp8emu's reader. With a directory argument it leaves there the
// inputs that the shell examples use: A8.npy, B8.npy (e4m3fn codes, 16 x 64 and 64 x 16),
// A.npy, B.npy (the same shapes in float32) and x.npy (1 x 256 float32).
#include <fp8emu/convert.hpp>
#include <fp8emu/npy.hpp>

#include <cstdint>
#include <cstring>
#include <vector>

// clang-format off
// [doc:save_npy]
#include <cstdio>
#include <string>

// descr: "|u1" (FP8 codes), "<u2" (bf16/f16 codes), "<f4" (float), "<f8" (double).
bool save_npy(const char* path, const void* data, size_t bytes, const char* descr,
              size_t rows, size_t cols) {
  std::string h = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (" +
                  std::to_string(rows) + ", " + std::to_string(cols) + "), }";
  while ((10 + h.size() + 1) % 64 != 0) h += ' ';
  h += '\n';
  const unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                 (unsigned char)(h.size() & 0xFF), (unsigned char)(h.size() >> 8)};
  FILE* f = std::fopen(path, "wb");
  if (!f) return false;
  bool ok = std::fwrite(pre, 1, 10, f) == 10 &&
            std::fwrite(h.data(), 1, h.size(), f) == h.size() &&
            std::fwrite(data, 1, bytes, f) == bytes;
  return std::fclose(f) == 0 && ok;
}
// [/doc:save_npy]
// clang-format on

namespace {

// Saves an array with save_npy, reads it back with fp8emu::npy::read and checks it.
template <class T>
bool save_and_check(const std::string& path, const std::vector<T>& v, const char* descr,
                    fp8emu::npy::DType dtype, size_t rows, size_t cols) {
  if (!save_npy(path.c_str(), v.data(), v.size() * sizeof(T), descr, rows, cols)) return false;
  const fp8emu::npy::Array a = fp8emu::npy::read(path);
  const bool same = a.dtype == dtype && a.shape == std::vector<size_t>{rows, cols} &&
                    a.data.size() == v.size() * sizeof(T) &&
                    std::memcmp(a.data.data(), v.data(), a.data.size()) == 0;
  std::printf("%s %s %zux%zu %s\n", descr, fp8emu::npy::dtype_name(a.dtype), a.shape[0], a.shape[1],
              same ? "read back identical" : "DIFFERS");
  return same;
}

// A fixed value in [-6, 6] for element k of a matrix (no random number generator: the
// files are the same on every machine).
float value(size_t k, size_t mul) { return float(int((k * mul) % 97) - 48) / 8.0f; }

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? std::string(argv[1]) + "/" : std::string("./");
  const fp8emu::Format e4m3fn = fp8emu::formats::e4m3fn{};
  std::vector<float> a(16 * 64), b(64 * 16), x(256);
  std::vector<std::uint8_t> a8(a.size()), b8(b.size());
  for (size_t k = 0; k < a.size(); ++k)
    a8[k] = std::uint8_t(fp8emu::encode(e4m3fn, a[k] = value(k, 37)));
  for (size_t k = 0; k < b.size(); ++k)
    b8[k] = std::uint8_t(fp8emu::encode(e4m3fn, b[k] = value(k, 53)));
  for (size_t k = 0; k < x.size(); ++k) x[k] = value(k, 29) * 0.75f;
  using fp8emu::npy::DType;
  const bool ok = save_and_check(dir + "A8.npy", a8, "|u1", DType::uint8, 16, 64) &&
                  save_and_check(dir + "B8.npy", b8, "|u1", DType::uint8, 64, 16) &&
                  save_and_check(dir + "A.npy", a, "<f4", DType::float32, 16, 64) &&
                  save_and_check(dir + "B.npy", b, "<f4", DType::float32, 64, 16) &&
                  save_and_check(dir + "x.npy", x, "<f4", DType::float32, 1, 256);
  return ok ? 0 : 1;
}
