#!/usr/bin/env bash
# fp8exp spike at a small size: the facts of delayed scaling, checked from its CSVs alone.
# The tensor part: every delayed scale is 448 / max(amax of the previous `history` steps) /
# 2^margin (1 at the first step); a step saturates exactly when scale x amax passes 464
# (the rounding boundary above e4m3fn's 448); current scaling never saturates; delayed
# scaling with margin 0 saturates at the spike step; history 1 is back to current
# scaling's scale one step after the spike, history 4 four steps after it.
# The training part (a tiny GPT on a small text): the same scale and saturation rules on
# the spiked layer's fprop input at every training step; the runs of one configuration
# (no spike, 1 and 3 steps) agree bit for bit up to the spike, where the spiked layer's
# amax is exactly 16 times the unspiked run's; current scaling never saturates, delayed
# scaling does at the spike. Same seed, same CSVs, on 1 or 2 threads; bad input exits 2
# with a message and no results.
# Usage: spike_cli_test.sh FP8EXP WORKDIR TEXT
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exp=$(realpath "$1")
work=$2
text=$(realpath "$3")
py=/usr/bin/python3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
source "$here/findings_checks.sh"

lm=(--data "$text" --layers 1 --heads 1 --width 8 --context 8 --batch 2 --eval-batches 1 --threads 1)
small=(spike --steps 40 --spike-step 20 --spike-lengths 1,3 --histories 1,4,64 --margins 0,2 --size 32 --no-plots
       "${lm[@]}")
"$exp" "${small[@]}" --out a > a.log 2>&1 || bad "run failed: $(tail -3 a.log)"
for f in report.md spike.csv spike-train.csv plots.gp plot-data/spike-loss-len3-delayed_h_4_m_2.dat; do
  [ -s "a/$f" ] && ok "a/$f written" || bad "a/$f missing"
done

$py - a/spike.csv a/spike-train.csv a/report.md << 'PY' && ok "the delayed-scaling mechanism holds in the CSVs" || bad "mechanism check"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
train = list(csv.DictReader(open(sys.argv[2])))
report = open(sys.argv[3]).read()
steps, spike, fmax, clip = 40, 20, 448.0, 464.0
configs = ["current"] + ["delayed:h=%d:m=%d" % (h, m) for h in (1, 4, 64) for m in (0, 2)]

def check_scales(name, scale, amax, sat, quantized_steps):
    """The scale and saturation rules of one operand over the steps; returns the steps checked."""
    for t in quantized_steps:
        # Saturation exactly when the scaled amax passes the rounding boundary above 448.
        assert (sat[t] > 0) == (scale[t] * amax[t] > clip), (name, t, scale[t], amax[t], sat[t])
    if name == "current":
        assert max(sat) == 0, (name, sat)
        for t in quantized_steps:
            assert abs(scale[t] * amax[t] / fmax - 1) < 1e-6, (name, t)
        return len(quantized_steps)
    h, m = (int(x.split("=")[1]) for x in name.split(":")[1:])
    # The scale of step t from the amax of the previous h steps (Transformer Engine starts at 1).
    for t in quantized_steps:
        want = 1.0 if t == 0 else fmax / max(amax[max(0, t - h):t]) / 2 ** m
        assert abs(scale[t] / want - 1) < 1e-6, (name, t, scale[t], want)
    # A x16 spike passes every margin of 0 and 2: the first spike step saturates.
    assert sat[spike] > 0, (name, sat[spike])
    return len(quantized_steps)

