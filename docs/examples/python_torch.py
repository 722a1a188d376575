"""fp8emu.torch: a small PyTorch model trained with its Linear layers under FP8 recipes."""
import io

import torch

import fp8emu
import fp8emu.torch as ft

# Fake quantization with a straight-through gradient.
x = torch.tensor([0.1, 1.03, -3.3, 500.0], requires_grad=True)
q = ft.fake_quantize(x, "e4m3fn")
q.sum().backward()
print("e4m3fn:", q.tolist(), "gradient:", x.grad.tolist())

# A model of torch.nn.Linear layers; convert swaps them in place: fp8-hybrid-delayed for
# every layer, mxfp8 for the layer "2" (the recipe's layer. key), the last layer "4" kept.
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                            torch.nn.Linear(64, 4))
recipe = fp8emu.Recipe("fp8-hybrid-delayed").set("layer.2", "mxfp8")
ft.convert(model, recipe, keep=("4",))
print(model)

# A 4-class task: labels of a fixed random linear map of the input.
g = torch.Generator().manual_seed(1)
w = torch.randn(16, 4, generator=g)
data = torch.randn(512, 16, generator=g)
labels = (data @ w).argmax(1)
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
for step in range(100):
    batch = slice(64 * (step % 8), 64 * (step % 8 + 1))
    loss = torch.nn.functional.cross_entropy(model(data[batch]), labels[batch])
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 33 == 0:
        print(f"step {step:3d}: loss {loss.item():.2f}")

# Per-layer statistics of every quantization since the start (or reset_statistics).
s = ft.statistics(model)["0"]["fprop"]
print(f"layer 0, fprop: input amax {s['a']['amax']:.3f}, {s['a']['count']} values in {s['a']['uses']} steps;",
      f"weight SQNR {s['b']['sqnr_db']:.0f} dB")
scale = model[0].fp8_scale[0].item()
print(f"layer 0: {model[0].fp8_step.item()} steps; the input's delayed scale {scale:.6g} (448 / {448 / scale:.4f})")

# The delayed-scaling state (amax histories, scales, the step) is in the state_dict.
buf = io.BytesIO()
torch.save(model.state_dict(), buf)
print([k for k in model.state_dict() if k.startswith("0.")])
buf.seek(0)
torch.manual_seed(1)
copy = ft.convert(torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64),
                                      torch.nn.ReLU(), torch.nn.Linear(64, 4)), recipe, keep=("4",))
copy.load_state_dict(torch.load(buf))
model.eval()
copy.eval()
with torch.no_grad():
    print("after loading: the same outputs:", torch.equal(model(data), copy(data)))
