#!/usr/bin/env bash
# fp8exp outliers at a small size: the SQNR (all elements and the other channels), the
# flushed and the saturated fractions per tensor (e4m3fn, e2m1fn), per row, per 1 x 128
# block and MXFP8 are those of an independent NumPy computation (the same N(0, 1) values and outlier channels, nearest-even on the format's
# value grid from `fp8emu table`), the outputs are all there, and bad input exits 2 with a
# message and no results. fp8exp outliers-lm on a tiny model and text: one CSV row per
# variant, each variant's keys change the numbers, the first GEMM's input per channel is
# the model's own (its largest amax is the probe's amax of h0.attn.qkv), the N(0, 1)
# reference is NumPy's, the report's sections are there, and bad input exits 2.
# Usage: outliers_cli_test.sh FP8EXP FP8EMU WORKDIR TEXT
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exp=$(realpath "$1")
tool=$(realpath "$2")
work=$3
text=$(realpath "$4")
py=/usr/bin/python3
$py -c "import numpy" 2>/dev/null || { echo "skipped: python3-numpy is not installed"; exit 77; }
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
source "$here/findings_checks.sh"

"$exp" outliers --rows 8 --cols 256 --outliers 0,3 --factors 1,64 --seed 5 --no-plots --out a > a.log 2>&1 ||
  bad "run failed: $(tail -3 a.log)"
for f in report.md outliers.csv plots.gp plot-data/3-tensor-normal.dat; do
  [ -s "a/$f" ] && ok "a/$f written" || bad "a/$f missing"
done
# fp8emu's random bits and normals (include/fp8emu/random.hpp) in NumPy, for both checks.
cat > rng.py << 'PY'
import numpy as np
M64 = (1 << 64) - 1
def mix64(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)
def key(seed, stream):
    h = mix64(mix64(seed) ^ stream)
    return h & 0xFFFFFFFF, h >> 32
def bits(k, idx):  # idx: uint64 array
    x = (idx & 0xFFFFFFFF).astype(np.uint32) ^ np.uint32(k[0])
    x ^= x >> np.uint32(16); x *= np.uint32(0x7FEB352D); x ^= x >> np.uint32(15)
    x ^= np.uint32(k[1]) + (idx >> np.uint64(32)).astype(np.uint32) * np.uint32(0x9E3779B9)
    x *= np.uint32(0x846CA68B); x ^= x >> np.uint32(16)
    return x
def normal(seed, stream, n):  # fp8emu::random_normal of indices 0 .. n - 1, as float
    k = key(seed, stream)
    i = np.arange(n, dtype=np.uint64)
    u1 = (bits(k, 2 * i).astype(np.float64) + 0.5) * 2.0**-32
    u2 = bits(k, 2 * i + np.uint64(1)).astype(np.float64) * 2.0**-32
    return (np.sqrt(-2 * np.log(u1)) * np.cos(6.283185307179586 * u2)).astype(np.float32)
PY
"$tool" table e4m3fn > e4m3fn.csv && "$tool" table e2m1fn > e2m1fn.csv || bad "fp8emu table"

$py - a/outliers.csv a/report.md << 'PY' && ok "SQNR, flushed and saturated fractions agree with NumPy" || bad "NumPy check"
import csv, math, sys
import numpy as np
from rng import key, bits, normal

rows, cols, seed = 8, 256, 5
base = normal(seed, 0, rows * cols).reshape(rows, cols)
kc = key(seed, 1)
order = list(range(cols))
for j in range(cols - 1):
    r = (int(bits(kc, np.array([2 * j], np.uint64))[0]) << 32) | int(bits(kc, np.array([2 * j + 1], np.uint64))[0])
    t = j + r % (cols - j)
    order[j], order[t] = order[t], order[j]

def grid(fmt):
    vals = sorted({float(r["value"]) for r in csv.DictReader(open(fmt + ".csv"))
                   if r["class"] in ("zero", "subnormal", "normal") and float(r["value"]) >= 0})
    return np.array(vals)
def rne(y, g):  # nearest-even on the grid g (index parity = code parity), saturating
    a = np.minimum(np.abs(y), g[-1])
    hi = np.clip(np.searchsorted(g, a), 1, len(g) - 1); lo = hi - 1
    dl, dh = a - g[lo], g[hi] - a
    pick = np.where(dl < dh, lo, np.where(dh < dl, hi, np.where(lo % 2 == 0, lo, hi)))
    return np.sign(y) * g[pick]