checked = 0
for length in (1, 3):
    end = spike + length
    for name in configs:
        s = [r for r in rows if r["spike_length"] == str(length) and r["config"] == name]
        assert [int(r["step"]) for r in s] == list(range(steps)), (length, name)
        assert [int(r["spike"]) for r in s] == [int(spike <= t < end) for t in range(steps)], (length, name)
        scale = [float(r["scale"]) for r in s]
        amax = [float(r["amax"]) for r in s]
        sat = [float(r["saturated_fraction"]) for r in s]
        checked += check_scales(name, scale, amax, sat, range(steps))
        if name == "current":
            continue
        h, m = (int(x.split("=")[1]) for x in name.split(":")[1:])
        assert s[0]["history"] == str(h) and s[0]["margin"] == str(m)
        # Steps after the spike with a scale below half of current scaling's (same margin).
        low = [t for t in range(end, steps) if scale[t] * amax[t] * 2 ** m / fmax < 0.5]
        if h <= steps - end:
            assert low == list(range(end, end + h)), (length, name, low)
        else:
            assert low == list(range(end, steps)), (length, name, low)
        if h == 1 and length == 1:
            assert sat[spike + 1] == 0, (name, sat[spike + 1])
assert checked == 2 * len(configs) * steps

# The training part: one row per run (fp32 and each configuration; spike lengths 0, 1 and
# 3; seed 1), step and spiked layer (h-1.mlp.down of the one block: h0.mlp.down).
assert len(train) == (1 + len(configs)) * 3 * steps, len(train)
runs = {}
for r in train:
    runs.setdefault((r["config"], int(r["spike_length"])), []).append(r)
lm_checked = 0
for name in ["fp32"] + configs:
    by = {L: runs[(name, L)] for L in (0, 1, 3)}
    for L, s in by.items():
        assert [int(r["step"]) for r in s] == list(range(steps)), (name, L)
        assert all(r["layer"] == "h0.mlp.down" and r["seed"] == "1" for r in s), (name, L)
        assert [int(r["spike"]) for r in s] == [int(L > 0 and spike <= t < spike + L) for t in range(steps)]
        assert [r["loss_unspiked"] for r in s] == [r["loss"] for r in by[0]], (name, L)
        assert all(0 < float(r["loss"]) < 100 for r in s), (name, L)
    loss = {L: [float(r["loss"]) for r in by[L]] for L in by}
    # The same weights and batches: bit-identical up to the spike, the two spikes alike at
    # its first step, and each spike visible in the loss.
    assert loss[0][:spike] == loss[1][:spike] == loss[3][:spike], name
    assert loss[1][spike] == loss[3][spike] != loss[0][spike], name
    assert loss[1][spike + 1] != loss[3][spike + 1], name
    if name == "fp32":
        assert all(r["amax"] == r["scale"] == r["saturated"] == "" for L in by for r in by[L]), name
        continue
    for L, s in by.items():
        scale = [float(r["scale"]) for r in s]
        amax = [float(r["amax"]) for r in s]
        sat = [int(r["saturated"]) for r in s]
        assert all(int(r["count"]) == 2 * 8 * 32 for r in s), name  # batch x context rows, mlp 32
        assert sum(int(r["model_saturated"]) for r in s) >= sum(sat), (name, L)
        if L == 0:
            continue
        lm_checked += check_scales(name, scale, amax, sat, range(steps))
        # The spike multiplies the same input by 16 (exact, a power of two; the CSV has 9 digits).
        assert abs(amax[spike] / (16 * float(by[0][spike]["amax"])) - 1) < 1e-8, (name, L, amax[spike])
print(checked, "tensor steps and", lm_checked, "training steps checked")
assert lm_checked == 2 * len(configs) * steps
for title in ("## Claim", "## What this run measured", "## Agrees?", "DelayedScaling", "amax_history_len",
              "### Training", "Without the spike", "h0.mlp.down"):
    assert title in report, title
assert "in the tensor part, in 14 of 14" in report, report[-1500:]
assert "longer): 14 of 14 runs" in report, report[-1500:]
PY

"$exp" "${small[@]}" --out b > b.log 2>&1 || bad "second run failed"
cmp -s a/spike.csv b/spike.csv && cmp -s a/spike-train.csv b/spike-train.csv && ok "same seed, same CSVs" ||
  bad "same seed gave other CSVs"
