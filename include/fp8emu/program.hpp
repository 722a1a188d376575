// fp8emu: what every fp8emu program (fp8emu, fp8study, fp8hw) does first in main().
#pragma once

#include <unistd.h>

#include <cstdlib>

namespace fp8emu {

/// Makes OpenMP threads wait passively: unless the environment sets OMP_WAIT_POLICY or
/// GOMP_SPINCOUNT, sets OMP_WAIT_POLICY=PASSIVE and executes the program again, once.
///
/// libgomp reads OMP_WAIT_POLICY once, while it is loaded, before main runs. Its default
/// spins a waiting thread for a while, which on a machine busy with other work burns the
/// time slices the other threads of a team need: one training run on two threads of a
/// loaded 2-core machine took 20 times as long as on one thread (docs/performance.md).
/// Without /proc (no /proc/self/exe) the program runs on with libgomp's default policy.
/// For a program's main() only: a library caller keeps its own process as it is.
inline void wait_passively(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  if (::setenv("OMP_WAIT_POLICY", "PASSIVE", 0) != 0) return;
  ::execv("/proc/self/exe", argv);
}

}  // namespace fp8emu
