// fp8emu: NumPy .npy files, format versions 1.0 and 2.0 (NumPy NEP 1, "A simple file
// format for NumPy arrays", and numpy/lib/format.py).
//
// Supported: little-endian (or byte-order-free) float16, float32, float64, uint8, uint16
// and int32 in C order. Everything else is refused with a message naming what was
// found: a bad magic string, an unknown version, a truncated header or body, a malformed
// header dictionary, another dtype or byte order, Fortran order, or a shape whose size
// does not match the data. Writing goes through fp8emu/file.hpp's write_file: a target
// that is not a regular file is refused, a failed write leaves the old file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace fp8emu::npy {

/// The element types fp8emu reads and writes.
enum class DType : std::uint8_t { float16, float32, float64, uint8, uint16, int32 };

/// Returns the size in bytes of one element of `t`.
std::size_t item_size(DType t);
/// Returns NumPy's name of `t` ("float32", ...).
const char* dtype_name(DType t);

/// Thrown for every malformed or unsupported file.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Holds one array: its element type, its shape (empty for a 0-d array) and its
/// little-endian element bytes in C order.
struct Array {
  DType dtype = DType::float32;
  std::vector<std::size_t> shape;
  std::vector<std::uint8_t> data;

  /// Returns the number of elements (the product of the shape; 1 for a 0-d array).
  std::size_t size() const;
};

/// Parses the bytes of a whole .npy file; throws npy::Error.
Array parse(std::span<const std::uint8_t> bytes);
/// Reads a .npy file; throws npy::Error (also when the file cannot be read).
Array read(const std::string& path);
/// Returns the bytes of a .npy file holding `a` (version 1.0, or 2.0 for a long header);
/// throws npy::Error when the data size does not match the shape.
std::vector<std::uint8_t> serialize(const Array& a);
/// Writes `a` to `path` with write_file (fp8emu/file.hpp); throws npy::Error (with
/// write_file's message) and leaves the target as it was on failure.
void write(const std::string& path, const Array& a);

}  // namespace fp8emu::npy
