"""fp8emu.gemm and fp8emu.gemm_path against `fp8emu gemm` on the same .npy files, bit for
bit: every accumulation preset and some key=value specs, every operand kind (float16 /
float32 / float64 values, codes in C, Fortran and strided order, QuantizedMatrix) and
scale kind (a number, auto, block:RxC, mx, nvfp4, block-scale arrays), alpha / beta / C,
out_format, stochastic accumulation, and bad input."""

import re

import numpy as np
import pytest

import fp8emu

M, K, N = 5, 70, 4
RNG = np.random.default_rng(17)
A = (RNG.standard_normal((M, K)) * np.exp(RNG.standard_normal((M, 1)))).astype(np.float32)
A[:, 32:64] = 0  # blocks of amax 0 for every block size along K
B = (RNG.standard_normal((K, N)) * 0.1).astype(np.float32)
C = RNG.standard_normal((M, N)).astype(np.float32)


def finite_codes(shape, dtype=np.uint8, nan=0x7F):
    """Random e4m3fn codes without NaN."""
    c = RNG.integers(0, 256, shape).astype(dtype)
    c[(c & 0x7F) == nan] = 0
    return c


AC, BC = finite_codes((M, K)), finite_codes((K, N))


def same_bits(x, y):
    assert x.dtype == y.dtype and x.shape == y.shape, (x.dtype, x.shape, y.dtype, y.shape)
    bad = np.flatnonzero(x.view(np.uint8) != y.view(np.uint8))
    assert bad.size == 0, f"{bad.size} bytes differ"


def cli_option(name, value):
    return [f"--{name.replace('_', '-')}", str(value)]


@pytest.fixture
def run_cli(cli, npy):
    """Runs `fp8emu gemm` on a, b (arrays, saved as .npy) and options; returns the output
    array and the path the command printed."""

    def run(a, b, **opts):
        args = ["gemm", "--a", npy.save("a", a), "--b", npy.save("b", b)]
        for k, v in opts.items():
            if isinstance(v, np.ndarray):
                v = npy.save(k, v)
            args += cli_option(k, v)
        p = cli(*args, "out.npy")
        path = re.search(r"; path ([a-z0-9-]+);", p.stdout)
        assert path, p.stdout
        spec = re.search(r"accumulation (\S+); path", p.stdout)
        return npy.load("out"), path.group(1), spec.group(1)

    return run


def check(run_cli, a, b, **opts):
    """gemm, gemm_path and the accumulation's canonical spec equal the command line's."""
    want, path, spec = run_cli(a, b, **opts)
    got = fp8emu.gemm(a, b, **opts)
    same_bits(got, want)
    assert fp8emu.gemm_path(a, b, **opts) == path
    assert fp8emu.accumulation_spec(opts.get("accumulate", "fp32")) == spec
    return got, path


def test_presets(run_cli, cli):
    presets = fp8emu.accumulation_presets()
    # The presets the command line's help lists, in the same order.
    help_text = " ".join(cli("gemm", "--help").stdout.split())
    listed = re.search(r"presets: (.*?); keys", help_text).group(1)
    assert presets == [p.strip() for p in listed.split(",")]
    paths = set()
    for preset in presets:
        _, path = check(run_cli, AC, BC, accumulate=preset)
        paths.add(path)
    assert len(presets) == 11
    assert "reference" not in paths  # every preset has a fast path for e4m3fn codes


@pytest.mark.parametrize("spec", ["fp16,order=pairwise", "bf16,order=blocked,chunk=8", "fp32,kahan=1",
                                  "nvidia-h100-fp8,promote=32", "nvidia-h100-fp8,fbits=14,term-rounding=rne",
                                  "amd-mi300-fp8,promote=16", "bf16,rounding=rz,saturation=finite"])
def test_specs(run_cli, spec):
    check(run_cli, A, B, accumulate=spec)


