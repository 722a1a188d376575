// One rank, this process (fp8sim/comm.hpp).
#include "fp8sim/comm.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace fp8sim {

void LocalCommunicator::sendrecv(std::span<const std::byte> send, int to, std::span<std::byte> recv, int from) {
  if (to != 0 || from != 0)
    throw std::invalid_argument("sendrecv: rank " + std::to_string(to == 0 ? from : to) + " of a job of 1 rank");
  if (send.size() != recv.size()) throw std::invalid_argument("sendrecv: sizes differ on one rank");
  if (!send.empty()) std::memmove(recv.data(), send.data(), send.size());
}

void LocalCommunicator::allgather(std::span<const std::byte> mine, std::span<std::byte> all) {
  if (all.size() != mine.size()) throw std::invalid_argument("allgather: the output is not 1 x the input");
  if (!mine.empty()) std::memmove(all.data(), mine.data(), mine.size());
}

void LocalCommunicator::abort(const std::string& why, int code) {
  std::fprintf(stderr, "rank 0: %s\n", why.c_str());
  std::fflush(stderr);
  std::exit(code);
}

Communicator& local_communicator() {
  static LocalCommunicator c;
  return c;
}

}  // namespace fp8sim
