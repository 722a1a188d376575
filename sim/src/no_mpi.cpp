// A build without MPI (FP8EMU_MPI off or MPI not found): the world is this process.
#include <stdexcept>
#include <string>

#include "fp8sim/comm.hpp"
#include "launcher.hpp"

namespace fp8sim {

bool mpi_built() { return false; }

// Under a launcher that starts several ranks, each would run the whole job alone and
// write the same outputs: refused. One rank (mpirun -np 1) is this process.
Communicator& world_communicator(int&, char**&) {
  const detail::Launch l = detail::launch_environment();
  if (l.size > 1 || l.rank > 0)
    throw std::runtime_error(
        "started by an MPI launcher as rank " + std::to_string(l.rank) +
        (l.size > 0 ? " of " + std::to_string(l.size) : std::string()) +
        ", but this build has no MPI (FP8EMU_MPI off, or MPI not found when configuring): every rank would run "
        "the whole job alone. Build with MPI (Debian libopenmpi-dev openmpi-bin) or run without mpirun");
  return local_communicator();
}

}  // namespace fp8sim
