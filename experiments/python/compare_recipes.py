#!/usr/bin/python3
"""Trains a small PyTorch model on Fashion-MNIST under several fp8emu precision recipes.

The model is an MLP (784-H-H-10, ReLU) built with torch.nn; fp8emu.torch.convert swaps
its Linear layers for fp8emu.torch.Linear under each recipe (--keep leaves named layers
in torch.nn.Linear). Every recipe trains from the same initial weights and sees the
examples in the same order for a given seed, so the recipes differ only in the arithmetic
of their GEMMs. After training, each run is evaluated on the test set (the forward GEMMs
under its recipe).

Writes into --out (each file written whole, then renamed into place):
  runs.csv     one row per (recipe, seed): training loss (the mean over the last epoch),
               test loss and accuracy, seconds of training and of training and testing
  summary.csv  one row per recipe: mean, sample standard deviation, minimum and maximum
               over the seeds
  results.md   the summary as a markdown table, with the command that made it

  /usr/bin/python3 experiments/python/compare_recipes.py \\
      [--recipes fp32,bf16,fp8-hybrid-delayed,mxfp8,nvfp4] [--seeds 3] [--out DIR]

The results are deterministic: the same for the same options (the times aside). Bad
options exit with status 2 and a message. Without PyTorch the script says "skipped: ..."
and exits 1.
"""
import argparse
import csv
import fnmatch
import gzip
import io
import math
import os
import shlex
import statistics
import sys
import tempfile
import time

# Threads waiting at a barrier sleep rather than spin (unless OMP_WAIT_POLICY is set): on a
# shared machine a spinning thread takes the time slice its partner needs. Read by libgomp
# when PyTorch or fp8emu first loads it.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numpy as np

DEFAULT_RECIPES = "fp32,bf16,fp8-hybrid-delayed,mxfp8,nvfp4"
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"
CLASSES = 10
LAYERS = ("fc1", "fc2", "head")


class DataError(Exception):
    """A missing or malformed data file."""


def number(convert, accept, what):
    """Returns an argparse type: `convert` of the text, refused unless `accept` of it."""

    def parse(text):
        try:
            v = convert(text)
        except ValueError:
            v = None
        if v is None or not accept(v):
            raise argparse.ArgumentTypeError(f"expected {what}, got '{text}'")
        return v

    return parse


positive_int = number(int, lambda v: v >= 1, "a positive integer")
nonnegative_int = number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = number(float, lambda v: v > 0 and math.isfinite(v), "a positive number")


def name_list(text):
    names = [n.strip() for n in text.split(",")]
    if not text.strip() or any(not n for n in names):
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got '{text}'")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a name is given twice in '{text}'")
    return names


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="compare_recipes.py",
        description="Trains a small MLP on Fashion-MNIST under fp8emu precision recipes and "
        "several seeds, and writes a results table (markdown and CSV).")
    p.add_argument("--recipes", type=name_list, default=name_list(DEFAULT_RECIPES),
                   help="comma-separated recipe names (fp8emu.recipe_names()) or .recipe files "
                   f"(default {DEFAULT_RECIPES})")
    p.add_argument("--seeds", type=positive_int, default=3, help="seeds per recipe (default 3)")
    p.add_argument("--first-seed", type=nonnegative_int, default=1,
                   help="first seed (default 1): seeds S..S+N-1")
    p.add_argument("--epochs", type=positive_int, default=1, help="epochs per run (default 1)")
    p.add_argument("--batch", type=positive_int, default=128, help="examples per step (default 128)")
    p.add_argument("--hidden", type=positive_int, default=256, help="width of the two hidden layers (default 256)")
    p.add_argument("--lr", type=positive_float, default=2e-3, help="AdamW learning rate, decaying linearly to 0 (default 2e-3)")
    p.add_argument("--keep", type=name_list, default=[],
                   help="comma-separated layers (or globs) left in torch.nn.Linear, of fc1, fc2 and head (default none)")
    p.add_argument("--train-limit", type=positive_int, default=60000,
                   help="use the first N training examples (default 60000, all)")
    p.add_argument("--test-limit", type=positive_int, default=10000,
                   help="use the first N test examples (default 10000, all)")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="threads of fp8emu's GEMMs, and torch.set_num_threads (default 1: the layers are small)")
    p.add_argument("--data", default=DEFAULT_DATA, help=f"Fashion-MNIST directory (default {DEFAULT_DATA})")
    p.add_argument("--out", default="results/compare-recipes",
                   help="results directory (default results/compare-recipes)")
    a = p.parse_args(argv)
    unknown = [k for k in a.keep if not fnmatch.filter(LAYERS, k)]
    if unknown:
        p.error(f"--keep: '{unknown[0]}' matches no layer (the layers are {', '.join(LAYERS)})")
    if os.path.exists(a.out) and not os.path.isdir(a.out):
        p.error(f"--out: '{a.out}' exists and is not a directory")
    return p, a


