// MPI_COMM_WORLD as a Communicator (fp8sim/comm.hpp): the build with MPI (FP8EMU_MPI on
// and MPI found; sim/src/no_mpi.cpp is the build without). MPI 3.1 (MPI Forum, "MPI: A
// Message-Passing Interface Standard", version 3.1, 2015): chapters 3 (point to point),
// 5 (collectives), 8.3 (error handlers), 12.4 (threads).
//
// At its edges:
//  - Sizes: MPI counts are int. Every message is cut into pieces of at most piece_ bytes
//    (2^30 unless FP8EMU_MPI_PIECE_BYTES says otherwise, the same on every rank), so
//    messages of any size_t length work, above 2^31 bytes included.
//  - Errors: MPI_COMM_WORLD and its duplicates return errors (MPI_ERRORS_RETURN); a
//    failed call prints "rank R: MPI_Xxx failed: <MPI's error string>" and ends the job
//    with MPI_Abort(1). A wrong argument (a rank outside the job, a negative tag, sizes
//    that do not fit) throws std::invalid_argument before anything is sent, as
//    LocalCommunicator does. A peer that dies is the launcher's to report: Open MPI's
//    mpirun then ends every rank (docs/distributed.md, "When a rank fails").
//  - Exit: MPI is finalized when the process exits with status 0; a rank that exits with
//    another status ends the whole job with MPI_Abort(status) (glibc's on_exit), instead
//    of waiting in MPI_Finalize for ranks that wait for it.
#include <mpi.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fp8sim/comm.hpp"

