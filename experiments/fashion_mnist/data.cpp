// The Fashion-MNIST reader (see data.hpp).
#include "fashion_mnist/data.hpp"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <memory>

namespace fashion_mnist {
namespace {

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using Gz = std::unique_ptr<gzFile_s, GzCloser>;

// Reads exactly n bytes; throws DataError naming `what` on a short read or a zlib error.
void read_exact(gzFile f, const std::string& path, void* out, std::size_t n, const char* what) {
  std::size_t got = 0;
  auto* p = static_cast<unsigned char*>(out);
  while (got < n) {
    const unsigned chunk = unsigned(std::min<std::size_t>(n - got, 1u << 30));
    const int r = gzread(f, p + got, chunk);
    if (r < 0) {
      int err = 0;
      throw DataError(path + ": corrupt file (" + gzerror(f, &err) + ")");
    }
    if (r == 0)
      throw DataError(path + ": truncated: " + what + " needs " + std::to_string(n) + " bytes, the file has " +
                      std::to_string(got));
    got += std::size_t(r);
  }
}

}  // namespace

IdxArray read_idx(const std::string& path, int ndims) {
  errno = 0;
  Gz f(gzopen(path.c_str(), "rb"));
  if (!f) throw DataError("cannot open " + path + ": " + (errno ? std::strerror(errno) : "gzopen failed"));
  unsigned char magic[4];
  read_exact(f.get(), path, magic, 4, "the header");
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08)
    throw DataError(path + ": not an IDX file of unsigned bytes (magic " + std::to_string(magic[0]) + " " +
                    std::to_string(magic[1]) + " " + std::to_string(magic[2]) + ")");
  if (magic[3] != ndims)
    throw DataError(path + ": expected " + std::to_string(ndims) + " dimensions, the header says " +
                    std::to_string(magic[3]));
  IdxArray a;
  std::int64_t total = 1;
  for (int d = 0; d < ndims; ++d) {
    unsigned char b[4];
    read_exact(f.get(), path, b, 4, "the header");
    const std::int64_t v = (std::int64_t(b[0]) << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
    if (v <= 0 || v > (1 << 24)) throw DataError(path + ": implausible dimension " + std::to_string(v));
    a.dims.push_back(v);
    total *= v;
    if (total > (std::int64_t{1} << 32)) throw DataError(path + ": the array is implausibly large");
  }
  a.data.resize(std::size_t(total));
  read_exact(f.get(), path, a.data.data(), a.data.size(), "the data");
  unsigned char extra;
  if (gzread(f.get(), &extra, 1) != 0) throw DataError(path + ": unexpected bytes after the data");
  return a;
}

Dataset load(const std::string& dir, bool train) {
  const std::string stem = dir + "/" + (train ? "train" : "t10k");
  const std::string images = stem + "-images-idx3-ubyte.gz", labels = stem + "-labels-idx1-ubyte.gz";
  for (const std::string& p : {images, labels}) {
    Gz probe(gzopen(p.c_str(), "rb"));
    if (!probe)
      throw DataError("cannot open " + p +
                      "\nFashion-MNIST comes from the Debian package dataset-fashion-mnist:\n"
                      "  apt-get install dataset-fashion-mnist");
  }
  const IdxArray im = read_idx(images, 3), lb = read_idx(labels, 1);
  if (im.dims[0] != lb.dims[0])
    throw DataError(images + " has " + std::to_string(im.dims[0]) + " images but " + labels + " has " +
                    std::to_string(lb.dims[0]) + " labels");
  Dataset d;
  d.count = im.dims[0];
  d.rows = im.dims[1];
  d.cols = im.dims[2];
  d.classes = kClasses;
  d.x.resize(im.data.size());
  for (std::size_t i = 0; i < im.data.size(); ++i) d.x[i] = float(im.data[i]) / 255.0f;
  d.y = lb.data;
  for (std::size_t i = 0; i < d.y.size(); ++i)
    if (d.y[i] >= kClasses) throw DataError(labels + ": label " + std::to_string(d.y[i]) + " at index " + std::to_string(i) + " is not 0..9");
  return d;
}

}  // namespace fashion_mnist
