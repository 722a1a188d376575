#!/usr/bin/env bash
# fp8emu gemm with block scaling of float operands (--a-scale / --b-scale block:RxC, mx,
# nvfp4). NumPy quantizes the same operands independently (its own nearest-even rounding
# onto the format's grid, the block scales by the rules of docs/gemm.md) and hands the
# codes and scale files to fp8emu gemm as code inputs: both results must be bit-identical,
# and close to the float64 product of the dequantized operands. K = 300 is no multiple of
# the blocks (edge blocks), and some blocks are all zeros (amax 0). Then bad input: exit
# status 2, a message, no output file. Exit 77 (skipped) without NumPy.
set -u
source "$(dirname "$0")/numpy_test_preamble.sh"

$py - "$tool" <<'PY'
import os, subprocess, sys
import numpy as np

tool = sys.argv[1]
np.seterr(all="ignore")  # float32 overflow to inf is part of the rules (then clamped)
F32 = np.float32


def grid(E, M, bias, nan_top):
    """Positive values of a format in code order (codes 0 .. max)."""
    v = []
    for code in range(1 << (E + M)):
        e, m = code >> M, code & ((1 << M) - 1)
        v.append(m / 2**M * 2.0 ** (1 - bias) if e == 0 else (1 + m / 2**M) * 2.0 ** (e - bias))
    return np.array(v[:-1] if nan_top else v)


FORMATS = {"e4m3fn": (grid(4, 3, 7, True), 0x80), "e2m1fn": (grid(2, 1, 1, False), 0x8)}
E4M3 = FORMATS["e4m3fn"][0]


def rne(y, fmt):
    """Codes nearest y (float64, exact), ties to the even code, overflow saturating."""
    g, sign = FORMATS[fmt]
    a = np.abs(y)
    i = np.clip(np.searchsorted(g, a), 1, len(g) - 1)
    lo, hi = g[i - 1], g[i]
    up = (a - lo > hi - a) | ((a - lo == hi - a) & (i % 2 == 0))
    idx = np.where(a >= g[-1], len(g) - 1, np.where(up, i, i - 1))
    return (idx | np.where(np.signbit(y), sign, 0)).astype(np.uint8)


def value(codes, fmt):
    g, sign = FORMATS[fmt]
    v = g[codes & (sign - 1)]
    return np.where(codes & sign, -v, v)


def auto_scale(amax, fmax):
    """Transformer Engine's scale: fmax / amax rounded to float32; 1 for amax = 0 and
    when the quotient is not a finite float32."""
    if amax == 0:
        return F32(1)
    s = F32(fmax / amax)
    return s if np.isfinite(s) else F32(1)


def ilogb(x):
    return int(np.frexp(x)[1]) - 1


