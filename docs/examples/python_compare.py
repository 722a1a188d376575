"""Comparing arrays from Python: a kernel's output against fp8emu's emulation, as codes
and as values, with a tolerance; the report as text and as a dict."""
import numpy as np

import fp8emu

# [doc:compare]
rng = np.random.default_rng(2)
a = rng.standard_normal((8, 32)).astype(np.float32)
b = rng.standard_normal((32, 4)).astype(np.float32)
expected = fp8emu.gemm(a, b, a_scale="auto", b_scale="auto", accumulate="nvidia-h100-fp8")
actual = fp8emu.gemm(a, b, a_scale="auto", b_scale="auto")  # float32 accumulation instead
r = fp8emu.compare(expected, actual, "float32", keep=3)
print(r, end="")
print(r.passed, r.total, r.exact, r.failed, r.max_ulps, r.first[0])
loose = fp8emu.compare(expected, actual, "float32", tolerance_ulps=r.max_ulps)
print(repr(loose))
# [/doc:compare]

# [doc:codes]
e8 = fp8emu.quantize(expected, "e4m3fn")
a8 = fp8emu.quantize(actual, "e4m3fn", rounding="rz")  # a kernel that truncates
d = fp8emu.compare(e8, a8, "e4m3fn", keep=1).to_dict()
print(d["as"], d["dtype"], d["shape"], d["exact"], d["failed"], d["ulp_histogram"], d["by_class"]["magnitude"])
print(d["first_mismatches"][0])
# [/doc:codes]
