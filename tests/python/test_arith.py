"""fp8emu.add, sub, mul, div, fma and sqrt on code arrays: the same bits as `fp8emu arith`
on the same .npy files; every operand pair of e4m3fn, e5m2 and e3m2fn through add, mul and
div against an oracle of exact rationals (fractions.Fraction) rounded to nearest-even by
enumerating the format's values; stochastic rounding, broadcasting, dtypes and bad input."""

import bisect
import threading
import time
from fractions import Fraction

import numpy as np
import pytest

import fp8emu

OPS = {"add": 2, "sub": 2, "mul": 2, "div": 2, "fma": 3, "sqrt": 1}


def call(op, operands, fmt, **kw):
    return getattr(fp8emu, op)(*operands, fmt, **kw)


def random_codes(rng, shape, bits, dtype=np.uint8):
    return rng.integers(0, 1 << bits, size=shape, dtype=np.uint64).astype(dtype)


# ---------------------------------------------------------------------------------------
# The same bits as the command line.

CLI_MODES = [
    ({}, []),
    ({"rounding": "sr-b", "sr_bits": 6, "seed": 7, "stream": 2},
     ["--rounding", "sr-b", "--sr-bits", "6", "--seed", "7", "--stream", "2"]),
    ({"rounding": "rd", "saturation": "none", "daz": True, "ftz": True, "nan": "nvidia"},
     ["--rounding", "rd", "--saturation", "none", "--daz", "--ftz", "--nan", "nvidia"]),
]


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("mode", range(len(CLI_MODES)))
def test_same_bits_as_the_cli(op, mode, cli, npy):
    kw, flags = CLI_MODES[mode]
    rng = np.random.default_rng(len(op) * 10 + mode)
    # Broadcast shapes: a (6, 1, 9), b (5, 1), c (9,) -> (6, 5, 9).
    shapes = [(6, 1, 9), (5, 1), (9,)][: OPS[op]]
    xs = [random_codes(rng, s, 8) for s in shapes]
    args = []
    for name, x in zip("abc", xs):
        args += [f"--{name}", npy.save(name, x)]
    cli("arith", op, "--format", "e4m3fn", *args, *flags, "out.npy")
    want = npy.load("out")
    got = call(op, xs, "e4m3fn", **kw)
    assert got.dtype == np.uint8 and want.dtype == np.uint8
    assert got.shape == want.shape == np.broadcast_shapes(*shapes)
    np.testing.assert_array_equal(got, want)


def test_same_bits_as_the_cli_uint16_codes(cli, npy):
    rng = np.random.default_rng(3)
    a, b = random_codes(rng, (300,), 16, np.uint16), random_codes(rng, (300,), 16, np.uint16)
    cli("arith", "div", "--format", "bfloat16", "--a", npy.save("a", a), "--b", npy.save("b", b),
        "--rounding", "sr-c", "--seed", "11", "out.npy")
    got = fp8emu.div(a, b, "bfloat16", rounding="sr-c", seed=11)
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, npy.load("out"))


# ---------------------------------------------------------------------------------------
# The oracle: exact values as Fractions, rounded by comparing with the neighbours' midpoint.
# A format: exponent bits, mantissa bits, bias, and which codes are special:
#   "ieee"   exponent field all ones: infinities (mantissa 0) and NaNs (e5m2);
#   "fn"     only S.1111.111 is NaN, no infinity (OCP OFP8 e4m3fn);
#   "finite" no infinity, no NaN (OCP MX FP6 e3m2fn).
# Invalid operations give the format's positive NaN (e5m2 0x7E, e4m3fn 0x7F) or, without
# a NaN, +max; overflow gives +-max under saturation "finite", and under "none" +-inf
# (ieee), a NaN of the result's sign (fn) or +-max (finite).

SPECS = {"e4m3fn": (4, 3, 7, "fn"), "e5m2": (5, 2, 15, "ieee"), "e3m2fn": (3, 2, 3, "finite")}
NAN = "nan"


