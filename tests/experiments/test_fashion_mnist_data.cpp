// The IDX reader: good files (gzip and plain), every kind of bad header, truncation and
// trailing bytes, inconsistent image and label files; the real Fashion-MNIST files when
// the Debian package is installed.
#include <zlib.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "fashion_mnist/data.hpp"

using fp8sim::DataError;

namespace {

std::string temp_dir() {
  static const std::string d = [] {
    std::string t = (std::filesystem::temp_directory_path() / "fp8sim-data-XXXXXX").string();
    return std::string(mkdtemp(t.data()));
  }();
  return d;
}

std::vector<unsigned char> idx(int ndims, const std::vector<std::uint32_t>& dims,
                               std::size_t payload, unsigned char type = 0x08) {
  std::vector<unsigned char> b = {0, 0, type, (unsigned char)ndims};
  for (std::uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back((unsigned char)(d >> s));
  for (std::size_t i = 0; i < payload; ++i) b.push_back((unsigned char)(i % 10));
  return b;
}

std::string write(const std::string& name, const std::vector<unsigned char>& bytes, bool gz) {
  const std::string path = temp_dir() + "/" + name;
  if (gz) {
    gzFile f = gzopen(path.c_str(), "wb");
    REQUIRE(f);
    if (!bytes.empty()) REQUIRE(gzwrite(f, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
    gzclose(f);
  } else {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    REQUIRE(f);
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
  return path;
}

}  // namespace

TEST_CASE("IDX files: good ones are read exactly", "[sim][data]") {
  for (bool gz : {true, false}) {
    const auto a = fashion_mnist::read_idx(write("good3", idx(3, {2, 3, 4}, 24), gz), 3);
    CHECK(a.dims == std::vector<std::int64_t>{2, 3, 4});
    REQUIRE(a.data.size() == 24);
    for (std::size_t i = 0; i < 24; ++i) CHECK(a.data[i] == i % 10);
  }
}

TEST_CASE("IDX files: bad ones give a clear error", "[sim][data]") {
  using Catch::Contains;
  CHECK_THROWS_WITH(fashion_mnist::read_idx(temp_dir() + "/missing.gz", 1), Contains("cannot open"));
  CHECK_THROWS_WITH(fashion_mnist::read_idx(write("empty", {}, true), 1), Contains("truncated: the header"));
  CHECK_THROWS_WITH(fashion_mnist::read_idx(write("type", idx(1, {4}, 4, 0x0D), true), 1),
                    Contains("not an IDX file of unsigned bytes"));
  CHECK_THROWS_WITH(fashion_mnist::read_idx(write("ndims", idx(3, {1, 2, 2}, 4), true), 1),
                    Contains("expected 1 dimensions, the header says 3"));
  CHECK_THROWS_WITH(fashion_mnist::read_idx(write("zero", idx(1, {0}, 0), true), 1),
                    Contains("implausible dimension 0"));
  CHECK_THROWS_WITH(fashion_mnist::read_idx(write("short", idx(3, {2, 3, 4}, 23), true), 3),
                    Contains("truncated: the data needs 24 bytes, the file has 23"));
  CHECK_THROWS_WITH(fashion_mnist::read_idx(write("long", idx(1, {4}, 5), false), 1),
                    Contains("unexpected bytes after the data"));
  // A gzip stream cut in the middle (pseudo-random bytes, so that it does not compress
  // below the cut).
  auto g = idx(1, {4000}, 0);
  std::uint32_t lcg = 1;
  for (int i = 0; i < 4000; ++i) g.push_back((unsigned char)((lcg = lcg * 1664525u + 1013904223u) >> 24));
  const std::string whole = write("cut.gz", g, true);
  std::FILE* f = std::fopen(whole.c_str(), "rb");
  std::vector<unsigned char> bytes(100);
  bytes.resize(std::fread(bytes.data(), 1, bytes.size(), f));
  std::fclose(f);
  const std::string cut = write("cut2.gz", bytes, false);
  CHECK_THROWS_AS(fashion_mnist::read_idx(cut, 1), DataError);
}

TEST_CASE("Fashion-MNIST loader: missing files name the Debian package", "[sim][data]") {
  CHECK_THROWS_WITH(fashion_mnist::load(temp_dir() + "/nowhere", true),
                    Catch::Contains("apt-get install dataset-fashion-mnist"));
  // Images and labels that disagree, and a label out of range.
  const std::string d = temp_dir() + "/fm";
  std::filesystem::create_directories(d);
  write("fm/t10k-images-idx3-ubyte.gz", idx(3, {3, 2, 2}, 12), true);
  write("fm/t10k-labels-idx1-ubyte.gz", idx(1, {2}, 2), true);
  CHECK_THROWS_WITH(fashion_mnist::load(d, false), Catch::Contains("has 3 images but"));
  auto bad = idx(1, {3}, 0);
  bad.insert(bad.end(), {1, 12, 3});
  write("fm/t10k-labels-idx1-ubyte.gz", bad, true);
  CHECK_THROWS_WITH(fashion_mnist::load(d, false), Catch::Contains("label 12 at index 1 is not 0..9"));
}

TEST_CASE("Fashion-MNIST from dataset-fashion-mnist", "[sim][data]") {
  if (!std::filesystem::exists(std::string(fashion_mnist::kDir) + "/t10k-labels-idx1-ubyte.gz")) {
    WARN("dataset-fashion-mnist is not installed; the real files are not checked");
    return;
  }
  const fashion_mnist::Dataset test = fashion_mnist::load(fashion_mnist::kDir, false);
  CHECK(test.count == 10000);
  CHECK(test.rows == 28);
  CHECK(test.cols == 28);
  CHECK(test.x.size() == 10000u * 784u);
  std::vector<int> per_class(10);
  for (auto l : test.y) ++per_class[l];
  for (int c : per_class) CHECK(c == 1000);  // the test set is balanced
  const fashion_mnist::Dataset train = fashion_mnist::load(fashion_mnist::kDir, true);
  CHECK(train.count == 60000);
}
