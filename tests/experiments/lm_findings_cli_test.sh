#!/usr/bin/env bash
# fp8exp formats, optimizer and mx-scales at a tiny size: the outputs are all there, one
# CSV row per variant and seed, the report's means are the CSV's, the float32 baseline is
# the same run in every experiment and for any thread count, each variant's recipe keys
# change the numbers, and bad input exits 2 with a message and no results.
# Usage: lm_findings_cli_test.sh FP8EXP WORKDIR TEXT
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exp=$(realpath "$1")
work=$2
text=$(realpath "$3")
py=/usr/bin/python3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
source "$here/findings_checks.sh"

tiny=(--data "$text" --iters 3 --seeds 2 --layers 1 --heads 1 --width 8 --context 8 --batch 2 --eval-batches 1
      --no-plots)
"$exp" formats "${tiny[@]}" --threads 2 --out f2 > f2.log 2>&1 || bad "formats failed: $(tail -3 f2.log)"
"$exp" formats "${tiny[@]}" --threads 1 --out f1 > f1.log 2>&1 || bad "formats --threads 1 failed"
"$exp" optimizer "${tiny[@]}" --variants m1-e4m3-scaled,m2-e4m3-scaled,master-bf16-sr --out o > o.log 2>&1 ||
  bad "optimizer failed: $(tail -3 o.log)"
for f in f2/report.md f2/formats.csv f2/formats-evals.csv f2/plots.gp f2/plot-data/hybrid.dat o/optimizer.csv; do
  [ -s "$f" ] && ok "$f written" || bad "$f missing"
done
cmp -s f1/formats.csv f2/formats.csv && ok "the numbers do not depend on the thread count" || bad "threads change the numbers"

$py - f2/formats.csv f2/report.md o/optimizer.csv << 'PY' && ok "CSV, report and baselines agree" || bad "CSV check"
import csv, sys
from statistics import mean
rows = list(csv.DictReader(open(sys.argv[1])))
labels = [r["variant"] for r in rows]
assert labels == ["fp32", "fp32", "hybrid", "hybrid", "e4m3-everywhere", "e4m3-everywhere",
                  "e5m2-everywhere", "e5m2-everywhere"], labels
loss = {}
for r in rows:
    loss.setdefault(r["variant"], []).append(float(r["final_val_loss"]))
report = open(sys.argv[2]).read()
for v, l in loss.items():
    assert f"| {v} |" in report and f"| {mean(l):.4f} (sd" in report, v
    for k, r in enumerate(r for r in rows if r["variant"] == v):
        assert abs(float(r["minus_fp32_same_seed"]) - (l[k] - loss["fp32"][k])) < 1e-6
    assert f"| {mean(l) - mean(loss['fp32']):+.4f} |" in report, v
# Each variant's keys took effect: no two variants have the same losses.
assert len({tuple(l) for l in loss.values()}) == 4, loss
# The two seeds differ; the fp32 baseline is the same run in another experiment.
assert loss["fp32"][0] != loss["fp32"][1]
opt = list(csv.DictReader(open(sys.argv[3])))
assert [r["variant"] for r in opt] == ["fp32"] * 2 + ["m1-e4m3-scaled"] * 2 + ["m2-e4m3-scaled"] * 2 + \
    ["master-bf16-sr"] * 2
assert [float(r["final_val_loss"]) for r in opt[:2]] == loss["fp32"]
assert len({r["final_val_loss"] for r in opt[2:]} - {r["final_val_loss"] for r in opt[:2]}) == 6
for s in ("## Claim", "arXiv:2209.05433", "## What this run measured", "## Agrees?"):
    assert s in report, s
PY

for e in formats optimizer mx-scales; do
  expect_bad "iters: '0' must be a number" $e --iters 0 --out badout
  expect_bad "seeds" $e --seeds x --out badout
  expect_bad "unknown option '--fast'" $e --fast --out badout
  expect_bad "unknown variant 'nope'" $e --data "$text" --variants nope --out badout
  expect_bad "not a multiple of --heads" $e --width 10 --heads 3 --out badout
  expect_bad "no-such.txt" $e --data no-such.txt --out badout
  "$exp" $e --help | grep -q -- "--variants LIST" && ok "$e --help" || bad "$e --help"
done
expect_bad "given twice" mx-scales --data "$text" --variants nvfp4,nvfp4 --out badout
"$exp" --help | grep -q "mx-scales" && ok "--help lists mx-scales" || bad "--help"

[ $fails -eq 0 ] && echo "all LM findings checks passed" || echo "$fails LM findings checks failed"
exit $((fails > 0))