"$exp" "${small[@]}" --threads 2 --out t > t.log 2>&1 || bad "--threads 2 run failed"
cmp -s a/spike-train.csv t/spike-train.csv && ok "--threads 2: the same spike-train.csv" || bad "--threads 2"
"$exp" "${small[@]}" --seed 7 --first-seed 3 --out c > c.log 2>&1 || bad "seed 7 run failed"
cmp -s a/spike.csv c/spike.csv && bad "another seed gave the same CSV" || ok "another seed, another CSV"
cmp -s a/spike-train.csv c/spike-train.csv && bad "another --first-seed gave the same spike-train.csv" ||
  ok "another --first-seed, another spike-train.csv"
"$exp" "${small[@]}" --no-train --out d > d.log 2>&1 || bad "--no-train run failed"
cmp -s a/spike.csv d/spike.csv && [ ! -e d/spike-train.csv ] && grep -q -- "--no-train" d/report.md &&
  ok "--no-train: the same spike.csv, no training" || bad "--no-train"
"$exp" "${small[@]}" --spike-layers 'h0.attn.*' --histories 4 --margins 0 --spike-lengths 1 --out e > e.log 2>&1 &&
  [ "$(grep -c ',h0.attn.qkv,' e/spike-train.csv)" -eq $((3 * 2 * 40)) ] &&
  [ "$(grep -c ',h0.attn.proj,' e/spike-train.csv)" -eq $((3 * 2 * 40)) ] &&
  ok "--spike-layers h0.attn.*: both attention GEMMs recorded (runs of spike lengths 0 and 1)" || bad "--spike-layers h0.attn.*"

# Bad input: exit 2, a message, and no results directory.
touch afile
expect_bad "steps" spike --steps 1 --out badout
expect_bad "steps" spike --steps many --out badout
expect_bad "spike-step" spike --steps 50 --spike-step 50 --out badout
expect_bad "spike-step" spike --spike-step 0 --out badout
expect_bad "spike-factor" spike --spike-factor 0 --out badout
expect_bad "spike-lengths" spike --steps 50 --spike-step 45 --spike-lengths 1,8 --out badout
expect_bad "histories" spike --histories 1,0 --out badout
expect_bad "given twice" spike --histories 16,16 --out badout
expect_bad "margins" spike --margins -1 --out badout
expect_bad "margins: empty item" spike --margins 1,,2 --out badout
expect_bad "histories: empty item" spike --histories 1, --out badout
expect_bad "seed" spike --seed x --out badout
expect_bad "spike-layers" spike --spike-layers 'h0 mlp' --out badout
expect_bad "matches no Linear GEMM layer" spike "${lm[@]}" --spike-layers 'h3.*' --out badout
expect_bad "seeds" spike "${lm[@]}" --seeds 0 --out badout
expect_bad "multiple of --heads" spike "${lm[@]}" --heads 3 --out badout
expect_bad "no-such.txt" spike --data no-such.txt --out badout
expect_bad "unknown option" spike --frobnicate --out badout
expect_bad "unknown option '--iters'" spike --iters 5 --out badout
expect_bad "unknown option '--variants'" spike --variants fp32 --out badout
expect_bad "unknown option ''" spike "" --out badout
expect_bad "out" spike --out
expect_bad "afile" spike --steps 10 --spike-step 5 --spike-lengths 1 --size 8 --no-train --out afile
"$exp" --help | grep -q "spike" && ok "--help lists spike" || bad "--help"
"$exp" spike --help > help.txt
grep -q -- "--spike-layers P" help.txt && grep -q "^The training part:$" help.txt &&
  grep -q -- "--seeds K  *seeds per configuration (default 1)" help.txt && ok "spike --help" || bad "spike --help"

[ $fails -eq 0 ] && echo "all spike checks passed" || echo "$fails spike checks failed"
exit $((fails > 0))
