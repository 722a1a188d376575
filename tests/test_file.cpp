// The output writer (fp8emu/file.hpp) at its edges: targets that are not regular files
// (a FIFO, a directory, a symbolic link to either), a symbolic link to a regular file
// (written through), a name of 255 bytes, a directory that cannot be written, a write
// that fails half-way; every failure leaves the target as it was and no temporary file.
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "catch2/catch.hpp"
#include "fp8emu/file.hpp"
#include "fp8emu/npy.hpp"

using namespace fp8emu;
namespace fs = std::filesystem;

namespace {

// A fresh, empty directory for one test case.
fs::path fresh_dir(const std::string& name) {
  const fs::path d =
      fs::temp_directory_path() / ("fp8emu-file-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::vector<std::string> entries(const fs::path& d) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(d)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::string contents(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string error_of(const std::string& path, const std::string& text) {
  try {
    write_file(path, text);
  } catch (const FileError& e) {
    return e.what();
  }
  return "no error";
}

npy::Array small_array() {
  npy::Array a;
  a.dtype = npy::DType::uint8;
  a.shape = {3};
  a.data = {1, 2, 3};
  return a;
}

bool still_fifo(const fs::path& p) { return fs::symlink_status(p).type() == fs::file_type::fifo; }

}  // namespace

TEST_CASE("file: a FIFO, a directory or a device is refused and left as it is", "[file]") {
  const fs::path d = fresh_dir("special");
  const fs::path fifo = d / "pipe";
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  CHECK_THROWS_WITH(npy::write(fifo.string(), small_array()),
                    Catch::Contains(fifo.string()) && Catch::Contains("not a regular file"));
  CHECK(still_fifo(fifo));
  CHECK(error_of(fifo.string(), "x").find("is a FIFO") != std::string::npos);
  CHECK(still_fifo(fifo));
  fs::create_directories(d / "sub");
  CHECK(error_of((d / "sub").string(), "x").find("is a directory") != std::string::npos);
  CHECK(fs::is_directory(d / "sub"));
  CHECK(error_of((d / "sub/").string(), "x").find("not a regular file") != std::string::npos);
  // /dev/null: as root the old writer replaced it with a regular file.
  CHECK(error_of("/dev/null", "x").find("'/dev/null' is a character device") != std::string::npos);
  CHECK(fs::is_character_file("/dev/null"));
  // A symbolic link to a FIFO is refused too, and both stay as they were.
  fs::create_symlink(fifo, d / "to-pipe");
  CHECK(error_of((d / "to-pipe").string(), "x").find("is a symbolic link to a FIFO") !=
        std::string::npos);
  CHECK(fs::is_symlink(d / "to-pipe"));
  CHECK(still_fifo(fifo));
  // A dangling link: nothing is created behind it.
  fs::create_symlink(d / "nowhere", d / "dangling");
  CHECK(error_of((d / "dangling").string(), "x").find("symbolic link to a missing file") !=
        std::string::npos);
  CHECK(!fs::exists(d / "nowhere"));
  CHECK(entries(d) == std::vector<std::string>{"dangling", "pipe", "sub", "to-pipe"});
  CHECK(error_of("", "x").find("empty file name") != std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("file: a symbolic link to a regular file is written through", "[file]") {
  const fs::path d = fresh_dir("link");
  fs::create_directories(d / "real");
  write_file((d / "real" / "target.txt").string(), "old");
  fs::create_symlink("real/target.txt", d / "link.txt");  // relative, as ln -s makes it
  write_file((d / "link.txt").string(), "new contents");
  CHECK(fs::is_symlink(d / "link.txt"));
  CHECK(contents(d / "real" / "target.txt") == "new contents");
  CHECK(entries(d) == std::vector<std::string>{"link.txt", "real"});
  CHECK(entries(d / "real") == std::vector<std::string>{"target.txt"});
  // Through npy::write as well.
  npy::write((d / "link.txt").string(), small_array());
  CHECK(fs::is_symlink(d / "link.txt"));
  CHECK(npy::read((d / "real" / "target.txt").string()).data == small_array().data);
  fs::remove_all(d);
}

TEST_CASE("file: a name of 255 bytes, replacement, permissions", "[file]") {
  const fs::path d = fresh_dir("names");
  const std::string longest(255, 'n');
  npy::write((d / longest).string(), small_array());
  CHECK(npy::read((d / longest).string()).data == small_array().data);
  write_file((d / longest).string(), "replaced");
  CHECK(contents(d / longest) == "replaced");
  CHECK(entries(d) == std::vector<std::string>{longest});
  // A name the file system cannot hold fails with the name, and leaves nothing.
  CHECK(error_of((d / std::string(256, 'n')).string(), "x").find("File name too long") !=
        std::string::npos);
  CHECK(entries(d) == std::vector<std::string>{longest});
  // A replaced file keeps its permission bits; a new one gets 0666 less the umask.
  fs::permissions(d / longest, fs::perms(0600));
  write_file((d / longest).string(), "again");
  CHECK(fs::status(d / longest).permissions() == fs::perms(0600));
  const mode_t mask = ::umask(022);
  write_file((d / "new.txt").string(), "");
  ::umask(mask);
  CHECK(fs::status(d / "new.txt").permissions() == fs::perms(0644));
  CHECK(contents(d / "new.txt").empty());
  // A relative name is written in the current directory.
  const fs::path cwd = fs::current_path();
  fs::current_path(d);
  write_file("relative.txt", "here");
  fs::current_path(cwd);
  CHECK(contents(d / "relative.txt") == "here");
  fs::remove_all(d);
}

TEST_CASE("file: a directory that cannot be written, a missing one", "[file]") {
  const fs::path d = fresh_dir("denied");
  CHECK(
      error_of((d / "missing" / "a.txt").string(), "x").find((d / "missing" / "a.txt").string()) !=
      std::string::npos);
  CHECK_THROWS_AS(npy::write((d / "missing" / "a.npy").string(), small_array()), npy::Error);
  // procfs takes no new files, not even from root.
  CHECK(error_of("/proc/self/fp8emu-out.txt", "x").find("cannot create a file in '/proc/self'") !=
        std::string::npos);
  if (::geteuid() != 0) {  // permission bits bind everyone but root
    fs::create_directories(d / "ro");
    fs::permissions(d / "ro", fs::perms(0555));
    CHECK(error_of((d / "ro" / "a.txt").string(), "x").find("Permission denied") !=
          std::string::npos);
    fs::permissions(d / "ro", fs::perms(0755));
    CHECK(fs::is_empty(d / "ro"));
  }
  // A parent that is a regular file.
  write_file((d / "plain").string(), "x");
  CHECK(error_of((d / "plain" / "a.txt").string(), "x").find("Not a directory") !=
        std::string::npos);
  const std::vector<std::string> left = entries(d);
  CHECK((left == std::vector<std::string>{"plain"} ||
         left == std::vector<std::string>{"plain", "ro"}));
  fs::remove_all(d);
}

TEST_CASE("file: a write that fails half-way leaves the old file and no temporary", "[file]") {
  const fs::path d = fresh_dir("partial");
  const fs::path target = d / "out.bin";
  write_file(target.string(), "the old contents");
  // A file size limit makes write() fail with EFBIG part of the way through.
  rlimit old{};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
  auto* previous = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = 4096;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  const std::string big(10000, 'b');
  const std::string e = error_of(target.string(), big);
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, previous);
  CHECK(e.find("cannot write '" + target.string() + "'") != std::string::npos);
  CHECK(e.find("File too large") != std::string::npos);
  CHECK(contents(target) == "the old contents");
  CHECK(entries(d) == std::vector<std::string>{"out.bin"});
  fs::remove_all(d);
}
