#!/bin/bash
# One training step of the default GPT: PyTorch's float32 step (tests/bench/torch_gpt_step.py,
# Debian python3-torch) against the simulator's (BM_lm_step of fp8sim_bench), on 1 and 2
# threads, and the simulator's step per recipe.
#  1. Three rounds of PyTorch's fp32 step then the simulator's fp32 step, back to back, so
#     that both see the same load; each round gives sim / torch per thread count, and the
#     median of the three rounds is printed.
#  2. Every recipe's step (medians of 3 repetitions) and its ratio to the fp32 step.
#   tests/bench/lm_step_compare.sh [BUILD_DIR] [--benchmark_filter=...]
# (default BUILD_DIR: build; the filter, if given, applies to part 2). Without PyTorch,
# part 1 prints the simulator's fp32 steps alone.
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

echo "== 1. PyTorch $("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo absent) and the simulator, fp32, OMP_WAIT_POLICY=$OMP_WAIT_POLICY"
for round in 1 2 3; do
  "$py" "$here/torch_gpt_step.py" --threads 1,2 --repetitions 3 | tee "$work/torch$round.txt"
  "$bench" --benchmark_filter='^BM_lm_step/fp32/' --benchmark_min_time=1 \
    --benchmark_out="$work/fp32_$round.json" --benchmark_out_format=json | grep '^BM_lm_step'
done
echo "== 2. every recipe"
"$bench" --benchmark_filter='^BM_lm_step/' --benchmark_repetitions=3 --benchmark_min_time=1.5 \
  --benchmark_report_aggregates_only=true --benchmark_out="$work/sim.json" --benchmark_out_format=json "$@"
echo "== summary"

"$py" - "$work" <<'EOF'
import json, re, statistics, sys
work = sys.argv[1]

def sim_steps(path, aggregate):
    out, order = {}, []
    for b in json.load(open(path))["benchmarks"]:
        if aggregate and (b.get("run_type") != "aggregate" or b.get("aggregate_name") != "median"):
            continue
        m = re.match(r"BM_lm_step/(.+?)/threads:(\d+)", b["run_name"] if aggregate else b["name"])
        key = (int(m.group(2)), m.group(1))
        out[key] = b["ms_per_step"]
        order.append(key)
    return out, order

ratios = {}
for r in (1, 2, 3):
    torch = {}
    for line in open(f"{work}/torch{r}.txt"):
        m = re.match(r"torch_gpt_step threads=(\d+) ms_per_step=([\d.]+)", line)
        if m:
            torch[int(m.group(1))] = float(m.group(2))
    sim, _ = sim_steps(f"{work}/fp32_{r}.json", False)
    for (t, _), ms in sim.items():
        if t in torch:
            ratios.setdefault(t, []).append((ms / torch[t], ms, torch[t]))
for t in sorted(ratios):
    rs = sorted(ratios[t])
    mid = rs[len(rs) // 2]
    print(f"threads={t}: sim fp32 / torch fp32 per round " + ", ".join(f"{x[1]:.1f}/{x[2]:.1f}={x[0]:.2f}" for x in ratios[t]) +
          f"; median {mid[0]:.2f}")
sim, order = sim_steps(f"{work}/sim.json", True)
print(f"{'threads':>7} {'recipe':<22} {'ms/step':>9} {'vs_fp32':>8}")
for t, r in order:
    base = sim.get((t, "fp32"))
    ratio = f"{sim[(t, r)] / base:8.2f}" if base else f"{'-':>8}"
    print(f"{t:>7} {r:<22} {sim[(t, r)]:9.1f} {ratio}")
EOF