class Oracle:
    def __init__(self, name):
        E, M, bias, kind = SPECS[name]
        self.kind, self.bits = kind, 1 + E + M
        self.sign = 1 << (E + M)
        all_ones = (1 << E) - 1
        # Finite magnitudes, by magnitude code (increasing with the code).
        self.grid = []
        for mag in range(self.sign):
            e, m = mag >> M, mag & ((1 << M) - 1)
            if kind == "ieee" and e == all_ones:
                break
            if kind == "fn" and e == all_ones and m == (1 << M) - 1:
                break
            frac = Fraction(m, 1 << M)
            v = frac * Fraction(2) ** (1 - bias) if e == 0 else (1 + frac) * Fraction(2) ** (e - bias)
            self.grid.append(v)
        self.max_code = len(self.grid) - 1
        top = self.grid[-1]
        # The next value of the top binade beyond max (the rounding target of overflow).
        e_top = self.max_code >> M
        self.beyond = top + Fraction(2) ** (e_top - bias - M)
        self.nan_code = {"ieee": (all_ones << M) | (1 << (M - 1)), "fn": self.sign - 1,
                         "finite": self.max_code}[kind]
        self.inf_code = all_ones << M if kind == "ieee" else None

    def value(self, code):
        """Returns NAN, ("inf", negative) or (negative, magnitude)."""
        neg, mag = bool(code & self.sign), code & (self.sign - 1)
        if mag > self.max_code:
            if self.kind == "ieee" and mag == self.inf_code:
                return ("inf", neg)
            return NAN
        return (neg, self.grid[mag])

    def overflow(self, neg, saturation):
        s = self.sign if neg else 0
        if saturation == "finite" or self.kind == "finite":
            return s | self.max_code
        return s | (self.inf_code if self.kind == "ieee" else self.nan_code)

    def nearest(self, exact):
        """Rounds an exact result (as exact_* return it) to nearest-even: NAN, a code, or
        ("overflow", negative) for a result beyond max or infinite."""
        if exact == NAN:
            return NAN
        if exact[0] == "inf":
            return ("overflow", exact[1])
        neg, mag = exact
        s = self.sign if neg else 0
        if mag >= self.beyond:
            return ("overflow", neg)
        k = bisect.bisect_right(self.grid, mag) - 1  # grid[k] <= mag < next
        if self.grid[k] == mag:
            return s | k
        lo, hi = self.grid[k], self.grid[k + 1] if k < self.max_code else self.beyond
        mid = (lo + hi) / 2
        up = mag > mid or (mag == mid and k % 2 == 1)  # a tie goes to the even code
        if up and k == self.max_code:
            return ("overflow", neg)
        return s | (k + 1 if up else k)

    def code(self, rounded, saturation):
        """The code of a result of nearest() under `saturation`."""
        if rounded == NAN:
            return self.nan_code
        if isinstance(rounded, tuple):
            return self.overflow(rounded[1], saturation)
        return rounded

    def round(self, exact, saturation):
        return self.code(self.nearest(exact), saturation)


def negative(v):
    return v[1] if v[0] == "inf" else v[0]


def is_zero(v):
    return v[0] != "inf" and v[1] == 0


def signed(v):
    neg, mag = v
    return -mag if neg else mag


def exact_add(x, y):
    if x == NAN or y == NAN:
        return NAN
    if x[0] == "inf" or y[0] == "inf":
        if x[0] == "inf" and y[0] == "inf" and x[1] != y[1]:
            return NAN
        return x if x[0] == "inf" else y
    s = signed(x) + signed(y)
    if s == 0:  # an exact zero: -0 only for -0 + -0 (rne)
        return (x[0] and y[0] and is_zero(x) and is_zero(y), Fraction(0))
    return (s < 0, abs(s))


def exact_mul(x, y):
    if x == NAN or y == NAN:
        return NAN
    neg = negative(x) != negative(y)
    if x[0] == "inf" or y[0] == "inf":
        return NAN if is_zero(x) or is_zero(y) else ("inf", neg)
    return (neg, x[1] * y[1])


def exact_div(x, y):
    if x == NAN or y == NAN:
        return NAN
    neg = negative(x) != negative(y)
    xi, yi = x[0] == "inf", y[0] == "inf"
    x0, y0 = is_zero(x), is_zero(y)
    if (xi and yi) or (x0 and y0):
        return NAN
    if xi or y0:
        return ("inf", neg)
    if x0 or yi:
        return (neg, Fraction(0))
    return (neg, x[1] / y[1])


EXACT = {"add": exact_add, "mul": exact_mul, "div": exact_div}