def test_fast_path_ran(run_cli):
    # float32 accumulation of e4m3fn codes: the SIMD kernel; the NVIDIA model: its own.
    assert check(run_cli, AC, BC)[1] == "float32"
    assert check(run_cli, AC, BC, accumulate="nvidia-h100-fp8")[1] == "unit"
    assert fp8emu.gemm_path(np.asfortranarray(AC), BC, accumulate="fp16") == "accumulator"
    assert fp8emu.gemm_path(AC, BC, accumulate="fp32,kahan=1") == "accumulator-wide"
    # The SIMD kernels of the target in use ran for the float32 path.
    target = fp8emu.simd_target()
    if target != "none":
        before = fp8emu.simd_calls(target)
        fp8emu.gemm(AC, BC)
        assert fp8emu.simd_calls(target) > before
    # ... and the reference where none applies (stochastic float32 accumulation).
    assert check(run_cli, AC, BC, accumulate="fp32,rounding=sr-a,seed=3")[1] == "reference"


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_float_operands(run_cli, dtype):
    check(run_cli, A.astype(dtype), B.astype(dtype))
    check(run_cli, A.astype(dtype), B.astype(dtype), a_scale="auto", b_scale=0.125)


@pytest.mark.parametrize("a_scale,b_scale,fmt", [
    ("block:1x32", "block:32x2", None),
    ("block:3x7", "block:70x70", "e5m2"),
    ("mx", "mx", None),
    ("mx", "mx", "e2m1fn"),
    ("nvfp4", "nvfp4", None),
    ("nvfp4", "nvfp4", "e4m3fn"),
    ("auto", "auto", None),
    ("0.5", "0x1p-3", None),
])
def test_scales(run_cli, a_scale, b_scale, fmt):
    opts = dict(a_scale=a_scale, b_scale=b_scale)
    if fmt:
        opts.update(a_format=fmt, b_format=fmt)
    check(run_cli, A, B, **opts)
    check(run_cli, A.astype(np.float16), B, **opts)


def test_number_scales_equal_spec_strings():
    same_bits(fp8emu.gemm(A, B, a_scale=0.5, b_scale=2), fp8emu.gemm(A, B, a_scale="0.5", b_scale="2"))
    same_bits(fp8emu.gemm(AC, BC, b_scale=4), fp8emu.gemm(AC, BC, b_scale="4"))


def test_code_operands(run_cli):
    check(run_cli, AC, BC, a_scale=0.25, b_scale=4)
    b16 = RNG.integers(0, 1 << 12, (K, N)).astype(np.uint16)
    check(run_cli, AC, b16, b_format="e5m10")
    same_bits(fp8emu.gemm(AC, b16, b_format=fp8emu.Format("e5m10"), out_format=fp8emu.Format("e5m2")),
              fp8emu.gemm(AC, b16, b_format="e5m10", out_format="e5m2"))
    # Fortran order in place, strided views copied: the same bits as C order.
    want = fp8emu.gemm(AC, BC)
    same_bits(fp8emu.gemm(np.asfortranarray(AC), np.asfortranarray(BC)), want)
    wide = np.zeros((M, 2 * K), np.uint8)
    wide[:, ::2] = AC
    assert not wide[:, ::2].flags.c_contiguous and not wide[:, ::2].flags.f_contiguous
    same_bits(fp8emu.gemm(wide[:, ::2], BC), want)
    same_bits(fp8emu.gemm(AC.T.copy().T, BC.T.copy().T), want)


