#!/usr/bin/python3
"""fp8emu.quantize from Python against the C++ benchmark of the same call, in one run.

Quantizes float32 values to e4m3fn (rne, saturating) at 64M elements (or 64K with
--size 64K), on 1 thread and on all threads. Each of --repetitions rounds runs, per
thread count, the C++ benchmark (build/tests/bench/fp8emu_bench,
quantize/e4m3fn/rne/SIZE/THREADS) and then fp8emu.quantize on the same values (the
benchmark's generator), so that both run under the same load; each Python timing
(time.perf_counter) runs calls for at least --min-time seconds, writing into a given
array (out=, as the C++ benchmark writes into its buffer) or returning a new one. Prints,
one line per thread count and call, the medians over the rounds of the rates in elements
per second of wall-clock time and of the ratio of the two rates of each round, and on
one thread the median ratio of the rates in CPU time:
  python_quantize size=N threads=T call=out cpp_elem_per_s=X python_elem_per_s=Y python/cpp=R cpu_time: python/cpp=C

  PYTHONPATH=build/python /usr/bin/python3 tests/bench/python_quantize.py \\
      [--bench build/tests/bench/fp8emu_bench] [--size 64M|64K] [--threads 1,0]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import fp8emu

SIZES = {"64K": 1 << 16, "64M": 1 << 26}


def benchmark_values(n):
    """The float32 values of tests/bench/bench_array.cpp: s = s a + c (mod 2^64) from
    s = 12345, x = float(int32(s >> 32)) 2^-24, computed in blocks by jumping ahead."""
    a, c, m = 6364136223846793005, 1442695040888963407, (1 << 64) - 1
    block = min(n, 1 << 16)
    first = np.empty(block, np.uint64)
    s = 12345
    for i in range(block):
        s = (s * a + c) & m
        first[i] = s
    # s(i + block) = A s(i) + C with A = a^block, C = c (a^(block-1) + ... + 1).
    big_a, big_c = 1, 0
    for _ in range(block):
        big_a, big_c = (big_a * a) & m, (big_c * a + c) & m
    states = np.empty(n, np.uint64)
    states[:block] = first
    with np.errstate(over="ignore"):
        for start in range(block, n, block):
            states[start:start + block] = states[start - block:start] * np.uint64(big_a) + np.uint64(big_c)
    return ((states >> np.uint64(32)).astype(np.uint32).view(np.int32).astype(np.float32) * np.float32(2.0 ** -24))


UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def cpp_rates(bench, tag, threads, n, min_time):
    """Runs the C++ benchmark once for `threads` ("1thread" or "allthreads"); returns
    (elements per second of wall-clock time, of the main thread's CPU time)."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "bench.json")
        subprocess.run([bench, f"--benchmark_filter=^quantize/e4m3fn/rne/{tag}/{threads}/", f"--benchmark_min_time={min_time}",
                        f"--benchmark_out={out}", "--benchmark_out_format=json"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(out) as f:
            runs = json.load(f)["benchmarks"]
    (r,) = runs
    unit = UNITS[r["time_unit"]]
    return n / (r["real_time"] * unit), n / (r["cpu_time"] * unit)


def python_rates(fn, n, min_time):
    """Runs fn for at least min_time seconds; returns (elements per second of wall-clock
    time, of CPU time)."""
    calls, t0, c0 = 0, time.perf_counter(), time.process_time()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time:
            return n * calls / elapsed, n * calls / (time.process_time() - c0)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    build = os.environ.get("FP8EMU_BUILD_DIR", "build")
    p.add_argument("--bench", default=os.path.join(build, "tests", "bench", "fp8emu_bench"))
    p.add_argument("--size", choices=sorted(SIZES), default="64M")
    p.add_argument("--threads", default="1,0", help="comma-separated thread counts, 0: all (default 1,0)")
    p.add_argument("--min-time", type=float, default=0.5, help="seconds per timing (default 0.5)")
    p.add_argument("--repetitions", type=int, default=3, help="rounds (the medians are reported)")
    a = p.parse_args()
    n = SIZES[a.size]
    threads = [int(t) for t in a.threads.split(",")]
    if any(t not in (0, 1) for t in threads):
        sys.exit("the C++ benchmark runs 1 thread (1) and all threads (0)")
    label = lambda t: "1thread" if t == 1 else "allthreads"  # noqa: E731
    x = benchmark_values(n)
    out = np.empty(n, np.uint8)
    calls = {"out": lambda t: fp8emu.quantize(x, "e4m3fn", out=out, threads=t),
             "new": lambda t: fp8emu.quantize(x, "e4m3fn", threads=t)}
    for t in threads:
        for fn in calls.values():
            fn(t)  # warm up (the first touch of the output, the threads)
    # Rounds of the C++ benchmark and then the Python calls, so that both see the same load.
    cpp, py = {}, {}
    for _ in range(a.repetitions):
        for t in threads:
            cpp.setdefault(label(t), []).append(cpp_rates(a.bench, a.size, label(t), n, a.min_time))
            for name, fn in calls.items():
                py.setdefault((t, name), []).append(python_rates(lambda: fn(t), n, a.min_time))
    median = lambda values: statistics.median(values)  # noqa: E731
    for t in threads:
        c = cpp[label(t)]
        for name in calls:
            r = py[(t, name)]
            wall = median(p[0] / q[0] for p, q in zip(r, c))
            cpu = median(p[1] / q[1] for p, q in zip(r, c))
            print(f"python_quantize size={n} threads={t or 'all'} call={name} "
                  f"cpp_elem_per_s={median(q[0] for q in c):.4g} python_elem_per_s={median(p[0] for p in r):.4g} "
                  f"python/cpp={wall:.3f}" + (f" cpu_time: python/cpp={cpu:.3f}" if t == 1 else ""), flush=True)


if __name__ == "__main__":
    main()
