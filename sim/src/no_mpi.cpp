// A build without MPI (FP8EMU_MPI off or MPI not found): the world is this process.
#include "fp8sim/comm.hpp"

namespace fp8sim {

bool mpi_built() { return false; }

Communicator& world_communicator(int&, char**&) { return local_communicator(); }

}  // namespace fp8sim
