#!/usr/bin/python3
"""The forward and backward time of fp8emu.torch.Linear against torch.nn.Linear.

One layer of --in x --out features (default 1024 x 1024, with a bias) at batch --batch
(default 256), float32 on the CPU. The forward is y = layer(x); the backward is
y.backward(g) with x requiring its gradient, so it computes the input's, the weight's and
the bias's gradients. For each thread count, every repetition times torch.nn.Linear and
then each recipe's fp8emu.torch.Linear (the same weights, inputs and output gradients),
--steps steps each after --warmup untimed ones; the reported times are the medians over
--repetitions, and each ratio is the recipe's median over torch.nn.Linear's median of the
same run.

Prints one line per (thread count, layer):
  torch_linear threads=T layer=L forward_ms=X backward_ms=Y forward_vs_torch=R backward_vs_torch=R
(L is "torch.nn.Linear" or a recipe name), then a markdown table. Without PyTorch it
prints "skipped: ..." and exits 0 (Debian python3-torch).

  /usr/bin/python3 tests/bench/torch_linear.py [--threads 1,2] [--recipes fp32,...]
"""
import argparse
import os
import statistics
import sys
import time

# Threads waiting at a barrier sleep rather than spin (unless OMP_WAIT_POLICY is set): on a
# shared machine a spinning thread takes the time slice its partner needs. Read by libgomp
# when PyTorch or fp8emu first loads it.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

DEFAULT_RECIPES = "fp32,bf16,fp8-hybrid-delayed,mxfp8,nvfp4"


def timed_steps(layer, x, g, steps):
    """Returns the mean forward and backward milliseconds of `steps` steps of `layer`."""
    fwd = bwd = 0.0
    if steps == 0:
        return fwd, bwd
    for _ in range(steps):
        x.grad = None
        layer.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        y = layer(x)
        t1 = time.perf_counter()
        y.backward(g)
        t2 = time.perf_counter()
        fwd += t1 - t0
        bwd += t2 - t1
    return 1e3 * fwd / steps, 1e3 * bwd / steps


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--recipes", default=DEFAULT_RECIPES, help=f"comma-separated recipes (default {DEFAULT_RECIPES})")
    p.add_argument("--in", dest="in_features", type=int, default=1024, help="input features (default 1024)")
    p.add_argument("--out", dest="out_features", type=int, default=1024, help="output features (default 1024)")
    p.add_argument("--batch", type=int, default=256, help="rows of the input (default 256)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per layer and repetition (default 2)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per layer and repetition (default 5)")
    p.add_argument("--repetitions", type=int, default=3, help="repetitions (the median is reported; default 3)")
    p.add_argument("--no-statistics", action="store_true",
                   help="the fp8emu layers gather no quantization statistics (layer.core.stats = False)")
    a = p.parse_args()
    try:
        threads = [int(t) for t in a.threads.split(",")]
    except ValueError:
        p.error("--threads: expected comma-separated integers")
    recipes = [r.strip() for r in a.recipes.split(",")]
    if any(t < 1 for t in threads) or min(a.in_features, a.out_features, a.batch, a.steps, a.repetitions) < 1 \
            or a.warmup < 0 or not all(recipes):
        p.error("bad values: threads, --in, --out, --batch, --steps and --repetitions >= 1, --warmup >= 0, "
                "recipes non-empty")

    try:
        import torch
    except ImportError as e:
        print(f"skipped: PyTorch is not installed ({e}); Debian: apt-get install python3-torch")
        return 0
    import fp8emu
    import fp8emu.torch as fp8torch
    import torch_threads

    for r in recipes:
        try:
            fp8emu.Recipe(r)
        except ValueError as e:
            p.error(f"--recipes: {e}")

    blas = torch_threads.openblas_threads_setter()
    torch.manual_seed(0)
    reference = torch.nn.Linear(a.in_features, a.out_features)
    x = torch.randn(a.batch, a.in_features, requires_grad=True)
    g = torch.randn(a.batch, a.out_features)

    def layers_for(threads):
        """torch.nn.Linear, then each recipe's fp8emu.torch.Linear with its weights."""
        out = [("torch.nn.Linear", reference)]
        for r in recipes:
            layer = fp8torch.Linear(a.in_features, a.out_features, recipe=r, threads=threads)
            layer.core.stats = not a.no_statistics
            with torch.no_grad():
                layer.weight.copy_(reference.weight)
                layer.bias.copy_(reference.bias)
            out.append((r, layer))
        return out

    print(f"torch_linear: {a.batch} x {a.in_features} -> {a.out_features}, medians of {a.repetitions} "
          f"repetitions of {a.steps} steps, statistics {'off' if a.no_statistics else 'on'} "
          f"(torch {torch.__version__}; its BLAS threads: "
          f"{torch_threads.describe(blas)})",
          flush=True)
    table = []
    for t in threads:
        torch_threads.set_threads(t, blas)
        layers = layers_for(t)
        times = {name: ([], []) for name, _ in layers}
        for _ in range(a.repetitions):
            for name, layer in layers:
                timed_steps(layer, x, g, a.warmup)
                f, b = timed_steps(layer, x, g, a.steps)
                times[name][0].append(f)
                times[name][1].append(b)
        ref_f, ref_b = (statistics.median(v) for v in times["torch.nn.Linear"])
        for name, _ in layers:
            f, b = (statistics.median(v) for v in times[name])
            print(f"torch_linear threads={t} layer={name} forward_ms={f:.3f} backward_ms={b:.3f} "
                  f"forward_vs_torch={f / ref_f:.2f} backward_vs_torch={b / ref_b:.2f}", flush=True)
            table.append((t, name, f, b, f / ref_f, b / ref_b))
    print("\n| threads | layer | forward ms | vs torch.nn.Linear | backward ms | vs torch.nn.Linear |")
    print("|---|---|---|---|---|---|")
    for t, name, f, b, rf, rb in table:
        print(f"| {t} | {name} | {f:.2f} | {rf:.2f} | {b:.2f} | {rb:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
