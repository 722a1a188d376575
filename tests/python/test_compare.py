"""fp8emu.compare against `fp8emu compare` on the same .npy files: the report's text byte
for byte, its dict equal to the --json report (expected and actual None), passed equal to
the exit status, for codes (uint8, uint16) and values (float16, float32, float64) of any
shape, with tolerance and keep; and bad input."""

import json
import math

import numpy as np
import pytest

import fp8emu

RNG = np.random.default_rng(23)


def codes_pair(dtype=np.uint8, shape=(6, 9)):
    e = RNG.integers(0, 0x7F, shape).astype(dtype)  # finite e4m3fn codes, + and -
    e[RNG.random(shape) < 0.5] |= 0x80
    e.reshape(-1)[[1, 11, 21, 31, 41]] = [0x30, 0x2D, 0x52, 0x95, 0x29]
    a = e.copy()
    a.reshape(-1)[[1, 11, 21, 31, 41]] = [0x31, 0x7F, 0xD2, 0x00, 0x32]  # 1 ulp, NaN, sign, +0, 9 ulps
    return e, a


def values_pair(dtype, shape=(5, 7)):
    x = RNG.standard_normal(shape).astype(dtype)
    y = x.copy()
    f = y.reshape(-1)
    f[0] = np.nextafter(f[0], dtype(9))
    f[8] = np.nan
    f[16] = -f[16]
    f[24] = 0
    f[32] = np.inf
    f[33] *= dtype(1.3)
    return x, y


def check(cli, npy, e, a, fmt, tolerance=None, keep=None):
    """Returns the report after checking its text, dict and verdict against the CLI's."""
    epath = npy.save("e", e)
    args = ["compare", "--format", fmt, "--expected", epath, "--actual", npy.save("a", a), "--json", "r.json"]
    kw = {}
    if tolerance is not None:
        args += ["--tolerance-ulps", tolerance]
        kw["tolerance_ulps"] = tolerance
    if keep is not None:
        args += ["--show", keep]
        kw["keep"] = keep
    p = cli(*args, check=False)
    assert p.returncode in (0, 1), p.stderr
    r = fp8emu.compare(e, a, fmt, **kw)
    assert str(r) == p.stdout
    want = json.loads((epath.parent / "r.json").read_text())
    want["expected"] = want["actual"] = None
    assert r.to_dict() == want
    assert r.passed == (p.returncode == 0)
    assert r.total == e.size == r.exact + r.tolerated + r.failed
    return r


def test_codes(cli, npy):
    e, a = codes_pair()
    r = check(cli, npy, e, a, "e4m3fn")
    assert (r.exact, r.failed) == (49, 5)
    assert r.by_kind == dict(nan_vs_number=1, nan_bits=0, inf_vs_finite=0, sign=2, zero_vs_subnormal=0,
                             zero_vs_normal=0, magnitude=2)
    assert [m.index for m in r.first] == [1, 11, 21, 31, 41]
    assert r.first[0].ulps == 1 and r.first[1].kind == "nan_vs_number" and math.isinf(r.first[1].ulps)
    assert sum(r.histogram) == 5 and len(r.histogram) == len(fp8emu.ulp_bucket_labels()) == 34
    check(cli, npy, e, a, "e4m3fn", tolerance=9, keep=2)
    check(cli, npy, e, e, "e4m3fn")
    check(cli, npy, e, a, "e5m2", keep=0)
    e16, a16 = codes_pair(np.uint16, (3, 4, 5))
    check(cli, npy, e16 | 0x3C00, a16 | 0x3C00, "float16", tolerance=2.5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_values(cli, npy, dtype):
    x, y = values_pair(dtype)
    r = check(cli, npy, x, y, "e4m3fn", tolerance=1.5)
    assert r.off_grid_expected > 0 and not r.as_codes and r.format == fp8emu.Format("e4m3fn")
    check(cli, npy, x, y, "bfloat16")
    check(cli, npy, x, y, "float16" if dtype != np.float64 else "float32", tolerance=3, keep=3)
    check(cli, npy, x, x, "float32")


def test_shapes(cli, npy):
    x, y = values_pair(np.float32, (3, 4, 3))
    check(cli, npy, x, y, "float32")
    check(cli, npy, np.array(1.5, np.float32), np.array(1.75, np.float32), "e4m3fn")
    check(cli, npy, np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32), "e4m3fn")
    # Views that are not C-contiguous: copied, the same report.
    e, a = codes_pair(shape=(9, 6))
    want = str(fp8emu.compare(e.T.copy(), a.T.copy(), "e4m3fn"))
    assert str(fp8emu.compare(e.T, a.T, "e4m3fn")) == want


def test_codes_of_wide_formats():
    e = np.arange(10, dtype=np.uint32) << 20
    a = e.copy()
    a[3] += 1
    r = fp8emu.compare(e, a, "float32")
    assert (r.failed, r.first[0].index, r.first[0].ulps) == (1, 3, 1)


def test_bad_input():
    e, a = codes_pair()
    x, y = values_pair(np.float32)
    cases = [
        (ValueError, r"shape mismatch: expected is 6x9, actual is 6x8", lambda: fp8emu.compare(e, a[:, :8], "e4m3fn")),
        (TypeError, r"dtype mismatch: expected holds float32, actual holds float64",
         lambda: fp8emu.compare(x, y.astype(np.float64), "e4m3fn")),
        (TypeError, r"codes of e4m3fn are uint8; the arrays hold int64",
         lambda: fp8emu.compare(e.astype(np.int64), a.astype(np.int64), "e4m3fn")),
        (TypeError, r"codes of float32 are uint32; the arrays hold uint8", lambda: fp8emu.compare(e, a, "float32")),
        (ValueError, r"element 0: code \d+ of the expected array does not fit in the 6 bits of e2m3fn",
         lambda: fp8emu.compare(e | 0xC0, a | 0xC0, "e2m3fn")),
        (ValueError, r"tolerance_ulps: expected a finite number >= 0, got nan",
         lambda: fp8emu.compare(e, a, "e4m3fn", tolerance_ulps=float("nan"))),
        (ValueError, r"keep: expected a count >= 0", lambda: fp8emu.compare(e, a, "e4m3fn", keep=-1)),
        (TypeError, r"expected must be a NumPy array, not list", lambda: fp8emu.compare([1], a, "e4m3fn")),
        (ValueError, r"invalid format 'e9m1'", lambda: fp8emu.compare(e, a, "e9m1")),
    ]
    for error, message, call in cases:
        with pytest.raises(error, match=message):
            call()
    assert len(cases) == 9
