#!/usr/bin/python3
"""One training step of the default GPT of the simulator in PyTorch (float32, CPU).

The model is the simulator's (sim/include/fp8sim/transformer.hpp) and nanoGPT's: token
and learned position embeddings, pre-LayerNorm blocks of causal multi-head
self-attention and a GELU MLP (4x wide, exact GELU), a final LayerNorm and a head tied
to the token embedding; every Linear has a bias; no dropout. One step is what the
simulator's benchmark BM_lm_step times: forward, mean cross-entropy, backward, clipping
of the gradient by its global norm and one AdamW update.

Prints one line per thread count:
  torch_gpt_step threads=T ms_per_step=X min_ms=Y steps=N
(X the median over --repetitions timings of --steps steps each, after --warmup steps).
Without PyTorch it prints "skipped: ..." and exits 0 (a benchmark-only dependency:
Debian python3-torch).

  /usr/bin/python3 tests/bench/torch_gpt_step.py [--threads 1,2] [--vocab 73]
"""
import argparse
import math
import statistics
import sys
import time


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--vocab", type=int, default=73, help="tokens (default 73)")
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--warmup", type=int, default=5, help="untimed steps per thread count")
    p.add_argument("--steps", type=int, default=10, help="steps per timing")
    p.add_argument("--repetitions", type=int, default=3, help="timings per thread count (the median is reported)")
    a = p.parse_args()
    try:
        threads = [int(t) for t in a.threads.split(",")]
    except ValueError:
        p.error("--threads: expected comma-separated integers")
    if any(t < 1 for t in threads) or a.vocab < 2 or a.width % a.heads or min(a.steps, a.repetitions) < 1:
        p.error("bad sizes: threads >= 1, vocab >= 2, width divisible by heads, steps and repetitions >= 1")

    try:
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
    except ImportError as e:
        print(f"skipped: PyTorch is not installed ({e}); Debian: apt-get install python3-torch")
        return 0
    import torch_threads

    blas = torch_threads.openblas_threads_setter()
    print(f"torch_gpt_step: torch {torch.__version__}, its BLAS threads: {torch_threads.describe(blas)}", flush=True)

    class Block(nn.Module):
        def __init__(self, width, heads, context):
            super().__init__()
            self.heads = heads
            self.ln1 = nn.LayerNorm(width)
            self.qkv = nn.Linear(width, 3 * width)
            self.proj = nn.Linear(width, width)
            self.ln2 = nn.LayerNorm(width)
            self.up = nn.Linear(width, 4 * width)
            self.down = nn.Linear(4 * width, width)
            mask = torch.tril(torch.ones(context, context, dtype=torch.bool))
            self.register_buffer("mask", mask.view(1, 1, context, context))

        def forward(self, x):
            B, T, C = x.shape
            h = self.heads
            q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
            q = q.view(B, T, h, C // h).transpose(1, 2)
            k = k.view(B, T, h, C // h).transpose(1, 2)
            v = v.view(B, T, h, C // h).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // h))
            att = att.masked_fill(~self.mask[:, :, :T, :T], float("-inf"))
            att = F.softmax(att, dim=-1)
            y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
            x = x + self.proj(y)
            return x + self.down(F.gelu(self.up(self.ln2(x))))

    class Gpt(nn.Module):
        def __init__(self, vocab, context, layers, heads, width):
            super().__init__()
            self.tok = nn.Embedding(vocab, width)
            self.pos = nn.Embedding(context, width)
            self.blocks = nn.ModuleList([Block(width, heads, context) for _ in range(layers)])
            self.ln_f = nn.LayerNorm(width)
            self.head = nn.Linear(width, vocab, bias=False)
            self.head.weight = self.tok.weight  # tied
            for m in self.modules():
                if isinstance(m, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(m.weight, 0.0, 0.02)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.zeros_(m.bias)

        def forward(self, idx, targets):
            T = idx.shape[1]
            x = self.tok(idx) + self.pos(torch.arange(T, device=idx.device))
            for b in self.blocks:
                x = b(x)
            logits = self.head(self.ln_f(x))
            return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))

    torch.manual_seed(1)
    model = Gpt(a.vocab, a.context, a.layers, a.heads, a.width)
    decay = [q for n, q in model.named_parameters() if q.dim() >= 2]
    no_decay = [q for n, q in model.named_parameters() if q.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.99), eps=1e-8)
    g = torch.Generator().manual_seed(2)
    batches = [(torch.randint(0, a.vocab, (a.batch, a.context), generator=g),
                torch.randint(0, a.vocab, (a.batch, a.context), generator=g)) for _ in range(8)]

    def step(i):
        x, y = batches[i % len(batches)]
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for t in threads:
        torch_threads.set_threads(t, blas)
        for i in range(a.warmup):
            step(i)
        times = []
        for r in range(a.repetitions):
            t0 = time.perf_counter()
            for i in range(a.steps):
                step(i)
            times.append((time.perf_counter() - t0) / a.steps)
        print(f"torch_gpt_step threads={t} ms_per_step={statistics.median(times) * 1e3:.3f} "
              f"min_ms={min(times) * 1e3:.3f} steps={a.steps * a.repetitions}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
