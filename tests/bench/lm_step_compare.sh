#!/bin/bash
# One training step of the default GPT: PyTorch's float32 step (tests/bench/torch_gpt_step.py,
# Debian python3-torch) and the simulator's step per recipe (BM_lm_step of fp8sim_bench),
# back to back, on 1 and 2 threads, each the median of 3 repetitions. Prints per thread
# count the simulator's fp32 step over PyTorch's and each recipe's step over the
# simulator's fp32 step.
#   tests/bench/lm_step_compare.sh [BUILD_DIR] [--benchmark_filter=...]
# (default BUILD_DIR: build). Without PyTorch the simulator's table is printed alone.
# Both run with OMP_WAIT_POLICY=passive unless it is set: threads waiting at a barrier
# sleep instead of spinning, which on a shared machine keeps a spinning thread from
# taking the core its partner needs (the simulator's programs wait passively too).
set -euo pipefail
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
[ $# -gt 0 ] && shift
bench=$build/tests/bench/fp8sim_bench
[ -x "$bench" ] || { echo "lm_step_compare: $bench not found (build the fp8sim_bench target)" >&2; exit 2; }
py=/usr/bin/python3
[ -x "$py" ] || { echo "lm_step_compare: $py not found" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== PyTorch float32 ($("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo absent)), OMP_WAIT_POLICY=$OMP_WAIT_POLICY"
"$py" "$here/torch_gpt_step.py" --threads 1,2 --repetitions 3 | tee "$work/torch.txt"
echo "== simulator"
"$bench" --benchmark_filter='^BM_lm_step/' --benchmark_repetitions=3 --benchmark_min_time=1.5 \
  --benchmark_report_aggregates_only=true --benchmark_out="$work/sim.json" --benchmark_out_format=json "$@"
echo "== summary (medians of 3)"

"$py" - "$work/torch.txt" "$work/sim.json" <<'EOF'
import json, re, sys
torch = {}
for line in open(sys.argv[1]):
    m = re.match(r"torch_gpt_step threads=(\d+) ms_per_step=([\d.]+)", line)
    if m:
        torch[int(m.group(1))] = float(m.group(2))
sim = {}  # (threads, recipe) -> median ms per step
order = []
for b in json.load(open(sys.argv[2]))["benchmarks"]:
    if b.get("run_type") != "aggregate" or b.get("aggregate_name") != "median":
        continue
    m = re.match(r"BM_lm_step/(.+)/threads:(\d+)", b["run_name"])
    key = (int(m.group(2)), m.group(1))
    sim[key] = b["ms_per_step"]
    order.append(key)
print(f"{'threads':>7} {'recipe':<22} {'ms/step':>9} {'vs_fp32':>8}")
for t, r in order:
    base = sim.get((t, "fp32"))
    ratio = f"{sim[(t, r)] / base:8.2f}" if base else f"{'-':>8}"
    print(f"{t:>7} {r:<22} {sim[(t, r)]:9.1f} {ratio}")
for t in sorted({t for t, _ in order}):
    if (t, "fp32") in sim and t in torch:
        print(f"threads={t}: sim fp32 {sim[(t, 'fp32')]:.1f} ms / torch fp32 {torch[t]:.1f} ms = "
              f"{sim[(t, 'fp32')] / torch[t]:.2f}")
EOF
