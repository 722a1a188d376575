#!/usr/bin/env bash
# The launcher of every MPI test:   mpirun.sh NP COMMAND [ARG...]
# Runs COMMAND as NP ranks with this build's mpiexec, adding what a test machine needs:
#  - --oversubscribe: more ranks than cores (CI has 2 cores; the tests run 4 ranks);
#  - --allow-run-as-root when run as root (Open MPI refuses root otherwise);
#  - --bind-to none: ranks are not pinned to cores that other tests share;
#  - a time limit of FP8EMU_MPI_TIMEOUT seconds (default 120): then mpiexec is ended
#    (SIGTERM, SIGKILL 10 s later) and the exit status is 124.
# The build's test directory has `mpirun`, this script with FP8EMU_MPIEXEC set to the
# mpiexec CMake found (MPIEXEC_EXECUTABLE), or FP8EMU_MPI_SKIP to why MPI is not built:
# then it prints "skipped: MPI not built (...)" and exits with 77 (the tests'
# SKIP_RETURN_CODE). Without either, the mpiexec on PATH is used.
# The exit status is mpiexec's (docs/distributed.md, "When a rank fails").
set -u
if [[ $# -lt 2 || ! $1 =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: mpirun.sh NP COMMAND [ARG...]" >&2
  exit 2
fi
if [[ -n ${FP8EMU_MPI_SKIP-} ]]; then
  echo "skipped: MPI not built ($FP8EMU_MPI_SKIP)"
  exit 77
fi
mpiexec=${FP8EMU_MPIEXEC:-$(command -v mpiexec || true)}
if [[ -z $mpiexec || ! -x $mpiexec ]]; then
  echo "skipped: MPI not built here (no mpiexec: Debian openmpi-bin)"
  exit 77
fi
np=$1
shift
flags=()
# The flags are Open MPI's; other MPIs (MPICH's Hydra) allow both by default.
if "$mpiexec" --version 2>&1 | grep -q "Open MPI\|OpenRTE"; then
  flags=(--oversubscribe --bind-to none)
  [[ $(id -u) -eq 0 ]] && flags+=(--allow-run-as-root)
fi
limit=${FP8EMU_MPI_TIMEOUT:-120}
echo "mpirun.sh: $mpiexec ${flags[*]} -np $np $*" >&2
timeout -k 10 "$limit" "$mpiexec" "${flags[@]}" -np "$np" "$@"
status=$?
[[ $status -eq 124 ]] && echo "mpirun.sh: ended after the time limit of $limit s (FP8EMU_MPI_TIMEOUT)" >&2
exit $status
