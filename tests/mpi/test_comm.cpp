// The communicator of distributed jobs (fp8sim/comm.hpp) against its definition, run
// under an MPI launcher on any number of ranks (tests/mpi/mpirun.sh), or alone:
//   test_comm              every operation; rank 0 prints the count of checks and failures
//   test_comm --large      one message over 2^31 bytes, rank 1 to rank 0 (needs about
//                          4.3 GB; "skipped: ..." where the machine has less available)
//   test_comm --expect-local   without a launcher: world_communicator is the local one
//   test_comm --fail MODE RANK   rank RANK fails by MODE while the others wait for it
//                          (tests/mpi/failure_test.sh): kill (SIGKILL), abort
//                          (Communicator::abort, code 3), exit (status 4), throw (an
//                          uncaught exception), truncate (sends more than the peer takes)
// The messages' bytes are fp8emu::random_bits of (sender, message), so that each check
// knows what it should have received from the definition alone.
#include <fp8emu/random.hpp>

#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "fp8sim/comm.hpp"

namespace {

using fp8sim::Communicator;

int checks = 0, failures = 0;
int me = 0;

void check(bool ok, const std::string& what) {
  ++checks;
  if (!ok) {
    ++failures;
    std::printf("rank %d: FAILED: %s\n", me, what.c_str());
    std::fflush(stdout);
  }
}

/// The bytes of message `message` from rank `from`: n random bytes.
std::vector<std::byte> pattern(int from, std::uint64_t message, std::size_t n) {
  const fp8emu::RandomKey k = fp8emu::random_key(std::uint64_t(from) + 1, message);
  std::vector<std::byte> b(n);
  for (std::size_t i = 0; i < n; i += 4) {
    const std::uint32_t r = fp8emu::random_bits(k, i / 4);
    std::memcpy(b.data() + i, &r, std::min<std::size_t>(4, n - i));
  }
  return b;
}

std::uint64_t bits(double x) {
  std::uint64_t b;
  std::memcpy(&b, &x, 8);
  return b;
}
double from_bits(std::uint64_t b) {
  double x;
  std::memcpy(&x, &b, 8);
  return x;
}

/// The message sizes the tests send: small ones, one over every eager limit, and those
/// at the edges of the pieces MPI calls carry (FP8EMU_MPI_PIECE_BYTES) where they are small.
std::vector<std::size_t> sizes() {
  std::vector<std::size_t> s = {0, 1, 7, 1000, 4099, 70000};
  if (const char* p = std::getenv("FP8EMU_MPI_PIECE_BYTES")) {
    const std::size_t piece = std::strtoull(p, nullptr, 10);
    if (piece >= 2 && piece <= 100000)
      for (std::size_t n : {piece - 1, piece, piece + 1, 2 * piece, 3 * piece + 5}) s.push_back(n);
  }
  return s;
}

void test_sendrecv(Communicator& c) {
  const int n = c.size(), to = (me + 1) % n, from = (me + n - 1) % n;
  const std::vector<std::size_t> s = sizes();
  // A ring with sizes that differ between ranks: rank r sends s[(k + r) % |s|] bytes.
  for (std::size_t k = 0; k < s.size(); ++k) {
    const std::vector<std::byte> out = pattern(me, 100 + k, s[(k + std::size_t(me)) % s.size()]);
    std::vector<std::byte> in(s[(k + std::size_t(from)) % s.size()], std::byte{0xEE});
    c.sendrecv(out, to, in, from);
    check(in == pattern(from, 100 + k, in.size()),
          "sendrecv ring step " + std::to_string(k) + ": " + std::to_string(in.size()) + " bytes from rank " + std::to_string(from));
  }
  // To and from oneself.
  const std::vector<std::byte> out = pattern(me, 99, 5000);
  std::vector<std::byte> in(out.size());
  c.sendrecv(out, me, in, me);
  check(in == out, "sendrecv to oneself");
}

void test_send_receive_any(Communicator& c) {
  const int n = c.size();
  const std::vector<std::size_t> s = sizes();
  const int per_rank = int(s.size());
  // Every rank, rank 0 included, sends per_rank messages with tag 5 to rank 0, after one
  // with tag 6 that rank 0 takes only afterwards.
  c.send(pattern(me, 6000, 10), 0, 6);
  for (int i = 0; i < per_rank; ++i) c.send(pattern(me, std::uint64_t(i), s[std::size_t(i)]), 0, 5);
  if (me == 0) {
    std::vector<int> next(std::size_t(n), 0);
    int received = 0;
    for (; received < n * per_rank; ++received) {
      const fp8sim::Message m = c.receive_any(5);
      if (m.from < 0 || m.from >= n) {
        check(false, "receive_any: sender " + std::to_string(m.from));
        continue;
      }
      const int i = next[std::size_t(m.from)]++;
      check(i < per_rank && m.bytes == pattern(m.from, std::uint64_t(i), s[std::size_t(i)]),
            "receive_any: message " + std::to_string(i) + " of rank " + std::to_string(m.from) +
                " in the order sent (" + std::to_string(m.bytes.size()) + " bytes)");
    }
    check(received == n * per_rank, "receive_any: message count");
    for (int r = 0; r < n; ++r) check(next[std::size_t(r)] == per_rank, "receive_any: all of rank " + std::to_string(r));
    std::vector<int> tag6(std::size_t(n), 0);
    for (int k = 0; k < n; ++k) {
      const fp8sim::Message m = c.receive_any(6);
      check(m.from >= 0 && m.from < n && m.bytes == pattern(m.from, 6000, 10), "receive_any: the tag 6 message");
      if (m.from >= 0 && m.from < n) ++tag6[std::size_t(m.from)];
    }
    for (int r = 0; r < n; ++r) check(tag6[std::size_t(r)] == 1, "receive_any: one tag 6 message of rank " + std::to_string(r));
    // The work queue's way back: rank 0 to every rank.
    for (int r = 0; r < n; ++r) c.send(pattern(0, 7000 + std::uint64_t(r), 3000), r, 7);
  }
  const fp8sim::Message m = c.receive_any(7);
  check(m.from == 0 && m.bytes == pattern(0, 7000 + std::uint64_t(me), 3000), "receive_any from rank 0");
  c.barrier();
}

void test_allgather(Communicator& c) {
  const std::size_t n = std::size_t(c.size());
  for (std::size_t len : sizes()) {
    const std::vector<std::byte> mine = pattern(me, 200 + len, len);
    std::vector<std::byte> all(n * len, std::byte{0xEE});
    c.allgather(mine, all);
    bool ok = true;
    for (std::size_t r = 0; r < n; ++r)
      ok = ok && std::vector<std::byte>(all.begin() + std::ptrdiff_t(r * len), all.begin() + std::ptrdiff_t((r + 1) * len)) ==
                     pattern(int(r), 200 + len, len);
    check(ok, "allgather of " + std::to_string(len) + " bytes per rank");
    // With `mine` a part of `all`, where this rank's part goes.
    std::vector<std::byte> again(n * len);
    std::memcpy(again.data() + std::size_t(me) * len, mine.data(), len);
    c.allgather(std::span<const std::byte>(again.data() + std::size_t(me) * len, len), again);
    check(again == all, "allgather in place, " + std::to_string(len) + " bytes per rank");
  }
  bool threw = false;
  std::vector<std::byte> wrong(n + 1);
  try {
    c.allgather(std::span<const std::byte>(wrong.data(), 1), wrong);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  check(threw, "allgather: an output of the wrong size is refused");
}

void test_allreduce_max(Communicator& c) {
  const int n = c.size(), last = n - 1;
  const double inf = std::numeric_limits<double>::infinity();
  const std::uint64_t qnan = 0x7FF8'0000'0000'0000u, neg = 0x8000'0000'0000'0000u;
  struct Case {
    const char* what;
    double mine;
    double want;
  };
  // Each case's value on this rank and its maximum over the ranks, from the definition.
  const std::vector<Case> cases = {
      {"rank number", double(me), double(last)},
      {"-inf everywhere", -inf, -inf},
      {"-inf but -1 on the last rank", me == last ? -1.0 : -inf, -1.0},
      {"+inf on rank 0", me == 0 ? inf : 1e300, inf},
      {"NaN on the last rank only", me == last ? from_bits(qnan) : inf, from_bits(qnan)},
      {"NaN on rank 0 only, -inf elsewhere", me == 0 ? from_bits(qnan | 5) : -inf, from_bits(qnan | 5)},
      {"NaNs with payloads: the largest bit pattern", from_bits(qnan | std::uint64_t(me)), from_bits(qnan | std::uint64_t(last))},
      {"a negative NaN against positive NaNs", from_bits(me == 0 ? (neg | qnan) : qnan), from_bits(neg | qnan)},
      {"-0 on rank 0, +0 elsewhere", me == 0 ? -0.0 : 0.0, n == 1 ? -0.0 : 0.0},
      {"-0 everywhere", -0.0, -0.0},
      {"the smallest subnormal against -0", me == last ? 4.9406564584124654e-324 : -0.0, 4.9406564584124654e-324},
      {"negatives: the one nearest zero", -1.0 - double(me), -1.0},
  };
  std::vector<double> v;
  for (const Case& k : cases) v.push_back(k.mine);
  c.allreduce_max(v);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    char got[64];
    std::snprintf(got, sizeof got, " (got bits 0x%016llx, want 0x%016llx)", (unsigned long long)bits(v[i]),
                  (unsigned long long)bits(cases[i].want));
    check(bits(v[i]) == bits(cases[i].want), std::string("allreduce_max: ") + cases[i].what + got);
  }
  // A long vector, over several of the pieces of FP8EMU_MPI_PIECE_BYTES where that is small.
  std::vector<double> w(20000);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = double(fp8emu::random_bits(fp8emu::random_key(std::uint64_t(me), 300), i));
  c.allreduce_max(w);
  bool ok = true;
  for (std::size_t i = 0; i < w.size(); ++i) {
    double want = -inf;
    for (int r = 0; r < n; ++r) want = std::max(want, double(fp8emu::random_bits(fp8emu::random_key(std::uint64_t(r), 300), i)));
    ok = ok && w[i] == want;
  }
  check(ok, "allreduce_max of 20000 elements");
  std::vector<double> none;
  c.allreduce_max(none);
}

void test_allreduce_sum(Communicator& c) {
  const int n = c.size();
  // Near 2^62, where a sum through double would lose the low bits.
  auto value = [](int r, int k) -> std::int64_t {
    const std::int64_t big = std::int64_t{1} << 62;
    switch (k) {
      case 0: return (r % 2 ? -big : big) + 2 * r + 1;
      case 1: return big / 4 + r;  // 4 ranks: 2^62 + 6
      case 2: return -(big / 4) - 3 * r;
      default: return std::int64_t(fp8emu::random_bits(fp8emu::random_key(std::uint64_t(r), 400), std::uint64_t(k))) << 20;
    }
  };
  std::vector<std::int64_t> v(1000);
  for (int k = 0; k < int(v.size()); ++k) v[std::size_t(k)] = value(me, k);
  c.allreduce_sum(v);
  bool ok = true;
  for (int k = 0; k < int(v.size()); ++k) {
    std::int64_t want = 0;
    for (int r = 0; r < n; ++r) want += value(r, k);
    if (v[std::size_t(k)] != want) {
      ok = false;
      check(false, "allreduce_sum element " + std::to_string(k) + ": " + std::to_string(v[std::size_t(k)]) + " for " + std::to_string(want));
    }
  }
  check(ok, "allreduce_sum of 1000 int64 near 2^62 and below, exact");
}

void test_broadcast(Communicator& c) {
  const int n = c.size();
  for (int root : {n - 1, n / 2}) {
    for (std::size_t len : sizes()) {
      std::vector<std::byte> b = me == root ? pattern(root, 500 + len, len) : std::vector<std::byte>(len, std::byte{0xEE});
      c.broadcast(b, root);
      check(b == pattern(root, 500 + len, len), "broadcast of " + std::to_string(len) + " bytes from rank " + std::to_string(root));
    }
  }
}

void test_bad_arguments(Communicator& c) {
  std::vector<std::byte> b(4);
  auto refused = [&](const char* what, auto f) {
    bool threw = false;
    try {
      f();
    } catch (const std::invalid_argument& e) {
      threw = true;
    }
    check(threw, std::string("refused: ") + what);
  };
  refused("send to rank size()", [&] { c.send(b, c.size(), 0); });
  refused("send with a negative tag", [&] { c.send(b, 0, -1); });
  refused("receive_any with a negative tag", [&] { c.receive_any(-1); });
  refused("sendrecv from rank -1", [&] { c.sendrecv(b, 0, b, -1); });
  refused("broadcast from rank size()", [&] { c.broadcast(b, c.size()); });
}

int run_all(Communicator& c) {
  check(fp8sim::mpi_built() && c.description().rfind("mpi (", 0) == 0, "description '" + c.description() + "'");
  if (const char* r = std::getenv("OMPI_COMM_WORLD_RANK")) check(std::atoi(r) == me, "rank against OMPI_COMM_WORLD_RANK");
  if (const char* s = std::getenv("OMPI_COMM_WORLD_SIZE")) check(std::atoi(s) == c.size(), "size against OMPI_COMM_WORLD_SIZE");
  test_sendrecv(c);
  test_send_receive_any(c);
  test_allgather(c);
  test_allreduce_max(c);
  test_allreduce_sum(c);
  test_broadcast(c);
  test_bad_arguments(c);
  c.barrier();
  // Every rank's counts, summed on every rank.
  std::vector<std::int64_t> counts = {checks, failures};
  c.allreduce_sum(counts);
  if (me == 0)
    std::printf("test_comm: %d ranks (%s): %lld checks, %lld failed\n", c.size(), c.description().c_str(),
                (long long)counts[0], (long long)counts[1]);
  return counts[1] == 0 && counts[0] > 0 ? 0 : 1;
}

/// MemAvailable of /proc/meminfo in bytes, 0 where unknown.
std::uint64_t available_memory() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  std::uint64_t kb = 0;
  while (f >> key >> kb) {
    if (key == "MemAvailable:") return kb * 1024;
    f.ignore(1 << 10, '\n');
  }
  return 0;
}