namespace fp8sim {
namespace {

constexpr std::size_t kDefaultPiece = std::size_t{1} << 30;

int world_rank() {
  int r = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

/// Prints "rank R: `what`" on stderr and ends the job with `code`.
[[noreturn]] void end_job(const std::string& what, int code) {
  std::fprintf(stderr, "rank %d: %s\n", world_rank(), what.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  std::abort();  // MPI_Abort does not return.
}

/// Ends the job unless `err` is MPI_SUCCESS, naming `call` and MPI's error string.
void check(int err, const char* call) {
  if (err == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(err, text, &len) != MPI_SUCCESS) len = std::snprintf(text, sizeof text, "error code %d", err);
  end_job(std::string(call) + " failed: " + std::string(text, std::size_t(len)), 1);
}

// allreduce_max's order, exact and commutative so that every rank gets the same bits
// whatever order MPI combines them in: IEEE 754-2019 totalOrder (5.10) on numbers (so
// +0 > -0), any NaN above every number, and of two NaNs the larger bit pattern.
bool is_nan_bits(std::uint64_t b) { return (b & 0x7FFF'FFFF'FFFF'FFFFu) > 0x7FF0'0000'0000'0000u; }
std::int64_t total_order_key(std::uint64_t b) {
  return std::int64_t(b >> 63 ? b ^ 0x7FFF'FFFF'FFFF'FFFFu : b);  // negatives: larger magnitude, smaller key
}
std::uint64_t max_bits(std::uint64_t a, std::uint64_t b) {
  const bool na = is_nan_bits(a), nb = is_nan_bits(b);
  if (na || nb) return na && nb ? std::max(a, b) : (na ? a : b);
  return total_order_key(a) >= total_order_key(b) ? a : b;
}
void max_op(void* in, void* inout, int* len, MPI_Datatype*) {
  for (int i = 0; i < *len; ++i) {
    std::uint64_t a, b;
    std::memcpy(&a, static_cast<const char*>(in) + 8 * std::size_t(i), 8);
    std::memcpy(&b, static_cast<char*>(inout) + 8 * std::size_t(i), 8);
    const std::uint64_t m = max_bits(a, b);
    std::memcpy(static_cast<char*>(inout) + 8 * std::size_t(i), &m, 8);
  }
}

/// The piece size every rank uses: FP8EMU_MPI_PIECE_BYTES (1 .. 2^30) or 2^30.
std::size_t piece_from_environment() {
  const char* s = std::getenv("FP8EMU_MPI_PIECE_BYTES");
  if (!s || !*s) return kDefaultPiece;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (errno || *end || s[0] == '-' || v < 1 || v > kDefaultPiece)
    end_job("invalid FP8EMU_MPI_PIECE_BYTES '" + std::string(s) + "' (expected 1.." + std::to_string(kDefaultPiece) + ")", 2);
  return std::size_t(v);
}

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(std::size_t piece) : piece_(piece) {
    check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    // Duplicates inherit the error handler; the point-to-point messages of send and
    // receive_any cannot be mistaken for sendrecv's.
    check(MPI_Comm_dup(MPI_COMM_WORLD, &p2p_), "MPI_Comm_dup");
    check(MPI_Comm_dup(MPI_COMM_WORLD, &ring_), "MPI_Comm_dup");
    check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
    void* ub = nullptr;
    int found = 0;
    check(MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &ub, &found), "MPI_Comm_get_attr");
    tag_ub_ = found ? *static_cast<int*>(ub) : 32767;  // 32767: the least MPI allows
    check(MPI_Op_create(&max_op, 1, &max_op_), "MPI_Op_create");
    // Every rank must cut messages the same way.
    long long p[2] = {(long long)piece_, -(long long)piece_};
    check(MPI_Allreduce(MPI_IN_PLACE, p, 2, MPI_LONG_LONG, MPI_MAX, ring_), "MPI_Allreduce");
    if (p[0] != -p[1]) end_job("FP8EMU_MPI_PIECE_BYTES differs between ranks", 2);
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    check(MPI_Get_library_version(version, &len), "MPI_Get_library_version");
    const std::string v(version, std::size_t(len));
    description_ = "mpi (" + v.substr(0, v.find_first_of(",\n")) + ")";  // "Open MPI v4.1.4"
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void sendrecv(std::span<const std::byte> send, int to, std::span<std::byte> recv, int from) override {
    check_rank("sendrecv", to);
    check_rank("sendrecv", from);
    // Piece i of `send` with piece i of `recv`, one MPI_Sendrecv each (MPI_PROC_NULL for
    // the side that has no piece i); the last piece is shorter than piece_, empty where
    // the size is a multiple of it, so that both ends count the same pieces. One pair at
    // a time: Open MPI does not keep the order of more than 65536 messages in flight
    // between two ranks (seen here with 70000 pieces of 1 byte).
    const std::size_t ns = send.size() / piece_ + 1, nr = recv.size() / piece_ + 1;
    for (std::size_t i = 0, at = 0; i < std::max(ns, nr); ++i, at += piece_) {
      const std::size_t s_n = i < ns ? std::min(piece_, send.size() - at) : 0;
      const std::size_t r_n = i < nr ? std::min(piece_, recv.size() - at) : 0;
      MPI_Status st;
      check(MPI_Sendrecv(i < ns ? send.data() + at : nullptr, int(s_n), MPI_BYTE, i < ns ? to : MPI_PROC_NULL, 0,
                         i < nr ? recv.data() + at : nullptr, int(r_n), MPI_BYTE, i < nr ? from : MPI_PROC_NULL, 0,
                         ring_, &st), "MPI_Sendrecv");
      if (i < nr) check_count("sendrecv", st, r_n);
    }
  }

  void send(std::span<const std::byte> bytes, int to, int tag) override {
    check_rank("send", to);
    check_tag("send", tag);
    if (to == rank_) {  // to itself: queued, as MPI_Send to oneself could wait forever
      self_.push_back({tag, Message{rank_, std::vector<std::byte>(bytes.begin(), bytes.end())}});
      return;
    }
    // Pieces of piece_ bytes, the last one shorter (empty when the size is a multiple
    // of piece_): the receiver knows the end without being told the size.
    for_each_piece(bytes.size(), [&](std::size_t at, std::size_t n) {
      check(MPI_Send(bytes.data() + at, int(n), MPI_BYTE, to, tag, p2p_), "MPI_Send");
    }, true);
  }

  Message receive_any(int tag) override {
    check_tag("receive_any", tag);
    for (auto it = self_.begin(); it != self_.end(); ++it)
      if (it->first == tag) {
        Message m = std::move(it->second);
        self_.erase(it);
        return m;
      }
    // Polled, sleeping up to 1 ms between looks, rather than a blocking MPI_Probe, which
    // spins on a core that the rank's training threads need.
    MPI_Message handle;
    MPI_Status st;
    int flag = 0;
    for (int wait_us = 0;; wait_us = std::min(2 * wait_us + 1, 1000)) {
      check(MPI_Improbe(MPI_ANY_SOURCE, tag, p2p_, &flag, &handle, &st), "MPI_Improbe");
      if (flag) break;
      std::this_thread::sleep_for(std::chrono::microseconds(wait_us));
    }
    Message m;
    m.from = st.MPI_SOURCE;
    std::size_t n = received_count(st);
    m.bytes.resize(n);
    check(MPI_Mrecv(m.bytes.data(), int(n), MPI_BYTE, &handle, &st), "MPI_Mrecv");
    // The rest from the same sender, in order (MPI does not let one sender's messages
    // with one tag overtake each other).
    while (n == piece_) {
      check(MPI_Probe(m.from, tag, p2p_, &st), "MPI_Probe");
      n = received_count(st);
      const std::size_t at = m.bytes.size();
      m.bytes.resize(at + n);
      check(MPI_Recv(m.bytes.data() + at, int(n), MPI_BYTE, m.from, tag, p2p_, &st), "MPI_Recv");
    }
    return m;
  }

  void allgather(std::span<const std::byte> mine, std::span<std::byte> all) override {
    const std::size_t n = mine.size();
    if (all.size() / std::size_t(size_) != n || all.size() % std::size_t(size_) != 0)
      throw std::invalid_argument("allgather: the output is not " + std::to_string(size_) + " x the input");
    // In place, so that `mine` may be a part of `all`.
    if (n) std::memmove(all.data() + std::size_t(rank_) * n, mine.data(), n);
    if (all.size() < piece_) {
      check(MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, all.data(), int(n), MPI_BYTE, ring_), "MPI_Allgather");
      return;
    }
    for (int r = 0; r < size_; ++r) broadcast(all.subspan(std::size_t(r) * n, n), r);
  }

  void allreduce_max(std::span<double> v) override {
    for_each_piece(v.size() * 8, [&](std::size_t at, std::size_t n) {
      check(MPI_Allreduce(MPI_IN_PLACE, v.data() + at / 8, int(n / 8), MPI_DOUBLE, max_op_, ring_), "MPI_Allreduce");
    }, false, 8);
  }

  void allreduce_sum(std::span<std::int64_t> v) override {
    for_each_piece(v.size() * 8, [&](std::size_t at, std::size_t n) {
      check(MPI_Allreduce(MPI_IN_PLACE, v.data() + at / 8, int(n / 8), MPI_INT64_T, MPI_SUM, ring_), "MPI_Allreduce");
    }, false, 8);
  }

  void broadcast(std::span<std::byte> bytes, int root) override {
    check_rank("broadcast", root);
    for_each_piece(bytes.size(), [&](std::size_t at, std::size_t n) {
      check(MPI_Bcast(bytes.data() + at, int(n), MPI_BYTE, root, ring_), "MPI_Bcast");
    });
  }

  void barrier() override { check(MPI_Barrier(ring_), "MPI_Barrier"); }

  [[noreturn]] void abort(const std::string& why, int code) override { end_job(why, code); }

  std::string description() const override { return description_; }

 private:
  void check_rank(const char* op, int r) const {
    if (r < 0 || r >= size_)
      throw std::invalid_argument(std::string(op) + ": rank " + std::to_string(r) + " of a job of " +
                                  std::to_string(size_) + " ranks");
  }
  void check_tag(const char* op, int tag) const {
    if (tag < 0 || tag > tag_ub_)
      throw std::invalid_argument(std::string(op) + ": tag " + std::to_string(tag) + " outside 0.." + std::to_string(tag_ub_));
  }
  /// Calls f(offset, length) for consecutive pieces of `total` bytes, each at most piece_
  /// (rounded down to a multiple of `unit`, the element size). `closed`: the last piece
  /// is shorter than piece_ even when that makes it empty (send's end marker); otherwise
  /// an empty total has no pieces.
  template <class F>
  void for_each_piece(std::size_t total, F f, bool closed = false, std::size_t unit = 1) const {
    const std::size_t step = std::max(unit, piece_ / unit * unit);
    std::size_t at = 0;
    for (; total - at >= step; at += step) f(at, step);
    if (at < total || closed) f(at, total - at);
  }
  static std::size_t received_count(const MPI_Status& st) {
    int n = 0;
    check(MPI_Get_count(&st, MPI_BYTE, &n), "MPI_Get_count");
    return std::size_t(n);
  }
  void check_count(const char* op, const MPI_Status& st, std::size_t expected) const {
    const std::size_t n = received_count(st);
    if (n != expected)
      end_job(std::string(op) + ": rank " + std::to_string(st.MPI_SOURCE) + " sent " + std::to_string(n) +
                  " bytes where " + std::to_string(expected) + " were expected", 1);
  }

  std::size_t piece_;
  MPI_Comm p2p_ = MPI_COMM_NULL, ring_ = MPI_COMM_NULL;
  MPI_Op max_op_ = MPI_OP_NULL;
  int rank_ = 0, size_ = 1, tag_ub_ = 32767;
  std::string description_;
  std::vector<std::pair<int, Message>> self_;  ///< (tag, message) sent to this rank, in order.
};

/// Whether an MPI launcher started this process: Open MPI's mpirun and mpiexec set
/// OMPI_COMM_WORLD_SIZE (and PMIX_RANK), PMIx launchers such as srun --mpi=pmix set
/// PMIX_RANK, PMI-1 and PMI-2 launchers (srun --mpi=pmi2, MPICH's Hydra) PMI_RANK and PMI_SIZE.
bool started_by_launcher() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

void finish(int status, void*) {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (status != 0) end_job("exit status " + std::to_string(status) + ": ending the job", status);
  MPI_Finalize();
}

MpiCommunicator* start_mpi(int& argc, char**& argv) {
  int initialized = 0, provided = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    // Errors here are MPI's default (fatal, with its own message).
    MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
#ifdef __GLIBC__
    on_exit(finish, nullptr);
#else
    std::atexit([] { finish(0, nullptr); });
#endif
  } else {
    MPI_Query_thread(&provided);  // MPI started by the program, which finalizes it
  }
  if (provided < MPI_THREAD_SERIALIZED)
    end_job("the MPI library gives thread level " + std::to_string(provided) +
                ", less than MPI_THREAD_SERIALIZED (" + std::to_string(MPI_THREAD_SERIALIZED) +
                "), which fp8emu needs (a sweep's scheduler thread calls MPI while other threads train)", 1);
  return new MpiCommunicator(piece_from_environment());
}

}  // namespace

bool mpi_built() { return true; }

Communicator& world_communicator(int& argc, char**& argv) {
  if (!started_by_launcher()) return local_communicator();
  static MpiCommunicator* const world = start_mpi(argc, argv);  // never destroyed: MPI outlives main
  return *world;
}

}  // namespace fp8sim
