"""fp8emu formats, explain, fields, the option names, the SIMD target functions and
random_bits, against the fp8emu command line (docs/python.md, "Formats")."""

import csv
import io
import math
import pickle

import numpy as np
import pytest

import fp8emu


def cli_error(cli, *args):
    """Runs a command that must fail with exit 2; returns its message."""
    p = cli(*args, check=False)
    assert p.returncode == 2, p
    assert p.stderr.startswith("fp8emu: error: "), p.stderr
    return p.stderr[len("fp8emu: error: "):].strip()


def same_float(a, b):
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


def test_catalog_matches_cli(cli):
    rows = list(csv.DictReader(io.StringIO(cli("formats", "--csv").stdout)))
    catalog = fp8emu.formats()
    assert len(catalog) == len(rows) == 43
    code = lambda t: None if t == "-" else int(t, 16)  # noqa: E731
    for f, r in zip(catalog, rows):
        assert isinstance(f, fp8emu.Format)
        assert f.name == r["name"] and str(f) == r["name"]
        assert (f.bits, f.exponent_bits, f.mantissa_bits, f.bias) == (
            int(r["bits"]), int(r["exponent_bits"]), int(r["mantissa_bits"]), int(r["bias"]))
        assert f.signed == (r["signed"] == "1") and f.policy == r["policy"]
        for prop, col in [("max", "max_finite"), ("min_normal", "min_normal"),
                          ("min_positive", "min_positive"), ("epsilon", "epsilon")]:
            assert getattr(f, prop) == float(r[col]), (f, prop)
        assert (f.emin, f.emax, f.finite_codes) == (int(r["emin"]), int(r["emax"]), int(r["finite_codes"]))
        assert (f.nan_code, f.inf_code, f.negative_inf_code) == (
            code(r["nan_code"]), code(r["pos_inf_code"]), code(r["neg_inf_code"]))
        assert f.has_nan == (f.nan_code is not None) and f.has_inf == (f.inf_code is not None)
        assert f.source == r["source"]
        assert f == fp8emu.Format(r["name"])
        assert f.code_dtype == np.dtype("uint8" if f.bits <= 8 else "uint16" if f.bits <= 16 else "uint32")


def test_spellings_equality_hash_and_pickle():
    a = fp8emu.Format("e4m3fn")
    b = fp8emu.Format("e4m3:bias=7:policy=fn")
    assert a == b and hash(a) == hash(b) and b.name == "e4m3fn"
    assert a != fp8emu.Format("e4m3") and a != "e4m3fn" and a != 3
    assert len({a, b, fp8emu.Format("e5m2")}) == 2
    assert repr(a) == "fp8emu.Format('e4m3fn')"
    assert fp8emu.Format(a) == a
    assert pickle.loads(pickle.dumps(fp8emu.Format("e3m3:bias=2"))) == fp8emu.Format("e3m3:bias=2")
    custom = fp8emu.Format("e3m3:bias=2")
    assert custom.source is None and custom.name == "e3m3:bias=2:policy=ieee"
    p = fp8emu.Format("binary8p3se")
    assert p.source is not None and (p.bits, p.mantissa_bits, p.policy) == (8, 2, "p3109-extended")
    f = fp8emu.Format("e4m3fn")
    assert (f.has_negative_zero, f.has_subnormals, f.fits_float32) == (True, True, True)
    assert not fp8emu.Format("e4m3fnuz").has_negative_zero
    assert not fp8emu.Format("e8m0fnu").has_subnormals


def test_bad_spelling_carries_the_library_message(cli):
    message = cli_error(cli, "table", "e4m9x")
    with pytest.raises(ValueError) as e:
        fp8emu.Format("e4m9x")
    assert str(e.value) == message
    with pytest.raises(TypeError, match="a format is a fp8emu.Format or its name"):
        fp8emu.Format(3)
    with pytest.raises(TypeError):
        fp8emu.quantize(np.zeros(2, np.float32), 8)


@pytest.mark.parametrize("name", ["e4m3fn", "e5m2", "e2m1fn", "e8m0fnu", "e4m3fnuz", "binary8p1ue", "float16",
                                  "bfloat16"])
def test_values_and_fields_match_table(cli, name):
    f = fp8emu.Format(name)
    rows = list(csv.DictReader(io.StringIO(cli("table", name).stdout)))
    values = f.values()
    assert values.dtype == np.float64 and len(values) == len(rows) == 2 ** f.bits
    for r in rows:
        c = int(r["code"])
        assert same_float(values[c], float(r["value"])), (name, c)
        fl = fp8emu.fields(f, c)
        assert fl.code == c and fl.value_class == r["class"] and same_float(fl.value, values[c])
        bits = r["bits"].replace(" ", "")
        if f.signed:
            assert fl.negative == (bits[0] == "1")
            bits = bits[1:]
        assert fl.exponent_field == int(bits[:f.exponent_bits], 2)
        assert fl.mantissa_field == (int(bits[f.exponent_bits:], 2) if f.mantissa_bits else 0)


