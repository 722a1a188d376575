#!/usr/bin/env bash
# fp8exp underflow at a small size: the outputs are all there, the CSV's counts are
# consistent (flushed <= nonzero <= count, the fractions are their ratios), an unscaled
# e5m2 gradient whose amax is below half of e5m2's smallest subnormal is flushed whole,
# the scaled recipe flushes a smaller share of the gradient values than the unscaled ones
# (as the report says), the same seed gives the same CSV, and bad input exits 2 with a
# message and no results.
# Usage: underflow_cli_test.sh FP8EXP WORKDIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exp=$(realpath "$1")
work=$2
py=/usr/bin/python3
[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] ||
  { echo "skipped: dataset-fashion-mnist is not installed"; exit 77; }
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
source "$here/findings_checks.sh"

small=(underflow --depth 5 --width 32 --train 1280 --batch 32 --test 200 --epochs 1 --log-every 5 --threads 2
       --no-plots)
"$exp" "${small[@]}" --out a > a.log 2>&1 || bad "run failed: $(tail -3 a.log)"
for f in report.md underflow.csv plots.gp plot-data/fp8-unscaled-layer1.dat plot-data/fp32-loss.dat; do
  [ -s "a/$f" ] && ok "a/$f written" || bad "a/$f missing"
done

$py - a/underflow.csv a/report.md << 'PY' && ok "CSV consistent; scaled flushes less than unscaled" || bad "CSV check"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
report = open(sys.argv[2]).read()
recipes = ["fp32", "fp8-unscaled", "fp8-unscaled-e4m3", "fp8-hybrid-delayed"]
assert sorted({r["recipe"] for r in rows}) == sorted(recipes), {r["recipe"] for r in rows}
steps = sorted({int(r["step"]) for r in rows})
assert steps == list(range(5, 41, 5)), steps  # 1280 / 32 = 40 steps, a window every 5
assert len(rows) == len(recipes) * len(steps) * 5, len(rows)
for r in rows:
    if r["recipe"] == "fp32":  # nothing is cast
        assert r["wgrad_grad_flushed_fraction"] == "" and r["grad_count"] == "", r
        continue
    n, nz, fl = int(r["grad_count"]), int(r["grad_nonzero"]), int(r["grad_flushed"])
    assert 0 <= fl <= nz <= n and n > 0, r
    assert float(r["wgrad_grad_flushed_fraction"]) == (fl / nz if nz else 0.0), r
    # Layer 1's input gradient is not computed, so it has no dgrad.
    assert (r["dgrad_grad_flushed_fraction"] == "") == (r["layer"] == "1"), r
    # e5m2's smallest subnormal is 2^-16: below half of it every value rounds to zero.
    if r["recipe"] == "fp8-unscaled" and nz and float(r["grad_amax"]) < 2.0 ** -17:
        assert fl == nz, r

def merged(recipe, step):
    sel = [r for r in rows if r["recipe"] == recipe and int(r["step"]) == step]
    nz = sum(int(r["grad_nonzero"]) for r in sel)
    return sum(int(r["grad_flushed"]) for r in sel) / nz if nz else 0.0

last = steps[-1]
scaled = merged("fp8-hybrid-delayed", last)
for u in ("fp8-unscaled", "fp8-unscaled-e4m3"):
    assert merged(u, last) > scaled, (u, merged(u, last), scaled)
    line = "%s: %.2f%% of all layers' nonzero output-gradient values" % (u, 100 * merged(u, last))
    assert line in report, (line, report[:800])
for title in ("## Claim", "## What this run measured", "## Agrees?", "2209.05433", "1905.12334", "Yes: in 2 of 2"):
    assert title in report, title
print("last window: unscaled", merged("fp8-unscaled", last), "e4m3", merged("fp8-unscaled-e4m3", last),
      "scaled", scaled)
PY

"$exp" "${small[@]}" --out b > b.log 2>&1 || bad "second run failed"
cmp -s a/underflow.csv b/underflow.csv && ok "same seed, same CSV" || bad "same seed gave another CSV"

# bf16 gradients are neither unscaled FP8 nor scaled: one pair, fp8-unscaled against
# fp8-hybrid-current.
"$exp" "${small[@]}" --recipes fp32,bf16,fp8-unscaled,fp8-hybrid-current --out c > c.log 2>&1 || bad "bf16 run failed"
grep -q "Yes: in 1 of 1 pairs" c/report.md && grep -q "^| bf16 | 1 |" c/report.md &&
  ok "bf16 is in the table but in no pair" || bad "bf16 pairs: $(grep -A2 '## Agrees' c/report.md)"

# Bad input: exit 2, a message, and no results directory.
touch afile
expect_bad "depth" underflow --depth 1 --out badout
expect_bad "depth" underflow --depth eight --out badout
expect_bad "epochs" underflow --epochs 0 --out badout
expect_bad "unknown recipe 'nope'" underflow --recipes fp32,nope --out badout
expect_bad "given twice" underflow --recipes fp32,fp32 --out badout
printf 'base = fp8-unscaled\nname = fp8-hybrid-delayed\n' > same-name.recipe
expect_bad "two recipes are named" underflow --recipes fp8-hybrid-delayed,same-name.recipe --out badout
expect_bad "no step" underflow --train 100 --batch 128 --out badout
expect_bad "nothing would be logged" underflow --train 1280 --epochs 1 --log-every 11 --out badout
expect_bad "seed" underflow --seed -1 --out badout
expect_bad "threads" underflow --threads x --out badout
expect_bad "apt-get install dataset-fashion-mnist" underflow --data /nonexistent --out badout
expect_bad "unknown option" underflow --frobnicate --out badout
expect_bad "out" underflow --out
expect_bad "afile" underflow --train 1280 --batch 128 --epochs 1 --log-every 5 --depth 2 --width 4 --recipes fp32 --out afile
"$exp" --help | grep -q "underflow" && ok "--help lists underflow" || bad "--help"
"$exp" underflow --help | grep -q -- "--depth N" && ok "underflow --help" || bad "underflow --help"

[ $fails -eq 0 ] && echo "all underflow checks passed" || echo "$fails underflow checks failed"
exit $((fails > 0))
