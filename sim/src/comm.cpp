// One rank, this process (fp8sim/comm.hpp).
#include "fp8sim/comm.hpp"

#include "launcher.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace fp8sim {

void LocalCommunicator::sendrecv(std::span<const std::byte> send, int to, std::span<std::byte> recv, int from) {
  if (to != 0 || from != 0)
    throw std::invalid_argument("sendrecv: rank " + std::to_string(to == 0 ? from : to) + " of a job of 1 rank");
  if (send.size() != recv.size()) throw std::invalid_argument("sendrecv: sizes differ on one rank");
  if (!send.empty()) std::memmove(recv.data(), send.data(), send.size());
}

void LocalCommunicator::send(std::span<const std::byte> bytes, int to, int tag) {
  if (to != 0) throw std::invalid_argument("send: rank " + std::to_string(to) + " of a job of 1 rank");
  if (tag < 0) throw std::invalid_argument("send: negative tag");
  queue_.push_back({tag, Message{0, std::vector<std::byte>(bytes.begin(), bytes.end())}});
}

Message LocalCommunicator::receive_any(int tag) {
  for (auto it = queue_.begin(); it != queue_.end(); ++it)
    if (it->first == tag) {
      Message m = std::move(it->second);
      queue_.erase(it);
      return m;
    }
  throw std::logic_error("receive_any: no message with tag " + std::to_string(tag) + " was sent on a job of 1 rank");
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

namespace detail {

Launch launch_environment() {
  // A variable's integer value, or `otherwise` where it is unset or not an integer.
  auto number = [](const char* name, int otherwise) {
    const char* s = std::getenv(name);
    if (!s || !*s) return otherwise;
    char* end = nullptr;
    const long v = std::strtol(s, &end, 10);
    return *end || v < 0 || v > 1 << 30 ? otherwise : int(v);
  };
  Launch l;
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(v)) l.by_launcher = true;
  l.size = number("OMPI_COMM_WORLD_SIZE", number("PMI_SIZE", 0));
  l.rank = number("OMPI_COMM_WORLD_RANK", number("PMIX_RANK", number("PMI_RANK", -1)));
  return l;
}

}  // namespace detail

Communicator& local_communicator() {
  static LocalCommunicator c;
  return c;
}

}  // namespace fp8sim
