"""The README's Python example: conversions, a GEMM under a matrix-unit model, and a
PyTorch model trained under an FP8 recipe (docs/python.md has the rest)."""
import numpy as np

import fp8emu

x = np.array([0.1, 1.03, -3.3, 500.0], np.float32)
codes = fp8emu.quantize(x, "e4m3fn")  # uint8 codes: nearest-even, saturating
print(codes, fp8emu.dequantize(codes, "e4m3fn"))
print(fp8emu.quantize(x, "e4m3fn", rounding="sr-a", seed=7))  # stochastic, reproducible

rng = np.random.default_rng(0)
a = rng.standard_normal((64, 256)).astype(np.float32)
b = rng.standard_normal((256, 32)).astype(np.float32)
d = fp8emu.gemm(a, b, a_scale="auto", b_scale="auto", accumulate="nvidia-h100-fp8")
print(f"relative error {np.linalg.norm(d - a @ b) / np.linalg.norm(a @ b):.4f}")

import torch  # fp8emu.torch needs PyTorch; the rest of fp8emu does not

import fp8emu.torch as ft

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
ft.convert(model, "fp8-hybrid-delayed", keep=("2",))  # every Linear but the last in FP8
data = torch.randn(256, 16)
labels = (data[:, 0] > 0).long()
opt = torch.optim.SGD(model.parameters(), lr=0.5)
for step in range(50):
    loss = torch.nn.functional.cross_entropy(model(data), labels)
    opt.zero_grad()
    loss.backward()
    opt.step()
print(f"loss after 50 steps {loss.item():.3f}")
