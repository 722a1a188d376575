// fp8lm's sweeps: one study per point of a grid of recipe and training keys, each recipe
// and seed of a point a run of its own, handed out by rank 0 to the ranks of an MPI job as
// they become free (docs/lm-study.md, "Sweeps").
#pragma once

#include <functional>

#include "fp8sim/comm.hpp"
#include "lm/study.hpp"

namespace lm {

/// A sweep's results directory without --out (a study's is results/lm).
inline constexpr const char* kDefaultSweepOut = "results/lm-sweep";

/// The most runs (points x recipes x seeds) of one sweep.
inline constexpr std::size_t kMaxSweepRuns = 100000;

/// The file of a sweep's run with its command line ("# fp8lm OPTIONS --out DIR") and the
/// size and name of each of its files; written last, it says that the run is complete.
inline constexpr const char* kRunFilesList = "files.txt";

/// Runs `body` on every rank of `comm`, then agrees (collective): when it threw on any
/// rank, rank 0 rethrows its own exception, or throws a UsageError "rank R: WHAT" with the
/// lowest failing rank's message, and every other rank returns false: it then exits with
/// status 0, and rank 0 alone says why and ends the job with its status (under MPI a rank
/// that exits with another status aborts the job at once, before rank 0 has spoken).
/// Returns true when no rank failed.
bool collectively(fp8sim::Communicator& comm, const std::function<void()>& body);

/// The sweep `o` describes (o.sweep not empty), on the ranks of `comm`; rank 0 writes the
/// outputs. Returns the exit status.
int run_sweep(const Options& o, fp8sim::Communicator& comm);

}  // namespace lm
