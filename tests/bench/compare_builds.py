#!/usr/bin/env python3
"""Compares the array and GEMM benchmarks of two builds in one run.

  tests/bench/compare_builds.py BASE_BUILD NEW_BUILD [ROUNDS]

Runs fp8emu_bench and fp8emu_bench_gemm of the two build trees interleaved (base, new,
base, new, ...; ROUNDS of each, default 3), each run with 3 repetitions, on one thread,
and prints per benchmark the median CPU time of each build and new / base (> 1: new
slower). CPU time rather than wall time: on a shared machine it leaves out the time the
benchmark thread waited for a core.
"""
import json
import statistics
import subprocess
import sys
import tempfile

ARRAY = "(quantize/e4m3fn/(rne|sr-a8)|quantize/e5m2/rne|dequantize/e4m3fn|fake_quantize/e4m3fn/rne)/64K/1thread"
GEMM = "BM_gemm_(fp32|h100_fp8)/n:(256|1024)/threads:1/"


def run(binary, pattern):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([binary, "--benchmark_filter=" + pattern, "--benchmark_repetitions=3",
                        "--benchmark_min_time=0.2", "--benchmark_out=" + out.name,
                        "--benchmark_out_format=json"], check=True, stdout=subprocess.DEVNULL)
        data = json.load(open(out.name))
    return {b["run_name"]: b["cpu_time"] for b in data["benchmarks"]
            if b.get("run_type") == "iteration"}, data["benchmarks"][0]["time_unit"]


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    builds = sys.argv[1:3]
    rounds = int(sys.argv[3]) if len(sys.argv) == 4 else 3
    times = {b: {} for b in builds}
    units = {}
    for _ in range(rounds):
        for b in builds:
            for exe, pattern in (("fp8emu_bench", ARRAY), ("fp8emu_bench_gemm", GEMM)):
                got, unit = run(f"{b}/tests/bench/{exe}", pattern)
                for name, t in got.items():
                    times[b].setdefault(name, []).append(t)
                    units[name] = unit
    base, new = builds
    print(f"{'benchmark':45} {'base':>10} {'new':>10} {'new/base':>9}")
    for name in times[base]:
        a = statistics.median(times[base][name])
        c = statistics.median(times[new].get(name, [float("nan")]))
        print(f"{name:45} {a:8.1f}{units[name]:>2} {c:8.1f}{units[name]:>2} {c / a:9.3f}")


main()
