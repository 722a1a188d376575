// .npy reading and writing: round trips of every dtype and shape, hand-made version 1.0
// and 2.0 files, and every kind of bad input (each one a clear npy::Error, never a crash).
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "catch2/catch.hpp"
#include "fp8emu/npy.hpp"

using namespace fp8emu;

namespace {

// Builds a file from a header dict and a body, with the given version.
std::vector<std::uint8_t> make_file(const std::string& dict, std::size_t body_bytes,
                                    int major = 1) {
  std::vector<std::uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', std::uint8_t(major), 0};
  const std::string h = dict + "\n";
  out.push_back(std::uint8_t(h.size()));
  out.push_back(std::uint8_t(h.size() >> 8));
  if (major == 2) out.insert(out.end(), {0, 0});
  out.insert(out.end(), h.begin(), h.end());
  for (std::size_t i = 0; i < body_bytes; ++i) out.push_back(std::uint8_t(i * 7));
  return out;
}

std::string error_of(const std::vector<std::uint8_t>& bytes) {
  try {
    npy::parse(bytes);
  } catch (const npy::Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("npy: round trip of every dtype and shape", "[npy]") {
  const npy::DType types[] = {npy::DType::float16, npy::DType::float32, npy::DType::float64,
                              npy::DType::uint8,   npy::DType::uint16,  npy::DType::int32};
  const std::vector<std::vector<std::size_t>> shapes = {{}, {0}, {1}, {7}, {3, 4}, {2, 3, 5}, {1, 0, 4}};
  int n = 0;
  for (npy::DType t : types) {
    for (const auto& shape : shapes) {
      npy::Array a;
      a.dtype = t;
      a.shape = shape;
      a.data.resize(a.size() * npy::item_size(t));
      for (std::size_t i = 0; i < a.data.size(); ++i) a.data[i] = std::uint8_t(i * 13 + 1);
      const auto bytes = npy::serialize(a);
      CHECK(bytes.size() % 64 == a.data.size() % 64);  // the data starts at a multiple of 64
      const npy::Array b = npy::parse(bytes);
      CHECK(b.dtype == a.dtype);
      CHECK(b.shape == a.shape);
      CHECK(b.data == a.data);
      ++n;
    }
  }
  CHECK(n == 42);
}

TEST_CASE("npy: headers as NumPy writes them, versions 1.0 and 2.0", "[npy]") {
  const auto v1 = make_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24);
  const npy::Array a = npy::parse(v1);
  CHECK(a.dtype == npy::DType::float32);
  CHECK(a.shape == std::vector<std::size_t>{2, 3});
  const auto v2 = make_file("{\"shape\": (5,), \"fortran_order\": False, \"descr\": \"|u1\"}", 5, 2);
  const npy::Array b = npy::parse(v2);
  CHECK(b.dtype == npy::DType::uint8);
  CHECK(b.shape == std::vector<std::size_t>{5});
  CHECK(npy::parse(make_file("{'descr': '<i4', 'fortran_order': True, 'shape': (1, 4)}", 16))
            .dtype == npy::DType::int32);  // Fortran order with one long axis is C order
  CHECK(npy::parse(make_file("{'descr': '<f8', 'fortran_order': False, 'shape': ()}", 8)).size() == 1);
  CHECK(npy::parse(make_file("{'descr': '<u2', 'fortran_order': False, 'shape': (3L,)}", 6)).size() == 3);
}

TEST_CASE("npy: bad input gives a clear error", "[npy]") {
  const std::string ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  CHECK_THAT(error_of({}), Catch::Contains("not a .npy file"));
  auto bad_magic = make_file(ok, 24);
  bad_magic[1] = 'X';
  CHECK_THAT(error_of(bad_magic), Catch::Contains("magic"));
  auto v3 = make_file(ok, 24);
  v3[6] = 3;
  CHECK_THAT(error_of(v3), Catch::Contains("unsupported .npy version 3.0"));
  CHECK_THAT(error_of(make_file("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 24)),
             Catch::Contains("big-endian"));
  CHECK_THAT(error_of(make_file("{'descr': '<c8', 'fortran_order': False, 'shape': (2, 3), }", 48)),
             Catch::Contains("unsupported dtype '<c8'"));
  CHECK_THAT(error_of(make_file("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24)),
             Catch::Contains("Fortran-order"));
  CHECK_THAT(error_of(make_file(ok, 23)), Catch::Contains("needs 24 bytes of data, the file has 23"));
  CHECK_THAT(error_of(make_file(ok, 25)), Catch::Contains("needs 24 bytes of data, the file has 25"));
  CHECK_THAT(error_of(make_file("{'descr': '<f4', 'shape': (2, 3), }", 24)), Catch::Contains("required"));
  CHECK_THAT(error_of(make_file("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 8)),
             Catch::Contains("repeated key 'descr'"));
  CHECK_THAT(error_of(make_file("{'descr': '<f4', 'fortran_order': Nope, 'shape': (2,)}", 8)),
             Catch::Contains("True or False"));
  CHECK_THAT(error_of(make_file("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", 8)),
             Catch::Contains("non-negative integer"));
  CHECK_THAT(error_of(make_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", 8)),
             Catch::Contains("text after"));
  CHECK_THAT(error_of(make_file("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999)}", 8)),
             Catch::Contains("more than 2^64"));
  CHECK_THAT(error_of(make_file("{'descr': '<f4, 'fortran_order': False}", 8)), Catch::Contains("malformed"));
  // Every truncation of a valid file is an error, never a crash.
  const auto full = make_file(ok, 24);
  int truncated = 0;
  for (std::size_t len = 0; len < full.size(); ++len) {
    const std::vector<std::uint8_t> part(full.begin(), full.begin() + std::ptrdiff_t(len));
    CHECK(error_of(part) != "no error");
    ++truncated;
  }
  CHECK(truncated == int(full.size()));
}

TEST_CASE("npy: files, atomic writes", "[npy]") {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("fp8emu-npy-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  npy::Array a;
  a.dtype = npy::DType::uint16;
  a.shape = {3};
  a.data = {1, 0, 2, 0, 3, 0};
  const std::string path = (dir / "a.npy").string();
  npy::write(path, a);
  CHECK(npy::read(path).data == a.data);
  // A failed write (a missing directory) throws and leaves nothing behind.
  CHECK_THROWS_AS(npy::write((dir / "missing" / "b.npy").string(), a), npy::Error);
  // A data size that does not match the shape is refused before anything is written.
  npy::Array bad = a;
  bad.data.pop_back();
  CHECK_THROWS_WITH(npy::write((dir / "c.npy").string(), bad),
                    Catch::Contains("needs 6 bytes, the array holds 5"));
  CHECK(!std::filesystem::exists(dir / "c.npy"));
  CHECK_THROWS_WITH(npy::read((dir / "nope.npy").string()), Catch::Contains("cannot open"));
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files += e.is_regular_file();
  CHECK(files == 1);  // a.npy only: no temporary file left
  std::filesystem::remove_all(dir);
}
