"""fp8emu quantize, dequantize, fake_quantize, amax, auto_scale and quantize_matrix,
against the fp8emu command line on the same .npy files (docs/python.md, "Conversions",
"Block, MX and NVFP4 scaling", "Arrays: dtypes, shapes, copies and threads")."""

import re

import numpy as np
import pytest

import fp8emu


def sample(n=3000, seed=1):
    """float32 values over e4m3fn's range and beyond: specials, subnormals of float32 and
    of the formats, ties, values that overflow."""
    rng = np.random.default_rng(seed)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-45, -1e-45, 1e-39, 448, 464, 480,
                        -480, 57344, 61440, 1e30, -1e30, 2.0 ** -9, 2.0 ** -10, 3 * 2.0 ** -11, 0.5, 1.0625,
                        1.1875, 240, 248], np.float32)
    mag = np.exp2(rng.uniform(-20, 20, n)).astype(np.float32)
    return np.concatenate([special, mag * rng.choice([-1, 1], n)]).astype(np.float32)


def finite(x):
    return x[np.isfinite(x)]


def cli_quantize(cli, npy, x, fmt, *args, output="codes"):
    """Runs fp8emu quantize on x; returns (the array it wrote, its summary line)."""
    inp = npy.save("in", x)
    p = cli("quantize", "--format", fmt, "--output", output, *map(str, args), inp, inp.parent / "out.npy")
    return npy.load("out"), p.stdout


def bits(a):
    """The bits of a float array, to compare NaNs and signed zeros exactly."""
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


CASES = [
    ("e4m3fn", {}),
    ("e4m3fn", {"saturation": "none"}),
    ("e4m3fn", {"saturation": "propagate", "nan": "nvidia"}),
    ("e5m2", {"saturation": "none"}),
    ("e5m2", {"saturation": "propagate"}),
    ("e5m2", {"rounding": "rna"}),
    ("e5m2", {"rounding": "rz", "daz": True}),
    ("e4m3fn", {"rounding": "ru", "ftz": True}),
    ("e4m3fn", {"rounding": "rd", "daz": True, "ftz": True}),
    ("e2m1fn", {"rounding": "ro"}),
    ("e4m3fnuz", {}),
    ("e8m0fnu", {"rounding": "ru"}),
    ("bfloat16", {}),
    ("float16", {"saturation": "none"}),
    ("e4m3fn", {"rounding": "sr-a", "seed": 7}),
    ("e4m3fn", {"rounding": "sr-b", "seed": 7, "sr_bits": 5}),
    ("e5m2", {"rounding": "sr-c", "seed": 2 ** 64 - 1, "sr_bits": 1}),
    ("e4m3fn", {"scale": 0.375}),
    ("e4m3fn", {"scale": 3e6, "rounding": "sr-a", "sr_bits": 8, "seed": 3}),
]


def cli_args(opts):
    args = []
    for k, v in opts.items():
        args += ["--" + k.replace("_", "-")] if v is True else ["--" + k.replace("_", "-"), v]
    return args


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("fmt,opts", CASES)
def test_quantize_matches_cli(cli, npy, fmt, opts, dtype):
    with np.errstate(over="ignore"):
        x = sample().astype(dtype)
    expect, _ = cli_quantize(cli, npy, x, fmt, *cli_args(opts))
    got, st = fp8emu.quantize(x, fmt, return_stats=True, **opts)
    assert got.dtype == expect.dtype == fp8emu.Format(fmt).code_dtype and got.shape == x.shape
    assert np.array_equal(got, expect)
    assert np.isnan(st["amax"]) and st["scale"] == np.float32(opts.get("scale", 1.0))


@pytest.mark.parametrize("fmt,opts", CASES[:6] + CASES[14:])
def test_fake_quantize_matches_cli_values(cli, npy, fmt, opts):
    x = sample()
    expect, _ = cli_quantize(cli, npy, x, fmt, *cli_args(opts), output="values")
    got = fp8emu.fake_quantize(x, fmt, **opts)
    assert got.dtype == np.float32 and np.array_equal(bits(got), bits(expect))
    y = x.copy()
    assert fp8emu.fake_quantize(y, fmt, out=y, **opts) is y  # in place
    assert np.array_equal(bits(y), bits(expect))