@pytest.mark.parametrize("fmt", list(SPECS))
def test_every_pair_against_exact_rationals(fmt):
    o = Oracle(fmt)
    n = 1 << o.bits
    values = [o.value(c) for c in range(n)]
    a = np.repeat(np.arange(n, dtype=np.uint8), n)
    b = np.tile(np.arange(n, dtype=np.uint8), n)
    cases = mismatches = 0
    first = []
    for op, exact in EXACT.items():
        expected = {"none": [], "finite": []}
        for x, y in zip(a.tolist(), b.tolist()):
            r = o.nearest(exact(values[x], values[y]))
            for sat, codes in expected.items():
                codes.append(o.code(r, sat))
        for sat, codes in expected.items():
            got = call(op, (a, b), fmt, saturation=sat)
            bad = np.flatnonzero(got != np.array(codes, np.uint8))
            cases += got.size
            mismatches += bad.size
            first += [f"{fmt} {op} {sat} {a[i]:#04x} {b[i]:#04x}: expected {codes[i]:#04x}, "
                      f"got {got[i]:#04x}" for i in bad[:3]]
    print(f"sweep python {fmt} add/mul/div rne x finite/none: {cases} cases, {mismatches} mismatches")
    assert not first, first
    assert cases == 3 * 2 * n * n


def test_oracle_knows_its_formats():
    # Spot checks of the oracle itself against the formats' specifications.
    e4, e5, e3 = Oracle("e4m3fn"), Oracle("e5m2"), Oracle("e3m2fn")
    assert (e4.grid[-1], e4.grid[1], e4.nan_code) == (448, Fraction(1, 512), 0x7F)
    assert (e5.grid[-1], e5.grid[1], e5.nan_code, e5.inf_code) == (57344, Fraction(1, 65536), 0x7E, 0x7C)
    assert (e3.grid[-1], e3.grid[1], e3.max_code) == (28, Fraction(1, 16), 0x1F)
    assert e4.round((False, Fraction(464)), "none") == 0x7E  # tie between 448 and 480: even
    assert e5.round((False, Fraction(61440)), "none") == 0x7C  # tie above max: inf
    assert e5.round((True, Fraction(61440)), "finite") == 0xFB


# ---------------------------------------------------------------------------------------
# Random streams, broadcasting, layouts.

def test_stochastic_rounding_is_a_function_of_seed_stream_and_index():
    rng = np.random.default_rng(5)
    # More elements than the library runs on one thread (2^16): 2 threads split them.
    a, b = random_codes(rng, (1 << 17,), 8), random_codes(rng, (1 << 17,), 8)
    kw = {"rounding": "sr-a", "sr_bits": 4}
    r1 = fp8emu.mul(a, b, "e5m2", seed=3, stream=1, threads=1, **kw)
    r2 = fp8emu.mul(a, b, "e5m2", seed=3, stream=1, threads=2, **kw)
    np.testing.assert_array_equal(r1, r2)
    assert (fp8emu.mul(a, b, "e5m2", seed=4, stream=1, **kw) != r1).any()
    assert (fp8emu.mul(a, b, "e5m2", seed=3, stream=2, **kw) != r1).any()
    # Two halves with first_index give the whole.
    h = 12345
    parts = [fp8emu.mul(a[:h], b[:h], "e5m2", seed=3, stream=1, **kw),
             fp8emu.mul(a[h:], b[h:], "e5m2", seed=3, stream=1, first_index=h, **kw)]
    np.testing.assert_array_equal(np.concatenate(parts), r1)
    # Deterministic modes read no random bits.
    np.testing.assert_array_equal(fp8emu.mul(a, b, "e5m2", seed=1), fp8emu.mul(a, b, "e5m2", seed=2))


def test_broadcasting_indexes_the_result_in_c_order():
    rng = np.random.default_rng(9)
    a, b, c = random_codes(rng, (3, 1, 5), 8), random_codes(rng, (4, 1), 8), np.uint8(0x38)
    kw = {"rounding": "sr-c", "sr_bits": 5, "seed": 21}
    got = fp8emu.fma(a, b, c, "e4m3fn", **kw)
    assert got.shape == (3, 4, 5) and got.dtype == np.uint8
    full = [np.ascontiguousarray(np.broadcast_to(x, (3, 4, 5))).ravel() for x in (a, b, c)]
    np.testing.assert_array_equal(got.ravel(), fp8emu.fma(*full, "e4m3fn", **kw))
    # 0-d operands give a 0-d result; empty shapes an empty one.
    s = fp8emu.add(np.uint8(0x38), np.uint8(0x38), "e4m3fn")
    assert s.shape == () and s == 0x40
    assert fp8emu.add(np.zeros((0, 3), np.uint8), np.zeros(3, np.uint8), "e4m3fn").shape == (0, 3)


