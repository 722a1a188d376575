#!/usr/bin/env bash
# The step time of data-parallel training on 2 MPI ranks with float32, bf16 and FP8
# gradient communication (docs/performance.md, "Data-parallel training"):
#   bash tests/bench/dp_step.sh [BUILD_DIR] [REPETITIONS] [ITERATIONS]   (from the repository root)
# Defaults: build, 3, 60. Each repetition trains fp8-hybrid-delayed on 2 ranks (1 thread
# each, 4 micro-batches of 4 sequences: 2 a rank) with `--set comm=fp32`, `bf16` and
# `e4m3fn` (FP8-LM scaling), in turn, and the same on 1 rank (the 4 micro-batches in one
# process, no communication) for reference, through the build's test launcher; the step
# time is the run's training time (timings.json, `runs[0].seconds`: the run's wall time,
# its one evaluation included) over its iterations. Prints each, the medians and the ratios
# of the medians to float32's; checks that the float32 runs on 1 and 2 ranks wrote the
# same files (the fixed-order sum).
set -euo pipefail
default_iters=60
source "$(dirname "$0")/mpi_bench.sh"
# The default fp8lm model (4 layers, width 128, context 64, 0.8 M parameters), batch 16.
run=(--data data/bible-kjv.txt --recipes fp8-hybrid-delayed --seeds 1 --iters "$iters" --eval-every "$iters"
     --eval-batches 2 --batch 16 --micro-batches 4 --no-plots --progress none --threads 1)
step_ms() {  # OUT: the run's milliseconds per step, from its timings.json
  /usr/bin/python3 -c 'import json,sys; t=json.load(open(sys.argv[1])); print("%.1f" % (1000 * t["runs"][0]["seconds"] / float(sys.argv[2])))' \
    "$1/timings.json" "$iters"
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs"
declare -A times
for r in $(seq 1 "$reps"); do
  line="repetition $r:"
  for job in one:1:fp32 two:2:fp32 two:2:bf16 two:2:e4m3fn; do
    IFS=: read -r name np comm <<< "$job"
    out="$work/$name-$comm-$r"
    "$mpirun" "$np" "$lm" "${run[@]}" --set "comm=$comm" --out "$out" > "$out.log" 2>&1 || { cat "$out.log" >&2; exit 1; }
    ms=$(step_ms "$out")
    times[$name-$comm]="${times[$name-$comm]:-} $ms"
    line="$line $np rank(s) $comm $ms ms/step;"
  done
  echo "$line"
  diff -r -x timings.json -x checkpoints -x .fp8lm.lock -x report.md -x summary.json \
    "$work/one-fp32-$r" "$work/two-fp32-$r" > /dev/null || { echo "1 and 2 ranks trained different bits" >&2; exit 1; }
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
base=$(median ${times[two-fp32]})
for k in one-fp32 two-fp32 two-bf16 two-e4m3fn; do
  m=$(median ${times[$k]})
  echo "median $k: $m ms/step, $(echo "$m $base" | awk '{printf "%.3f", $1 / $2}') x 2 ranks with float32 communication"
done