def test_values_and_fields_edges():
    with pytest.raises(ValueError, match="at most 16 bits"):
        fp8emu.Format("float32").values()
    with pytest.raises(IndexError):
        fp8emu.fields("e4m3fn", 256)
    fl = fp8emu.fields("e5m2", 0x7C)
    assert fl.value_class == "inf" and fl.value == math.inf


def test_fields_match_explain_code(cli):
    for name, code in [("e4m3fn", 0x7F), ("e4m3fn", 0x01), ("e5m2", 0xFC), ("e2m1fn", 7), ("float32", 0x3FC00000)]:
        out = cli("explain", name, "--code", code).stdout.splitlines()
        fl = fp8emu.fields(name, code)
        assert out[1].endswith(f"({fl.value_class})")
        assert same_float(float(out[2].split()[1]), fl.value)


EXPLAIN_CASES = [
    ("e4m3fn", "3.3", {}),
    ("e4m3fn", "500", {}),
    ("e4m3fn", "500", {"saturation": "none"}),
    ("e4m3fn", "inf", {"saturation": "propagate"}),
    ("e5m2", "inf", {"saturation": "finite"}),
    ("e5m2", "-nan", {"nan": "nvidia"}),
    ("e4m3fn", "-nan", {}),
    ("e2m1fn", "nan", {}),
    ("e4m3fn", "0x1p-10", {"ftz": True}),
    ("e4m3fn", "0x1p-10", {}),
    ("e4m3fn", "1e-300", {"daz": True}),
    ("e5m2", "0.3", {"rounding": "rna"}),
    ("e5m2", "0.3", {"rounding": "rz"}),
    ("e5m2", "-0.3", {"rounding": "ru"}),
    ("e5m2", "-0.3", {"rounding": "rd"}),
    ("e5m2", "0.3", {"rounding": "ro"}),
    ("e4m3fn", "3.3", {"rounding": "sr-a", "sr_bits": 4, "random": 13}),
    ("e4m3fn", "3.3", {"rounding": "sr-b", "sr_bits": 4, "random": 3}),
    ("e4m3fn", "3.3", {"rounding": "sr-c", "random": 123456}),
    ("e8m0fnu", "-3", {}),
    ("binary8p3ue", "-1", {}),
    ("float16", "65520", {"saturation": "none"}),
]


def cli_options(opts):
    args = []
    for k, v in opts.items():
        if v is True:
            args.append("--" + k)
        else:
            args += ["--" + k.replace("_", "-"), v]
    return args


@pytest.mark.parametrize("name,value,opts", EXPLAIN_CASES)
def test_explain_matches_cli(cli, name, value, opts):
    out = cli("explain", name, value, *cli_options(opts)).stdout
    e = fp8emu.explain(name, float.fromhex(value) if value.startswith("0x") else float(value), **opts)
    text = str(e)
    assert out.startswith(text) and out.count("\n") - text.count("\n") <= 1  # + a variant note
    f = fp8emu.Format(name)
    lines = dict(line.split(None, 1) for line in text.splitlines() if not line.startswith(" "))
    assert lines["code"].startswith(f"0x{e.code:0{(f.bits + 3) // 4}X}")
    assert lines["status"] == e.status
    assert e.result.code == e.code and same_float(e.value, fp8emu.fields(f, e.code).value)
    assert e.format == f and e.rounding == opts.get("rounding", "rne")


def test_explain_neighbours_and_status():
    e = fp8emu.explain("e4m3fn", 3.3)
    assert (e.below.value, e.above.value, e.ulp) == (3.25, 3.5, 0.25)
    assert e.inexact and not e.overflow and e.error == 3.25 - 3.3
    e = fp8emu.explain("e4m3fn", 1000.0)
    assert e.overflow and e.value == 448 and e.above is None
    assert fp8emu.explain("e4m3fn", 2.0 ** -8, ftz=True).flushed
    assert not fp8emu.explain("e4m3fn", 2.0 ** -8).flushed


def test_explain_bad_options(cli):
    message = cli_error(cli, "explain", "e4m3fn", "1", "--rounding", "up")
    with pytest.raises(ValueError) as e:
        fp8emu.explain("e4m3fn", 1.0, rounding="up")
    assert str(e.value) == "rounding: " + message
    with pytest.raises(ValueError, match="only stochastic roundings"):
        fp8emu.explain("e4m3fn", 1.0, random=1)
    with pytest.raises(ValueError, match="random < 2\\^4"):
        fp8emu.explain("e4m3fn", 1.0, rounding="sr-a", sr_bits=4, random=16)
    with pytest.raises(ValueError, match="sr_bits: stochastic rounding needs 1 to 32 random bits, got 33"):
        fp8emu.explain("e4m3fn", 1.0, rounding="sr-a", sr_bits=33)
    with pytest.raises(TypeError):
        fp8emu.explain("e4m3fn", 1.0, "rne")  # keywords only