@pytest.mark.parametrize("kind", ["float32", "float64", "e8m0", "e4m3"])
def test_block_scale_arrays(run_cli, kind):
    rows, cols = M, -(-K // 32)
    if kind in ("e8m0", "e4m3"):
        sa = RNG.integers(100, 140, (rows, cols)).astype(np.uint8)
        opts = dict(a_scale=sa, a_block="1x32", a_scale_codes=kind)
    else:
        sa = RNG.uniform(0.25, 4, (rows, cols)).astype(kind)
        opts = dict(a_scale=sa, a_block="1x32")
    want, path, _ = run_cli(AC, BC, **opts)
    got = fp8emu.gemm(AC, BC, **dict(opts, a_block=(1, 32)))
    same_bits(got, want)
    assert fp8emu.gemm_path(AC, BC, **dict(opts, a_block=(1, 32))) == path


def test_alpha_beta_c_out_format(run_cli, npy):
    got, _ = check(run_cli, A, B, alpha=2.5, beta=-0.5, c=C)
    c = C.copy()
    fp8emu.gemm(A, B, alpha=2.5, beta=-0.5, c=c)
    same_bits(c, C)  # C is read, not written
    for fmt in ("e4m3fn", "e5m10"):
        codes, _ = check(run_cli, A, B, out_format=fmt, accumulate="nvidia-h100-fp8")
        assert codes.dtype == np.dtype(fmt == "e4m3fn" and np.uint8 or np.uint16)


def test_threads_do_not_change_bits():
    for spec in ("fp32", "nvidia-h100-fp8", "fp16,rounding=sr-a,seed=3"):
        same_bits(fp8emu.gemm(A, B, accumulate=spec, threads=1), fp8emu.gemm(A, B, accumulate=spec, threads=2))


def test_stochastic_accumulation(run_cli):
    spec = "fp16,rounding=sr-a,sr-bits=12,seed=11"
    first, _ = check(run_cli, A, B, accumulate=spec)
    same_bits(fp8emu.gemm(A, B, accumulate=spec), first)
    other = fp8emu.gemm(A, B, accumulate=spec.replace("seed=11", "seed=12"))
    assert np.any(other != first)  # the seed reaches the rounding


def test_quantized_matrix_operands():
    for scaling, fmt in (("mx", "e4m3fn"), ("nvfp4", "e2m1fn")):
        qa = fp8emu.quantize_matrix(A, fmt, scaling=scaling, operand="a")
        qb = fp8emu.quantize_matrix(B, fmt, scaling=scaling, operand="b")
        same_bits(fp8emu.gemm(qa, qb), fp8emu.gemm(A, B, a_scale=scaling, b_scale=scaling))
    # A column-major QuantizedMatrix: the same product.
    qa = fp8emu.quantize_matrix(A, "e4m3fn", scaling="block", block=(1, 32), layout="col")
    same_bits(fp8emu.gemm(qa, B), fp8emu.gemm(A, B, a_scale="block:1x32"))
    with pytest.raises(ValueError, match="carries its scales"):
        fp8emu.gemm(qa, B, a_scale=2.0)
    with pytest.raises(ValueError, match="holds codes of e4m3fn, not e5m2"):
        fp8emu.gemm(qa, B, a_format="e5m2")


def test_bad_input():
    cases = [
        (ValueError, r"shape mismatch: A is 5x70 and B is 69x4", lambda: fp8emu.gemm(A, B[:-1])),
        (ValueError, r"expected a 2-D array, got 3 dimensions", lambda: fp8emu.gemm(A[None], B)),
        (ValueError, r"accumulate: accumulation: unknown preset 'h100'", lambda: fp8emu.gemm(A, B, accumulate="h100")),
        (ValueError, r"unknown key 'fbit'", lambda: fp8emu.accumulation_spec("nvidia-h100-fp8,fbit=3")),
        (ValueError, r"key 'rounding' given twice", lambda: fp8emu.gemm(A, B, accumulate="fp32,rounding=rz,rounding=rne")),
        (TypeError, r"codes of e4m3fn are uint8; the array holds int64", lambda: fp8emu.gemm(AC.astype(np.int64), BC)),
        (TypeError, r"codes of e4m3fn are uint8; the array holds uint16", lambda: fp8emu.gemm(AC.astype(np.uint16), BC)),
        (TypeError, r"expected a QuantizedMatrix or a 2-D NumPy array, not list", lambda: fp8emu.gemm([[1.0]], B)),
        (ValueError, r"A: code 0xF3 at \(0, 0\) does not fit in the 4 bits of e2m1fn",
         lambda: fp8emu.gemm(np.full((M, K), 0xF3, np.uint8), B, a_format="e2m1fn")),
        (ValueError, r"a_scale mx needs float input \(a holds codes\)", lambda: fp8emu.gemm(AC, BC, a_scale="mx")),
        (ValueError, r"invalid b_scale 'mxfp8': expected a number > 0", lambda: fp8emu.gemm(A, B, b_scale="mxfp8")),
        (ValueError, r"invalid a_scale block: '0' \(expected 1..1073741824\)", lambda: fp8emu.gemm(A, B, a_scale="block:0x4")),
        (ValueError, r"invalid a_scale '0.0'", lambda: fp8emu.gemm(A, B, a_scale=0.0)),
        (ValueError, r"a_scale mx quantizes float32 or float16 values; the input holds float64",
         lambda: fp8emu.gemm(A.astype(np.float64), B, a_scale="mx")),
        (ValueError, r"scales: A's blocks along K \(32\) differ from B's \(16\)",
         lambda: fp8emu.gemm(A, B, a_scale="mx", b_scale="block:16x1")),
        (ValueError, r"a_scale auto: the input contains NaN", lambda: fp8emu.gemm(np.where(A == 0, np.nan, A), B, a_scale="auto")),
        (ValueError, r"a_scale block:1x32: element \(0, 32\) is nan; block scales need finite inputs",
         lambda: fp8emu.gemm(np.where(A == 0, np.nan, A), B, a_scale="block:1x32")),
        (ValueError, r"a_scale: 14 scales for 15 blocks of 1x32",
         lambda: fp8emu.gemm(AC, BC, a_scale=np.ones(14, np.float32), a_block=(1, 32))),
        (ValueError, r"a_scale given as an array needs a_block", lambda: fp8emu.gemm(AC, BC, a_scale=np.ones(15, np.float32))),
        (ValueError, r"a_block applies to a_scale given as an array", lambda: fp8emu.gemm(AC, BC, a_block=(1, 32))),
        (ValueError, r"an array of block scales applies to code inputs",
         lambda: fp8emu.gemm(A, B, a_scale=np.ones(15, np.float32), a_block=(1, 32))),
        (TypeError, r"block scales are float32, float64 or uint8 codes, not int32",
         lambda: fp8emu.gemm(AC, BC, a_scale=np.ones(15, np.int32), a_block=(1, 32))),
        (ValueError, r"a_scale_codes must be e8m0 or e4m3, not 'float32'",
         lambda: fp8emu.gemm(AC, BC, a_scale=np.ones(15, np.uint8), a_block=(1, 32), a_scale_codes="float32")),
        (ValueError, r"a_block: expected \(rows, cols\)", lambda: fp8emu.gemm(AC, BC, a_scale=np.ones(15, np.float32), a_block=(0, 32))),
        (ValueError, r"beta != 0 needs c", lambda: fp8emu.gemm(A, B, beta=1.0)),
        (ValueError, r"c: expected shape \(5, 4\)", lambda: fp8emu.gemm(A, B, beta=1.0, c=C[:-1])),
        (TypeError, r"c: expected a float32 array, not float64", lambda: fp8emu.gemm(A, B, beta=1.0, c=C.astype(np.float64))),
        (ValueError, r"invalid format 'e9m1'", lambda: fp8emu.gemm(A, B, out_format="e9m1")),
        (ValueError, r"threads: expected 0 \(all\) or 1..1024", lambda: fp8emu.gemm(A, B, threads=-1)),
    ]
    for error, message, call in cases:
        with pytest.raises(error, match=message):
            call()
    assert len(cases) == 29