int run_large(Communicator& c) {
  const std::size_t n = (std::size_t{1} << 31) + (std::size_t{1} << 20) + 3;
  // Rank 0 decides for all, so that every rank takes the same way.
  std::int64_t go[1] = {me == 0 && c.size() >= 2 && available_memory() > 3 * n ? 1 : 0};
  c.broadcast(std::as_writable_bytes(std::span(go)), 0);
  if (!go[0]) {
    if (me == 0)
      std::printf("skipped: a message of %zu bytes needs 2 ranks and %zu bytes of available memory (%llu here)\n", n,
                  3 * n, (unsigned long long)available_memory());
    return 0;
  }
  if (me == 1) c.send(pattern(1, 42, n), 0, 9);
  if (me == 0) {
    const fp8sim::Message m = c.receive_any(9);
    check(m.from == 1 && m.bytes.size() == n, "a message of " + std::to_string(n) + " bytes: its size (" + std::to_string(m.bytes.size()) + ")");
    check(m.bytes == pattern(1, 42, n), "a message of " + std::to_string(n) + " bytes: its bytes");
    std::printf("test_comm --large: %zu bytes from rank 1 to rank 0: %d checks, %d failed\n", n, checks, failures);
  }
  std::vector<std::int64_t> f = {failures};
  c.allreduce_sum(f);
  return f[0] == 0 ? 0 : 1;
}