def test_every_float16_to_e4m3fn_matches_cli(cli, npy):
    x = np.arange(2 ** 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    for opts in [{}, {"rounding": "rz", "saturation": "none"}, {"rounding": "sr-a", "sr_bits": 3, "seed": 5}]:
        expect, _ = cli_quantize(cli, npy, x, "e4m3fn", *cli_args(opts))
        got = fp8emu.quantize(x, "e4m3fn", **opts)
        assert got.size == expect.size == 65536 and np.array_equal(got, expect)


def test_bfloat16_bits_are_their_float32_values():
    b = np.arange(2 ** 16, dtype=np.uint32).astype(np.uint16)
    as_float = (b.astype(np.uint32) << 16).view(np.float32)  # exact
    for fmt, opts in [("e4m3fn", {}), ("e5m2", {"rounding": "sr-a", "seed": 3}), ("e2m1fn", {"daz": True})]:
        got = fp8emu.quantize(b, fmt, bfloat16=True, **opts)
        assert got.size == 65536 and np.array_equal(got, fp8emu.quantize(as_float, fmt, **opts))


def test_scale_auto_matches_cli(cli, npy):
    f = fp8emu.Format("e4m3fn")
    for dtype in ["float32", "float64", "float16"]:
        x = np.clip(finite(sample()), -6e4, 6e4).astype(dtype)
        expect, line = cli_quantize(cli, npy, x, "e4m3fn", "--scale", "auto")
        got, st = fp8emu.quantize(x, f, scale="auto", return_stats=True)
        assert np.array_equal(got, expect)
        scale = np.float32(re.search(r"scale (\S+) \(auto\)", line).group(1))  # shortest float32
        assert st["scale"] == scale == fp8emu.auto_scale(f.max, float(np.max(np.abs(x))))
        assert st["amax"] == float(np.max(np.abs(x.astype(np.float64))))
    xf = finite(sample())
    got, st = fp8emu.fake_quantize(xf, f, scale="auto", return_stats=True)
    assert np.array_equal(bits(got), bits(fp8emu.fake_quantize(xf, f, scale=st["scale"])))


def test_scale_auto_edges(cli, npy):
    zeros = np.zeros(10, np.float32)
    assert fp8emu.quantize(zeros, "e4m3fn", scale="auto", return_stats=True)[1]["scale"] == 1.0
    for bad, what in [(np.nan, "NaN"), (np.inf, "an infinity")]:
        x = np.array([1, bad], np.float32)
        inp = npy.save("in", x)
        p = cli("quantize", "--format", "e4m3fn", "--scale", "auto", inp, inp.parent / "o.npy", check=False)
        assert p.returncode == 2 and "the input contains " + what in p.stderr
        for fn in (fp8emu.quantize, fp8emu.fake_quantize):
            with pytest.raises(ValueError, match="scale='auto': the input contains " + what):
                fn(x, "e4m3fn", scale="auto")
    with pytest.raises(ValueError, match="expected a number or 'auto'"):
        fp8emu.quantize(zeros, "e4m3fn", scale="max")
    with pytest.raises(TypeError, match="expected a number or 'auto'"):
        fp8emu.quantize(zeros, "e4m3fn", scale=[1])
    for s in [0, -1, np.inf, np.nan]:
        with pytest.raises(ValueError, match="the scale must be finite and greater than zero"):
            fp8emu.quantize(zeros, "e4m3fn", scale=s)


@pytest.mark.parametrize("fmt", ["e4m3fn", "e5m2", "e2m1fn", "e8m0fnu", "bfloat16"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dequantize_every_code_matches_cli(cli, npy, fmt, dtype):
    f = fp8emu.Format(fmt)
    codes = np.arange(2 ** f.bits).astype(f.code_dtype)
    for scale in [1.0, 0.375, 1e-30]:
        inp = npy.save("codes", codes)
        cli("dequantize", "--format", fmt, "--dtype", dtype, "--scale", scale, inp, inp.parent / "v.npy")
        expect = npy.load("v")
        got = fp8emu.dequantize(codes, fmt, scale=scale, dtype=dtype)
        assert got.dtype == np.dtype(dtype) and got.size == expect.size == 2 ** f.bits
        assert np.array_equal(bits(got), bits(expect))
    if f.bits <= 8:  # the same codes in wider code arrays
        for wide in (np.uint16, np.uint32):
            assert np.array_equal(bits(fp8emu.dequantize(codes.astype(wide), fmt)), bits(fp8emu.dequantize(codes, fmt)))


def test_dequantize_errors():
    with pytest.raises(IndexError):
        fp8emu.dequantize(np.array([0, 300], np.uint16), "e4m3fn")
    with pytest.raises(TypeError, match="uint8, uint16 or uint32"):
        fp8emu.dequantize(np.array([1, 2], np.int64), "e4m3fn")
    with pytest.raises(ValueError, match="float32 or float64"):
        fp8emu.dequantize(np.zeros(2, np.uint8), "e4m3fn", dtype="float16")
    with pytest.raises(ValueError, match="do not fit in float"):
        fp8emu.dequantize(np.zeros(2, np.uint16), "e8m7:bias=100")
    assert fp8emu.dequantize(np.zeros(2, np.uint16), "e8m7:bias=100", dtype="float64").dtype == np.float64


def test_stochastic_rounding_streams_and_first_index():
    x = np.random.default_rng(4).standard_normal(50001).astype(np.float32)
    kw = dict(rounding="sr-a", seed=11, stream=3)
    whole = fp8emu.quantize(x, "e4m3fn", **kw)
    assert np.array_equal(whole, fp8emu.quantize(x, "e4m3fn", **kw))
    assert np.array_equal(whole, fp8emu.quantize(x, "e4m3fn", threads=1, **kw))
    assert not np.array_equal(whole, fp8emu.quantize(x, "e4m3fn", rounding="sr-a", seed=11, stream=4))
    assert not np.array_equal(whole, fp8emu.quantize(x, "e4m3fn", rounding="sr-a", seed=12, stream=3))
    for k in [1, 12345, 50000]:
        parts = [fp8emu.quantize(x[:k], "e4m3fn", **kw), fp8emu.quantize(x[k:], "e4m3fn", first_index=k, **kw)]
        assert np.array_equal(np.concatenate(parts), whole)
    # A 2-D array takes the indices of its elements in C order.
    m = x[:50000].reshape(100, 500)
    assert np.array_equal(fp8emu.quantize(m, "e4m3fn", **kw).ravel(), whole[:50000])
    half = fp8emu.fake_quantize(x[25000:], "e4m3fn", first_index=25000, **kw)
    assert np.array_equal(bits(half), bits(fp8emu.fake_quantize(x, "e4m3fn", **kw)[25000:]))


def test_shapes_and_memory_orders():
    x = sample(2000)
    c = fp8emu.quantize(x, "e4m3fn")
    assert fp8emu.quantize(np.float32(3.3), "e4m3fn").shape == ()
    assert fp8emu.quantize(np.float32(3.3), "e4m3fn")[()] == fp8emu.quantize(np.array([3.3], np.float32), "e4m3fn")[0]
    assert fp8emu.quantize(3.3, "e4m3fn").shape == ()  # a Python float is float64
    for shape in [(0,), (0, 3), (3, 0, 2)]:
        e = np.zeros(shape, np.float32)
        got, st = fp8emu.quantize(e, "e4m3fn", return_stats=True, scale="auto")
        assert got.shape == shape and st["amax"] == 0 and st["scale"] == 1
        assert fp8emu.dequantize(got, "e4m3fn").shape == shape
        assert fp8emu.fake_quantize(e, "e4m3fn").shape == shape
    m = x[:2000].reshape(10, 20, 10)
    assert np.array_equal(fp8emu.quantize(m, "e4m3fn"), c[:2000].reshape(10, 20, 10))
    strided = x[::3]  # not contiguous: copied
    assert np.array_equal(fp8emu.quantize(strided, "e4m3fn"), c[::3])
    fortran = np.asfortranarray(m)
    got = fp8emu.quantize(fortran, "e4m3fn")
    assert got.flags.c_contiguous and np.array_equal(got, c[:2000].reshape(10, 20, 10))
    v = fp8emu.dequantize(np.asfortranarray(got), "e4m3fn")
    assert np.array_equal(bits(v), bits(fp8emu.dequantize(got, "e4m3fn")))
    t = m.transpose(2, 0, 1)
    assert np.array_equal(bits(fp8emu.fake_quantize(t, "e4m3fn")),
                          bits(fp8emu.fake_quantize(np.ascontiguousarray(t), "e4m3fn")))


def test_out_arrays():
    x = sample(103).reshape(4, 32)
    out = np.zeros((4, 32), np.uint8)
    assert fp8emu.quantize(x, "e4m3fn", out=out) is out and np.array_equal(out, fp8emu.quantize(x, "e4m3fn"))
    v = np.empty((4, 32), np.float64)
    assert fp8emu.dequantize(out, "e4m3fn", dtype="float64", out=v) is v
    with pytest.raises(TypeError, match="out: expected dtype uint8, not uint16"):
        fp8emu.quantize(x, "e4m3fn", out=np.zeros((4, 32), np.uint16))
    with pytest.raises(TypeError, match="out: expected a NumPy array"):
        fp8emu.quantize(x, "e4m3fn", out=[0] * 128)
    with pytest.raises(ValueError, match=r"out: shape \(32, 4\) differs from the input's \(4, 32\)"):
        fp8emu.quantize(x, "e4m3fn", out=np.zeros((32, 4), np.uint8))
    with pytest.raises(ValueError, match="C-contiguous"):
        fp8emu.quantize(x, "e4m3fn", out=np.zeros((32, 4), np.uint8).T)
    ro = np.zeros((4, 32), np.uint8)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        fp8emu.quantize(x, "e4m3fn", out=ro)
    with pytest.raises(TypeError, match="out: expected dtype float32"):
        fp8emu.dequantize(out, "e4m3fn", out=v)
    with pytest.raises(TypeError, match="out: expected dtype float32"):
        fp8emu.fake_quantize(x, "e4m3fn", out=np.zeros((4, 32), np.float64))


def test_bad_inputs():
    x = np.zeros(4, np.float32)
    with pytest.raises(TypeError, match="quantize takes float32, float64 or float16 arrays .* not int32"):
        fp8emu.quantize(np.zeros(4, np.int32), "e4m3fn")
    with pytest.raises(TypeError, match="not uint16"):
        fp8emu.quantize(np.zeros(4, np.uint16), "e4m3fn")
    with pytest.raises(TypeError, match="bfloat16=True takes bfloat16 bits as uint16, not float32"):
        fp8emu.quantize(x, "e4m3fn", bfloat16=True)
    with pytest.raises(TypeError, match="not float32"):
        fp8emu.quantize(x.astype(">f4"), "e4m3fn")  # non-native byte order is refused, never cast
    with pytest.raises(TypeError, match="fake_quantize takes float32 arrays, not float64"):
        fp8emu.fake_quantize(x.astype(np.float64), "e4m3fn")
    with pytest.raises(ValueError, match="rounding: unknown rounding 'up'"):
        fp8emu.quantize(x, "e4m3fn", rounding="up")
    with pytest.raises(ValueError, match="sr_bits: only stochastic roundings"):
        fp8emu.quantize(x, "e4m3fn", sr_bits=4)
    for n in [0, 33]:
        with pytest.raises(ValueError, match="sr_bits: stochastic rounding needs 1 to 32 random bits"):
            fp8emu.quantize(x, "e4m3fn", rounding="sr-a", sr_bits=n)
    with pytest.raises(ValueError, match="threads: expected 0"):
        fp8emu.quantize(x, "e4m3fn", threads=-1)
    with pytest.raises(ValueError, match="invalid format"):
        fp8emu.quantize(x, "e4m9x")
    with pytest.raises(TypeError):
        fp8emu.quantize(x, "e4m3fn", 2.0)  # keywords only
    with pytest.raises(ValueError, match="do not fit in float"):
        fp8emu.fake_quantize(x, "e8m7:bias=100")


def test_codes_wider_than_16_bits():
    x = sample(500)
    c = fp8emu.quantize(x, "float32")
    assert c.dtype == np.uint32 and np.array_equal(c[np.isfinite(x)], x[np.isfinite(x)].view(np.uint32))
    assert np.array_equal(bits(fp8emu.dequantize(c, "float32")), bits(fp8emu.fake_quantize(x, "float32")))


def test_simd_path_runs_and_matches_the_reference():
    x = sample(200000)
    target = fp8emu.simd_target()
    if target == "none":
        pytest.skip("no SIMD target runs on this CPU")
    opts = [{}, {"rounding": "sr-a", "sr_bits": 8, "seed": 1}, {"saturation": "none", "ftz": True}]
    fast = [fp8emu.quantize(x, "e4m3fn", return_stats=True, **o) for o in opts]
    fake = fp8emu.fake_quantize(x, "e5m2", return_stats=True)
    deq = fp8emu.dequantize(fast[0][0], "e4m3fn")
    try:
        fp8emu.set_simd_target("none")
        for (codes, st), o in zip(fast, opts):
            assert st["simd_elements"] > 0
            ref, rst = fp8emu.quantize(x, "e4m3fn", return_stats=True, **o)
            assert rst["simd_elements"] == 0 and np.array_equal(codes, ref)
        ref, rst = fp8emu.fake_quantize(x, "e5m2", return_stats=True)
        assert fake[1]["simd_elements"] > 0 and rst["simd_elements"] == 0
        assert np.array_equal(bits(fake[0]), bits(ref))
        assert np.array_equal(bits(deq), bits(fp8emu.dequantize(fast[0][0], "e4m3fn")))
    finally:
        fp8emu.set_simd_target("")


def test_amax_and_auto_scale():
    x = sample(100000)
    assert np.isnan(fp8emu.amax(x))
    xf = finite(x)
    assert fp8emu.amax(xf) == np.max(np.abs(xf)) == fp8emu.amax(xf, threads=1)
    assert fp8emu.amax(np.zeros(0, np.float32)) == 0
    assert fp8emu.amax(np.float32(-3)) == 3
    with pytest.raises(TypeError, match="amax takes float32 arrays"):
        fp8emu.amax(xf.astype(np.float64))
    s = fp8emu.auto_scale(448.0, 3.0)
    assert s == float(np.float32(448.0 / 3.0))
    assert fp8emu.auto_scale(448.0, 3.0, margin=1) == float(np.float32(448.0 / 3.0 / 2))
    assert fp8emu.auto_scale(448.0, 3.0, pow2=True) == 128.0
    for a in [0.0, np.nan, np.inf]:
        assert fp8emu.auto_scale(448.0, a) == 1.0


# --- quantize_matrix ------------------------------------------------------------------------


def block_codes_via_quantize(q, x, opts):
    """The codes quantize_matrix is defined to give: each element the code fp8emu.quantize
    gives it with its block's quantization scale and its index in the stored order."""
    packed = x if q.layout == "row" else x.T
    packed = np.ascontiguousarray(packed)
    qs = q.quant_scales
    br, bc = q.quant_block
    br = br or max(packed.shape[0], 1)
    bc = bc or max(packed.shape[1], 1)
    expect = np.zeros(packed.shape, q.format.code_dtype)
    for s in np.unique(qs):
        whole = fp8emu.quantize(packed, q.format, scale=float(s), **opts)
        mask = np.repeat(np.repeat(qs == s, br, axis=0), bc, axis=1)[:packed.shape[0], :packed.shape[1]]
        expect[mask] = whole[mask]
    return expect if q.layout == "row" else expect.T


MATRIX_CASES = [
    ("none", "e4m3fn", {}),
    ("tensor", "e4m3fn", {}),
    ("tensor", "e5m2", {"scale": 0.25}),
    ("tensor", "e4m3fn", {"margin": 2, "pow2": True}),
    ("row", "e4m3fn", {}),
    ("column", "e5m2", {"pow2": True}),
    ("block", "e4m3fn", {"block": (16, 32)}),
    ("block", "e4m3fn", {"block": (0, 7)}),
    ("mx", "e4m3fn", {}),
    ("mx", "e2m1fn", {"mx_rule": "ceil"}),
    ("mx", "e5m2", {"operand": "b"}),
    ("nvfp4", "e2m1fn", {}),
    ("nvfp4", "e2m1fn", {"operand": "b"}),
]


@pytest.mark.parametrize("layout", ["row", "col"])
@pytest.mark.parametrize("scaling,fmt,kw", MATRIX_CASES)
def test_quantize_matrix_codes_are_quantize_of_each_block(scaling, fmt, kw, layout):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((40, 96)) * np.exp2(rng.integers(-8, 8, (40, 1)))).astype(np.float32)
    opts = {"rounding": "sr-a", "sr_bits": 8, "seed": 2, "stream": 1, "first_index": 9}
    q = fp8emu.quantize_matrix(x, fmt, scaling=scaling, layout=layout, **kw, **opts)
    f = fp8emu.Format(fmt)
    assert isinstance(q, fp8emu.QuantizedMatrix) and q.format == f and q.shape == x.shape
    assert q.codes.shape == x.shape and q.codes.dtype == f.code_dtype and not q.codes.flags.writeable
    assert q.layout == layout and (q.codes.flags.f_contiguous if layout == "col" else q.codes.flags.c_contiguous)
    assert q.amax == np.max(np.abs(x))
    assert np.array_equal(q.codes, block_codes_via_quantize(q, x, opts))
    qs = q.quant_scales if layout == "row" else q.quant_scales.T  # the logical grid
    if scaling in ("none", "tensor"):
        assert q.scales is None and qs.shape == (1, 1)
        s = kw.get("scale") or (fp8emu.auto_scale(f.max, q.amax, margin=kw.get("margin", 0), pow2=kw.get("pow2", False))
                                if scaling == "tensor" else 1.0)
        assert qs[0, 0] == np.float32(s) and q.tensor_scale == np.float32(1) / np.float32(s)
        return
    assert q.scales.shape == qs.shape
    if scaling in ("row", "column", "block"):
        assert q.scale_encoding == "float32" and q.scales.dtype == np.float32
        assert np.array_equal(q.scales, np.float32(1) / qs)
        rows, cols = q.scale_block
        rows, cols = rows or x.shape[0], cols or x.shape[1]
        for (i, j), s in np.ndenumerate(qs):
            a = np.max(np.abs(x[i * rows:(i + 1) * rows, j * cols:(j + 1) * cols]))
            assert s == fp8emu.auto_scale(f.max, a, pow2=kw.get("pow2", False))
        return
        return
    rows, cols = q.scale_block
    block_amax = np.array([[np.max(np.abs(x[i * rows:(i + 1) * rows, j * cols:(j + 1) * cols]))
                            for j in range(qs.shape[1])] for i in range(qs.shape[0])])
    if scaling == "mx":
        assert q.scale_encoding == "e8m0" and q.scales.dtype == np.uint8
        assert q.scale_block == ((1, 32) if kw.get("operand", "a") == "a" else (32, 1))
        assert np.array_equal(qs, np.exp2(127.0 - q.scales).astype(np.float32))
        e = q.scales.astype(int) - 127
        if kw.get("mx_rule", "floor") == "floor":  # OCP MX: floor(log2 amax) - emax
            assert np.array_equal(e, np.floor(np.log2(block_amax)).astype(int) - f.emax)
        else:  # the smallest e with amax <= max 2^e
            assert np.all(block_amax <= f.max * np.exp2(e)) and np.all(block_amax > f.max * np.exp2(e - 1))
    else:
        assert q.scale_encoding == "e4m3" and q.scales.dtype == np.uint8
        assert q.scale_block == ((1, 16) if kw.get("operand", "a") == "a" else (16, 1))
        # float32 steps of the NVFP4 reference quantizer: a tensor scale from the amax, an
        # e4m3fn block scale from each block's amax.
        one, enc = np.float32(1), np.float32(np.float32(448 * f.max) / np.float32(q.amax))
        tensor = one / enc
        assert q.tensor_scale == tensor
        v = block_amax.astype(np.float32) * (enc * (one / np.float32(f.max)))
        assert np.array_equal(q.scales, fp8emu.quantize(v, "e4m3fn"))
        d = fp8emu.dequantize(q.scales, "e4m3fn")
        assert np.all(d > 0) and np.array_equal(qs, one / (d * tensor))


def test_quantize_matrix_orders_and_errors():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((33, 70)).astype(np.float32)
    q = fp8emu.quantize_matrix(x, "e4m3fn", scaling="mx")
    assert np.array_equal(fp8emu.quantize_matrix(np.asfortranarray(x), "e4m3fn", scaling="mx").codes, q.codes)
    assert np.array_equal(fp8emu.quantize_matrix(x[:, ::1].T.copy().T, "e4m3fn", scaling="mx").codes, q.codes)
    big = rng.standard_normal((33, 140)).astype(np.float32)
    assert np.array_equal(fp8emu.quantize_matrix(big[:, ::2], "e4m3fn", scaling="mx").codes,
                          fp8emu.quantize_matrix(np.ascontiguousarray(big[:, ::2]), "e4m3fn", scaling="mx").codes)
    assert np.array_equal(fp8emu.quantize_matrix(x, "e4m3fn", scaling="mx", layout="col").codes, q.codes)
    codes = q.codes
    del q
    assert codes.sum() >= 0  # the view keeps its matrix alive
    e = fp8emu.quantize_matrix(np.zeros((0, 5), np.float32), "e4m3fn", scaling="block", block=(2, 2))
    assert e.codes.shape == (0, 5)
    with pytest.raises(TypeError, match="quantize_matrix takes float32 arrays, not float64"):
        fp8emu.quantize_matrix(x.astype(np.float64), "e4m3fn")
    with pytest.raises(ValueError, match="2-D"):
        fp8emu.quantize_matrix(x.ravel(), "e4m3fn")
    with pytest.raises(ValueError, match=r"scaling: unknown value 'blocks' \(one of none, tensor, row, column"):
        fp8emu.quantize_matrix(x, "e4m3fn", scaling="blocks")
    with pytest.raises(ValueError, match="operand"):
        fp8emu.quantize_matrix(x, "e4m3fn", operand="c")
    with pytest.raises(ValueError, match="negative block shape"):
        fp8emu.quantize_matrix(x, "e4m3fn", scaling="block", block=(-1, 2))
    with pytest.raises(ValueError, match="finite and > 0"):
        fp8emu.quantize_matrix(x, "e4m3fn", scaling="tensor", scale=-2.0)
    x[3, 4] = np.nan
    with pytest.raises(ValueError, match="nvfp4 scales need an input without NaN"):
        fp8emu.quantize_matrix(x, "e2m1fn", scaling="nvfp4")
    assert np.isnan(fp8emu.quantize_matrix(x, "e4m3fn", scaling="mx").amax)
