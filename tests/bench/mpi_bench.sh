# Sourced by the MPI benchmarks (sweep_throughput.sh, dp_step.sh) with their arguments
# BUILD_DIR REPETITIONS ITERATIONS and the default iterations in `default_iters`: sets
# build, reps, iters, lm (the build's fp8lm), mpirun (its test launcher) and work (a
# scratch directory removed at exit), exiting 2 when either program is missing; defines
# `median VALUES...`.
build=${1:-build}
reps=${2:-3}
iters=${3:-$default_iters}
lm=$build/experiments/fp8lm
mpirun=$build/tests/mpi/mpirun
[ -x "$lm" ] || { echo "no $lm: build the fp8lm target first" >&2; exit 2; }
[ -x "$mpirun" ] || { echo "no $mpirun: configure with tests (FP8EMU_BUILD_TESTS=ON) and MPI" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
