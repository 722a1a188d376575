#!/usr/bin/env bash
# fp8exp stagnation at a small size: the RNE and Kahan partial sums in float16 and
# bfloat16 are those of an independent NumPy loop (float16 natively, bfloat16 by rounding
# float32 bits), the reported term of stagnation is the one NumPy finds, stochastic
# rounding is reproducible per seed and ends closer to the float64 sum than RNE, the
# outputs are all there, and bad input exits 2 with a message and no results.
# Usage: stagnation_cli_test.sh FP8EXP WORKDIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exp=$(realpath "$1")
work=$2
py=/usr/bin/python3
$py -c "import numpy" 2>/dev/null || { echo "skipped: python3-numpy is not installed"; exit 77; }
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
source "$here/findings_checks.sh"

small=(stagnation --terms 1500 --seeds 3 --formats float16,bfloat16 --no-plots)
"$exp" "${small[@]}" --out a > a.log 2>&1 || bad "run failed: $(tail -3 a.log)"
for f in report.md stagnation.csv plots.gp plot-data/harmonic-float16-rne.dat; do
  [ -s "a/$f" ] && ok "a/$f written" || bad "a/$f missing"
done

$py - a/stagnation.csv a/report.md << 'PY' && ok "partial sums and stagnation agree with NumPy" || bad "NumPy check"
import csv, sys
import numpy as np

def bf16(x):  # float32 -> bfloat16 (nearest-even on the bits), returned as float32
    b = np.array([x], dtype=np.float32).view(np.uint32)[0]
    if (b & 0x7F800000) == 0x7F800000:
        return np.float32(x)
    b = (int(b) + 0x7FFF + ((int(b) >> 16) & 1)) & 0xFFFF0000
    return np.array([b], dtype=np.uint32).view(np.float32)[0]

# Rounded sums of two values of the format: float16 natively; bfloat16 through float32,
# whose 24 bits make the second rounding innocuous for sums of 8-bit significands.
formats = {
    "float16": (lambda x: np.float16(x), lambda a, b: np.float16(a + b), lambda a, b: np.float16(a - b)),
    "bfloat16": (lambda x: bf16(np.float32(x)), lambda a, b: bf16(np.float32(a) + np.float32(b)),
                 lambda a, b: bf16(np.float32(a) - np.float32(b))),
}
rows = list(csv.DictReader(open(sys.argv[1])))
report = open(sys.argv[2]).read()
terms = 1500
for series, start, term in (("harmonic", 0.0, lambda i: 1.0 / i), ("constant", 1.0, lambda i: 0.001)):
    for name, (rnd, add, sub) in formats.items():
        s = rnd(start); k = rnd(start); c = rnd(0.0)
        last = 0; rne = {}; kahan = {}
        for i in range(1, terms + 1):
            t = rnd(term(i))
            n = add(s, t)
            if n != s: last = i
            s = n
            y = sub(t, c); u = add(k, y); c = sub(sub(u, k), y); k = u
            rne[i] = float(s); kahan[i] = float(k)
        got = [r for r in rows if r["series"] == series and r["format"] == name]
        assert got, (series, name)
        for method, want in (("rne", rne), ("kahan", kahan)):
            mine = [r for r in got if r["method"] == method]
            assert len(mine) >= 20, (series, name, method, len(mine))
            for r in mine:
                assert float(r["partial_sum"]) == want[int(r["n"])], (series, name, method, r, want[int(r["n"])])
        assert len([r for r in got if r["method"] == "sr"]) == 3 * len([r for r in got if r["method"] == "rne"])
        # The term of stagnation: the first after which no term moved the sum.
        if series == "harmonic" and name == "float16":
            assert last < terms, last
            line = "RNE float16 stagnates at term n = %d of the harmonic series, at %s " % (last + 1, repr(float(s)))
            assert line in report, (line, report[:600])
        print(series, name, "stagnates at term", last + 1, "at", float(s), "kahan", float(k))
for title in ("## Claim", "## What this run measured", "## Agrees?", "10.1137/20M1334796", "2010.06192"):
    assert title in report, title
PY

# Stochastic rounding: the same seed gives the same sums, and its final error is below RNE's.
"$exp" "${small[@]}" --out b > b.log 2>&1 || bad "second run failed"
cmp -s a/stagnation.csv b/stagnation.csv && ok "same seeds, same CSV" || bad "same seeds gave another CSV"
"$exp" "${small[@]}" --first-seed 7 --out c > c.log 2>&1 || bad "seed 7 run failed"
cmp -s a/stagnation.csv c/stagnation.csv && bad "another first seed gave the same CSV" || ok "another first seed, other SR sums"
# An option given twice keeps its last value.
"$exp" stagnation --seeds 2 --formats e5m2 "${small[@]:1}" --out d > d.log 2>&1 ||
  bad "run with repeated options failed"
cmp -s a/stagnation.csv d/stagnation.csv && ok "a repeated option keeps its last value" || bad "repeated options"
$py - a/stagnation.csv << 'PY' && ok "SR ends closer to the float64 sum than RNE (harmonic, float16)" || bad "SR error"
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["series"] == "harmonic" and r["format"] == "float16" and r["n"] == "1500"]
rne = [float(r["relative_error"]) for r in rows if r["method"] == "rne"]
sr = [float(r["relative_error"]) for r in rows if r["method"] == "sr"]
assert len(rne) == 1 and len(sr) == 3, (rne, sr)
assert sum(sr) / 3 < rne[0], (sr, rne)
PY

# Bad input: exit 2, a message, and no results directory.
touch afile
expect_bad "unknown experiment 'nope'" nope
expect_bad "usage: fp8exp NAME"
expect_bad "terms" stagnation --terms 0 --out badout
expect_bad "terms" stagnation --terms ten --out badout
expect_bad "seeds" stagnation --seeds 0 --out badout
expect_bad "formats" stagnation --formats float16,nope --out badout
expect_bad "given twice" stagnation --formats float16,float16 --out badout
expect_bad "unsigned" stagnation --formats e8m0fnu --out badout
expect_bad "^fp8exp: --series: unknown series 'geometric' (one of harmonic, constant)" stagnation --series geometric --out badout
expect_bad "^fp8exp: --series: 'harmonic' given twice" stagnation --series harmonic,constant,harmonic --out badout
expect_bad "^fp8exp: --series: empty name in 'harmonic,,constant'" stagnation --series harmonic,,constant --out badout
expect_bad "unknown option" stagnation --frobnicate --out badout
expect_bad "terms" stagnation --out badout --terms
expect_bad "unknown option '0'" stagnation --out --terms 0
[ ! -e ./--terms ] && ok "the value of --out may start with --" || bad "--out --terms made a directory"
expect_bad "afile" stagnation --terms 10 --out afile
"$exp" --help | grep -q "stagnation" && ok "--help lists stagnation" || bad "--help"
"$exp" stagnation --help > help.out && grep -q "^usage: fp8exp stagnation \[options\]$" help.out &&
  grep -q -- "^  --terms N         terms of each series (default 100000)$" help.out &&
  grep -q "^                    float16,bfloat16,e4m3fn,e5m2)$" help.out &&
  grep -q -- "^  --out DIR         results directory (default results/stagnation)$" help.out &&
  ok "stagnation --help" || bad "stagnation --help: $(cat help.out)"

[ $fails -eq 0 ] && echo "all stagnation checks passed" || echo "$fails stagnation checks failed"
exit $((fails > 0))
