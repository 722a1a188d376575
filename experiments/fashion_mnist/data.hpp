// Fashion-MNIST (Xiao, Rasul and Vollgraf 2017, arXiv 1708.07747) in the IDX format of
// LeCun et al.'s MNIST files: a big-endian header (two zero bytes, the element type 0x08
// for unsigned bytes, the number of dimensions, then each dimension as a 32-bit integer)
// followed by the elements. Read from the gzip files of the Debian package
// dataset-fashion-mnist with zlib (gzread also reads uncompressed files).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fp8sim/dataset.hpp"

namespace fashion_mnist {

using fp8sim::DataError;
using fp8sim::Dataset;

/// Where the Debian package dataset-fashion-mnist installs the files.
inline constexpr const char* kDir = "/usr/share/datasets/fashion-mnist";

/// The classes of Fashion-MNIST (labels 0..9).
inline constexpr int kClasses = 10;

/// An IDX array of unsigned bytes: its dimensions and elements.
struct IdxArray {
  std::vector<std::int64_t> dims;
  std::vector<std::uint8_t> data;
};

/// Reads an IDX file of unsigned bytes with `ndims` dimensions; throws DataError.
IdxArray read_idx(const std::string& path, int ndims);

/// Loads the training (60000) or test (10000) set from `dir`: 28 x 28 images of floats in
/// [0, 1] (pixel / 255), kClasses classes; throws DataError with the install command when
/// the files are missing, and for inconsistent files.
Dataset load(const std::string& dir, bool train);

}  // namespace fashion_mnist
