// GEMM benchmarks (Google Benchmark) against OpenBLAS sgemm on the same shapes in the
// same run: n x n x n for n = 1024 and 2048, on 1 thread and on all threads. Each fp8emu
// benchmark reports GFLOP/s (2 n^3 per call) and `vs_sgemm`, its GFLOP/s over sgemm's
// measured just before it (OpenBLAS is a benchmark-only dependency: Debian
// libopenblas-dev). fp8emu's operands are e4m3fn codes; sgemm's are the same values as
// float.
//   build/tests/bench/fp8emu_bench_gemm [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <omp.h>

#include <chrono>
#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "fp8emu/convert.hpp"
#include "fp8emu/gemm.hpp"

extern "C" {
#include <cblas.h>
void openblas_set_num_threads(int);
}

using namespace fp8emu;

namespace {

struct Operands {
  std::vector<std::uint8_t> a, b;
  std::vector<float> af, bf, c;
  explicit Operands(std::int64_t n) : a(n * n), b(n * n), af(n * n), bf(n * n), c(n * n) {
    std::mt19937 gen(1);
    std::normal_distribution<float> nd;
    for (std::int64_t i = 0; i < n * n; ++i) {
      a[i] = std::uint8_t(encode(formats::e4m3fn{}, nd(gen)));
      b[i] = std::uint8_t(encode(formats::e4m3fn{}, nd(gen)));
      af[i] = float(decode(formats::e4m3fn{}, a[i]));
      bf[i] = float(decode(formats::e4m3fn{}, b[i]));
    }
  }
};

Operands& operands(std::int64_t n) {
  static std::map<std::int64_t, Operands> all;
  auto it = all.find(n);
  if (it == all.end()) it = all.emplace(n, Operands(n)).first;
  return it->second;
}

int threads_of(const benchmark::State& st) {
  return st.range(1) == 0 ? omp_get_max_threads() : int(st.range(1));
}

std::map<std::pair<std::int64_t, int>, double> sgemm_rate;

void report(benchmark::State& st, std::int64_t n, double seconds_per_call, bool is_sgemm) {
  const double gflops = 2.0 * double(n) * double(n) * double(n) / seconds_per_call * 1e-9;
  st.counters["GFLOPs"] = gflops;
  const auto key = std::make_pair(n, threads_of(st));
  if (is_sgemm) {
    sgemm_rate[key] = gflops;
  } else if (sgemm_rate.count(key)) {
    st.counters["vs_sgemm"] = gflops / sgemm_rate[key];
  }
}

void BM_sgemm(benchmark::State& st) {
  const std::int64_t n = st.range(0);
  Operands& op = operands(n);
  openblas_set_num_threads(threads_of(st));
  double total = 0;
  for (auto _ : st) {
    const auto t0 = std::chrono::steady_clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(n), int(n), int(n), 1.0f,
                op.af.data(), int(n), op.bf.data(), int(n), 0.0f, op.c.data(), int(n));
    total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  report(st, n, total / double(st.iterations()), true);
}

void run_gemm(benchmark::State& st, const char* spec) {
  const std::int64_t n = st.range(0);
  Operands& op = operands(n);
  GemmOptions o;
  o.accumulation = parse_accumulation(spec);
  o.exec.threads = threads_of(st);
  const CodeMatrix a{formats::e4m3fn{}, op.a.data(), n, n};
  const CodeMatrix b{formats::e4m3fn{}, op.b.data(), n, n};
  if (!gemm_fast_path(a, b, o)) st.SkipWithError("no fast path");
  double total = 0;
  for (auto _ : st) {
    const auto t0 = std::chrono::steady_clock::now();
    gemm(a, b, op.c.data(), n, o);
    total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  report(st, n, total / double(st.iterations()), false);
}

void BM_gemm_fp32(benchmark::State& st) { run_gemm(st, "fp32"); }
void BM_gemm_h100_fp8(benchmark::State& st) { run_gemm(st, "nvidia-h100-fp8"); }
void BM_gemm_h100_fp8_promote128(benchmark::State& st) {
  run_gemm(st, "nvidia-h100-fp8,promote=128");
}

void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "threads"})->UseRealTime()->Unit(benchmark::kMillisecond);
}

}  // namespace

// For each (n, threads): sgemm first, then the fp8emu paths that compare with it.
#define FP8EMU_GEMM_GROUP(N, T)                                 \
  BENCHMARK(BM_sgemm)->Args({N, T})->Apply(shapes);             \
  BENCHMARK(BM_gemm_fp32)->Args({N, T})->Apply(shapes);         \
  BENCHMARK(BM_gemm_h100_fp8)->Args({N, T})->Apply(shapes);     \
  BENCHMARK(BM_gemm_h100_fp8_promote128)->Args({N, T})->Apply(shapes);
FP8EMU_GEMM_GROUP(256, 1)
FP8EMU_GEMM_GROUP(1024, 1)
FP8EMU_GEMM_GROUP(1024, 0)
FP8EMU_GEMM_GROUP(2048, 1)
FP8EMU_GEMM_GROUP(2048, 0)

BENCHMARK_MAIN();