rows_csv = list(csv.DictReader(open(sys.argv[1])))
# The quantization scale s of each element (x s is rounded): amax to the largest finite
# value, rounded once to float32, per tensor, row or 1 x 128 block; MX: 2^-e with
# e = floor(log2 amax) - emax (OCP floor rule), per 1 x 32 block.
def scales(x, scheme, fmax):
    a = np.abs(x).astype(np.float64)
    if scheme in ("tensor", "tensor-fp4"):
        return np.full(x.shape, float(np.float32(fmax / a.max())))
    width = {"row": cols, "block1x128": 128, "mxfp8": 32}[scheme]
    am = a.reshape(rows, cols // width, width).max(axis=2)
    if scheme == "mxfp8":
        e = np.frexp(am)[1] - 1 - 8
        s = np.ldexp(1.0, -e)
    else:
        s = (fmax / am).astype(np.float32).astype(np.float64)
    return np.repeat(s, width, axis=1)

checked = 0
for fmt, scheme in (("e4m3fn", "tensor"), ("e4m3fn", "row"), ("e4m3fn", "block1x128"),
                    ("e4m3fn", "mxfp8"), ("e2m1fn", "tensor-fp4")):
    g = grid(fmt)
    clip = 448 + 16 if fmt == "e4m3fn" else 6 + 1
    for n in (0, 3):
        out = np.zeros(cols, bool); out[order[:n]] = True
        for factor in (1.0, 64.0):
            x = np.where(out, (base.astype(np.float64) * factor).astype(np.float32), base)
            s = scales(x, scheme, g[-1])
            q = rne(x.astype(np.float64) * s, g)
            d = (q / s).astype(np.float32).astype(np.float64)
            xd = x.astype(np.float64)
            e2 = (xd - d) ** 2
            sq = lambda m: 10 * math.log10((xd[:, m] ** 2).sum() / e2[:, m].sum())
            want_all, want_normal = sq(np.ones(cols, bool)), sq(~out)
            nz = xd[:, ~out] != 0
            want_fl = ((d[:, ~out] == 0) & nz).sum() / nz.sum()
            want_sat = (np.abs(xd) * s > clip).sum() / xd.size
            got = [r for r in rows_csv if r["scaling"] == scheme and r["outlier_channels"] == str(n)
                   and float(r["factor"]) == factor]
            assert len(got) == 1, (scheme, n, factor, got)
            r = got[0]
            assert r["format"] == fmt, r
            for name, want in (("sqnr_db", want_all), ("sqnr_normal_db", want_normal),
                               ("flushed_fraction_normal", want_fl), ("saturated_fraction", want_sat)):
                assert abs(float(r[name]) - want) < 1e-9, (scheme, n, factor, name, r[name], want)
            if n == 0:
                assert r["sqnr_outlier_db"] == "", r
            checked += 1
            print(scheme, n, factor, "SQNR", want_all, want_normal, "flushed", want_fl, "saturated", want_sat)
assert checked == 20, checked
assert len(rows_csv) == 7 * 2 * 2, len(rows_csv)
report = open(sys.argv[2]).read()
for title in ("## Claim", "## What this run measured", "## Agrees?", "2208.07339", "2412.19437"):
    assert title in report, title
PY

"$exp" outliers --rows 8 --cols 256 --outliers 0,3 --factors 1,64 --seed 5 --no-plots --out b > b.log 2>&1 ||
  bad "second run failed"
cmp -s a/outliers.csv b/outliers.csv && ok "same seed, same CSV" || bad "same seed gave another CSV"

# Bad input: exit 2, a message, and no results directory.
touch afile
expect_bad "rows" outliers --rows 0 --out badout
expect_bad "cols" outliers --cols 200 --out badout
expect_bad "cols" outliers --cols 64 --out badout
expect_bad "outliers" outliers --cols 128 --outliers 128 --out badout
expect_bad "outliers" outliers --outliers x --out badout
expect_bad "given twice" outliers --outliers 1,1 --out badout
expect_bad "factors" outliers --factors 0.5 --out badout
expect_bad "factors" outliers --factors 1,nan --out badout
expect_bad "seed" outliers --seed -1 --out badout
expect_bad "2^24" outliers --rows 65536 --cols 1024 --out badout
expect_bad "unknown option" outliers --frobnicate --out badout
expect_bad "factors" outliers --out badout --factors
expect_bad "afile" outliers --rows 2 --cols 128 --out afile
"$exp" outliers --cols 200 --cols 128 --rows 2 --outliers 1 --factors 2 --no-plots --out twice > twice.log 2>&1 &&
  grep -q "outlier channels of 128," twice.log && ok "--cols given twice: the last value counts" ||
  bad "--cols given twice: $(tail -2 twice.log)"
"$exp" --help | grep -q "outliers" && ok "--help lists outliers" || bad "--help"
"$exp" outliers --help | grep -q -- "--factors LIST" && ok "outliers --help" || bad "outliers --help"

# The language model (fp8exp outliers-lm), tiny: 2 blocks so that the first is e2m1fn,
# 160 tokens a batch so that 1 x 128 blocks differ from rows in the wgrad GEMMs.
tiny=(--data "$text" --iters 3 --seeds 1 --layers 2 --heads 1 --width 8 --context 16 --batch 10
      --eval-batches 1 --threads 1 --no-plots)
"$exp" outliers-lm "${tiny[@]}" --out lm > lm.log 2>&1 || bad "outliers-lm failed: $(tail -3 lm.log)"
for f in report.md outliers-lm.csv outliers-lm-evals.csv outliers-lm-inputs.csv outliers-lm-channels.csv \
         plots.gp plot-data/e2m1-nvfp4.dat; do
  [ -s "lm/$f" ] && ok "lm/$f written" || bad "lm/$f missing"
done
$py - lm << 'PY' && ok "outliers-lm: variants, inputs, channels and report" || bad "outliers-lm check"
import csv, sys
import numpy as np
from rng import normal
d = sys.argv[1]
rows = list(csv.DictReader(open(d + "/outliers-lm.csv")))
labels = ["fp32", "e4m3-tensor", "e4m3-row", "e4m3-block1x128", "e4m3-mx", "e2m1-tensor", "e2m1-mx",
          "e2m1-nvfp4"]
assert [r["variant"] for r in rows] == labels, rows
assert len({r["final_val_loss"] for r in rows}) == 8, rows  # every variant's keys took effect
inputs = list(csv.DictReader(open(d + "/outliers-lm-inputs.csv")))
names = [f"h{i}.{g}" for i in (0, 1) for g in ("attn.qkv", "attn.proj", "mlp.up", "mlp.down")] + ["head"]
assert [r["gemm"] for r in inputs] == names, inputs
assert [int(r["elements"]) for r in inputs] == [160 * k for k in (8, 8, 8, 32) * 2 + (8,)], inputs
ch = list(csv.DictReader(open(d + "/outliers-lm-channels.csv")))
assert [int(r["channel"]) for r in ch] == list(range(8)), ch
assert max(float(r["amax"]) for r in ch) == float(inputs[0]["amax"]), (ch, inputs[0])
z = normal(0, 0, 160 * 8).reshape(160, 8)
for c, r in enumerate(ch):
    assert abs(float(r["normal_amax"]) - float(np.abs(z[:, c]).max())) < 1e-6, (c, r)
    assert float(r["normal_fraction_at_least_6"]) == float((np.abs(z[:, c]) >= 6).mean()), (c, r)
report = open(d + "/report.md").read()
for s in ("## Claim", "arXiv:2208.07339", "## What this run measured", "## Agrees?", "bit for bit: yes",
          "| e2m1-nvfp4 |", "| h1.mlp.down | 5120 |"):
    assert s in report, s
PY
expect_bad "unknown option '--rows'" outliers-lm --rows 8 --out badout
expect_bad "iters: '0' must be a number" outliers-lm --iters 0 --out badout
expect_bad "unknown variant 'tensor'" outliers-lm --data "$text" --variants tensor --out badout
expect_bad "no-such.txt" outliers-lm --data no-such.txt --out badout
"$exp" --help | grep -q "outliers-lm" && ok "--help lists outliers-lm" || bad "--help outliers-lm"
"$exp" outliers-lm --help | grep -q -- "--variants LIST" && ok "outliers-lm --help" || bad "outliers-lm --help"

[ $fails -eq 0 ] && echo "all outliers checks passed" || echo "$fails outliers checks failed"
exit $((fails > 0))
