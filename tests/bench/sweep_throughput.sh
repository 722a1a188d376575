#!/usr/bin/env bash
# The throughput of an fp8lm sweep of 8 short runs on 2 MPI ranks against 1 rank, 1
# thread per rank (docs/performance.md, "Sweeps"):
#   bash tests/bench/sweep_throughput.sh [BUILD_DIR] [REPETITIONS] [ITERATIONS]   (from the repository root)
# Defaults: build, 3, 300 (iterations per run: about 3.5 s each on this machine; with 100,
# about 1.1 s each, the job's fixed cost of about 0.8 s, to start the ranks and read the
# text, is a sixth of the 2-rank job). Each repetition times the same sweep (wall clock,
# the launcher included) on 1 rank and on 2 ranks, with the build's test launcher (BUILD/tests/mpi/mpirun:
# Open MPI's mpiexec, --oversubscribe --bind-to none); prints each wall time, the CPU time
# of all the job's processes (user + system), the ratio of the wall times, their median,
# the load average before and after (other work on the machine shows there), and checks
# that both wrote the same files.
set -euo pipefail
default_iters=300
source "$(dirname "$0")/mpi_bench.sh"
# 8 runs of the same cost: 4 learning rates x 2 warmups, one recipe and seed, a small model
# on the Bible. (Runs of unequal cost, fp32 beside an FP8 recipe, leave one rank idle while
# the other ends its last run: that tail is the scheduling's, not the ranks'.)
sweep=(--data data/bible-kjv.txt --recipes fp8-hybrid-delayed --seeds 1 --iters "$iters" --eval-batches 2
       --layers 2 --heads 2 --width 64 --context 32 --batch 8 --no-plots --progress none --threads 1
       --sweep lr=0.001,0.002,0.003,0.004 --sweep warmup=5,10)
seconds() {  # NP OUT: runs the sweep on NP ranks, prints its wall time and CPU time
  local TIMEFORMAT='%R %U %S'
  { time "$mpirun" "$1" "$lm" "${sweep[@]}" --out "$2" > "$2.log" 2>&1 || { cat "$2.log" >&2; exit 1; }; } 2> "$2.time"
  awk '{printf "%.2f %.2f", $1, $2 + $3}' "$2.time"
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs"
ratios=()
for r in $(seq 1 "$reps"); do
  read -r one one_cpu <<< "$(seconds 1 "$work/one-$r")"
  read -r two two_cpu <<< "$(seconds 2 "$work/two-$r")"
  ratio=$(echo "$one $two" | awk '{printf "%.3f", $1 / $2}')
  ratios+=("$ratio")
  echo "repetition $r: 1 rank $one s (CPU $one_cpu s), 2 ranks $two s (CPU $two_cpu s), throughput ratio $ratio"
  diff -r -x timings.csv -x .fp8lm.lock "$work/one-$r" "$work/two-$r" > /dev/null \
    || { echo "1 and 2 ranks wrote different files" >&2; exit 1; }
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
median=$(median "${ratios[@]}")
echo "median throughput ratio, 2 ranks / 1 rank, over $reps repetitions: $median"