def quantize(x, fmt, rule, br, bc):
    """Returns codes, the scale array for the code-input path, its options, and the
    dequantized float64 operand."""
    g = FORMATS[fmt][0]
    fmax = g[-1]
    R, C = x.shape
    gr, gc = -(-R // br), -(-C // bc)
    amax = np.zeros((gr, gc))
    for bi in range(gr):
        for bj in range(gc):
            amax[bi, bj] = np.abs(x[bi * br:(bi + 1) * br, bj * bc:(bj + 1) * bc].astype(np.float64)).max()
    enc = F32(1)  # NVFP4's tensor encode scale; its float32 reciprocal dequantizes
    if rule == "nvfp4" and amax.max() > 0:
        enc = np.minimum(F32(448 * fmax) / F32(amax.max()), np.finfo(F32).max)
    tensor = F32(1) / enc
    q = np.zeros((gr, gc), F32)      # quantization multipliers
    deq = np.zeros((gr, gc))          # dequantization factors (without the tensor scale)
    sc = np.zeros((gr, gc), F32 if rule == "block" else np.uint8)
    for bi in range(gr):
        for bj in range(gc):
            m = amax[bi, bj]
            if rule == "block":
                q[bi, bj] = auto_scale(m, fmax)
                sc[bi, bj] = F32(1) / q[bi, bj]
                deq[bi, bj] = sc[bi, bj]
            elif rule == "mx":
                e = min(max(ilogb(m) - ilogb(fmax), -127), 127) if m > 0 else -127
                q[bi, bj] = F32(2.0 ** -e)
                sc[bi, bj] = e + 127
                deq[bi, bj] = 2.0 ** e
            else:
                v = np.minimum(F32(m) * (enc * (F32(1) / F32(fmax))), np.finfo(F32).max)
                c = int(rne(np.array([float(v)]), "e4m3fn")[0])
                d = F32(E4M3[c])
                q[bi, bj] = F32(1) if d == 0 else np.minimum(F32(1) / (d * tensor), np.finfo(F32).max)
                sc[bi, bj] = c
                deq[bi, bj] = d
    qx = np.repeat(np.repeat(q, br, 0), bc, 1)[:R, :C].astype(np.float64)
    codes = rne(x.astype(np.float64) * qx, fmt)
    dx = np.repeat(np.repeat(deq, br, 0), bc, 1)[:R, :C]
    return codes, sc, tensor, value(codes, fmt) * dx * float(tensor)


def run(args, rc=0):
    p = subprocess.run([tool] + args, capture_output=True, text=True)
    if p.returncode != rc:
        sys.exit(f"FAIL: {' '.join(args)}: exit {p.returncode}, expected {rc}\n{p.stdout}{p.stderr}")
    return p.stdout + p.stderr


r = np.random.default_rng(13)
M, K, N = 9, 300, 5
a = (r.standard_normal((M, K)) * np.exp(r.standard_normal((M, 1)))).astype(F32)
b = (r.standard_normal((K, N)) * 0.05).astype(F32)
a[:, 32:64] = 0            # zero blocks of A for every block size along K
a[2, :] = 0                # a zero row
b[0:32, 2] = 0             # a zero block of B's 32 x 1 and 16 x 1 grids
np.save("a.npy", a)
np.save("a16.npy", a.astype(np.float16))
np.save("b.npy", b)

cases = [  # (A rule, A block, B rule, B block, format, A file)
    ("block:1x128", (1, 128), "block:128x128", (128, 128), "e4m3fn", "a.npy"),  # DeepSeek-V3
    ("block:1x32", (1, 32), "block:32x2", (32, 2), "e4m3fn", "a16.npy"),        # float16 input
    ("mx", (1, 32), "mx", (32, 1), "e4m3fn", "a.npy"),                          # MXFP8
    ("nvfp4", (1, 16), "nvfp4", (16, 1), "e2m1fn", "a.npy"),                    # NVFP4
]
checked = 0
for ra, (abr, abc), rb, (bbr, bbc), fmt, afile in cases:
    rule = ra.split(":")[0]
    x = np.load(afile).astype(F32)
    out = run(["gemm", "--a", afile, "--b", "b.npy", "--a-scale", ra, "--b-scale", rb, "cli.npy"])
    ca, sa, ta, da = quantize(x, fmt, rule, abr, abc)
    cb, sb, tb, db = quantize(b, fmt, rule, bbr, bbc)
    np.save("ca.npy", ca); np.save("cb.npy", cb); np.save("sa.npy", sa); np.save("sb.npy", sb)
    ref = ["gemm", "--a", "ca.npy", "--b", "cb.npy", "--a-format", fmt, "--b-format", fmt,
           "--a-scale", "sa.npy", "--a-block", f"{abr}x{abc}", "--b-scale", "sb.npy", "--b-block", f"{bbr}x{bbc}"]
    if rule == "nvfp4":
        # The tensor scales as alpha: the epilogue forms (alpha ta) tb = fl(ta tb) either way
        # (K is split by the blocks).
        ref += ["--a-scale-codes", "e4m3", "--b-scale-codes", "e4m3", "--alpha", float(F32(ta) * F32(tb)).hex()]
    run(ref + ["ref.npy"])
    got, want = np.load("cli.npy"), np.load("ref.npy")
    assert got.dtype == np.float32 and got.shape == (M, N), (got.dtype, got.shape)
    bad = int(np.sum(got.view(np.uint32) != want.view(np.uint32)))
    assert bad == 0, f"{ra}: {bad} of {got.size} elements differ from the code-input path\n{got}\n{want}"
    exact = da @ db
    assert np.all(np.abs(got - exact) <= 1e-5 * np.abs(exact).max()), f"{ra}: far from the float64 product"
    assert np.all(got[2] == 0), f"{ra}: the zero row"
    rel = np.abs(got - a.astype(np.float64) @ b).max() / np.abs(a.astype(np.float64) @ b).max()
    assert rel < (0.1 if fmt == "e4m3fn" else 0.5), f"{ra}: relative error {rel} against the unquantized product"
    # The summary names the scales: count, min, max, and the blocks with amax 0.
    gr, gc = -(-M // abr), -(-K // abc)
    assert f"A: {fmt} from" in out and f"{gr * gc} blocks, min " in out, out
    zero = sum(bool(np.all(a[i * abr:(i + 1) * abr, j * abc:(j + 1) * abc] == 0))
               for i in range(gr) for j in range(gc))
    assert f"; {zero} with amax 0" in out, (zero, out)
    assert ("; tensor scale " in out) == (rule == "nvfp4"), out
    print(f"ok: {ra} / {rb} ({fmt}, {afile}): {got.size} elements bit-identical to the code-input path, "
          f"max relative error {rel:.3g}")
    checked += 1
assert checked == len(cases) == 4, checked

# Bad input: exit 2, a message, no output file.
np.save("a64.npy", a.astype(np.float64))
an = a.copy(); an[1, 7] = np.nan; np.save("anan.npy", an)
np.save("codes.npy", rne(a.astype(np.float64), "e4m3fn"))
for args, msg in [
    (["--a", "a64.npy", "--b", "b.npy", "--a-scale", "mx"], "--a-scale mx quantizes float32 or float16 values"),
    (["--a", "anan.npy", "--b", "b.npy", "--a-scale", "block:1x128"], "element (1, 7) is nan; block scales need finite inputs"),
    (["--a", "a.npy", "--b", "b.npy", "--a-scale", "mx", "--b-scale", "block:16x1"], "A's blocks along K (32) differ from B's (16)"),
    (["--a", "codes.npy", "--b", "b.npy", "--a-scale", "mx"], "--a-scale mx needs float input"),
    (["--a", "a.npy", "--b", "b.npy", "--a-scale", "mx", "--a-block", "1x32"], "--a-block applies to --a-scale FILE.npy"),
    (["--a", "a.npy", "--b", "b.npy", "--a-scale", "block:0x4"], "(expected 1..1073741824)"),
    (["--a", "a.npy", "--b", "b.npy", "--a-scale", "block:1x"], "invalid --a-scale block:"),
    (["--a", "a.npy", "--b", "b.npy", "--b-scale", "mxfp8"], "invalid --b-scale 'mxfp8': expected a number > 0"),
]:
    text = run(["gemm"] + args + ["never.npy"], rc=2)
    assert msg in text, (args, text)
    assert not os.path.exists("never.npy"), args
    print(f"ok: exit 2: {msg}")
PY
