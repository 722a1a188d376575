// fp8emu: the one writer of output files (.npy arrays, JSON and CSV reports, markdown,
// plot data, checkpoints), and the gnuplot runner whose pictures it writes; POSIX only.
//
// write_file(path, bytes) guarantees, at its edges:
//  - A target that exists and is not a regular file (a directory, a FIFO, a device such
//    as /dev/null, a socket) is refused with an error naming it, and left as it is.
//  - A symbolic link to a regular file is written through: the link stays, the file it
//    resolves to (realpath) is replaced. A link to anything else, or to a missing file,
//    is refused.
//  - The bytes go to a new temporary file ".fp8emu-XXXXXX" (14 bytes) in the target's
//    directory, so any name the file system takes works (255 bytes on Linux). The
//    temporary file is fsynced, renamed over the target, then the directory is fsynced:
//    a reader sees the old file or the whole new one, never a part.
//  - On every failure (no such directory, no permission, a full disk, a file size limit)
//    the temporary file is removed, the target is unchanged, and FileError names the path
//    and the system's reason.
//  - A replaced file keeps its permission bits; a new one gets 0666 less the umask.
// The checks are made just before the write; a target changed by another process in
// between is not detected.
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fp8emu {

/// Thrown when an output file cannot be written; the message names the file.
class FileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Writes `bytes` to `path` as described above; throws FileError.
void write_file(const std::string& path, std::span<const std::uint8_t> bytes);
/// Writes `text` to `path` as described above; throws FileError.
void write_file(const std::string& path, std::string_view text);

/// Runs `gnuplot SCRIPT` in the directory `dir` (the script written there already), its
/// output and messages going to DIR/gnuplot.log, then moves each of `outputs` (names
/// relative to `dir`, drawn by the script as NAME.tmp) into place with write_file, so that
/// a picture is replaced whole or not at all. Returns "" when every output is in place
/// (the log is then removed), else why one is missing: gnuplot not found, its exit status
/// and last message, or an output it did not draw (the log is kept). `finished`, when
/// given, is set to whether gnuplot ran and exited with status 0. Throws FileError when
/// a drawn picture cannot be written.
std::string run_gnuplot(const std::string& dir, const std::string& script,
                        const std::vector<std::string>& outputs, bool* finished = nullptr);

}  // namespace fp8emu
