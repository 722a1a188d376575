// The ranks of a distributed job, as the simulator sees them: data-parallel training
// (fp8sim/lm.hpp: LmConfig::micro_batches, the gradient all-reduce) and sweeps talk to
// the other ranks only through this interface. Its implementations: LocalCommunicator
// (one rank, this process; always built) and, where fp8emu is built with MPI
// (FP8EMU_MPI), MPI_COMM_WORLD (sim/src/mpi.cpp). Every operation is collective unless it
// says otherwise, and exact: maxima and integer sums do not depend on the order in which
// ranks combine, and nothing here adds floats, so that a run's bytes never depend on the
// transport. Floating-point reductions (the gradient all-reduce and its quantization of
// partial sums) are modelled in fp8sim/allreduce.hpp on top of these operations, one
// function for the arithmetic whether the ranks are real or simulated in one process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace fp8sim {

/// A message of Communicator::receive_any.
struct Message {
  int from = 0;                  ///< The sender's rank.
  std::vector<std::byte> bytes;
};

/// The ranks 0 .. size() - 1 of a job; this process is rank(). One thread at a time may
/// call a communicator, and that need not be the thread that created it (a sweep's
/// scheduler thread on rank 0 talks to the workers while another thread trains).
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Sends `send` to rank `to` and receives recv.size() bytes from rank `from`, at once
  /// (MPI_Sendrecv; a ring step). Point to point between the two ranks involved.
  virtual void sendrecv(std::span<const std::byte> send, int to, std::span<std::byte> recv, int from) = 0;
  /// Sends `bytes` to rank `to` with `tag` (>= 0); returns when `bytes` may be reused.
  /// Point to point (a sweep's work queue); a rank may send to itself.
  virtual void send(std::span<const std::byte> bytes, int to, int tag) = 0;
  /// Receives the next message with `tag` from any rank, waiting for one. Messages from
  /// one sender with one tag arrive in the order sent. Point to point.
  virtual Message receive_any(int tag) = 0;
  /// Every rank's `mine` (the same size on every rank), concatenated in rank order into
  /// `all` (size() x mine.size() bytes).
  virtual void allgather(std::span<const std::byte> mine, std::span<std::byte> all) = 0;
  /// Replaces each element by its maximum over the ranks (NaN wins: a NaN on any rank
  /// gives NaN on all).
  virtual void allreduce_max(std::span<double> v) = 0;
  /// Replaces each element by its sum over the ranks (exact; no overflow checks).
  virtual void allreduce_sum(std::span<std::int64_t> v) = 0;
  /// Rank `root`'s `bytes` on every rank (the size is the same on every rank).
  virtual void broadcast(std::span<std::byte> bytes, int root) = 0;
  virtual void barrier() = 0;
  /// Ends the whole job with exit status `code`, `why` printed on stderr by this rank
  /// prefixed by "rank R: " (MPI_Abort). Not collective.
  [[noreturn]] virtual void abort(const std::string& why, int code) = 0;
  /// "local" or "mpi (Open MPI 4.1.4)": for reports.
  virtual std::string description() const = 0;
};

/// One rank: this process alone. allgather copies, reductions leave the values as they
/// are, sendrecv to and from rank 0 copies `send` into `recv`, send to rank 0 queues the
/// message for receive_any (which throws std::logic_error when none is queued: it would
/// wait forever); abort prints and exits. Not thread-safe.
class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void sendrecv(std::span<const std::byte> send, int to, std::span<std::byte> recv, int from) override;
  void send(std::span<const std::byte> bytes, int to, int tag) override;
  Message receive_any(int tag) override;
  void allgather(std::span<const std::byte> mine, std::span<std::byte> all) override;
  void allreduce_max(std::span<double>) override {}
  void allreduce_sum(std::span<std::int64_t>) override {}
  void broadcast(std::span<std::byte>, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(const std::string& why, int code) override;
  std::string description() const override { return "local"; }

 private:
  std::vector<std::pair<int, Message>> queue_;  ///< (tag, message), in the order sent.
};

/// The process's one LocalCommunicator.
Communicator& local_communicator();

/// Whether this build has MPI (FP8EMU_MPI; the implementation is sim/src/mpi.cpp).
bool mpi_built();

/// The job's ranks. In a build with MPI, when the process was started by an MPI launcher
/// (mpirun, mpiexec or srun: the launcher's environment says so), MPI_COMM_WORLD, with MPI
/// initialised on the first call and finalised at normal exit; otherwise
/// local_communicator(). `argc`, `argv`: main's.
Communicator& world_communicator(int& argc, char**& argv);

}  // namespace fp8sim
