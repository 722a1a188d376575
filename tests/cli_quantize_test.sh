#!/usr/bin/env bash
# fp8emu quantize / dequantize: the output keeps the input's shape (0-d, empty and 3-D
# included); dequantize --dtype float16 is the nearest-even float16 of value / scale,
# checked against exact rational arithmetic for every code of e4m3fn, e5m2 and bfloat16;
# quantize and gemm print the scales, seed and random bits they used. Exit 77 (skipped)
# without NumPy.
set -u
source "$(dirname "$0")/numpy_test_preamble.sh"

$py - "$tool" <<'PY'
import subprocess, sys
import numpy as np

tool = sys.argv[1]
np.seterr(all="ignore")  # NaN and signalling-NaN codes decode with warnings


def run(*args):
    p = subprocess.run([tool, *args], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"FAIL: {' '.join(args)}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    return p.stdout + p.stderr


# 1. Shapes: quantize (codes and values) and dequantize (every dtype) keep the shape.
shapes = [(), (1,), (0,), (2, 0, 3), (2, 3, 4)]
count = 0
for shape in shapes:
    for dt in (np.float16, np.float32, np.float64):
        np.save("x.npy", np.full(shape, 3.3, dt))
        run("quantize", "--format", "e4m3fn", "x.npy", "q.npy")
        run("quantize", "--format", "e4m3fn", "--output", "values", "x.npy", "v.npy")
        q, v = np.load("q.npy"), np.load("v.npy")
        assert q.shape == shape and q.dtype == np.uint8 and np.all(q == 0x45), (shape, dt, q.shape, q)
        assert v.shape == shape and v.dtype == np.float32 and np.all(v == 3.25), (shape, dt, v.shape)
        count += 1
    for dtype, npdt in (("float32", np.float32), ("float64", np.float64), ("float16", np.float16)):
        run("dequantize", "--format", "e4m3fn", "--dtype", dtype, "q.npy", "d.npy")
        d = np.load("d.npy")
        assert d.shape == shape and d.dtype == npdt and np.all(d == 3.25), (shape, dtype, d.shape, d.dtype)
        count += 1
assert count == 6 * len(shapes), count
print(f"ok: {count} quantize / dequantize calls keep the shape, () included")

# 2. dequantize --dtype float16 against exact arithmetic: h is the nearest float16 of
# q = value / scale, ties to even bits, |q| >= 65520 (65504 + half an ulp) to infinity,
# iff |value| lies between (midpoint below h) * scale and (midpoint above h) * scale, an
# end included only when h's bits are even. Midpoints have 12 significant bits and scales
# 24: the products are exact in float64, and so are the comparisons.
def nearest_f16(x, scale, h):
    a, bits = np.abs(x), np.abs(h).view(np.uint16).astype(np.int64)
    hv = np.abs(h).astype(np.float64)
    f16 = lambda b: b.astype(np.uint16).view(np.float16).astype(np.float64)
    lo = np.where(bits == 0, 0.0, np.where(bits == 0x7C00, 65520.0, (f16(np.maximum(bits - 1, 0)) + hv) / 2))
    hi = np.where(bits >= 0x7BFF, np.where(bits == 0x7C00, np.inf, 65520.0), (f16(np.minimum(bits + 1, 0x7BFF)) + hv) / 2)
    even = bits % 2 == 0
    inside = ((a > lo * scale) | (even & (a == lo * scale))) & ((a < hi * scale) | (even & (a == hi * scale)))
    return inside & (np.signbit(h) == np.signbit(x)) & (bits <= 0x7C00)


def decode(fmt, codes):
    """The exact values of every code (float64)."""
    if fmt == "bfloat16":
        return (codes.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    if fmt == "e5m2":
        return (codes.astype(np.uint16) << 8).view(np.float16).astype(np.float64)
    e, m, s = (codes >> 3) & 15, codes & 7, np.where(codes & 0x80, -1.0, 1.0)
    v = np.where(e == 0, m / 8 * 2.0**-6, (1 + m / 8) * 2.0 ** (e.astype(np.float64) - 7))
    return np.where((codes & 0x7F) == 0x7F, np.nan, s * v)


checked = 0
for fmt, codes in (("e4m3fn", np.arange(256, dtype=np.uint8)), ("e5m2", np.arange(256, dtype=np.uint8)),
                   ("bfloat16", np.arange(65536, dtype=np.uint32).astype(np.uint16))):
    np.save("c.npy", codes)
    vals = decode(fmt, codes)
    for scale in ("1", "3", "0.1", "0x1p-20"):
        run("dequantize", "--format", fmt, "--dtype", "float16", "--scale", scale, "c.npy", "h.npy")
        h = np.load("h.npy")
        assert h.dtype == np.float16 and h.shape == codes.shape
        sc = float(np.float32(float.fromhex(scale) if scale.startswith("0x") else float(scale)))
        finite = ~np.isnan(vals)
        bad = int(np.sum(~nearest_f16(vals[finite], sc, h[finite]))) + int(np.sum(~np.isnan(h[~finite])))
        checked += len(vals)
        assert bad == 0, f"{fmt} --scale {scale}: {bad} of {len(vals)} float16 results are not the nearest"
assert checked == 4 * (256 + 256 + 65536), checked
print(f"ok: dequantize --dtype float16: {checked} codes and scales, every one the nearest float16")

# 3. The printed scale, seed and random bits.
np.save("amax.npy", np.array([0.5, -3.0, 1.0], np.float32))
out = run("quantize", "--format", "e4m3fn", "--scale", "auto", "amax.npy", "o.npy")
assert "amax 3; scale 149.33333 (auto); no random bits" in out, out
out = run("quantize", "--format", "e4m3fn", "--rounding", "sr-b", "--seed", "9", "--sr-bits", "12", "amax.npy", "o.npy")
assert "; scale 1 (default); seed 9, 12 random bits" in out, out
out = run("quantize", "--format", "e4m3fn", "--rounding", "sr-a", "--scale", "0.5", "amax.npy", "o.npy")
assert "; scale 0.5; seed 0, 32 random bits" in out, out
r = np.random.default_rng(2)
np.save("ga.npy", r.standard_normal((3, 40)).astype(np.float32) * 2)
np.save("gb.npy", r.standard_normal((40, 2)).astype(np.float32))
amax = float(np.abs(np.load("ga.npy")).max())
out = run("gemm", "--a", "ga.npy", "--b", "gb.npy", "--a-scale", "auto", "--b-scale", "0.25",
          "--accumulate", "bf16,rounding=sr-a,sr-bits=7,seed=5", "g.npy")
assert "; seed 5, 7 random bits\n" in out, out
assert "  A: e4m3fn from float32, tensor scale " in out and f" (auto: amax {amax!r})\n" in out, out
assert "  B: e4m3fn from float32, tensor scale 0.25\n" in out, out
out = run("gemm", "--a", "ga.npy", "--b", "gb.npy", "g.npy")
assert "; no random bits\n  A: e4m3fn from float32, no scale\n  B: e4m3fn from float32, no scale\n" in out, out
print("ok: quantize and gemm print their scales, seed and random bits")
PY