@pytest.mark.parametrize("fn,keyword,option", [(fp8emu.roundings, "rounding", "--rounding"),
                                               (fp8emu.saturations, "saturation", "--saturation"),
                                               (fp8emu.nan_modes, "nan", "--nan")])
def test_option_names(cli, fn, keyword, option):
    names = fn()
    assert names and all(isinstance(v, str) and v for v in names.values())
    message = cli_error(cli, "quantize", "--format", "e4m3fn", option, "bogus", "in.npy", "out.npy")
    assert message.endswith("(one of " + ", ".join(names) + ")")
    x = np.array([1.3, -500.0, np.nan], np.float32)
    for name in names:
        fp8emu.quantize(x, "e4m3fn", **{keyword: name})  # every listed name is accepted
    with pytest.raises(ValueError) as e:
        fp8emu.quantize(x, "e4m3fn", **{keyword: "bogus"})
    assert str(e.value) == keyword + ": " + message


def test_simd_target_functions(cli):
    summary = fp8emu.simd_summary()
    assert summary == cli("--version").stdout.splitlines()[1]
    target = fp8emu.simd_target()
    assert summary == f"simd: {target} (compiled: {' '.join(fp8emu.simd_targets())})"
    assert fp8emu.simd_target_runs("none")
    x = np.linspace(-3, 3, 5000, dtype=np.float32)
    try:
        if target != "none":
            before = fp8emu.simd_calls(target)
            fp8emu.quantize(x, "e4m3fn")
            assert fp8emu.simd_calls(target) == before + 1
        fp8emu.set_simd_target("none")
        assert fp8emu.simd_target() == "none"
        with pytest.raises(ValueError):
            fp8emu.set_simd_target("bogus")
    finally:
        fp8emu.set_simd_target("")
    assert fp8emu.simd_target() == target
    with pytest.raises(ValueError):
        fp8emu.simd_calls("bogus")


def random_bits_reference(seed, stream, index):
    """random.hpp's definition, restated in NumPy (uint64 and uint32 arithmetic wraps)."""
    m64 = (1 << 64) - 1

    def mix64(z):
        z = (z + 0x9E3779B97F4A7C15) & m64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m64
        return z ^ (z >> 31)

    h = mix64(mix64(seed) ^ stream)
    k0, k1 = np.uint32(h & 0xFFFFFFFF), np.uint32(h >> 32)
    i = np.asarray(index, np.uint64)
    with np.errstate(over="ignore"):
        x = (i & np.uint64(0xFFFFFFFF)).astype(np.uint32) ^ k0
        x ^= x >> np.uint32(16)
        x *= np.uint32(0x7FEB352D)
        x ^= x >> np.uint32(15)
        x ^= k1 + (i >> np.uint64(32)).astype(np.uint32) * np.uint32(0x9E3779B9)
        x *= np.uint32(0x846CA68B)
        x ^= x >> np.uint32(16)
    return x


def test_random_bits_definition():
    index = np.concatenate([np.arange(1000, dtype=np.uint64), np.uint64(2 ** 32) + np.arange(10, dtype=np.uint64),
                            np.array([2 ** 64 - 1], np.uint64)])
    for seed, stream in [(0, 0), (1, 0), (0, 1), (2 ** 64 - 1, 12345)]:
        r = fp8emu.random_bits(seed, stream, index)
        assert r.dtype == np.uint32 and r.shape == index.shape
        assert np.array_equal(r, random_bits_reference(seed, stream, index))
    assert fp8emu.random_bits(3, 4, np.arange(6).reshape(2, 3)).shape == (2, 3)
    assert fp8emu.random_bits(3, 4, 7) == fp8emu.random_bits(3, 4, [7])[0]
    with pytest.raises(ValueError, match=">= 0"):
        fp8emu.random_bits(0, 0, [-1])
    with pytest.raises(TypeError, match="integers"):
        fp8emu.random_bits(0, 0, [1.5])


def test_random_bits_drive_stochastic_rounding():
    # sr-a with 32 bits rounds 1 + v ulp (v = k / 256) away iff floor(v 2^32) + R >= 2^32.
    n = 4096
    k = np.arange(n) % 255 + 1
    x = (1 + k / 256 * 0.125).astype(np.float32)  # e4m3fn's ulp at 1 is 0.125
    r = fp8emu.random_bits(9, 5, np.arange(100, 100 + n))
    expect = np.where(k.astype(np.uint64) * 2 ** 24 + r >= 2 ** 32, 0x39, 0x38).astype(np.uint8)
    got = fp8emu.quantize(x, "e4m3fn", rounding="sr-a", seed=9, stream=5, first_index=100)
    assert np.array_equal(got, expect)
    assert 0 < np.count_nonzero(got == 0x39) < n