def test_layouts_views_and_formats():
    rng = np.random.default_rng(2)
    m = random_codes(rng, (8, 6), 8)
    view = m[::2, ::-1]  # not contiguous: read through a copy
    np.testing.assert_array_equal(fp8emu.sqrt(view, "e4m3fn"),
                                  fp8emu.sqrt(np.ascontiguousarray(view), "e4m3fn"))
    # A format given as a spelling with options; codes of 32-bit formats are uint32.
    x = np.array([0x3F800000, 0x40000000], np.uint32)  # float32 1 and 2
    assert fp8emu.add(x, x, "float32").tolist() == [0x40000000, 0x40800000]
    assert fp8emu.add(np.uint8(0x3C), np.uint8(0x3C), "e5m2:bias=16").tolist() == 0x40


def test_the_gil_is_released():
    # Another thread runs Python code while the kernel computes: it stamps the time in a
    # loop, and stamps fall in the first half of the call (none can while the call holds
    # the GIL; the thread may run after the kernel returns, before the call's end is read).
    rng = np.random.default_rng(1)
    a = random_codes(rng, (1 << 21,), 16, np.uint16)
    stamps = []
    done = threading.Event()

    def tick():
        while not done.is_set():
            stamps.append(time.perf_counter())

    t = threading.Thread(target=tick)
    t.start()
    try:
        time.sleep(0.01)
        start = time.perf_counter()
        fp8emu.div(a, a, "float16", threads=1)
        end = time.perf_counter()
    finally:
        done.set()
        t.join()
    inside = sum(start < s < (start + end) / 2 for s in stamps)
    assert inside > 100, (inside, end - start)


# ---------------------------------------------------------------------------------------
# Bad input.

def test_bad_input():
    a = np.array([1, 2, 3, 4], np.uint8)
    for bad in (a.astype(np.int64), a.astype(np.uint16), a.astype(np.float32), [1, 2, 3, 4]):
        with pytest.raises(TypeError, match=r"add: operand b has dtype \w+; codes of e4m3fn are uint8"):
            fp8emu.add(a, bad, "e4m3fn")
    with pytest.raises(TypeError, match="codes of bfloat16 are uint16"):
        fp8emu.sqrt(a, "bfloat16")
    with pytest.raises(TypeError, match="operand a has dtype >u2; codes of bfloat16 are uint16"):
        fp8emu.sqrt(a.astype(">u2"), "bfloat16")
    with pytest.raises(TypeError, match="a format is a fp8emu.Format or its name"):
        fp8emu.add(a, a, 8)
    wide = np.array([1, 2, 0x40, 4], np.uint8)
    with pytest.raises(ValueError, match="^the code 0x40 at index 2 of operand b does not fit in the 6 bits of e2m3fn$"):
        fp8emu.add(a, wide, "e2m3fn")
    with pytest.raises(ValueError, match="invalid format 'e9m3': exponent bits must be 1..8"):
        fp8emu.add(a, a, "e9m3")
    with pytest.raises(ValueError, match=r"^rounding: unknown rounding 'up' \(one of rne, rna"):
        fp8emu.add(a, a, "e4m3fn", rounding="up")
    with pytest.raises(ValueError, match="^saturation: unknown saturation 'clamp'"):
        fp8emu.mul(a, a, "e4m3fn", saturation="clamp")
    with pytest.raises(ValueError, match="sr_bits: only stochastic roundings"):
        fp8emu.div(a, a, "e4m3fn", sr_bits=4)
    with pytest.raises(ValueError, match="sr_bits: stochastic rounding needs 1 to 32 random bits, got 40"):
        fp8emu.div(a, a, "e4m3fn", rounding="sr-a", sr_bits=40)
    with pytest.raises(ValueError, match="^shapes 4 and 3 do not broadcast$"):
        fp8emu.sub(a, a[:3], "e4m3fn")
    with pytest.raises(ValueError, match="threads: expected 0"):
        fp8emu.sqrt(a, "e4m3fn", threads=-1)
