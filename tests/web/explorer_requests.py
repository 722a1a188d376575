"""Writes the requests that compare the explorer's WebAssembly module with the native build
(explorer_dump.cpp, explorer_dump.js): a structured superset of the inputs that decide the
results, for every catalog format.

    explorer_requests.py FP8EMU_TOOL > REQUESTS

For each format: its properties and binades; every code (every 16th of a 16-bit format, every
2^k-th of a wider one); and explain under every rounding mode of every code's value, the
midpoints between neighbouring values (the ties), the doubles next to them, values past the
largest one, below the smallest one, zeros, infinities and NaN, under every saturation and
NaN mode at the top of the range, and stochastic rounding with several widths N and random
values R (0, 1, 2^(N-1), 2^N - 1). Values travel as hexadecimal floats, so both sides read
the same double. The tool gives the catalog (formats --csv) and each format's codes (table).
"""
import csv
import io
import math
import subprocess
import sys

tool = sys.argv[1]


def run(*args):
    return subprocess.run([tool, *args], check=True, capture_output=True, text=True).stdout


catalog = list(csv.DictReader(io.StringIO(run("formats", "--csv"))))
out = []
emit = lambda *fields: out.append("\t".join(str(f) for f in fields))

emit("catalog")
emit("options")
for bad in ["e9m1", "e0m3", "e4m3:bias=x", "binary8p9se", "", "float8", "e4m3:policy=nope"]:
    emit("format", bad)
    emit("explain", bad, "1", "rne", "finite", "canonical", 0, 0, 0, 0)
for bad_value in ["", "abc", "1.5x", "0x", "--1"]:
    emit("explain", "e4m3fn", bad_value, "rne", "finite", "canonical", 0, 0, 0, 0)
emit("explain", "e4m3fn", "1", "up", "finite", "canonical", 0, 0, 0, 0)
emit("explain", "e4m3fn", "1", "rne", "clamp", "canonical", 0, 0, 0, 0)
emit("explain", "e4m3fn", "1.1", "sr-a", "finite", "canonical", 0, 0, 0, 0)     # N = 0
emit("explain", "e4m3fn", "1.1", "sr-a", "finite", "canonical", 0, 0, 33, 0)    # N = 33
emit("explain", "e4m3fn", "1.1", "sr-a", "finite", "canonical", 0, 0, 4, 16)    # R = 2^N
emit("explain", "e4m3fn", "1.1", "sr-a", "finite", "canonical", 0, 0, 4, 1.5)   # R not whole
emit("code", "e4m3fn", 256)
emit("code", "e4m3fn", -1)
emit("codes", "e4m3fn", 0, 70000)

modes_sat = ["finite", "propagate", "none"]
spellings = [row["name"] for row in catalog] + ["e3m4:bias=4", "e5m2:bias=16", "e4m3:policy=fn",
                                                "binary8p3se", "binary8p5uf", "binary6p3sf",
                                                "e4m3:bias=10:policy=fnuz"]
values_total = 0
for spelling in spellings:
    emit("format", spelling)
    emit("binades", spelling)
    bits = next((int(r["bits"]) for r in catalog if r["name"] == spelling), None)
    table = run("table", spelling) if bits is None or bits <= 16 else None
    if table is None:  # wider than 16 bits: a stride of codes and values near the edges
        codes = [c for c in range(0, 1 << bits, (1 << bits) // 4096 + 1)]
        for c in codes[:64]:
            emit("code", spelling, c)
        emit("codes", spelling, (1 << bits) - 5, 10)
        vals = [1.0, 3.3, -0.1, 1e-40, 1e38, 3.5e38, float("inf"), float("nan"), 2.0**-149,
                1 + 2.0**-11, 1 + 2.0**-8 + 2.0**-20]
    else:
        rows = list(csv.DictReader(io.StringIO(table)))
        n = len(rows)
        step = 1 if n <= 256 else 16
        emit("codes", spelling, 0, 256)
        for r in rows[::step]:
            emit("code", spelling, r["code"])
        pos = sorted({float(r["value"]) for r in rows if r["class"] in ("normal", "subnormal", "zero")
                      and float(r["value"]) >= 0})
        if n > 256:  # a 16-bit format: the values near the ends and a stride through the rest
            pos = pos[:24] + pos[24:-24:1021] + pos[-24:]
        vals, near = [], []
        for a, b in zip(pos, pos[1:]):
            m = (a + b) / 2  # exact: at most 12 significant bits
            vals += [a, m]
            near += [math.nextafter(m, -math.inf), math.nextafter(m, math.inf)]
        top = pos[-1]
        vals += [top, top * 1.5, top * 2, top * 1e10, 1e300, pos[1] / 2, pos[1] / 4,
                 pos[1] / 3, 1e-300, 5e-324, 0.0, -0.0, float("inf"), float("nan")]
        vals += [-v for v in vals[:: 3 if n <= 256 else 1]]
        # The doubles next to the ties decide the nearest modes only.
        for v in near:
            for mode in ("rne", "rna"):
                emit("explain", spelling, v.hex(), mode, "finite", "canonical", 0, 0, 0, 0)
    for v in vals:
        values_total += 1
        sign = "-" if math.copysign(1.0, v) < 0 else ""
        x = v.hex() if math.isfinite(v) else sign + ("nan" if v != v else "inf")
        emit("explain_all", spelling, x, "finite", "canonical", 0, 0, 32, 12345)
        if abs(v) > (top if table is not None else 1e38) * 0.75 or not math.isfinite(v):
            for s in modes_sat[1:]:
                emit("explain_all", spelling, x, s, "canonical", 0, 0, 32, 12345)
            emit("explain", spelling, x, "rne", "none", "nvidia", 0, 0, 0, 0)
        if values_total % 7 == 0:
            for sat in modes_sat:
                emit("explain", spelling, x, "rz", sat, "canonical", 1, 1, 0, 0)
        if values_total % 11 == 0:
            for nbits in (1, 4, 32):
                for r in sorted({0, 1 << (nbits - 1), (1 << nbits) - 1}):
                    for mode in ("sr-a", "sr-b", "sr-c"):
                        emit("explain", spelling, x, mode, "finite", "canonical", 0, 0, nbits, r)
sys.stdout.write("\n".join(out) + "\n")
sys.stderr.write(f"explorer_requests: {len(out)} requests, {len(spellings)} formats, {values_total} values\n")
