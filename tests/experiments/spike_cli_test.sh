#!/usr/bin/env bash
# fp8exp spike at a small size: the facts of delayed scaling, checked from its CSV alone.
# Every delayed scale is 448 / max(amax of the previous `history` steps) / 2^margin (1 at
# the first step); a step saturates exactly when scale x amax passes 464 (the rounding
# boundary above e4m3fn's 448); current scaling never saturates; delayed scaling with
# margin 0 saturates at the spike step; history 1 is back to current scaling's scale one
# step after the spike, history 4 four steps after it; the training losses agree up to the
# spike for both spike lengths and part after it. Same seed, same CSV; bad input
# exits 2 with a message and no results.
# Usage: spike_cli_test.sh FP8EXP WORKDIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exp=$(realpath "$1")
work=$2
py=/usr/bin/python3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
source "$here/findings_checks.sh"

small=(spike --steps 40 --spike-step 20 --spike-lengths 1,3 --histories 1,4,64 --margins 0,2 --size 32 --no-plots)
"$exp" "${small[@]}" --out a > a.log 2>&1 || bad "run failed: $(tail -3 a.log)"
for f in report.md spike.csv spike-train.csv plots.gp; do
  [ -s "a/$f" ] && ok "a/$f written" || bad "a/$f missing"
done

$py - a/spike.csv a/report.md << 'PY' && ok "the delayed-scaling mechanism holds in the CSV" || bad "mechanism check"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
report = open(sys.argv[2]).read()
steps, spike, fmax, clip = 40, 20, 448.0, 464.0
configs = ["current"] + ["delayed:h=%d:m=%d" % (h, m) for h in (1, 4, 64) for m in (0, 2)]
assert len(rows) == 2 * len(configs) * steps, len(rows)
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
        for t in range(steps):
            # Saturation exactly when the scaled amax passes the rounding boundary above 448.
            assert (sat[t] > 0) == (scale[t] * amax[t] > clip), (length, name, t, scale[t], amax[t], sat[t])
            checked += 1
        if name == "current":
            assert max(sat) == 0, (length, name, sat)
            for t in range(steps):
                assert abs(scale[t] * amax[t] / fmax - 1) < 1e-6, (length, name, t)
            continue
        h, m = (int(x.split("=")[1]) for x in name.split(":")[1:])
        assert s[0]["history"] == str(h) and s[0]["margin"] == str(m)
        # The scale of step t from the amax of the previous h steps (Transformer Engine starts at 1).
        for t in range(steps):
            want = 1.0 if t == 0 else fmax / max(amax[max(0, t - h):t]) / 2 ** m
            assert abs(scale[t] / want - 1) < 1e-6, (length, name, t, scale[t], want)
        # A x16 spike passes every margin of 0 and 2: the first spike step saturates.
        assert sat[spike] > 0.01, (length, name, sat[spike])
        # Steps after the spike with a scale below half of current scaling's (same margin).
        low = [t for t in range(end, steps) if scale[t] * amax[t] * 2 ** m / fmax < 0.5]
        if h <= steps - end:
            assert low == list(range(end, end + h)), (length, name, low)
        else:
            assert low == list(range(end, steps)), (length, name, low)
        if h == 1 and length == 1:
            assert sat[spike + 1] == 0, (name, sat[spike + 1])
print(checked, "steps checked")
# The training part: every run's batch loss is finite and positive, the same for both spike
# lengths up to the spike's first step, and different after the first spike step.
train = list(csv.DictReader(open(sys.argv[1].replace("spike.csv", "spike-train.csv"))))
assert len(train) == 2 * (1 + len(configs)) * steps, len(train)
for name in ["fp32"] + configs:
    by = {L: [float(r["loss"]) for r in train if r["config"] == name and r["spike_length"] == str(L)] for L in (1, 3)}
    assert len(by[1]) == len(by[3]) == steps, name
    assert all(0 < v < 100 for v in by[1] + by[3]), name
    assert by[1][:spike + 1] == by[3][:spike + 1], name
    assert by[1][spike + 1] != by[3][spike + 1], name
assert checked == 2 * len(configs) * steps
for title in ("## Claim", "## What this run measured", "## Agrees?", "DelayedScaling", "amax_history_len", "### Training"):
    assert title in report, title
assert "Yes: in 14 of 14" in report, report[-900:]
PY

"$exp" "${small[@]}" --out b > b.log 2>&1 || bad "second run failed"
cmp -s a/spike.csv b/spike.csv && ok "same seed, same CSV" || bad "same seed gave another CSV"
"$exp" "${small[@]}" --seed 7 --out c > c.log 2>&1 || bad "seed 7 run failed"
"$exp" "${small[@]}" --no-train --out d > d.log 2>&1 || bad "--no-train run failed"
cmp -s a/spike.csv d/spike.csv && [ ! -e d/spike-train.csv ] && grep -q -- "--no-train" d/report.md &&
  ok "--no-train: the same spike.csv, no training" || bad "--no-train"
cmp -s a/spike.csv c/spike.csv && bad "another seed gave the same CSV" || ok "another seed, another CSV"

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
expect_bad "unknown option" spike --frobnicate --out badout
expect_bad "out" spike --out
expect_bad "afile" spike --steps 10 --spike-step 5 --spike-lengths 1 --size 8 --out afile
"$exp" --help | grep -q "spike" && ok "--help lists spike" || bad "--help"
"$exp" spike --help | grep -q -- "--spike-factor F" && ok "spike --help" || bad "spike --help"

[ $fails -eq 0 ] && echo "all spike checks passed" || echo "$fails spike checks failed"
exit $((fails > 0))
