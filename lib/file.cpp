// fp8emu: the output writer and the gnuplot runner (see file.hpp for what they guarantee).
#include "fp8emu/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace fp8emu {
namespace {

[[noreturn]] void fail(const std::string& what, int err) {
  throw FileError(what + ": " + std::strerror(err));
}

const char* kind(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

// The directory part of `path` ("." for a bare name).
std::string directory_of(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Where the bytes go: the path itself, or the regular file a symbolic link resolves to.
struct Target {
  std::string path;
  bool exists = false;
  mode_t mode = 0;
};

Target resolve(const std::string& path) {
  if (path.empty()) throw FileError("cannot write a file with an empty file name");
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) fail("cannot write '" + path + "'", errno);
    if (path.back() == '/')
      throw FileError("cannot write '" + path + "': the name ends in '/', not a regular file");
    return {path, false, 0};
  }
  if (S_ISLNK(st.st_mode)) {
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT)
        throw FileError("'" + path + "' is a symbolic link to a missing file; it is not written");
      fail("cannot write '" + path + "'", errno);
    }
    if (!S_ISREG(st.st_mode))
      throw FileError("'" + path + "' is a symbolic link to " + kind(st.st_mode) +
                      ", not a regular file; it is not replaced");
    char* real = ::realpath(path.c_str(), nullptr);
    if (!real) fail("cannot resolve the symbolic link '" + path + "'", errno);
    Target t{real, true, st.st_mode & 07777};
    std::free(real);
    return t;
  }
  if (!S_ISREG(st.st_mode))
    throw FileError("'" + path + "' is " + kind(st.st_mode) +
                    ", not a regular file; it is not replaced");
  return {path, true, st.st_mode & 07777};
}

// Creates a new file ".fp8emu-XXXXXX" in `dir` (mode 0666 less the umask); returns its
// descriptor and sets `name`.
int create_temporary(const std::string& dir, const std::string& path, std::string& name) {
  static std::atomic<std::uint64_t> counter{0};
  static constexpr char kDigits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::uint64_t x = std::uint64_t(::getpid()) << 32 ^
                    std::uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
  for (int attempt = 0; attempt < 100; ++attempt) {
    // splitmix64 of (pid, time, counter): a fresh name on every attempt.
    x += 0x9E3779B97F4A7C15ull * (counter.fetch_add(1) + 1);
    std::uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    std::string leaf = ".fp8emu-";
    for (int i = 0; i < 6; ++i, z /= 36) leaf += kDigits[z % 36];
    name = (dir == "/" ? "/" : dir + "/") + leaf;
    const int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) return fd;
    if (errno != EEXIST)
      fail("cannot write '" + path + "': cannot create a file in '" + dir + "'", errno);
  }
  throw FileError("cannot write '" + path + "': no free temporary name in '" + dir + "'");
}

}  // namespace

void write_file(const std::string& path, std::span<const std::uint8_t> bytes) {
  const Target t = resolve(path);
  const std::string dir = directory_of(t.path);
  std::string tmp;
  const int fd = create_temporary(dir, path, tmp);
  auto give_up = [&](int err, bool still_open) {
    if (still_open) ::close(fd);
    ::unlink(tmp.c_str());
    fail("cannot write '" + path + "'", err);
  };
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) give_up(w < 0 ? errno : EIO, true);
    done += std::size_t(w);
  }
  if (t.exists && ::fchmod(fd, t.mode) != 0) give_up(errno, true);
  if (::fsync(fd) != 0) give_up(errno, true);
  if (::close(fd) != 0) give_up(errno, false);
  if (std::rename(tmp.c_str(), t.path.c_str()) != 0) give_up(errno, false);
  // The rename is durable once the directory is: fsync it (EINVAL: a file system that
  // cannot sync directories).
  const int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d < 0) fail("wrote '" + path + "' but cannot open its directory to sync it", errno);
  const int synced = ::fsync(d) == 0 || errno == EINVAL ? 0 : errno;
  ::close(d);
  if (synced) fail("wrote '" + path + "' but cannot sync its directory", synced);
}

void write_file(const std::string& path, std::string_view text) {
  write_file(path, std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(text.data()),
                                                 text.size()));
}

namespace {

// The last line of `path` that is not blank, without its newline ("" if none).
std::string last_line(const std::string& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line))
    if (line.find_first_not_of(" \t\r^") != std::string::npos) last = line;
  return last;
}

// Runs `gnuplot script` in `dir`, stdin from /dev/null, stdout and stderr to `log`;
// returns its wait status, or -1 with `why` set when it could not be started.
int spawn_gnuplot(const std::string& dir, const std::string& script, const std::string& log,
                  std::string& why) {
  const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (out < 0) return why = "cannot write " + log + ": " + std::strerror(errno), -1;
  const int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    ::close(out);
    return why = std::string("cannot open /dev/null: ") + std::strerror(errno), -1;
  }
  // Everything the child needs is ready before fork: after it, a threaded parent's child
  // may only make async-signal-safe calls (chdir, dup2, exec, write, _exit).
  const char* const argv[] = {"gnuplot", script.c_str(), nullptr};
  const char* const where = dir.c_str();
  const pid_t pid = ::fork();
  if (pid == 0) {
    static constexpr char kNoDir[] = "fp8emu: cannot enter the plot directory\n";
    static constexpr char kNoGnuplot[] = "fp8emu: cannot run gnuplot\n";
    if (::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0) ::_exit(126);
    if (::chdir(where) != 0) {
      [[maybe_unused]] const auto w = ::write(2, kNoDir, sizeof kNoDir - 1);
      ::_exit(126);
    }
    ::execvp("gnuplot", const_cast<char* const*>(argv));
    [[maybe_unused]] const auto w = ::write(2, kNoGnuplot, sizeof kNoGnuplot - 1);
    ::_exit(127);
  }
  const int fork_error = errno;
  ::close(in);
  ::close(out);
  if (pid < 0) return why = std::string("cannot start gnuplot: ") + std::strerror(fork_error), -1;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return why = std::string("cannot wait for gnuplot: ") + std::strerror(errno), -1;
  return status;
}

}  // namespace

std::string run_gnuplot(const std::string& dir, const std::string& script,
                        const std::vector<std::string>& outputs, bool* finished) {
  namespace fs = std::filesystem;
  if (finished) *finished = false;
  const std::string log = (fs::path(dir) / "gnuplot.log").string();
  std::string why;
  const int status = spawn_gnuplot(dir, script, log, why);
  if (status == -1) return why;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
    return "gnuplot is not installed or not on PATH (Debian: apt-get install gnuplot-nox)";
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const std::string how = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                              : "signal " + std::to_string(WTERMSIG(status));
    const std::string said = last_line(log);
    return "gnuplot failed on " + script + " (" + how + ")" + (said.empty() ? "" : ": " + said) +
           "; its messages are in " + log;
  }
  if (finished) *finished = true;
  // gnuplot writes NAME.tmp; its bytes reach NAME through the same writer as every output.
  std::error_code ec;
  for (const std::string& name : outputs) {
    const fs::path drawn = fs::path(dir) / (name + ".tmp");
    std::ifstream in(drawn, std::ios::binary);
    if (!in) return "gnuplot wrote no " + drawn.string() + "; see gnuplot.log";
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) return "cannot read " + drawn.string() + " from gnuplot";
    write_file((fs::path(dir) / name).string(), bytes);
    fs::remove(drawn, ec);
  }
  fs::remove(log, ec);
  return "";
}

}  // namespace fp8emu
