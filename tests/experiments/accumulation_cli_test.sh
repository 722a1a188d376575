#!/usr/bin/env bash
# fp8exp accumulation at a tiny size: every output is written and parses, with one CSV row
# per (K, accumulation, data kind, seed); the facts of the models hold in its numbers (a
# float32 accumulator far below nvidia-h100-fp8 at the largest K, promotion every 128
# lowering nvidia-h100-fp8's error, that error growing with K on positive data, a float16
# accumulator overflowing on codes scaled to e4m3fn's range and not without the scale); the
# numbers do not depend on the thread count; bad options exit 2 with a clear message and
# write nothing.
# Usage: accumulation_cli_test.sh FP8EXP WORKDIR
set -uo pipefail
exe=$1
work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
fails=0
checks=0
ok() { checks=$((checks + 1)); echo "ok: $1"; }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $1"; }
tiny=(accumulation --k-max 1024 --m 8 --n 8 --seeds 2 --no-plots)

# 1. A complete run: its outputs, and the rows of its CSV.
if "$exe" "${tiny[@]}" --threads 1 --out t1 > t1.log 2>&1; then ok "tiny run"; else bad "tiny run: $(tail -3 t1.log)"; fi
for f in accumulation.csv report.md plot-data/accumulation-normal-max.dat plot-data/accumulation-positive-frob.dat; do
  if [ -s "t1/$f" ]; then ok "t1/$f written"; else bad "t1/$f missing"; fi
done
for s in "## Claim" "arXiv 2412.19437" "## What this run measured" "## Agrees?" "Not decided: the sweep stops at K = 1024"; do
  if grep -qF "$s" t1/report.md; then ok "report.md: $s"; else bad "report.md lacks: $s"; fi
done

# 2. The facts, from the CSV (K = 128 .. 1024: 4 K x 8 accumulations x 2 kinds x 2 seeds).
if /usr/bin/python3 - t1/accumulation.csv <<'EOF'; then ok "facts of the models"; else bad "facts of the models"; fi
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 4 * 8 * 2 * 2, len(rows)
assert sorted({int(r["k"]) for r in rows}) == [128, 256, 512, 1024]
def frob(spec, kind, k):  # the mean over the seeds
    v = [float(r["frob_rel_err"]) for r in rows if r["accumulation"] == spec and r["data"] == kind and int(r["k"]) == k]
    assert len(v) == 2, (spec, kind, k, v)
    return sum(v) / len(v)
h = "nvidia-h100-fp8"
for kind in ("normal", "positive"):
    e, e128, e32 = frob(h, kind, 1024), frob(h + ",promote=128", kind, 1024), frob("fp32", kind, 1024)
    print(f"{kind}: K=1024 frob {h} {e:.3g}, promote=128 {e128:.3g}, fp32 {e32:.3g}")
    assert e32 < e / 100, "fp32 not far below nvidia-h100-fp8"
    assert e128 < e / 2, "promote=128 does not lower the error"
    assert math.isinf(frob("fp16", kind, 128)), "fp16 should overflow on codes scaled to 448"
assert frob(h, "positive", 1024) > 2 * frob(h, "positive", 128), "error does not grow with K"
for r in rows:  # with K <= N_C, promotion changes nothing
    if r["accumulation"] == h + ",promote=256" and int(r["k"]) <= 256:
        same = [s for s in rows if s["accumulation"] == h and s["k"] == r["k"] and s["data"] == r["data"]
                and s["seed"] == r["seed"]]
        assert len(same) == 1 and same[0]["max_rel_err"] == r["max_rel_err"], r
EOF

# 3. Two threads give the same numbers; without the scale a float16 accumulator is finite.
"$exe" "${tiny[@]}" --threads 2 --out t2 > t2.log 2>&1
if cmp -s t1/accumulation.csv t2/accumulation.csv; then ok "threads 1 and 2: same CSV"; else bad "threads change the CSV"; fi
"$exe" accumulation --k-max 128 --m 4 --n 4 --seeds 1 --scaling none --no-plots --out t3 > t3.log 2>&1
if grep -q '^128,"fp16",normal,1,[0-9]' t3/accumulation.csv; then ok "--scaling none: fp16 finite"; else bad "--scaling none: fp16 $(grep fp16 t3/accumulation.csv | head -1)"; fi

# 4. Bad options: exit 2, a message naming the problem, no results directory.
expect_usage() {  # pattern, args...
  local pat=$1
  shift
  "$exe" accumulation "$@" --out bad > bad.log 2>&1
  local rc=$?
  if [ $rc -eq 2 ] && grep -q -- "$pat" bad.log && [ ! -e bad ]; then ok "bad: $*"; else bad "bad: $* (rc $rc: $(cat bad.log))"; fi
}
expect_usage "power of two" --k-max 1000
expect_usage "128..65536" --k-max 64
expect_usage "--seeds" --seeds 0
expect_usage "--m" --m x
expect_usage "--n" --n 2000
expect_usage "one of auto, none" --scaling per-row
expect_usage "unknown option '--bogus'" --bogus
"$exe" accumulation --seeds > bad.log 2>&1
if [ $? -eq 2 ] && grep -q -- "--seeds needs a value" bad.log && [ ! -e results ]; then ok "bad: --seeds without a value"
else bad "bad: --seeds without a value ($(cat bad.log))"; fi
"$exe" accumulation --out "" > bad.log 2>&1
if [ $? -eq 2 ] && grep -q -- "--out: the directory is empty" bad.log; then ok "bad: --out ''"; else bad "bad: --out '' ($(cat bad.log))"; fi
"$exe" accumulation --help > help.log 2>&1
if [ $? -eq 0 ] && grep -q "^usage: fp8exp accumulation \[options\]" help.log && grep -q -- "^  --m M, --n N      output rows" help.log
then ok "--help"; else bad "--help ($(cat help.log))"; fi

echo "accumulation: $checks checks, $fails failed"
[ "$checks" -eq 23 ] || { echo "FAIL: expected 23 checks"; exit 1; }
[ "$fails" -eq 0 ]