def read_idx(path, ndims):
    """Returns the array of unsigned bytes in the gzipped IDX file `path` (numpy uint8)."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"cannot open {path}\nFashion-MNIST comes from the Debian package "
                        "dataset-fashion-mnist:\n  apt-get install dataset-fashion-mnist") from None
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: corrupt file ({e})") from None
    head = 4 + 4 * ndims
    if len(raw) < head or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] != ndims:
        raise DataError(f"{path}: not an IDX file of unsigned bytes with {ndims} dimensions")
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndims)]
    if math.prod(dims) != len(raw) - head:
        raise DataError(f"{path}: the header says {'x'.join(map(str, dims))} bytes, the file has "
                        f"{len(raw) - head}")
    return np.frombuffer(raw, dtype=np.uint8, offset=head).reshape(dims)


def load(data_dir, train, limit):
    """Returns (images as float32 N x 784 in [0, 1], labels as int64 N), the first `limit`."""
    stem = os.path.join(data_dir, "train" if train else "t10k")
    images = read_idx(stem + "-images-idx3-ubyte.gz", 3)
    labels = read_idx(stem + "-labels-idx1-ubyte.gz", 1)
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{stem}: {images.shape[0]} images but {labels.shape[0]} labels")
    if labels.max(initial=0) >= CLASSES:
        raise DataError(f"{stem}-labels-idx1-ubyte.gz: a label is not 0..9")
    n = min(limit, images.shape[0])
    x = images[:n].reshape(n, -1).astype(np.float32) / 255.0
    return x, labels[:n].astype(np.int64)


def make_model(torch, in_features, hidden):
    """Returns the MLP 784-H-H-10 with its layers named fc1, fc2 and head."""
    from collections import OrderedDict

    nn = torch.nn
    return nn.Sequential(OrderedDict([
        ("fc1", nn.Linear(in_features, hidden)), ("relu1", nn.ReLU()),
        ("fc2", nn.Linear(hidden, hidden)), ("relu2", nn.ReLU()),
        ("head", nn.Linear(hidden, CLASSES)),
    ]))


def run(torch, fp8torch, a, recipe, seed, data):
    """Trains and evaluates one (recipe, seed); returns the run's row."""
    x_train, y_train, x_test, y_test = data
    torch.manual_seed(seed)
    model = make_model(torch, x_train.shape[1], a.hidden)
    fp8torch.convert(model, recipe, keep=tuple(a.keep), seed=seed, threads=a.threads)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0)
    steps_per_epoch = math.ceil(x_train.shape[0] / a.batch)
    total_steps = a.epochs * steps_per_epoch
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 - step / total_steps)
    order = np.random.default_rng(seed)
    last_losses = []  # the training losses of the last epoch
    diverged = False
    t0 = time.perf_counter()
    model.train()
    for epoch in range(a.epochs):
        perm = torch.from_numpy(order.permutation(x_train.shape[0]))
        last_losses = []
        for s in range(steps_per_epoch):
            idx = perm[s * a.batch:(s + 1) * a.batch]
            loss = torch.nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
            diverged = not bool(torch.isfinite(loss))
            if diverged:
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            decay.step()
            last_losses.append(loss.item())
        if diverged:
            break
    train_s = time.perf_counter() - t0
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for s in range(0, x_test.shape[0], 1000):
            logits = model(x_test[s:s + 1000])
            loss_sum += torch.nn.functional.cross_entropy(logits, y_test[s:s + 1000], reduction="sum").item()
            correct += int((logits.argmax(dim=1) == y_test[s:s + 1000]).sum())
    total_s = time.perf_counter() - t0
    return {
        "recipe": recipe, "seed": seed,
        "train_loss": float("nan") if diverged else statistics.fmean(last_losses),
        "test_loss": loss_sum / x_test.shape[0],
        "test_accuracy": correct / x_test.shape[0],
        "train_s": train_s, "total_s": total_s,
    }


def summarize(rows, recipes):
    """Returns one summary row per recipe (mean, sample sd, min, max over the seeds)."""
    out = []
    for r in recipes:
        mine = [row for row in rows if row["recipe"] == r]
        s = {"recipe": r, "seeds": len(mine)}
        for key in ("test_accuracy", "test_loss", "train_loss", "total_s"):
            v = [row[key] for row in mine]
            s[key + "_mean"] = statistics.fmean(v)
            s[key + "_sd"] = statistics.stdev(v) if len(v) > 1 else 0.0
            s[key + "_min"], s[key + "_max"] = min(v), max(v)
        out.append(s)
    return out


