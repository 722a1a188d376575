// Data-parallel training across real MPI ranks (run under tests/mpi/mpirun.sh with 2 or
// 4 ranks; docs/simulator.md "Data-parallel training"): every rank trains the tiny GPT of
// tests/sim/dp_fixture.hpp through the MPI world communicator and, alone, the same run
// with its ranks simulated in this process, and checks, for each gradient communication:
//  - float32: the real run equals the one-rank run and the simulated one, bit for bit
//    (the fixed-order sum: the trained model does not depend on the number of ranks);
//  - bf16, e4m3fn, e5m2 (FP8-LM scaling) and e4m3fn:none: the real run equals the run
//    with the same number of ranks simulated in one process, bit for bit, and the
//    communication quantized something (so the ring ran).
// Every rank checks its own run; rank 0 prints the job's count of checks and failures
// (summed over the ranks), and the exit status is 1 when any check failed anywhere.
#include <cstdio>
#include <string>
#include <vector>

#include "fp8sim/comm.hpp"
#include "sim/dp_fixture.hpp"

namespace {

int checks = 0, failures = 0;

void check(bool ok, int rank, const std::string& what) {
  ++checks;
  if (!ok) {
    ++failures;
    std::printf("rank %d: FAILED: %s\n", rank, what.c_str());
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace dp_fixture;
  Communicator& world = world_communicator(argc, argv);
  const int me = world.rank(), n = world.size();
  try {
    // Four micro-batches on 1, 2 or 4 ranks (M / R a power of two).
    check(n == 1 || n == 2 || n == 4, me, "the job has 1, 2 or 4 ranks, not " + std::to_string(n));
    for (const std::string comm : {"fp32", "bf16", "e4m3fn", "e5m2", "e4m3fn:none"}) {
      LmConfig c = small("fp8-hybrid-delayed", 4, n);
      set_recipe_key(c.recipe, "comm", comm);
      LmRun real(c, tokens(), world);
      train_all(real);
      LmRun simulated(c, tokens());
      train_all(simulated);
      check(real.divergence() == "", me, comm + ": the run did not diverge: " + real.divergence());
      check(difference(real, simulated) == "",
            me, comm + ": the real run equals its simulation in one process (first difference: " +
                    difference(real, simulated) + ")");
      if (comm == "fp32") {
        LmConfig one = c;
        one.ranks = 1;
        LmRun single(one, tokens());
        train_all(single);
        check(difference(real, single) == "", me,
              "fp32: " + std::to_string(n) + " ranks train the bits of 1 (first difference: " +
                  difference(real, single) + ")");
      } else {
        std::int64_t quantized = 0;
        for (const CommStats& s : real.comm_stats) quantized += s.quantized;
        check(n == 1 || quantized > 0, me, comm + ": the ring quantized values");
      }
    }
  } catch (const std::exception& e) {
    world.abort(std::string("test_dataparallel: ") + e.what(), 1);
  }
  std::vector<std::int64_t> counts = {checks, failures};
  world.allreduce_sum(counts);
  if (me == 0) std::printf("test_dataparallel: %d ranks, %lld checks, %lld failed\n", n,
                           static_cast<long long>(counts[0]), static_cast<long long>(counts[1]));
  return counts[1] == 0 ? 0 : 1;
}
