// A labelled data set as the simulator trains on it, and the error of unreadable files.
// Readers of particular data sets belong to the studies (experiments/).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <vector>

namespace fp8sim {

/// Thrown for a missing, corrupt or truncated data or checkpoint file; the message names
/// the file.
struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A labelled set of `count` examples, each `rows` x `cols` floats (rows 1 for a vector),
/// stored example after example, with labels 0 .. classes - 1.
struct Dataset {
  std::int64_t count = 0, rows = 0, cols = 0;
  int classes = 0;
  std::vector<float> x;
  std::vector<std::uint8_t> y;
  std::int64_t features() const { return rows * cols; }
};

}  // namespace fp8sim
