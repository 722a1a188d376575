// What an MPI launcher told this process through its environment: the one test of both
// builds (sim/src/mpi.cpp, sim/src/no_mpi.cpp) of whether mpirun, mpiexec or srun started it.
#pragma once

namespace fp8sim::detail {

struct Launch {
  /// Open MPI's mpirun and mpiexec set OMPI_COMM_WORLD_SIZE (and PMIX_RANK); PMIx
  /// launchers such as srun --mpi=pmix set PMIX_RANK; PMI-1 and PMI-2 launchers (srun
  /// --mpi=pmi2, MPICH's Hydra) PMI_RANK and PMI_SIZE.
  bool by_launcher = false;
  int size = 0;   ///< The job's ranks where the launcher says (OMPI_COMM_WORLD_SIZE, PMI_SIZE), else 0.
  int rank = -1;  ///< This process's rank where it says (OMPI_COMM_WORLD_RANK, PMIX_RANK, PMI_RANK), else -1.
};

/// Reads the launcher's variables (sim/src/comm.cpp).
Launch launch_environment();

}  // namespace fp8sim::detail
