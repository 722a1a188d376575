"""GEMM from Python: float operands quantized as `fp8emu gemm` quantizes them, accumulation
presets and specs, block scales (MX, NVFP4, DeepSeek-V3's blocks), QuantizedMatrix and
code operands, the epilogue, and the code path a call takes."""
import numpy as np

import fp8emu

# [doc:gemm]
rng = np.random.default_rng(1)
a = rng.standard_normal((4, 64)).astype(np.float32)
b = rng.standard_normal((64, 3)).astype(np.float32)
exact = a.astype(np.float64) @ b
for spec in ["fp32", "nvidia-h100-fp8", "nvidia-h100-fp8,promote=32", "bf16,rounding=sr-a,seed=5"]:
    d = fp8emu.gemm(a, b, a_scale="auto", b_scale="auto", accumulate=spec)
    path = fp8emu.gemm_path(a, b, a_scale="auto", b_scale="auto", accumulate=spec)
    print(f"{spec:27} {path:16} {d[0]}  max error {np.abs(d - exact).max():.3g}")
# [/doc:gemm]

# [doc:scales]
mx = fp8emu.gemm(a, b, a_scale="mx", b_scale="mx")  # e4m3fn, e8m0 scales per 32 along K
nv = fp8emu.gemm(a, b, a_scale="nvfp4", b_scale="nvfp4")  # e2m1fn, e4m3 scales per 16
ds = fp8emu.gemm(a, b, a_scale="block:1x32", b_scale="block:32x3")  # float32 block scales
for name, d in [("mx", mx), ("nvfp4", nv), ("block", ds)]:
    print(f"{name:6} max error {np.abs(d - exact).max():.3g}")
qa = fp8emu.quantize_matrix(a, "e4m3fn", scaling="mx")
qb = fp8emu.quantize_matrix(b, "e4m3fn", scaling="mx", operand="b")
print(np.array_equal(fp8emu.gemm(qa, qb), mx))
codes = np.array(qa.codes)  # uint8 codes and their e8m0 scale codes: the same product
print(np.array_equal(fp8emu.gemm(codes, qb, a_scale=qa.scales, a_block=(1, 32)), mx))
# [/doc:scales]

# [doc:epilogue]
c = np.ones((4, 3), np.float32)
d = fp8emu.gemm(a, b, a_scale="auto", b_scale="auto", alpha=0.5, beta=2.0, c=c, out_format="e4m3fn")
print(d.dtype, d[0], fp8emu.dequantize(d[0], "e4m3fn"))
print(fp8emu.accumulation_presets()[:4], fp8emu.accumulation_spec("fp16,order=pairwise"))
try:
    fp8emu.gemm(a, b[:32])
except ValueError as e:
    print("ValueError:", e)
# [/doc:epilogue]