def csv_text(rows):
    f = io.StringIO()
    w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return f.getvalue()


def markdown(summary, a, command, wall_s):
    base = summary[0]
    lines = [
        "# Recipes compared on an MLP on Fashion-MNIST", "",
        f"MLP 784-{a.hidden}-{a.hidden}-10 (ReLU), AdamW lr {a.lr:g} decaying linearly to 0, batch {a.batch}, "
        f"{a.epochs} epoch(s) over the first {a.train_limit} training examples, tested on "
        f"{a.test_limit} test examples; layers kept in torch.nn.Linear: "
        f"{', '.join(a.keep) if a.keep else 'none'}; {summary[0]['seeds']} seed(s) from "
        f"{a.first_seed}; {a.threads} thread(s). Mean ± sample standard deviation over the "
        f"seeds [minimum, maximum]; Δ accuracy is against {base['recipe']}, the first recipe.", "",
        "| recipe | test accuracy (%) | Δ accuracy (points) | test loss | training loss, last epoch | s per run |",
        "|---|---|---|---|---|---|",
    ]
    for s in summary:
        acc = (f"{100 * s['test_accuracy_mean']:.2f} ± {100 * s['test_accuracy_sd']:.2f} "
               f"[{100 * s['test_accuracy_min']:.2f}, {100 * s['test_accuracy_max']:.2f}]")
        delta = 100 * (s["test_accuracy_mean"] - base["test_accuracy_mean"])
        lines.append(f"| {s['recipe']} | {acc} | {delta:+.2f} | {s['test_loss_mean']:.4f} ± {s['test_loss_sd']:.4f} "
                     f"| {s['train_loss_mean']:.4f} ± {s['train_loss_sd']:.4f} | {s['total_s_mean']:.1f} |")
    lines += ["", f"Wall time {wall_s:.1f} s. Command:", "", "    " + command, ""]
    return "\n".join(lines)


def write_atomic(directory, name, text):
    """Writes `text` to directory/name through a temporary file renamed into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, os.path.join(directory, name))
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv):
    p, a = parse_args(argv)
    try:
        import torch
    except ImportError as e:
        print(f"skipped: PyTorch is not installed ({e}); Debian: apt-get install python3-torch")
        return 1
    try:
        import fp8emu.torch as fp8torch
    except ImportError as e:
        print(f"compare_recipes.py: cannot import fp8emu.torch ({e}); build the package (cmake --build build "
              "--target fp8emu_python) and run with PYTHONPATH=build/python", file=sys.stderr)
        return 1

    for r in a.recipes:  # every recipe checked before the first run
        try:
            fp8torch.convert(make_model(torch, 4, 4), r)
        except (ValueError, OSError) as e:
            p.error(f"--recipes: {e}")
    torch.set_num_threads(a.threads)
    try:
        x_train, y_train = load(a.data, True, a.train_limit)
        x_test, y_test = load(a.data, False, a.test_limit)
    except DataError as e:
        print(f"compare_recipes.py: {e}", file=sys.stderr)
        return 2
    mean, sd = float(x_train.mean()), float(x_train.std())
    data = tuple(torch.from_numpy(v) for v in ((x_train - mean) / sd, y_train, (x_test - mean) / sd, y_test))
    a.train_limit, a.test_limit = x_train.shape[0], x_test.shape[0]
    try:
        os.makedirs(a.out, exist_ok=True)
    except OSError as e:
        print(f"compare_recipes.py: --out: cannot create {a.out} ({e.strerror})", file=sys.stderr)
        return 2

    command = "/usr/bin/python3 experiments/python/compare_recipes.py " + " ".join(shlex.quote(s) for s in argv)
    t0 = time.perf_counter()
    rows = []
    for recipe in a.recipes:
        for seed in range(a.first_seed, a.first_seed + a.seeds):
            row = run(torch, fp8torch, a, recipe, seed, data)
            rows.append(row)
            print(f"{recipe} seed {seed}: test accuracy {100 * row['test_accuracy']:.2f}%, test loss "
                  f"{row['test_loss']:.4f}, training loss {row['train_loss']:.4f}, {row['total_s']:.1f} s",
                  flush=True)
    wall_s = time.perf_counter() - t0
    summary = summarize(rows, a.recipes)
    table = markdown(summary, a, command.strip(), wall_s)
    try:
        write_atomic(a.out, "runs.csv", csv_text(rows))
        write_atomic(a.out, "summary.csv", csv_text(summary))
        write_atomic(a.out, "results.md", table)
    except OSError as e:
        print(f"compare_recipes.py: cannot write into {a.out}: {e}", file=sys.stderr)
        return 1
    print("\n" + table)
    print(f"wrote {os.path.join(a.out, 'results.md')}, summary.csv and runs.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