int run_failure(Communicator& c, const std::string& mode, int rank) {
  if (c.size() < 2 || rank < 0 || rank >= c.size()) {
    std::fprintf(stderr, "test_comm --fail: rank %d of %d ranks\n", rank, c.size());
    return 2;
  }
  c.barrier();
  if (me == rank) {
    if (mode == "kill") std::raise(SIGKILL);
    if (mode == "abort") c.abort("test_comm: failing on purpose", 3);
    if (mode == "exit") std::exit(4);
    if (mode == "throw") throw std::runtime_error("test_comm: failing on purpose");
    if (mode != "truncate") {
      std::fprintf(stderr, "test_comm --fail: unknown mode '%s'\n", mode.c_str());
      std::exit(2);
    }
  }
  if (mode == "truncate" && (me == rank || me == (rank + 1) % c.size())) {
    // RANK sends 100 bytes where its peer's sendrecv takes 10.
    const int peer = me == rank ? (rank + 1) % c.size() : rank;
    const std::vector<std::byte> out(me == rank ? 100 : 10);
    std::vector<std::byte> in(10);
    c.sendrecv(out, peer, in, peer);
  }
  // The others wait for a message that never comes.
  c.receive_any(8);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Communicator& c = fp8sim::world_communicator(argc, argv);
  me = c.rank();
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "--expect-local") {
    check(!std::getenv("OMPI_COMM_WORLD_SIZE") && !std::getenv("PMIX_RANK"), "no launcher's environment");
    check(&c == &fp8sim::local_communicator(), "world_communicator is local_communicator()");
    check(c.size() == 1 && c.rank() == 0 && c.description() == "local", "one rank, 'local'");
    std::printf("test_comm --expect-local: MPI %s; %s, %d rank: %d checks, %d failed\n",
                fp8sim::mpi_built() ? "built" : "not built", c.description().c_str(), c.size(), checks, failures);
    return failures == 0 ? 0 : 1;
  }
  if (mode == "--large") return run_large(c);
  if (mode == "--fail" && argc == 4) return run_failure(c, argv[2], std::atoi(argv[3]));
  if (!mode.empty()) {
    std::fprintf(stderr, "usage: test_comm [--large | --expect-local | --fail MODE RANK]\n");
    return 2;
  }
  return run_all(c);
}
