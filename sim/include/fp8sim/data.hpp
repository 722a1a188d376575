// Fashion-MNIST (Xiao, Rasul and Vollgraf 2017, arXiv 1708.07747) in the IDX format of
// LeCun et al.'s MNIST files: a big-endian header (two zero bytes, the element type 0x08
// for unsigned bytes, the number of dimensions, then each dimension as a 32-bit integer)
// followed by the elements. Read from the gzip files of the Debian package
// dataset-fashion-mnist with zlib (gzread also reads uncompressed files).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace fp8sim {

/// Thrown for a missing, corrupt or truncated data file; the message names the file.
struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Where the Debian package dataset-fashion-mnist installs the files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// An IDX array of unsigned bytes: its dimensions and elements.
struct IdxArray {
  std::vector<std::int64_t> dims;
  std::vector<std::uint8_t> data;
};

/// Reads an IDX file of unsigned bytes with `ndims` dimensions; throws DataError.
IdxArray read_idx(const std::string& path, int ndims);

/// A labelled image set: `features` floats per example in [0, 1] (pixel / 255), labels
/// 0..9.
struct Dataset {
  std::int64_t count = 0, rows = 0, cols = 0;
  std::vector<float> x;
  std::vector<std::uint8_t> y;
  std::int64_t features() const { return rows * cols; }
};

/// Loads the training (60000) or test (10000) set from `dir`; throws DataError with the
/// install command when the files are missing, and for inconsistent files.
Dataset load_fashion_mnist(const std::string& dir, bool train);

}  // namespace fp8sim
