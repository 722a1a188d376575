"""Conversions from Python: quantize, dequantize, fake_quantize, stochastic rounding in
parts, scale="auto", and MX block scaling through quantize_matrix."""
import numpy as np

import fp8emu

# [doc:quantize]
x = np.array([0.1, 1.0625, -3.3, 300.0, 500.0, np.inf, np.nan], np.float32)
codes = fp8emu.quantize(x, "e4m3fn")  # rne, saturating: 500 and inf -> 448
print(codes, codes.dtype)
print(fp8emu.dequantize(codes, "e4m3fn"))
print(fp8emu.quantize(x, "e4m3fn", saturation="none", rounding="rz"))
print(fp8emu.fake_quantize(x, "e5m2", rounding="ru"))
codes, stats = fp8emu.quantize(x[:5], "e4m3fn", scale="auto", return_stats=True)
print(codes, stats["amax"], stats["scale"])
print(fp8emu.dequantize(codes, "e4m3fn", scale=stats["scale"]))
# [/doc:quantize]

# [doc:stochastic]
y = np.full(10, 1.0 + 0.125 / 4, np.float32)  # a quarter of the way from 1 to 1.125
kw = dict(rounding="sr-a", seed=42, stream=7)
whole = fp8emu.quantize(y, "e4m3fn", **kw)
parts = np.concatenate([fp8emu.quantize(y[:6], "e4m3fn", **kw),
                        fp8emu.quantize(y[6:], "e4m3fn", first_index=6, **kw)])
print(fp8emu.dequantize(whole, "e4m3fn"), np.array_equal(whole, parts))
print(fp8emu.dequantize(fp8emu.quantize(y, "e4m3fn", rounding="sr-a", seed=42, stream=8), "e4m3fn"))
# [/doc:stochastic]

# [doc:shapes]
m = np.arange(24, dtype=np.float64).reshape(2, 3, 4) / 8
print(fp8emu.quantize(m, "e2m1fn").shape, fp8emu.quantize(m.T, "e2m1fn").shape)
h = np.array([1.5, -2.0, 65504.0], np.float16)
b = (np.array([1.5, -2.0, 3e38], np.float32).view(np.uint32) >> 16).astype(np.uint16)  # bfloat16 bits
print(fp8emu.quantize(h, "e5m2"), fp8emu.quantize(b, "e5m2", bfloat16=True))
out = np.empty(3, np.uint8)
print(fp8emu.quantize(h, "e5m2", out=out) is out)
try:
    fp8emu.quantize(np.arange(3), "e5m2")
except TypeError as error:
    print("TypeError:", error)
# [/doc:shapes]

# [doc:mx]
rng = np.random.default_rng(0)
a = (rng.standard_normal((2, 64)) * [[1.0], [1000.0]]).astype(np.float32)
q = fp8emu.quantize_matrix(a, "e4m3fn", scaling="mx")
print(q)
print(q.codes.shape, q.scale_encoding, q.scale_block, q.scales.tolist())
print(q.quant_scales.tolist())
same = fp8emu.quantize(a[1, 32:], "e4m3fn", scale=float(q.quant_scales[1, 1]))
print(np.array_equal(q.codes[1, 32:], same))
n = fp8emu.quantize_matrix(a, "e2m1fn", scaling="nvfp4")
print(n.scales.shape, n.scale_encoding, n.tensor_scale)
# [/doc:mx]
